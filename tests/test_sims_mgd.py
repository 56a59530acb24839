"""``sims.mgd`` end to end in quick form (too short to solve anything: the outputs, the time to
solution's definition, resuming and the refusals), and MGD's time-to-solution rule by hand."""

import json

import numpy as np
import pytest

from sims import mgd


def test_time_to_solution_is_mgds_first_logged_time_above_the_threshold():
    acc = np.array([0.5, 0.75, 1.0, 0.75, 1.0])
    assert mgd.first_solved(acc, 0.9, 4.0) == 12.0  # the third log point, 4 steps apart
    assert mgd.first_solved(np.array([0.5, 0.9, 0.9]), 0.9, 1.0) is None  # not above 0.9
    assert mgd.first_solved(np.array([0.5, 0.5, 1.0]), 0.9, 1.0) is None  # only at the end
    assert mgd.parameters(2) == 9 and mgd.parameters(4) == 25


def test_the_simulator_takes_mgds_steps():
    # One parameter's code amplitude ±norm/√K: the chips' time-mean p² is (norm/√K)²·(3/8)/(3/8)
    # = norm²/K (MGD's square chips have that power); the rule's rate is 2η/norm².
    config = mgd.MGDConfig()
    sim = mgd.simulator(config, 9, config.eta)
    assert sim.perturbation.value_power() == pytest.approx(config.norm**2 / 9, rel=1e-6)
    assert sim.rule.lr == pytest.approx(2 * config.eta / config.norm**2)
    assert isinstance(sim.hardware[0], mgd.ct.DiscreteUpdates)


def test_the_analog_mode_is_the_same_rule_through_a_switch_holding_high_pass():
    # The same rate and code; the cost through MGD's τ_hp, the gradient low-passed with τ_θ, and
    # nothing held: the weights move every step.
    config = mgd.MGDConfig()
    discrete = mgd.simulator(config, 9, config.eta)
    analog = mgd.simulator(config, 9, config.eta, 16, analog=True)
    assert analog.rule.lr == discrete.rule.lr and analog.rule.tau_theta == 16.0
    assert analog.perturbation == discrete.perturbation
    (high_pass,) = analog.hardware
    assert high_pass == mgd.ct.HighPass(tau=1.6, hold_switch=True)


def test_quick_run_writes_resumes_and_refuses_another_configuration(tmp_path, capsys):
    result = mgd.main(["--quick", "--out", str(tmp_path), "--no-progress"])
    assert set(result["cells"]) == {"xor", "xor-analog-tau4", "parity2-tau2"}
    assert result["cells"]["xor-analog-tau4"]["analog"] is True
    for cell in result["cells"].values():
        assert len(cell["t_sol"]) == 2 and len(cell["final_cost"]) == 2
        assert all(np.isfinite(cell["final_cost"]))
    saved = json.loads((tmp_path / "mgd.json").read_text())
    assert saved["provenance"]["command"].startswith("python -m sims.mgd --quick")
    assert (tmp_path / "mgd.png").read_bytes()[:4] == b"\x89PNG"
    summary = (tmp_path / "summary.md").read_text()
    assert "| XOR | 9 | 1 |" in summary and result["explanation"] in summary
    assert "| XOR, analog mode | 9 | 4 |" in summary
    assert "XOR with MGD's settings" in capsys.readouterr().out
    # A run missing a cell resumes with that cell only; a finished one only redraws.
    del saved["cells"]["parity2-tau2"]
    (tmp_path / "mgd.json").write_text(json.dumps(saved))
    again = mgd.main(["--quick", "--out", str(tmp_path), "--no-progress"])
    assert again["cells"]["xor"]["t_sol"] == result["cells"]["xor"]["t_sol"]
    assert again["cells"]["parity2-tau2"]["final_cost"] == pytest.approx(
        result["cells"]["parity2-tau2"]["final_cost"]
    )
    assert "redrawn" not in again
    assert "redrawn" in mgd.main(["--quick", "--out", str(tmp_path), "--no-progress"])
    with pytest.raises(ValueError, match="another configuration .differing: seeds."):
        mgd.main(["--quick", "--seeds", "3", "--out", str(tmp_path), "--no-progress"])


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="parity_bits must be in 2..8"):
        mgd.MGDConfig(parity_bits=(1,))
    with pytest.raises(ValueError, match="exceeds parity_steps"):
        mgd.MGDConfig(parity_taus=(64,), parity_steps=10)
    with pytest.raises(ValueError, match="whole epochs of 4"):
        mgd.MGDConfig(xor_steps=10)
    with pytest.raises(ValueError, match="analog_taus must be >= 1"):
        mgd.MGDConfig(analog_taus=(0,))
    with pytest.raises(ValueError, match="tau_hp must be finite and > 0"):
        mgd.MGDConfig(tau_hp=0.0)
