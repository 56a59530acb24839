"""sims.bench_engine's convergence study (c): Heun (the default path) is second order in the time
step where the network is smooth (slow tier: a dozen compiled solves), and the table renders what
was measured."""

import pytest

from ctlearn.data import load_dataset
from sims.bench_engine import EngineBenchConfig, convergence, main, markdown


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
        "provenance_by_part": {
            "c": {"command": "test", "commit": "x", "machine": {}, "load": [1.0, 2.0, 3.0]}
        },
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


def test_a_run_of_some_parts_keeps_the_others_and_refuses_a_damaged_summary(tmp_path):
    # Synthetic rows (not measured): a cost-only summary renders with its part's provenance;
    # a summary.json that is not JSON is named, before any work.
    summary = {
        "provenance_by_part": {
            "b": {"command": "run b", "commit": "y", "machine": {}, "load": [0.5, 0.5, 0.5]}
        },
        "accuracy": [
            {"case": "FG-A", "default_path": "HeunPEC, tabulated", "default_substeps": 2,
             "default_error": 7e-3, "default_error_smooth": 1e-3, "waveform_error": None,
             "waveform_obstacle": "why"},
        ],
    }  # fmt: skip
    text = markdown(summary)
    assert "Part (b): `run b`; commit `y`" in text and "## Cost" not in text
    assert "| FG-A | HeunPEC, tabulated | 2 | 7.00e-03 | 1.00e-03 |  | why |" in text
    assert "met by 0 of 1 cases on the ReLU network, 1 on the softplus network" in text
    (tmp_path / "summary.json").write_text("{not json")
    config = EngineBenchConfig(out=str(tmp_path))
    with pytest.raises(ValueError, match=r"summary.json is not valid JSON"):
        main(config, parts=("a",))
    with pytest.raises(ValueError, match=r"--parts 'x': valid"):
        main(config, parts=("x",))
