"""Data parallelism: a batch split over 8 devices, or over two processes, trains as on one device,
up to rounding.

The tests marked ``eight_devices`` need 8 devices. The test process has one CPU device, so
``test_subprocess_with_eight_host_devices`` runs them again in a fresh process where
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` makes the CPU 8 devices (on a machine with 8
accelerators they run directly). ``test_two_processes_in_subprocesses_train_as_one_device`` starts
a two-process run on this machine, as two hosts would run.
"""

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest
from conftest import tree_allclose

import ctlearn.train
import ctlearn.train._loop as loop
from ctlearn.cli import main
from ctlearn.data import ArraySplit, Dataset, load_dataset
from ctlearn.train import DataParallel, TrainConfig, evaluate, read_metrics, train

eight_devices = pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 devices")

# 480 training sequences in batches of 48 (6 per device): 10 steps an epoch. 100 test sequences
# in batches of 64 leave a last batch of 36, which does not split over 8 devices (padded).
SMALL = dict(model_options={"widths": [32, 32]}, batch_size=48, eval_batch_size=64, epochs=2)

# A sharded step sums the batch per device and then across devices: float32 sums in another order.
# Measured after 20 Adam steps (BP, FG-A, LG-FG-W): the weights (of size ~0.1-1) differ by at most
# 6e-8, a few float32 roundings. atol 1e-6 + rtol 1e-4 leaves a margin over 15 while catching any
# real difference (a wrong or missing reduction moves weights by about the learning rate, 1e-3).
TOLERANCE = dict(rtol=1e-4, atol=1e-6)


@pytest.fixture(scope="module")
def small_mnist1d():
    full = load_dataset("mnist1d")
    train_split = ArraySplit(full.train.x[:480], full.train.y[:480])
    test_split = ArraySplit(full.test.x[:100], full.test.y[:100])
    return Dataset("mnist1d", train_split, test_split, 10, (40,), "mnist1d subset")


def _weights(result):
    return eqx.filter(result.model, eqx.is_inexact_array)


def _agree(one, weights, metrics):
    """The final ``weights`` and the per-epoch ``metrics`` of a sharded run match run ``one``."""
    assert tree_allclose(jax.tree.leaves(weights), jax.tree.leaves(_weights(one)), **TOLERANCE)
    for a, b in zip(one.metrics, metrics, strict=True):
        assert b["step"] == a["step"]
        for key in ("train_loss", "train_acc", "test_loss"):
            assert b[key] == pytest.approx(a[key], rel=1e-5), key
        # Accuracies count argmaxes: logits that differ by rounding may (rarely) flip one.
        assert b["test_acc"] == pytest.approx(a["test_acc"], abs=0.01)


@eight_devices
def test_eight_devices_are_seen():
    assert jax.device_count() == len(DataParallel.over().mesh.devices) >= 8


@eight_devices
def test_bp_on_eight_devices_matches_one_device_and_resumes(small_mnist1d, tmp_path):
    config = TrainConfig(**SMALL, devices=8)
    one = train(dataclasses.replace(config, devices=1), dataset=small_mnist1d, progress=False)
    train(config, tmp_path, dataset=small_mnist1d, progress=False, stop_after_epochs=1)
    many = train(config, tmp_path, resume=True, dataset=small_mnist1d, progress=False)
    _agree(one, _weights(many), many.metrics)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["devices"] == 8 and saved["config"]["devices"] == 8


@eight_devices
@pytest.mark.parametrize("method", ["fg-a", "lg-fg-w"])
def test_forward_gradients_on_eight_devices_match_one_device(method, small_mnist1d):
    # The per-example perturbations are drawn inside jit; JAX's partitionable threefry draws the
    # same numbers whatever the sharding, so both runs perturb alike.
    config = TrainConfig(**SMALL, method=method, devices=8)
    one = train(dataclasses.replace(config, devices=1), dataset=small_mnist1d, progress=False)
    many = train(config, dataset=small_mnist1d, progress=False)
    _agree(one, _weights(many), many.metrics)


@eight_devices
def test_batches_are_split_and_the_state_replicated(small_mnist1d, monkeypatch):
    seen = []

    def recording_step(estimator, optimizer, state, x, y, epoch_key, **kwargs):
        seen.append((x.sharding, y.sharding, x.addressable_shards[0].data.shape))
        return train_step(estimator, optimizer, state, x, y, epoch_key, **kwargs)

    train_step = loop.train_step
    monkeypatch.setattr(loop, "train_step", recording_step)
    config = TrainConfig(**{**SMALL, "epochs": 1}, devices=8)
    result = train(config, dataset=small_mnist1d, progress=False)
    assert len(seen) == 10
    for x_sharding, y_sharding, shard_shape in seen:
        assert len(x_sharding.device_set) == len(y_sharding.device_set) == 8
        assert not x_sharding.is_fully_replicated and shard_shape == (48 // 8, 40)
    for leaf in jax.tree.leaves(eqx.filter(result.state, eqx.is_array)):
        assert len(leaf.sharding.device_set) == 8 and leaf.sharding.is_fully_replicated


@eight_devices
def test_a_padded_evaluation_counts_each_example_once(small_mnist1d):
    result = train(
        TrainConfig(**{**SMALL, "epochs": 1}, devices=1), dataset=small_mnist1d, progress=False
    )
    expected = evaluate(result.model, small_mnist1d, "cross_entropy", 30)
    parallel = DataParallel.over(8)
    got = evaluate(result.model, small_mnist1d, "cross_entropy", 30, parallel=parallel)
    assert got[0] == pytest.approx(expected[0], rel=1e-6) and got[1] == expected[1]


@eight_devices
def test_a_batch_that_does_not_split_over_the_devices_fails_early(small_mnist1d):
    with pytest.raises(ValueError, match="batch_size 50 is not divisible by the 8 devices"):
        train(TrainConfig(batch_size=50), dataset=small_mnist1d, progress=False)
    with pytest.raises(ValueError, match="batch_size 50 is not divisible by devices=8"):
        TrainConfig(batch_size=50, devices=8)


def test_more_devices_than_exist_fail_early(tmp_path):
    too_many = jax.device_count() + 1
    with pytest.raises(ValueError, match=f"devices={too_many} asks for more devices than JAX"):
        train(TrainConfig(batch_size=too_many, devices=too_many), tmp_path, progress=False)
    assert not tmp_path.joinpath("config.json").exists()
    with pytest.raises(ValueError, match="devices must be an integer >= 1, got 0"):
        TrainConfig(devices=0)


def test_a_config_without_devices_reads_as_the_default_and_may_change_it_on_resume():
    saved = json.loads(TrainConfig().to_json())
    del saved["devices"]  # as written before the field existed
    old = TrainConfig.from_json(json.dumps(saved))
    assert old.devices is None
    TrainConfig(devices=1).resumable_as(old)


def test_cli_devices_and_distributed_flags(tmp_path, capsys, monkeypatch):
    joined = []
    monkeypatch.setattr(ctlearn.train, "initialize_distributed", lambda: joined.append(True))
    too_many = jax.device_count() + 1
    common = ["train", "--no-progress", "--epochs", "1", "--widths", "8"]
    common += ["--batch-size", str(100 * too_many)]
    assert main(common + ["--out", str(tmp_path / "a"), "--devices", str(too_many)]) == 1
    assert f"devices={too_many} asks for more devices" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    assert main(common + ["--out", str(tmp_path / "b"), "--devices", "1", "--distributed"]) == 0
    assert joined == [True]
    saved = json.loads((tmp_path / "b" / "config.json").read_text())
    assert saved["config"]["devices"] == 1 and saved["devices"] == 1


# One process of a two-host run (two CPU devices each, collectives over gloo): it trains like the
# tests above; process 0 writes the run folder and the final weights.
_HOST = """
import json, sys
import jax
jax.config.update("jax_cpu_collectives_implementation", "gloo")
from ctlearn.train import initialize_distributed
initialize_distributed()  # from JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID
import equinox as eqx, numpy as np
from ctlearn.data import ArraySplit, Dataset, load_dataset
from ctlearn.train import TrainConfig, train
full = load_dataset("mnist1d")
train_split = ArraySplit(full.train.x[:480], full.train.y[:480])
test_split = ArraySplit(full.test.x[:100], full.test.y[:100])
data = Dataset("mnist1d", train_split, test_split, 10, (40,), "mnist1d subset")
config = TrainConfig(**json.loads(sys.argv[2]))
train(config, sys.argv[1], dataset=data, progress=False, stop_after_epochs=1)
result = train(config, sys.argv[1], resume=True, dataset=data, progress=False)
assert jax.process_count() == 2 and jax.device_count() == 4
if jax.process_index() == 0:
    leaves = jax.tree.leaves(eqx.filter(result.model, eqx.is_inexact_array))
    np.savez(sys.argv[1] + "/weights.npz", *[np.asarray(leaf) for leaf in leaves])
"""


def test_two_processes_in_subprocesses_train_as_one_device(small_mnist1d, tmp_path):
    options = dict(SMALL, method="fg-a")
    with socket.socket() as s:  # a free port for the coordinator
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    hosts = []
    for process_id in range(2):
        env = {
            **os.environ,
            "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
            "JAX_PLATFORMS": "cpu",
            "JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
            "JAX_NUM_PROCESSES": "2",
            "JAX_PROCESS_ID": str(process_id),
        }
        command = [sys.executable, "-c", _HOST, str(tmp_path), json.dumps(options)]
        hosts.append(
            subprocess.Popen(
                command,
                cwd=Path(__file__).parents[1],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    try:
        reports = [host.communicate(timeout=300)[0] for host in hosts]
    finally:
        for host in hosts:
            host.kill()
    assert [host.returncode for host in hosts] == [0, 0], reports
    saved = json.loads((tmp_path / "config.json").read_text())
    assert (saved["devices"], saved["processes"]) == (4, 2)
    one = train(TrainConfig(**options, devices=1), dataset=small_mnist1d, progress=False)
    with np.load(tmp_path / "weights.npz") as weights:
        many = [weights[f"arr_{i}"] for i in range(len(weights.files))]
    _agree(one, many, read_metrics(tmp_path))


# The two-process test covers the sharded path in CI; eight devices in a subprocess is slow.
@pytest.mark.slow
def test_subprocess_with_eight_host_devices():
    if jax.device_count() >= 8:
        pytest.skip("the eight-device tests ran in this process")
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    env = {**os.environ, "XLA_FLAGS": flags.strip(), "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__]
    done = subprocess.run(
        command + ["-k", "not subprocess"],
        cwd=Path(__file__).parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "skipped" not in report, report
