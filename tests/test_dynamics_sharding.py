"""Ensembles and sweeps sharded over devices: members split over a mesh run as they do on one
device, and sizes that do not split are refused before any work.

The test process has one CPU device, so the sharded runs happen in one subprocess where
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` makes the CPU four devices; it reports
what it measured as JSON and the assertions are made here. The refusals that need no devices are
checked in this process. Marked slow: a sweep from the command line over four devices (resumed
to identical tables) and a sweep over two processes (hosts) with two devices each.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from ctlearn._mesh import check_divisible, resolve_devices
from ctlearn.sweep import AnalogSweep, SweepSpec

# A sharded member is the same vmapped computation, partitioned: the compiler may fuse and
# order its float32 arithmetic differently. Measured (4 members, 2 presentations): the largest
# difference over all 22 result arrays is 2.4e-7 (a loss of about 1), so 1e-6 holds with a
# margin while any real difference (a member given another's numbers or key moves the loss by
# > 1e-3) fails.
TOLERANCE = 1e-6

_PRELUDE = r"""
import json, sys
from pathlib import Path

import jax
import numpy as np

assert jax.device_count() == 4, jax.devices()
out = Path(sys.argv[1])
report = {}
"""

_ENSEMBLE = r"""
import ctlearn.dynamics as ct
import ctlearn.dynamics._ensemble as ensemble_module
import ctlearn.sweep._analog as analog_module
from ctlearn.sweep import AnalogSweep, SweepSpec
from models import mlp

# Synthetic inputs and labels (random numbers, not a dataset): 2 presentations of 6 examples.
kx, ky = jax.random.split(jax.random.PRNGKey(42))
x = jax.random.normal(kx, (2, 6, 10))
y = jax.random.randint(ky, (2, 6), 0, 3)
stream = ct.Presentations(x, y, duration=1.0, transition=0.1)
keys = [jax.random.PRNGKey(i) for i in range(4)]
models = [mlp((10,), 3, (8,), local_heads=False, key=k) for k in keys]
sims = [
    ct.Simulator(rule=ct.FGARule(lr=lr), perturbation=ct.Sinusoids(sigma=0.01, tau=1.0), dt0=0.1)
    for lr in (1.0, 2.0, 3.0, 4.0)
]
one = ct.simulate_ensemble(sims, models, stream, keys=keys, progress=False, devices=1)
four = ct.simulate_ensemble(sims, models, stream, keys=keys, progress=False)  # all 4 devices
differences = [
    float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
    for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(four))
]
report["max_difference"] = max(differences)
report["leaves"] = len(differences)
report["loss_range"] = float(np.ptp(np.asarray(four.results.loss)))
weight = four.results.model.layers[0].weight
report["sharded_devices"] = [
    len(leaf.sharding.device_set)
    for leaf in jax.tree.leaves((four.results.model, four.results.circuit, four.results.delta))
]
report["shard_rows"] = sorted({s.data.shape[0] for s in weight.addressable_shards})
report["shard_devices"] = len({s.device for s in weight.addressable_shards})
report["unsharded_devices"] = len(one.results.model.layers[0].weight.sharding.device_set)
chosen = jax.devices()[3:]  # one device that is not the default one: placed there
report["chosen_device"] = [
    d.id for d in ensemble_module._member_sharding(chosen, 4).device_set
] == [chosen[0].id]

# Refusals come before any work: preparing a member or loading a dataset would raise here.
def no_work(*args, **kwargs):
    raise AssertionError("work began before the refusal")

ensemble_module.prepare = analog_module._dataset = no_work
refusals = {}
try:
    ct.simulate_ensemble(sims[:3], models[:3], stream, keys=keys[:3], progress=False)
except ValueError as error:
    refusals["ensemble"] = str(error)
odd = SweepSpec.from_dict({"grid": {"rule.lr": [1.0, 2.0]}, "seeds": 3, "ensemble": 6})
try:
    AnalogSweep(odd, lambda *args: None)
except ValueError as error:
    refusals["sweep"] = str(error)
report["refusals"] = refusals
print("REPORT " + json.dumps(report))
"""

# An analog sweep (MNIST-1D, activity noise: a stochastic solve) from the command line over the 4
# devices, whole and in two calls (resumed), and on one device for comparison.
_SWEEP = r"""
import sims.analog_sweep as cli

grid = {
    "name": "sharded",
    "base": {
        "widths": [8], "batch_size": 6, "presentations": 2, "duration": 1.0,
        "transition": 0.1, "dt0": 0.1, "test_size": 20, "chunk": 2,
        "hardware": {"noise": {"tau": 0.2}},
    },
    "grid": {"noise.sigma": [None, 0.02]},
    "seeds": 4,
    "ensemble": 4,
}
(out / "grid.json").write_text(json.dumps(grid))
common = ["--grid", str(out / "grid.json"), "--no-progress"]
whole = cli.main(common + ["--devices", "4", "--out", str(out / "whole")])
cli.main(common + ["--devices", "4", "--out", str(out / "resumed"), "--max-chunks", "1"])
report["after_one_chunk"] = len(json.loads((out / "resumed" / "results.json").read_text()))
cli.main(common + ["--devices", "4", "--out", str(out / "resumed")])
one = cli.main(common + ["--devices", "1", "--out", str(out / "one")])
report["rows"] = [whole, one]
print("REPORT " + json.dumps(report))
"""


def _with_four_devices(script: str, out: Path) -> dict:
    """Runs ``script`` in a fresh process that sees four CPU devices; returns its report."""
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    env = {**os.environ, "XLA_FLAGS": flags.strip(), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", _PRELUDE + script, str(out)],
        cwd=Path(__file__).parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    line = [s for s in done.stdout.splitlines() if s.startswith("REPORT ")][-1]
    return json.loads(line.removeprefix("REPORT "))


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    """What a 4-member ensemble measured on four host devices (and its refusals)."""
    return _with_four_devices(_ENSEMBLE, tmp_path_factory.mktemp("ensemble"))


def test_a_sharded_ensemble_equals_the_unsharded_one(four_devices):
    report = four_devices
    assert report["leaves"] > 10
    assert report["max_difference"] <= TOLERANCE, report["max_difference"]
    # The members differ (η, weights, keys), so equal results are not equal by accident.
    assert report["loss_range"] > 1e-3


def test_a_sharded_ensemble_keeps_its_results_on_all_four_devices(four_devices):
    report = four_devices
    assert set(report["sharded_devices"]) == {4}
    # One member per device: the member axis is split, not copied.
    assert report["shard_rows"] == [1] and report["shard_devices"] == 4
    assert report["unsharded_devices"] == 1
    assert report["chosen_device"]


def test_sizes_that_do_not_split_are_refused_before_any_work(four_devices):
    refusals = four_devices["refusals"]
    assert refusals["ensemble"].startswith(
        "ensemble size 3 is not divisible by the 4 devices in use: make ensemble size a "
        "multiple of 4 (4, 8, 12, ...), or use a number of devices (devices=, --devices) that "
        "divides 3 (1, 3 of the 4 available)"
    )
    assert refusals["sweep"].startswith(
        "ensemble 6 does not split over the 4 devices in use: choose an ensemble that is a "
        "multiple of 4 (4, 8, 12, ...), or devices that divide 6 (1, 2, 3 of the 4 available)"
    )


@pytest.mark.slow  # four compilations of a stochastic solve: ~2 minutes on 2 busy cores
def test_a_sharded_sweep_matches_one_device_and_resumes_to_identical_tables(tmp_path):
    report = _with_four_devices(_SWEEP, tmp_path)
    assert report["after_one_chunk"] == 4
    whole, one = report["rows"]
    assert len(whole) == len(one) == 8
    for sharded, alone in zip(whole, one):
        assert sharded["point"] == alone["point"] and sharded["seed"] == alone["seed"]
        for name in ("test_loss", "train_loss", "alignment"):
            assert sharded[name] == pytest.approx(alone[name], rel=1e-5, abs=1e-6), name
    for name in ("results.json", "results.csv", "summary.md"):
        expected = (tmp_path / "whole" / name).read_bytes()
        assert (tmp_path / "resumed" / name).read_bytes() == expected, name


# One process of a two-host run (two CPU devices each, collectives over gloo): a sweep of
# 4-member ensembles over all four devices, stopped after one chunk and resumed. Every process
# runs it alike; process 0 writes the directory.
_HOST = r"""
import json, os, sys
import jax
from ctlearn.train import initialize_distributed
if "JAX_NUM_PROCESSES" in os.environ:  # a host of the two-process run, not the reference
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    initialize_distributed()  # from JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID
import numpy as np
import ctlearn.dynamics as ct
from ctlearn.sweep import SweepSpec, run_sweep
from models import mlp

# Synthetic inputs and labels (random numbers, not a dataset): 2 presentations of 6 examples.
kx, ky = jax.random.split(jax.random.PRNGKey(42))
x = jax.random.normal(kx, (2, 6, 10))
y = jax.random.randint(ky, (2, 6), 0, 3)
stream = ct.Presentations(x, y, duration=1.0, transition=0.1)


def evaluate(spec, members):
    keys = [jax.random.PRNGKey(m.seed) for m in members]
    ensemble = ct.simulate_ensemble(
        [
            ct.Simulator(
                rule=ct.FGARule(lr=m.params["rule.lr"]),
                perturbation=ct.Sinusoids(sigma=0.01, tau=1.0),
                dt0=0.1,
            )
            for m in members
        ],
        [mlp((10,), 3, (8,), local_heads=False, key=k) for k in keys],
        stream,
        keys=keys,
        progress=False,
        devices=spec.base["devices"],
    )
    sharded = ensemble.results.model.layers[0].weight.sharding
    return [
        {"loss": float(ensemble.results.loss[i, -1]), "devices": len(sharded.device_set)}
        for i in range(len(members))
    ]


spec = SweepSpec(
    grid={"rule.lr": [1.0, 2.0]}, seeds=4, ensemble=4, base={"devices": int(sys.argv[2])}
)
if jax.process_count() > 1:
    assert jax.process_count() == 2 and jax.device_count() == 4
    run_sweep(spec, sys.argv[1], evaluate, progress=False, max_chunks=1)
rows = run_sweep(spec, sys.argv[1], evaluate, progress=False)
print("ROWS " + json.dumps(rows))
"""


@pytest.mark.slow  # two processes compiling the same ensemble: ~1 minute on 2 busy cores
def test_a_sweep_over_two_processes_matches_one_device(tmp_path):
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
        hosts.append(_start(_HOST, tmp_path / "two", "4", env))
    hosts.append(_start(_HOST, tmp_path / "one", "1", {**os.environ, "JAX_PLATFORMS": "cpu"}))
    try:
        reports = [host.communicate(timeout=600)[0] for host in hosts]
    finally:
        for host in hosts:
            host.kill()
    assert [host.returncode for host in hosts] == [0, 0, 0], reports
    tables = [
        json.loads([s for s in r.splitlines() if s.startswith("ROWS ")][-1][5:]) for r in reports
    ]
    assert tables[0] == tables[1]  # both hosts return the same table
    assert json.loads((tmp_path / "two" / "results.json").read_text()) == tables[0]
    assert len(tables[0]) == len(tables[2]) == 8
    for sharded, alone in zip(tables[0], tables[2]):
        assert (sharded["devices"], alone["devices"]) == (4, 1)
        assert sharded["loss"] == pytest.approx(alone["loss"], rel=TOLERANCE, abs=TOLERANCE)


def _start(script: str, out: Path, devices: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, str(out), devices],
        cwd=Path(__file__).parents[1],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize(
    ("spec", "devices", "match"),
    [
        (
            dict(grid={"rule.lr": [1.0, 2.0, 3.0]}, seeds=2, ensemble=6),
            4,
            r"ensemble 6 does not split over the 4 devices in use: choose an ensemble that is a "
            r"multiple of 4 \(4, 8, 12, \.\.\.\), or devices that divide 6 \(1, 2, 3, 6 of the "
            r"8 available\)",
        ),
        (
            dict(grid={"rule.lr": [1.0, 2.0, 3.0]}, seeds=3, ensemble=4),
            2,
            r"the sweep's 9 members \(3 points x 3 seeds\) leave a last chunk of 1 that does not "
            r"split over the 2 devices in use: .* or devices that divide both 9 and ensemble 4 "
            r"\(1 of the 8 available\)",
        ),
    ],
)
def test_a_sweep_that_cannot_be_sharded_names_the_values(spec, devices, match):
    with pytest.raises(ValueError, match=match):
        SweepSpec(**spec).check_devices(devices, available=8)


def test_a_sweep_that_splits_passes_the_check():
    SweepSpec(grid={"rule.lr": [1.0, 2.0, 3.0]}, seeds=4, ensemble=8).check_devices(4, 8)
    SweepSpec(grid={"rule.lr": [1.0]}, seeds=5, ensemble=16).check_devices(1, 1)


def test_bad_device_settings_are_refused():
    too_many = jax.device_count() + 1
    with pytest.raises(ValueError, match=f"devices={too_many} asks for more devices than JAX"):
        AnalogSweep(SweepSpec(grid={}, seeds=1), lambda *args: None, devices=too_many)
    with pytest.raises(ValueError, match="devices must be a positive integer or None, got 0"):
        resolve_devices(0)
    with pytest.raises(ValueError, match="lists a device more than once"):
        resolve_devices([jax.devices()[0]] * 2)
    with pytest.raises(ValueError, match="devices must be None, a positive integer or a list"):
        resolve_devices("all")
    with pytest.raises(ValueError, match="batch_size 50 is not divisible by the 8 devices"):
        check_divisible(50, 8, "batch_size")
