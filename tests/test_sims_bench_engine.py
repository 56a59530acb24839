"""sims.bench_engine's convergence study (c) on a small network: Heun (the default path) is second
order in the time step where the network is smooth, and the table renders what was measured."""

import pytest

from ctlearn.data import load_dataset
from sims.bench_engine import EngineBenchConfig, convergence, markdown


@pytest.fixture(scope="module")
def measured():
    config = EngineBenchConfig(widths=(16,), duration=2.0, transition=0.5, accuracy_presentations=2)
    return convergence(config, load_dataset("mnist1d"))


def test_smooth_network_converges_at_second_order(measured):
    # Softplus: no kinks, so halving the step must quarter the error (order 2 within ±0.4).
    for row in measured["softplus"][:-1]:
        assert 1.6 < row["order"] < 2.4, row
    for activation, rows in measured.items():
        medians = [r["median"] for r in rows]
        assert medians == sorted(medians, reverse=True), (activation, medians)


def test_convergence_table_reports_every_step(measured):
    summary = {
        "provenance": {"command": "test", "commit": "x", "machine": {}},
        "cost": {"presentation_ms": {}, "speedup_over_heun": {}, "steps_per_presentation": {},
                 "loop_steps_per_presentation": {}, "max_relative_error": {},
                 "discrete_step_ms": 1.0, "discrete_step_in_loop_ms": 0.1, "met": {}},
        "accuracy": [],
        "convergence": measured,
    }  # fmt: skip
    text = markdown(summary)
    for activation, rows in measured.items():
        for r in rows:
            assert f"| {activation} | dt0/{r['refinement']} | {r['median']:.2e} |" in text
    assert "target 0.005" in text
