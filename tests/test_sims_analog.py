"""The analog-hardware sweep command and studies, end to end at toy sizes (MNIST-1D)."""

from __future__ import annotations

import json

import pytest

from ctlearn.sweep import AnalogSweep, SweepSpec
from sims import analog_sweep, study_phase
from sims._analog import mlp_model

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


@pytest.mark.slow
@pytest.mark.parametrize("name", ["noise", "differentiator", "precision", "mismatch"])
def test_every_study_runs_end_to_end_in_quick_mode(tmp_path, name):
    module = __import__(f"sims.study_{name}", fromlist=["main"])
    result = module.main(["--quick", "--out", str(tmp_path), "--no-progress"])
    assert result["complete"]
    assert all(f.exists() for f in result["figures"])
