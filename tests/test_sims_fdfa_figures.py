"""``sims.fdfa_figures`` (FDFA paper, Figures 4-7) at its ``--quick`` settings on MNIST-1D.

One quick run (module fixture, fixed seed 0) feeds every test: the command itself, end to end, and
the scaling laws it measures. Quick settings of Figures 4-5: 8 single examples × 128 Gaussian
draws per point; Figure 4 has 4 values of α over three decades, Figure 5b two input sizes 8×
apart (n₀ = 40 and 320, inputs duplicated) at n₁ = 64.

Tolerances, from the Monte-Carlo error of those sample counts. Each point's variance is a mean of
1024 χ²₁-like terms weighted over 8 examples (relative error ~5 %); FG-A's also depends on how many
of the freshly initialised hidden units are active (its variance is 1 + n_active times the
squared gradient). Over seeds 0-7 at these settings the fitted slopes were (mean ± sd): FDFA
vs α 2.003 ± 0.011; FG-W vs n₀ 0.970 ± 0.024; FG-A vs n₀ 0.009 ± 0.041; measured minus exact
prediction (same networks, no active-unit term) sd 0.024 for both n₀ slopes. Hence |a − 2| < 0.1
(9 sd), |a − 1| < 0.3 and |a| < 0.3 against the propositions' asymptotic slopes (≥ 7 sd; FG-W's
exact slope here is 0.989, the bias adds one input), and |a − a_predicted| < 0.15 (6 sd).
"""

from __future__ import annotations

import json
import math

import jax.numpy as jnp
import numpy as np
import pytest

from sims import fdfa_figures


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("fdfa-figures")
    return out, fdfa_figures.main(["--quick", "--out", str(out)])


def test_quick_run_writes_four_figures_a_summary_and_json(quick):
    out, result = quick
    assert [p.name for p in result["figures"]] == [f"figure{n}.png" for n in (4, 5, 6, 7)]
    for path in result["figures"]:
        assert path.is_file() and path.stat().st_size > 10_000
    summary = (out / "summary.md").read_text()
    assert "mnist1d" in summary and "the paper used MNIST" in summary
    for label in ("FDFA variance vs α", "FG-W variance vs n₀", "Figure 6", "Figure 7"):
        assert label in summary
    record = json.loads((out / "fdfa_figures.json").read_text())  # strict JSON: no NaN
    assert record["mode"] == "quick" and set(record["results"]) == {"4", "5", "6", "7"}
    assert set(result["slopes"]) == {"fdfa_alpha", "fg-w_n1", "fg-a_n1", "fg-w_n0", "fg-a_n0"}
    for figure in ("Figure 4", "Figure 5", "Figure 6", "Figure 7", "MNIST"):
        assert figure in result["explanation"]


def test_fdfa_variance_grows_as_alpha_squared(quick):
    s = quick[1]["slopes"]["fdfa_alpha"]
    assert s["theory"] == 2.0
    assert abs(s["slope"] - 2.0) < 0.1, s
    assert abs(s["prediction_slope"] - 2.0) < 1e-6  # α² exactly, at fixed examples and network


def test_fg_w_variance_grows_with_inputs_and_fg_a_variance_does_not(quick):
    slopes = quick[1]["slopes"]
    fg_w, fg_a = slopes["fg-w_n0"], slopes["fg-a_n0"]
    assert abs(fg_w["slope"] - 1.0) < 0.3, fg_w
    assert abs(fg_a["slope"]) < 0.3, fg_a
    for s in (fg_w, fg_a):
        assert abs(s["slope"] - s["prediction_slope"]) < 0.15, s


def test_every_measured_variance_is_close_to_its_exact_prediction(quick):
    results = quick[1]["results"]
    curves = [results["4"]] + [results["5"][k] for k in ("fg-w_n1", "fg-a_n1", "fg-w_n0")]
    for curve in curves + [results["5"]["fg-a_n0"]]:
        measured = np.array(curve["relative_variance"])
        predicted = np.array(curve["predicted"])
        assert np.all(np.abs(np.log(measured / predicted)) < 0.35), (measured, predicted)


def test_noisy_bp_has_the_normalised_variance_it_was_built_with(quick):
    r = quick[1]["results"]["6"]
    points = r["points"]
    assert points["bp"]["nu"] == 0.0
    for ratio in r["ratios"]:
        nu = points[f"bp+noise:{ratio:g}"]["nu"]
        # ν/(1 − ν) is the noise's measured power over the gradient's: 8 draws × 2 checkpoints of
        # an isotropic Gaussian in 3274 dimensions, a relative error of ~0.4 %.
        assert abs(math.log(nu / (1 - nu)) - math.log(ratio)) < 0.05, (ratio, nu)
    losses = [points[f"bp+noise:{ratio:g}"]["train_loss"] for ratio in r["ratios"]]
    assert losses[-1] > losses[0] + 0.2  # 10⁴ × the gradient's power in noise hurts
    assert points["fg-w"]["nu"] > points["fg-a"]["nu"] > 0.5 > 1e-3 > points["fdfa"]["nu"]


def test_figure7_records_angles_per_layer_and_the_output_layer_is_exact(quick):
    r = quick[1]["results"]["7"]
    for method in ("dfa", "dkp", "fdfa"):
        layers = np.array(r[method]["layers"], float)
        assert layers.shape[1] == r["depth"]
        finite = layers[np.isfinite(layers)]
        assert finite.size and np.all((finite >= 0) & (finite <= 180))
        assert np.all(layers[:, -1] < 1.0)  # the output layer learns from its own error


def test_duplicate_features_repeats_every_input():
    x = jnp.arange(6.0).reshape(2, 3)
    assert fdfa_figures.duplicate_features(x, 2).tolist() == [
        [0.0, 0.0, 1.0, 1.0, 2.0, 2.0],
        [3.0, 3.0, 4.0, 4.0, 5.0, 5.0],
    ]
