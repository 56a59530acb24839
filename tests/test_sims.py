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
