"""sims.dkp_alignment in a small form: DKP's last feedback follows the change of the output weights
(the Kolen-Pollack identity under Adam on both sides), the summary is written and its explanation
carries the measured numbers (slow tier: four short trainings; the identity itself is held in the
default suite by tests/test_estimators_dkp.py); bad settings fail before any work."""

import json

import pytest

from sims.dkp_alignment import RULES, AlignmentConfig, main


@pytest.mark.slow
def test_a_small_study_records_the_identity_and_explains_it(tmp_path):
    config = AlignmentConfig(depth=3, width=32, epochs=1, every=20, probe=64, out=str(tmp_path))
    summary = main(config)
    results = summary["results"]
    assert set(results) == set(RULES)
    dkp = results["dkp"]
    # From zero, with the same optimizer on both sides, B stays parallel to W_L − W_L(0).
    assert min(dkp["kp_identity"][1:]) > 0.999
    # DFA's feedback never learns: it is not parallel to the output weights' change.
    assert abs(results["dfa"]["feedback_vs_weights"][-1]) < 0.9
    assert len(dkp["final_angles"]) == config.depth - 1
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["results"]["dkp"]["test_accuracy"] == dkp["test_accuracy"]
    text = (tmp_path / "summary.md").read_text()
    assert f"{dkp['feedback_vs_weights'][-1]:.2f}" in text and "| dfa |" in text
    assert (tmp_path / "dkp_alignment.png").stat().st_size > 0


@pytest.mark.parametrize(
    "change, message",
    [({"depth": 2}, "depth must be >= 3"), ({"every": 0}, "every must be an int >= 1"),
     ({"lr": 0.0}, "lr must be a number > 0"), ({"tail": 1.5}, "tail must be in")],
)  # fmt: skip
def test_bad_settings_fail_with_their_message(change, message):
    with pytest.raises(ValueError, match=message):
        AlignmentConfig(**change)
