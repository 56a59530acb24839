"""The continuous-time sims run end to end on tiny configurations."""

import json

import pytest

from sims.bench_continuous import BenchConfig
from sims.bench_continuous import main as bench_continuous
from sims.continuous_vs_discrete import CompareConfig
from sims.continuous_vs_discrete import main as continuous_vs_discrete

TINY = dict(
    widths=(8,),
    batch_size=10,
    epochs=1,
    train_size=40,
    duration=2.0,
    dt0=0.1,
    eval_every=2,
    matched_samples=2,
    alignment_durations=(2.0,),
    agreement_batches=1,
    trace_times=16,
    progress=False,
)


def test_continuous_vs_discrete_writes_summary_figures_and_config(tmp_path):
    result = continuous_vs_discrete(CompareConfig(**TINY, out=str(tmp_path)))
    names = ["continuous FG-A", "discrete FG-A", "discrete FG-A ×2", "discrete BP"]
    assert list(result["modes"]) == names
    assert result["presentations"] == 4 and result["samples"] == 40
    assert result["provenance"]["commit"] is None or len(result["provenance"]["commit"]) == 40
    assert "Made by `" in (tmp_path / "summary.md").read_text()  # command, commit, machine
    assert result["effective_lr"] == pytest.approx(30.0 * 1e-4 * 2.0)
    for mode in result["modes"].values():
        assert 0 <= mode["test_accuracy"] <= 100 and mode["wall_s"] > 0
        # Evaluated before training, after every 2 presentations, at the end: the same samples.
        assert mode["curve"]["samples"] == [0, 20, 40]
    assert result["modes"]["continuous FG-A"]["solver_steps_per_presentation"] == 20
    # The summary names the integration the library chose (the default: PEC mode, tabulated).
    assert result["integration"].startswith("HeunPEC at dt0 = ")
    # The instantaneous rule is −η × discrete FG-A along the same tangent, to float32 rounding.
    assert result["agreement"]["cosine_min"] > 1 - 1e-5
    assert result["agreement"]["relative_error_max"] < 1e-4
    [point] = result["alignment"]
    assert point["ratio"] == 2.0 and 0 < point["cosine"] <= 1 and point["scale"] > 0
    assert set(result["direction_cosines"]) == {"1", "2"}
    assert set(result["weight_change_cosines"]) == set(names[1:])
    criterion = result["criterion"]
    assert criterion["met"] == (abs(criterion["discrete FG-A"]["difference"]) <= 2.0)
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["modes"] == result["modes"]
    assert json.loads((tmp_path / "config.json").read_text())["widths"] == [8]
    text = (tmp_path / "summary.md").read_text()
    assert "| continuous FG-A |" in text and "**Criterion**" in text
    assert f"{result['integration']} (`ct.plan`)" in text
    for figure in ("learning_curves.png", "traces.png"):
        assert (tmp_path / figure).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(batch_size=0), "batch_size must be an int >= 1"),
        (dict(epochs=1.5), "epochs must be an int >= 1"),
        (dict(widths=(8, 0)), "widths must be positive"),
        (dict(lr=-1.0), "lr must be finite and > 0"),
        (dict(sigma=float("nan")), "sigma must be finite and > 0"),
        (dict(duration=0.5), "duration=0.5 is shorter than tau_p=1.0"),
        (dict(dt0=2.0), "dt0=2.0 exceeds tau_p"),
        (dict(transition=0.1, dt0=0.5, duration=2.0), "dt0=0.5 exceeds the transition"),
        (dict(transition=10.0), "transition is a time in \\[0, duration=10.0\\), got 10.0"),
        (dict(train_size=5), "train_size=5 holds less than one batch"),
        (dict(matched_samples=-1), "matched_samples must be >= 0"),
        (dict(alignment_durations=(0.5,)), "alignment_durations must lie in"),
    ],
)
def test_continuous_vs_discrete_rejects_bad_configs(options, message):
    with pytest.raises(ValueError, match=message):
        CompareConfig(**options)


# A benchmark's smoke test: slow (the default suite keeps under ~10 minutes).
@pytest.mark.slow
def test_bench_continuous_reports_the_three_measurements(tmp_path):
    config = BenchConfig(
        widths=(8,),
        batch_size=4,
        duration=1.0,
        dt0=0.1,
        tolerances=((1e-2, 1e-4),),
        presentations=1,
        inner=2,
        ensemble=2,
        ensemble_widths=((8,),),
        ensemble_batches=(4,),
        ensemble_targets=(8.0,),
        ensemble_duration=1.0,
        number=1,
        repeats=1,
        out=str(tmp_path),
    )
    result = bench_continuous(config)
    field = result["vector_field"]
    assert field["ratio"] > 0 and field["loop_ratio"] > 0
    assert field["met"] == (field["ratio"] <= 1.5)
    rows = {(r["solver"], r["activation"]): r for r in result["solvers"]}
    assert set(rows) == {
        ("Euler", "relu"),
        ("Heun", "relu"),
        ("Tsit5", "softplus"),
        ("Tsit5", "relu"),
    }
    # Fixed steps: T / dt0 = 10 steps of 1 (Euler) or 2 (Heun) evaluations.
    assert rows["Euler", "relu"]["evaluations"] == 10 and rows["Heun", "relu"]["evaluations"] == 20
    assert rows["Tsit5", "softplus"]["evaluations"] == 6 * rows["Tsit5", "softplus"]["steps"]
    # Heun is second order: closer to the fine reference than Euler.
    assert rows["Heun", "relu"]["delta_error"] < rows["Euler", "relu"]["delta_error"]
    assert [r["over"] for r in result["ensembles"]] == ["seeds", "η"]
    for ensemble in result["ensembles"]:
        assert ensemble["members"] == 2 and ensemble["fused_ratio"] > 0
        assert ensemble["vmap_ratio"] > 0 and ensemble["largest_difference"] < 1e-5
        # HeunPEC: one evaluation per step of T / dt0 = 10 (a finer plan would take more).
        assert ensemble["solver"] == "HeunPEC" and ensemble["evaluations"] >= 10
        assert ensemble["field_ratio"] > 0 and ensemble["network_ratio"] > 0
        assert ensemble["layout_ratio"] > 0
        assert ensemble["stepped_ratio"] > 0 and ensemble["rebuilt_difference"] < 1e-5
        assert ensemble["feasible"] == (ensemble["floor_ratio"] <= ensemble["target"])
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["solvers"] == result["solvers"] and saved["provenance"]["command"]
    summary = (tmp_path / "summary.md").read_text()
    assert "| Heun | fixed | relu |" in summary and "| target feasible here |" in summary
    assert "| rebuilt / stepped speed |" in summary
    lone = result["lone_weights"]
    assert lone["speedup"] > 0 and lone["largest_difference"] < 1e-5
    assert "| stepped (ms / presentation) |" in summary


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(inner=0), "inner must be an int >= 1"),
        (dict(widths=()), "widths must be positive"),
        (dict(ensemble_widths=((8,),), ensemble_batches=(4, 8)), "pair up"),
        (dict(parts=("d",)), "parts must be some of a, b, c"),
        (dict(tolerances=((1e-3,),)), "tolerances must be"),
        (dict(dt0=2.0), "dt0=2.0 exceeds tau_p"),
        (dict(ensemble_duration=0.5), "ensemble_duration=0.5 is shorter than tau_p"),
    ],
)
def test_bench_continuous_rejects_bad_configs(options, message):
    with pytest.raises(ValueError, match=message):
        BenchConfig(**options)
