"""sims.bench_engine's convergence study (c): Heun (the default path) is second order in the time
step where the network is smooth (slow tier: a dozen compiled solves), and the table renders what
was measured."""

import pytest

from ctlearn.data import load_dataset
from sims.bench_engine import EngineBenchConfig, convergence, markdown


@pytest.mark.slow
def test_smooth_network_converges_at_second_order():
    config = EngineBenchConfig(widths=(16,), duration=2.0, transition=0.5, accuracy_presentations=2)
    measured = convergence(config, load_dataset("mnist1d"))
    # Softplus: no kinks, so halving the step must quarter the error (order 2 within ±0.4).
    for row in measured["softplus"][:-1]:
        assert 1.6 < row["order"] < 2.4, row
    for activation, rows in measured.items():
        medians = [r["median"] for r in rows]
        assert medians == sorted(medians, reverse=True), (activation, medians)


def test_convergence_table_reports_every_step():
    # Synthetic errors (not measured): the table must show each row and judge the target at dt0.
    rows = [
        {"refinement": 1, "median": 4e-3, "max": 6e-3, "errors": [4e-3, 6e-3], "order": 1.0},
        {"refinement": 2, "median": 2e-3, "max": 3e-3, "errors": [2e-3, 3e-3]},
    ]
    smooth = [{**r, "max": r["max"] / 4} for r in rows]
    summary = {
        "provenance": {"command": "test", "commit": "x", "machine": {}},
        "cost": {"presentation_ms": {}, "speedup_over_heun": {}, "steps_per_presentation": {},
                 "loop_steps_per_presentation": {}, "max_relative_error": {},
                 "discrete_step_ms": 1.0, "discrete_step_in_loop_ms": 0.1, "met": {}},
        "accuracy": [],
        "convergence": {"relu": rows, "softplus": smooth},
    }  # fmt: skip
    text = markdown(summary)
    assert "| relu | dt0/1 | 4.00e-03 | 6.00e-03 | 1.00 |" in text
    assert "| softplus | dt0/2 | 2.00e-03 | 7.50e-04 |  |" in text
    assert "target 0.005: relu not met, softplus met" in text
