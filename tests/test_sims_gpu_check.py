"""sims.gpu_check: where its LocalMixer data came from is labelled (real CIFAR-10 or synthetic), the
summary names the devices it ran on, bad options are refused before any work, and (slow tier:
seven compiled computations, about half a minute on a CPU) the quick form writes every field."""

import json
import math

import jax
import numpy as np
import pytest

from ctlearn.data import ArraySplit, Dataset, DatasetNotAvailableError, load_dataset
from sims import gpu_check
from sims.gpu_check import QUICK, SYNTHETIC_LABEL, GpuCheckConfig, cifar10_batch, markdown


def _fake_cifar10(n: int = 20) -> Dataset:
    # Synthetic stand-in for CIFAR-10 (random values of its shape), as a loader would return it.
    rng = np.random.default_rng(0)
    split = ArraySplit(rng.normal(size=(n, 32, 32, 3)), rng.integers(0, 10, n))
    return Dataset("cifar10", split, split, 10, (32, 32, 3), "fake:cifar10")


def test_the_real_cifar10_is_used_and_named_where_it_loads():
    fake = _fake_cifar10()
    x, y, record = cifar10_batch(GpuCheckConfig(batch_size=8), load=lambda name: fake)
    assert record["source"] == "cifar10" and record["reason"] is None
    assert record["label"].startswith("CIFAR-10 (real") and "fake:cifar10" in record["label"]
    np.testing.assert_array_equal(np.asarray(x), fake.train.x[:8])  # the first batch, unshuffled
    np.testing.assert_array_equal(np.asarray(y), fake.train.y[:8])


def test_missing_cifar10_falls_back_to_labelled_synthetic_data_with_the_reason():
    def missing(name):
        raise DatasetNotAvailableError("cifar10 is not prepared in /nowhere")

    def never(name):
        raise AssertionError("--data synthetic tried to load a dataset")

    x, y, record = cifar10_batch(GpuCheckConfig(batch_size=8), load=missing)
    assert record == {"source": "synthetic", "label": SYNTHETIC_LABEL,
                      "reason": "cifar10 is not prepared in /nowhere"}  # fmt: skip
    assert SYNTHETIC_LABEL == "synthetic (CIFAR-10-shaped random data)"
    assert x.shape == (8, 32, 32, 3) and x.dtype == np.float32 and y.shape == (8,)
    assert 0 <= int(y.min()) and int(y.max()) < 10
    _, _, record = cifar10_batch(GpuCheckConfig(batch_size=8, data="synthetic"), load=never)
    assert record["source"] == "synthetic" and record["reason"] == "--data synthetic"


def test_a_cifar10_of_the_wrong_shape_is_refused():
    small = _fake_cifar10(n=4)
    with pytest.raises(ValueError, match=r"expected \(32, 32, 3\) and at least 8"):
        cifar10_batch(GpuCheckConfig(batch_size=8), load=lambda name: small)


def test_the_device_report_is_jaxs():
    report = gpu_check.device_report()
    devices = jax.devices()
    assert report["backend"] == jax.default_backend()
    assert report["gpu"] == (jax.default_backend() == "gpu")
    assert report["count"] == len(devices) == len(report["devices"])
    for entry, device in zip(report["devices"], devices):
        assert entry["name"] == str(device)
        assert entry["platform"] == device.platform
        assert entry["device_kind"] == device.device_kind


def _summary(gpu: bool, reason) -> dict:
    # Synthetic numbers (not measured): the markdown must show the device and the data's label.
    device = {"name": "cuda:0" if gpu else "TFRT_CPU_0", "platform": "gpu" if gpu else "cpu",
              "device_kind": "NVIDIA H200" if gpu else "cpu",
              "memory_bytes": 2**37 if gpu else None}  # fmt: skip
    return {
        "config": {"repeats": 5},
        "devices": {"backend": device["platform"], "gpu": gpu, "count": 1, "devices": [device]},
        "load": {"before": [1.0, 1.0, 1.0], "after": [2.0, 2.0, 2.0]},
        "data": {"source": "synthetic", "label": SYNTHETIC_LABEL, "reason": reason},
        "localmixer": {
            "preset": "M/8/16",
            "parameters": 919000,
            "batch": 128,
            "step_ms": {"bp": 10.0, "lg-fg-a": 15.0},
            "examples_per_s": {"bp": 12800.0, "lg-fg-a": 8533.3},
            "lg-fg-a / bp time": 1.5,
        },  # fmt: skip
        "main_job": {
            "network": "40-64-64-10",
            "batch": 20,
            "presentations": 20,
            "duration": 10.0,
            "dt0": 0.05,
            "path": "HeunPEC, tabulated",
            "presentation_ms": 3.0,
            "discrete_step_ms": 0.5,
            "discrete_step_in_loop_ms": 0.05,
            "steps_per_presentation": 6.0,
            "loop_steps_per_presentation": 60.0,
        },  # fmt: skip
        "ensemble": {
            "network": "40-32-10",
            "batch": 8,
            "members": 64,
            "presentations": 2,
            "duration": 2.0,
            "one_member_ms": 4.0,
            "ensemble_ms": 12.0,
            "ratio": 3.0,
            "ms_per_member": 0.1875,
        },  # fmt: skip
        "provenance": {
            "command": "python -m sims.gpu_check",
            "commit": "abc",
            "dirty": False,
            "utc": "2026-01-01T00:00:00+00:00",
        },  # fmt: skip
    }


def test_the_markdown_names_the_device_and_the_data():
    cpu = markdown(_summary(gpu=False, reason="cifar10 is not prepared"))
    assert "Ran on JAX's **cpu** backend (not a GPU: these are not GPU results)" in cpu
    assert f"Data: {SYNTHETIC_LABEL} (the real data did not load: cifar10 is not prepared)" in cpu
    gpu = markdown(_summary(gpu=True, reason=None))
    assert "**gpu** backend; 1 device(s): cuda:0 (gpu, NVIDIA H200, 128.0 GiB)" in gpu
    assert "not a GPU" not in gpu and "did not load" not in gpu
    assert "| lg-fg-a | 15.000 | 8533 |" in gpu and "LG-FG-A / BP step time: 1.50." in gpu
    assert "3.00 ms per presentation" in gpu and "(6.0 steps per presentation)" in gpu
    assert "64 members 12.0 ms, ratio 3.00" in gpu


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--preset", "XL"], "unknown preset 'XL'; valid: S/1/1, M/1/16"),
        (["--quick", "--members", "1"], "members must be an int >= 2, got members=1"),
        (["--batch-size", "1"], "batch_size must be an int >= 2, got batch_size=1"),
    ],
)
def test_bad_options_are_refused_with_the_value(argv, message):
    with pytest.raises(ValueError) as error:
        gpu_check._cli(argv)
    assert message in str(error.value)


def test_bad_config_values_are_refused():
    with pytest.raises(ValueError, match="data must be one of auto, synthetic, got 'real'"):
        GpuCheckConfig(data="real")
    with pytest.raises(ValueError, match=r"ensemble_widths must be positive ints, got \(0,\)"):
        GpuCheckConfig(ensemble_widths=(0,))
    with pytest.raises(ValueError, match="ensemble_duration must be at least .* got nan"):
        GpuCheckConfig(ensemble_duration=float("nan"))
    with pytest.raises(ValueError, match="repeats must be an int >= 1, got repeats=0"):
        GpuCheckConfig(repeats=0)


def test_the_quick_options_and_overrides():
    quick = gpu_check._cli(["--quick", "--data", "synthetic", "--out", "o"])
    assert quick == GpuCheckConfig(**QUICK, data="synthetic", out="o")
    assert gpu_check._cli(["--quick", "--members", "3"]).members == 3
    assert gpu_check._cli([]) == GpuCheckConfig()
    with pytest.raises(SystemExit):  # argparse: --data takes auto or synthetic
        gpu_check._cli(["--data", "real"])


@pytest.mark.slow
def test_the_quick_form_writes_every_field(tmp_path):
    def load(name):  # never wait for TFDS here: CIFAR-10 is "not there", MNIST-1D is
        if name == "cifar10":
            raise DatasetNotAvailableError("cifar10 withheld by the test")
        return load_dataset(name)

    config = GpuCheckConfig(**QUICK, out=str(tmp_path))
    gpu_check.main(config, load=load)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (tmp_path / "summary.md").read_text() == markdown(summary)
    assert summary["config"]["preset"] == "S/1/1" and summary["config"]["members"] == 4
    assert summary["devices"]["backend"] == jax.default_backend()
    assert summary["devices"]["devices"][0]["name"] == str(jax.devices()[0])
    assert summary["data"] == {"source": "synthetic", "label": SYNTHETIC_LABEL,
                               "reason": "cifar10 withheld by the test"}  # fmt: skip
    assert summary["provenance"]["machine"]["devices"] == [str(d) for d in jax.devices()]
    lm, job, ens = summary["localmixer"], summary["main_job"], summary["ensemble"]
    assert set(lm["step_ms"]) == {"bp", "lg-fg-a"} and lm["batch"] == 16
    assert lm["parameters"] > 0
    assert job["network"] == "40-64-64-10" and job["presentations"] == 2
    assert ens["network"] == "40-32-10" and ens["members"] == 4
    times = [*lm["step_ms"].values(), job["presentation_ms"], job["discrete_step_ms"],
             job["discrete_step_in_loop_ms"], ens["one_member_ms"], ens["ensemble_ms"]]  # fmt: skip
    assert all(math.isfinite(t) and t > 0 for t in times), times
    assert lm["lg-fg-a / bp time"] == pytest.approx(lm["step_ms"]["lg-fg-a"] / lm["step_ms"]["bp"])
    assert ens["ratio"] == pytest.approx(ens["ensemble_ms"] / ens["one_member_ms"])
    assert job["steps_per_presentation"] == pytest.approx(
        job["presentation_ms"] / job["discrete_step_ms"]
    )
