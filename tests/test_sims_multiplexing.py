"""``sims.multiplexing`` end to end in quick form: the measured estimate quality of every
multiplexing family agrees with its first-order prediction within the sim's stated tolerances,
and the codes that are exact after one period are so in the simulator."""

import json

import pytest

from sims import multiplexing


def test_quick_run_agrees_with_theory(tmp_path, capsys):
    """Quick form (P = 26 parameters, 32 chips, synthetic data) with 8 draws: every scheme
    agrees (exact codes within 0.01 of their per-draw prediction, random ones within 0.02 plus
    4 standard errors); time multiplexing after P chips and Walsh codes after N = 32 chips
    reach cos > 0.999; random codes stay well below (the law gives 0.75)."""
    result = multiplexing.main(["--quick", "--seeds", "8", "--out", str(tmp_path)])
    assert result["units"] == 26 and result["walsh_order"] == 32
    rows = {row["scheme"]: row for row in result["schemes"]}
    assert list(rows) == list(multiplexing.SCHEMES)
    for row in rows.values():
        assert row["agrees"], (row["scheme"], row["worst_deviation"], row["worst_allowed"])
    tau = result["config"]["tau"]
    assert rows["time"]["measured_mean"][multiplexing.at(rows["time"], 26, tau)] > 0.999
    assert rows["walsh"]["measured_mean"][multiplexing.at(rows["walsh"], 32, tau)] > 0.999
    assert rows["random"]["measured_mean"][-1] < 0.9
    assert rows["random"]["law"][-1] == pytest.approx(0.7493, abs=1e-4)
    saved = json.loads((tmp_path / "multiplexing.json").read_text())
    assert saved["provenance"]["command"].startswith("python -m sims.multiplexing --quick")
    assert (tmp_path / "multiplexing.png").read_bytes()[:4] == b"\x89PNG"
    summary = (tmp_path / "summary.md").read_text()
    assert "| Walsh codes |" in summary and result["explanation"] in summary
    assert "predicts every measured curve" in capsys.readouterr().out
    # A second run of the same configuration only redraws; another one is refused.
    again = multiplexing.main(["--quick", "--seeds", "8", "--out", str(tmp_path)])
    assert again["schemes"] == result["schemes"] and "redrawn" in again
    with pytest.raises(ValueError, match="another configuration .differing: seeds."):
        multiplexing.main(["--quick", "--seeds", "4", "--out", str(tmp_path)])


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match=r"unknown schemes \['fdma'\]"):
        multiplexing.MultiplexConfig(schemes=("fdma",))
    with pytest.raises(ValueError, match="steps_per_tau must be >= 4"):
        multiplexing.MultiplexConfig(steps_per_tau=2)
    with pytest.raises(ValueError, match="dataset must be 'mnist1d' or 'synthetic'"):
        multiplexing.MultiplexConfig(dataset="cifar10")
