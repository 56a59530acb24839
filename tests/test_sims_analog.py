"""The analog-hardware sweep command and studies, end to end at toy sizes (MNIST-1D, and
Fashion-MNIST from the local IDX files), and the studies' presets."""

from __future__ import annotations

import json
import math

import pytest

from ctlearn.sweep import AnalogBase, AnalogSweep, SweepSpec
from sims import (
    analog_sweep,
    study_device,
    study_device_spread,
    study_differentiator,
    study_mismatch,
    study_noise,
    study_phase,
    study_precision,
)
from sims._analog import (
    FASHION_BASE,
    PERTURBATION_SCALE,
    RING_DOWN,
    STEPS_PER_TAU,
    differentiator_base,
    mlp_model,
)

STUDIES = (
    study_noise,
    study_differentiator,
    study_precision,
    study_mismatch,
    study_phase,
    study_device,
    study_device_spread,
)
DIFFERENTIATED = (study_differentiator, study_phase)

TOY_BASE = {
    "widths": [8],
    "presentations": 2,
    "duration": 2.0,
    "transition": 0.2,
    "test_size": 100,
    "chunk": 2,
    "hardware": {"noise": {"tau": 0.1}},
}


def grid_file(tmp_path, **changes):
    spec = {
        "name": "toy",
        "base": TOY_BASE,
        "grid": {"noise.sigma": [None, 0.02], "precision.bits": [None, 6]},
        "seeds": 1,
        "ensemble": 2,
        **changes,
    }
    spec["base"] = {**spec["base"], "hardware": {"noise": {"tau": 0.1}, "precision": {"w_max": 2}}}
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(spec))
    return path


def test_an_interrupted_sweep_resumes_to_the_same_table_without_recomputing(tmp_path, monkeypatch):
    grid = grid_file(tmp_path)
    evaluated = []
    call = AnalogSweep.__call__

    def counting(self, spec, members):
        evaluated.extend((m.point, m.seed) for m in members)
        return call(self, spec, members)

    monkeypatch.setattr(AnalogSweep, "__call__", counting)
    whole = tmp_path / "whole"
    rows = analog_sweep.main(["--grid", str(grid), "--out", str(whole), "--no-progress"])
    assert len(rows) == 4 and len(evaluated) == 4  # 4 points × 1 seed, in 2 chunks
    assert all(0 <= r["test_accuracy"] <= 1 and -1 <= r["alignment"] <= 1 for r in rows)
    assert {r["diverged_at"] for r in rows} == {-1}

    evaluated.clear()
    parts = tmp_path / "parts"
    analog_sweep.main(
        ["--grid", str(grid), "--out", str(parts), "--no-progress", "--max-chunks", "1"]
    )
    assert len(evaluated) == 2
    evaluated.clear()
    analog_sweep.main(["--grid", str(grid), "--out", str(parts), "--no-progress"])
    assert len(evaluated) == 2  # only the members the first call did not finish
    for name in ("results.json", "results.csv"):
        assert (parts / name).read_bytes() == (whole / name).read_bytes()
    evaluated.clear()
    analog_sweep.main(["--grid", str(grid), "--out", str(parts), "--no-progress"])
    assert evaluated == []


def test_a_sweep_with_impossible_physics_fails_before_any_work(tmp_path):
    spec = SweepSpec.from_dict(
        {
            "base": {**TOY_BASE, "hardware": {}},
            "grid": {"differentiator.tau": [0.1, 5.0]},
            "seeds": 1,
        }
    )
    with pytest.raises(ValueError, match=r"grid point \{'differentiator.tau': 5.0\}.*tau_d=5.0"):
        AnalogSweep(spec, mlp_model)
    bad_name = SweepSpec.from_dict({"base": TOY_BASE, "grid": {"noise.level": [0.1]}, "seeds": 1})
    with pytest.raises(ValueError, match="'noise.level' cannot be swept; valid: rule.lr"):
        AnalogSweep(bad_name, mlp_model)
    no_ideal = SweepSpec.from_dict({"base": TOY_BASE, "grid": {"noise.tau": [None]}, "seeds": 1})
    with pytest.raises(ValueError, match="'noise.tau' has no ideal value"):
        AnalogSweep(no_ideal, mlp_model)
    with pytest.raises(ValueError, match="unknown settings \\['width'\\]"):
        AnalogSweep(
            SweepSpec.from_dict({"base": {"width": 3}, "grid": {"rule.lr": [1.0]}, "seeds": 1}),
            mlp_model,
        )


def test_the_phase_study_runs_end_to_end_in_quick_mode(tmp_path, capsys):
    result = study_phase.main(["--quick", "--out", str(tmp_path), "--no-progress"])
    assert result["complete"] and len(result["rows"]) == 4
    for figure in result["figures"]:
        assert figure.exists() and figure.stat().st_size > 10_000
    summary = (tmp_path / "summary.md").read_text()
    assert "test_accuracy_mean" in summary and "| None | 0.05 |" in summary
    assert "phase diagram" in capsys.readouterr().out


def test_the_device_study_runs_in_quick_mode_with_its_bp_reference(tmp_path):
    """Soft-bounds devices in quick form; the reference line is gradient flow on the ideal
    circuit at η·c (its own sweep in ``bp/``), whose weight change follows −∇L (alignment above
    0.99: only the gradient's turning within a presentation separates them)."""
    result = study_device.main(["--quick", "--out", str(tmp_path), "--no-progress"])
    assert result["complete"] and len(result["rows"]) == 4
    bp = json.loads((tmp_path / "bp" / "summary.json").read_text())
    (row,) = bp["summary"]
    assert row["alignment_mean"] > 0.99
    base = AnalogBase.from_dict(bp["spec"]["base"])
    assert base.rule == "bp" and base.hardware == {}
    full = AnalogBase.from_dict(study_device.FULL["base"])  # the quick spec's η, σ, τ_p
    assert base.lr == pytest.approx(full.lr * (full.sigma / full.tau_p) ** 2)  # η·c
    # Discrete BP: one step of η·c·T per presentation, one row per seed.
    discrete = json.loads((tmp_path / "bp" / "discrete.json").read_text())
    assert discrete["lr"] == pytest.approx(base.lr * base.duration)
    assert [r["seed"] for r in discrete["rows"]] == [0]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["metrics"] == ["test_accuracy", "alignment", "weight_mean"]
    assert all(math.isfinite(r["weight_mean"]) for r in result["rows"])
    assert all(f.exists() for f in result["figures"])


def test_the_device_studys_reference_lines_name_both_bps_and_the_symmetry_points(monkeypatch):
    """The accuracy panel's lines come from ``bp_reference``; the parameter panel has w* of the
    nominal soft-bounds device on [−1, 1] at each β of the grid: w* = β there."""
    monkeypatch.setattr(
        study_device, "bp_reference", lambda raw, out, progress: {"test_accuracy": {"BP": 0.5}}
    )
    raw = study_device.PRESETS["fashion"]
    lines = study_device.references(raw, None, False)
    assert lines["test_accuracy"] == {"BP": 0.5}
    betas = raw["grid"]["device.up_down"]
    assert list(lines["weight_mean"].values()) == pytest.approx(betas)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["noise", "differentiator", "precision", "mismatch"])
def test_every_study_runs_end_to_end_in_quick_mode(tmp_path, name):
    module = __import__(f"sims.study_{name}", fromlist=["main"])
    result = module.main(["--quick", "--out", str(tmp_path), "--no-progress"])
    assert result["complete"]
    assert all(f.exists() for f in result["figures"])


@pytest.mark.parametrize("study", STUDIES, ids=lambda m: m.__name__.split(".")[-1])
def test_every_preset_is_a_valid_spec_whose_points_pass_the_physics_checks(study):
    assert list(study.PRESETS) == ["mnist1d", "fashion"]
    assert study.PRESETS["mnist1d"] is study.FULL  # the MNIST-1D spec stays the default
    fashion = study.PRESETS["fashion"]
    name = study.FULL["name"]
    assert fashion["name"] == f"{name}_fashion"
    # The one shared base, only hardware added (and, where the reward rate passes through a
    # differentiator, the settings of differentiator_base: checked below).
    scaled = set(differentiator_base([1.0])) - {"hardware"} if study in DIFFERENTIATED else set()
    for key, value in FASHION_BASE.items():
        if key not in scaled:
            assert fashion["base"][key] == value
    assert set(fashion["base"]) - set(FASHION_BASE) <= {"hardware"} | scaled
    spec = SweepSpec.from_dict(fashion)
    assert len(spec.seeds) >= 2
    assert len(spec.members()) % spec.ensemble == 0  # whole chunks: resumable in equal slices
    # The grid spans harmless (the ideal value, or the mildest) to harmful.
    assert max(len(values) for values in spec.grid.values()) >= 3
    base = AnalogBase.from_dict(spec.base)
    assert base.dataset == "fashion_mnist"
    assert (base.simulator({}).solver is None) == (study not in DIFFERENTIATED)
    AnalogSweep(spec, mlp_model)  # every point against the presentations, before any work
    AnalogSweep(SweepSpec.from_dict(study.PRESETS["mnist1d"]), mlp_model)


@pytest.mark.parametrize("study", DIFFERENTIATED, ids=lambda m: m.__name__.split(".")[-1])
def test_the_differentiator_presets_keep_the_mean_update_and_resolve_every_tau_d(study):
    spec = SweepSpec.from_dict(study.PRESETS["fashion"])
    base = AnalogBase.from_dict(spec.base)
    plain = AnalogBase.from_dict(FASHION_BASE)
    # The rule's mean update per presentation is ∝ η·σ_p²: unchanged (to rounding) ...
    assert base.lr * base.sigma**2 == pytest.approx(plain.lr * plain.sigma**2, rel=1e-12)
    # ... while the reward loop's gain, ∝ η·σ_p, is PERTURBATION_SCALE times lower.
    assert base.lr * base.sigma == pytest.approx(plain.lr * plain.sigma / PERTURBATION_SCALE)
    taus = [tau for tau in spec.grid["differentiator.tau"] if tau]
    assert base.solver == "heun" and base.dt0 <= min(taus) / STEPS_PER_TAU * (1 + 1e-9)
    blank = base.hardware["differentiator"]["blank"]
    assert base.transition + RING_DOWN * max(taus) == pytest.approx(blank)
    assert blank < base.duration  # something is left to learn in
    if "noise.sigma" in spec.grid:  # noise levels in multiples of the perturbation's σ_p
        levels = [s / base.sigma for s in spec.grid["noise.sigma"] if s]
        assert levels == pytest.approx([1.0, 3.0])


def test_differentiator_base_refuses_a_grid_without_a_finite_tau_d():
    with pytest.raises(ValueError, match=r"finite tau_d among taus=\[None\]"):
        differentiator_base([None])


def test_a_quick_fashion_study_runs_and_records_where_its_numbers_came_from(tmp_path, capsys):
    out = tmp_path / "precision"
    argv = ["--preset", "fashion", "--quick", "--out", str(out), "--no-progress"]
    result = study_precision.main([*argv, "--max-chunks", "0"])
    assert not result["complete"] and result["rows"] == [] and result["figures"] == []
    result = study_precision.main(argv)
    assert result["complete"] and len(result["rows"]) == 2
    assert all(0 <= r["test_accuracy"] <= 1 and r["failed"] == 0 for r in result["rows"])
    assert [f.name for f in result["figures"]] == ["precision_fashion.png"]
    assert result["figures"][0].exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] and summary["spec"]["base"]["dataset"] == "fashion_mnist"
    assert summary["spec"]["base"]["widths"] == [8]  # the quick sizes
    command = "python -m sims.study_precision " + " ".join(argv)
    assert summary["provenance"]["command"] == command
    assert summary["provenance"]["machine"]["cores"] >= 1 and "commit" in summary["provenance"]
    assert [run["command"] for run in summary["runs"]] == [command + " --max-chunks 0", command]
    text = (out / "summary.md").read_text()
    assert f"Command: `{command}`" in text and "2 of 2 members" in text
    assert "weight precision" in capsys.readouterr().out


def test_an_unknown_preset_is_refused_naming_the_valid_ones(tmp_path, capsys):
    with pytest.raises(SystemExit) as error:
        study_noise.main(["--preset", "cifar10", "--out", str(tmp_path)])
    assert error.value.code == 2
    message = capsys.readouterr().err
    assert "'cifar10'" in message and "'mnist1d'" in message and "'fashion'" in message
    assert not any(tmp_path.iterdir())  # refused before any work


@pytest.mark.slow
def test_a_sweep_over_pulsed_devices_runs(tmp_path):
    """The ``device`` kind (``ct.PulsedDevice``) in a sweep: None is the continuous device (dw_min
    0) and a coarse step is a point of the same ensemble; both rows are finite."""
    spec = {
        "name": "toy-device",
        "base": {**TOY_BASE, "hardware": {"device": {"w_min": -1.0, "w_max": 1.0, "c2c": 0.3}}},
        "grid": {"device.dw_min": [None, 0.01]},
        "seeds": 1,
        "ensemble": 2,
    }
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(spec))
    rows = analog_sweep.main(["--grid", str(path), "--out", str(tmp_path / "out"), "--no-progress"])
    assert [r["device.dw_min"] for r in rows] == [None, 0.01]
    assert all(math.isfinite(r["test_loss"]) and r["diverged_at"] == -1 for r in rows)
