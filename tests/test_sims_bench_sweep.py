"""``sims.bench_sweep`` end to end at a tiny size: old and new paths side by side, the whole
sweep, and the summary files with their provenance; bad sizes end in one argparse error."""

from __future__ import annotations

import json

import pytest

from sims.bench_sweep import main as bench_sweep


# A benchmark's smoke test: slow (about a minute of compilation on 2 cores).
@pytest.mark.slow
def test_bench_sweep_reports_old_and_new_side_by_side(tmp_path):
    result = bench_sweep(
        [
            *("--points-side", "2", "--ensemble", "2", "--presentations", "2"),
            *("--single", "1", "--repeats", "1", "--devices", "1", "--out", str(tmp_path)),
        ]
    )
    assert result["points"] == 4 and result["devices"] == 1
    compared = result["side_by_side"]
    assert compared["old"]["points_per_minute"] > 0 and compared["new"]["points_per_minute"] > 0
    assert result["met"] == (result["points_per_minute"] >= 10 * 34)
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["points"] == 4 and saved["provenance"]["commit"]
    assert "| old: vmapped solves, VirtualBrownianTree |" in (tmp_path / "summary.md").read_text()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ensemble", "0"], "--ensemble must be >= 1"),
        (["--compare-chunks", "0"], "--compare-chunks must be >= 1"),
    ],
)
def test_bench_sweep_refuses_bad_sizes(argv, message, capsys):
    with pytest.raises(SystemExit):
        bench_sweep(argv)
    assert message in capsys.readouterr().err
