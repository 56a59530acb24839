"""The sims scripts run end to end on tiny configurations."""

import json

import pytest

from sims.bench_estimators import BenchConfig
from sims.bench_estimators import main as bench_estimators


def test_bench_estimators_reports_a_ratio_to_bp_per_method_and_optimizer(tmp_path):
    config = BenchConfig(
        methods=("bp", "fg-a", "lg-fg-a:noise=rademacher"),
        widths=(16, 16),
        batch_size=4,
        number=1,
        repeats=2,
        out=str(tmp_path),
    )
    result = bench_estimators(config)
    assert [row["method"] for row in result["rows"]] == list(config.methods)
    for row in result["rows"]:
        for optimizer in ("sgd", "adam"):
            assert row[f"{optimizer}_ms"] > 0 and row[f"{optimizer}_ratio"] > 0
    assert result["rows"][0]["sgd_ratio"] == 1.0
    saved = json.loads((tmp_path / "bench_estimators.json").read_text())
    assert saved["rows"] == result["rows"]
    assert "| lg-fg-a:noise=rademacher |" in (tmp_path / "bench_estimators.md").read_text()


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(methods=("fg-a", "bp")), "first method must be 'bp'"),
        (dict(methods=("bp", "fg-q")), "unknown method 'fg-q'"),
        (dict(methods=("bp", "fg-a:mask")), "expected KEY=VALUE"),
        (dict(optimizers=("lamb",)), "unknown optimizer 'lamb'"),
    ],
)
def test_bench_estimators_rejects_bad_configs(options, message):
    with pytest.raises(ValueError, match=message):
        BenchConfig(**options)


def test_reproduce_fdfa_writes_results_beside_the_paper_and_resumes(tmp_path, capsys):
    from sims.reproduce_fdfa import ReproduceConfig
    from sims.reproduce_fdfa import main as reproduce

    config = ReproduceConfig(
        dataset="mnist1d",
        depth=3,
        width=16,
        methods=("bp", "fdfa", "dfa"),
        epochs=2,
        seeds=2,
        batch_size=200,
        out=str(tmp_path),
        progress=False,
    )
    result = reproduce(config)
    assert [r["method"] for r in result["rows"]] == ["bp", "fdfa", "dfa"]
    for row in result["rows"]:
        assert len(row["test_acc_runs"]) == 2 and 0 <= row["test_acc_mean"] <= 100
        assert row["paper_mean"] is None  # the paper has no mnist1d numbers
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["rows"] == result["rows"]
    assert "| fdfa |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    dfa_config = json.loads((tmp_path / "runs" / "dfa-seed0" / "config.json").read_text())
    assert dfa_config["config"]["model_options"]["init"] == "zeros"
    # A second call finds every run complete and trains nothing.
    stamp = (tmp_path / "runs" / "bp-seed0" / "checkpoint.eqx").stat().st_mtime_ns
    again = reproduce(config)
    assert again["rows"] == result["rows"]
    assert (tmp_path / "runs" / "bp-seed0" / "checkpoint.eqx").stat().st_mtime_ns == stamp


def test_paper_table_lookup():
    from sims.fdfa_paper import paper_accuracy

    assert paper_accuracy("fdfa_fc", "fashion_mnist", "fdfa", 2) == (89.27, 0.07)
    assert paper_accuracy("fdfa_fc", "cifar10", "lg-fg-a", 4) == (34.56, 0.34)
    assert paper_accuracy("fdfa_cnn", "mnist", "dkp") == (99.08, 0.03)
    assert paper_accuracy("alexnet", "cifar100", "fdfa") == (57.27, 0.11)
    assert paper_accuracy("fdfa_fc", "mnist", "lg-fg-a", 2) is None
