"""sims.bench_engine's convergence study (c): Heun (the default path) is second order in the time
step where the network is smooth (slow tier: a dozen compiled solves); the floor (d) counts at
least the network's matrix products; the tables render what was measured."""

import pytest

from ctlearn.data import load_dataset
from sims.bench_engine import EngineBenchConfig, convergence, floor, main, markdown


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


def test_floor_counts_at_least_the_forward_and_tangent_matmuls():
    # A small network, one presentation, one timing round: the FLOP counts are XLA's, and one
    # evaluation must hold at least the forward and tangent matrix products (2 FLOPs per
    # multiply-add, batch × Σ fan-in·fan-out each), a discrete step at least as many.
    config = EngineBenchConfig(widths=(16,), presentations=1, number=1, repeats=1)
    data = load_dataset("mnist1d")
    measured = floor(config, data)
    products = config.batch_size * (data.input_shape[0] * 16 + 16 * data.num_classes)
    assert measured["evaluation_flops"] >= 2 * 2 * products
    assert measured["discrete_step_flops"] >= 2 * 2 * products
    assert measured["time_points"] == round(config.duration / config.dt0)
    assert measured["presentation_flops_in_steps"] == pytest.approx(
        measured["time_points"] * measured["evaluation_flops"] / measured["discrete_step_flops"]
    )
    assert measured["in_steps"]["discrete step"] == pytest.approx(1.0)


def test_floor_and_reproducibility_tables_render_what_was_measured():
    # Synthetic numbers (not measured).
    summary = {
        "provenance_by_part": {},
        "floor": {
            "time_points": 200, "evaluation_flops": 8e5, "discrete_step_flops": 2e6,
            "presentation_flops_in_steps": 80.0,
            "ms": {"presentation": 9.0, "every evaluation at once": 6.0, "one evaluation": 0.4,
                   "discrete step": 0.5},
            "in_steps": {"presentation": 18.0, "every evaluation at once": 12.0,
                         "one evaluation": 0.8, "discrete step": 1.0},
            "gflops_per_s": {"every evaluation at once": 26.7, "one evaluation": 2.0,
                             "discrete step": 4.0},
        },
        "reproducibility": {
            "float32": {"8": [1e-2, 2e-3], "16": [1e-2, 1e-3], "32": [2e-3, 5e-4],
                        "64": [2e-3, 1e-4]},
            "float64": {"8": [2e-3, 2e-3], "16": [1e-3, 1e-3], "32": [5e-4, 5e-4],
                        "64": [2e-4, 1e-4]},
        },
    }  # fmt: skip
    text = markdown(summary)
    assert "| every evaluation at once | 6.000 | 12.0 | 26.7 |" in text
    assert "costs 12.0 discrete steps per call; the target of 10 is below this floor" in text
    assert "the default path costs 1.50× it" in text
    assert "| float32 | 1.0e-02, 2.0e-03 | 1.0e-02, 1.0e-03 | 2.0e-03, 5.0e-04 |" in text


def test_frontier_table_names_the_cheapest_method_that_meets_the_target():
    # Synthetic errors (not measured): one row meets the target on every presentation, the
    # issue's reference (Heun at dt0/8) does not, and the verdict must say both.
    rows = [
        {"method": "HeunPEC", "refinement": 1, "evaluations": 200, "errors": [3e-3, 2e-2]},
        {"method": "HeunPEC", "refinement": 2, "evaluations": 400, "errors": [1e-3, 4e-3]},
        {"method": "Heun", "refinement": 8, "evaluations": 3200, "errors": [2e-4, 1.2e-2]},
    ]
    text = markdown({"provenance_by_part": {}, "frontier": rows})
    assert "| HeunPEC | dt0/2 | 400 | 1.00e-03, 4.00e-03 | 4.00e-03 |" in text
    assert "the cheapest that meets it on every presentation is HeunPEC at dt0/2 (400" in text
    assert "stands 1.20e-02 from Heun at dt0/32 on its worst presentation (outside the target)" in (
        text
    )
    failing = markdown({"provenance_by_part": {}, "frontier": [rows[0], rows[2]]})
    assert "no method here meets it on every presentation" in failing
