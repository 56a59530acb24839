"""Power-law fits, and the variance sims (Ren et al. Table 1 / Figure 8) on small settings.

Tolerances of the slope checks. The measured variance of one point, from T draws, has a relative
standard error of about c/√T, with c the relative spread of one draw's squared deviation,
measured on these networks (p = q = 4) with 50k draws: at N = 1, 4, 16, 64, c ≈ 4.4, 2.2, 1.1,
0.65 for activity perturbation, 3.3, 1.6, 0.85, 0.5 for independent and 3.2, 2.4, 2.0, 1.7 for
shared weight perturbation; c ≈ 2.1 at p = 32, N = 4. In log10 units that is c/(√T·ln 10); the
least-squares slope weighs the outer points of a sweep most, and its standard error follows from
those. The draws are fixed by seeds, so each test is deterministic; every tolerance is at least 5
such standard errors (over seeds 1-5 the largest deviation seen was 3 standard errors).
"""

import json
import math

import numpy as np
import pytest

from ctlearn.diagnostics import fit_power_law
from sims import teach_variance, variance_ren

T = 4000  # draws per point in the slope checks (compiling, not drawing, takes the time)


def test_fit_power_law_recovers_an_exact_power_law():
    x = np.array([1.0, 2, 4, 8, 16, 64, 256])
    slope, stderr, intercept = fit_power_law(x, 3.0 * x**-1.5)
    assert slope == pytest.approx(-1.5, abs=1e-12)
    assert stderr == pytest.approx(0.0, abs=1e-12)
    assert intercept == pytest.approx(math.log10(3.0), abs=1e-12)
    # Two points fit exactly and leave no degree of freedom for the error.
    slope, stderr, _ = fit_power_law([1, 10], [5, 0.5])
    assert slope == pytest.approx(-1.0) and math.isnan(stderr)


def test_fit_power_law_stderr_matches_the_scatter_of_slopes_on_noisy_data():
    rng = np.random.default_rng(0)
    x = np.logspace(0, 3, 20)
    sigma = 0.1  # noise of log10 y
    expected = sigma / math.sqrt(np.sum((np.log10(x) - np.log10(x).mean()) ** 2))
    fits = [
        fit_power_law(x, 2.0 * x**0.7 * 10 ** (sigma * rng.standard_normal(x.size)))
        for _ in range(400)
    ]
    slopes, stderrs = np.array([f[0] for f in fits]), np.array([f[1] for f in fits])
    # Unbiased, and the reported stderr is the slopes' actual spread, both ≈ sigma/√Sxx (with
    # 400 fits the spread is known to ~4 %, the mean stderr to ~1 %).
    assert abs(slopes.mean() - 0.7) < 4 * expected / math.sqrt(400)
    assert slopes.std() == pytest.approx(expected, rel=0.15)
    assert stderrs.mean() == pytest.approx(expected, rel=0.1)


@pytest.mark.parametrize(
    "x, y", [([1, 2], [1, 0]), ([1, -2], [1, 2]), ([1], [1]), ([2, 2], [1, 3]), ([1, 2], [1])]
)
def test_fit_power_law_rejects_what_it_cannot_fit(x, y):
    with pytest.raises(ValueError):
        fit_power_law(x, y)


def _slopes(points, axis, label, relative=False):
    """Fitted slope, its stderr and Table 1's slope of ``label``'s variance along ``axis``."""
    x = [pt[axis] for pt in points]

    def y(kind):
        if relative:
            return [variance_ren.relative(pt, kind, label) for pt in points]
        return [pt[kind][label] for pt in points]

    measured, stderr, _ = fit_power_law(x, y("measured"))
    theory, _, _ = fit_power_law(x, y("predicted"))
    return measured, stderr, theory


def test_variance_against_batch_size_follows_table_1():
    points = variance_ren.measure_points(
        [(n, 4, 4) for n in (1, 4, 16, 64)],
        ("act perturb", "ind wt perturb", "wt perturb"),
        samples=T,
        pool=256,
        fast_compile=True,
    )
    # Independent noise: exactly 1/N in theory. Slope weights ±0.5, ±0.17 on the four points;
    # with c/√T/ln10 = 0.030, 0.015, 0.008, 0.004 (activity) the slope's standard error is
    # ≈ 0.015 (weights: ≈ 0.012), so ±0.15 is ~10 standard errors; the heavy tails at N = 1 bias
    # a measurement low by a few per cent at most (slope bias ≲ 0.02).
    for label in ("act perturb", "ind wt perturb"):
        slope, _, theory = _slopes(points, "N", label)
        assert theory == pytest.approx(-1.0, abs=1e-6)
        assert abs(slope + 1.0) < 0.15, (label, slope)
    # Shared noise levels off towards (M+1)·S: a shallower slope, as Table 1 predicts. Standard
    # error ≈ 0.013 (c ≈ 3.2 … 1.7), tolerance 0.1.
    slope, _, theory = _slopes(points, "N", "wt perturb")
    assert -0.9 < theory < -0.1
    assert abs(slope - theory) < 0.1, (slope, theory)


def test_variance_against_fan_in_follows_table_1():
    points = variance_ren.measure_points(
        [(4, p, 4) for p in (2, 8, 32)],
        ("wt perturb", "act perturb"),
        samples=T,
        pool=256,
        fast_compile=True,
    )
    # Slope weights ±0.83 on the outer points; c ≈ 2.2 at N = 4 gives 0.015 in log10 per point,
    # so the slope's standard error is ≈ 0.018 and the tolerance 0.12 is ~6 of them.
    for label in ("wt perturb", "act perturb"):
        slope, _, theory = _slopes(points, "p", label)
        assert abs(slope - theory) < 0.12, (label, slope, theory)
    # Relative to the gradient's own size, weight perturbation grows ≈ ∝ (p+1)·q and activity
    # perturbation not at all: the fan-in factor (theory: difference ≈ 0.68, standard error of
    # the measured difference ≲ 0.03).
    wt, _, wt_theory = _slopes(points, "p", "wt perturb", relative=True)
    act, _, act_theory = _slopes(points, "p", "act perturb", relative=True)
    assert wt_theory > 0.6 and abs(act_theory) < 0.15
    assert wt - act > 0.5


def test_variance_ren_runs_end_to_end_in_quick_mode(tmp_path, capsys):
    result = variance_ren.main(["--quick", "--out", str(tmp_path), "--no-progress"])
    for figure in result["figures"]:
        assert figure.read_bytes()[:4] == b"\x89PNG"
    summary = (tmp_path / "summary.md").read_text()
    assert "| setting | range | estimator | fitted slope ± stderr | theory slope |" in summary
    assert "synthetic" in summary
    saved = json.loads((tmp_path / "variance_ren.json").read_text())
    assert saved["slopes"] == result["slopes"]
    estimators = variance_ren.QUICK.estimators
    assert len(result["slopes"]) == 5 * len(estimators)  # N, p, q, p relative, q relative
    for row in result["slopes"]:
        assert math.isfinite(row["slope"]) and math.isfinite(row["theory_slope"])
    for point in result["points"]:
        for label in estimators:  # 1000 draws: c ≤ 4.4, a standard error ≤ 14 %
            assert 0.5 < point["measured"][label] / point["predicted"][label] < 1.5
    assert result["explanation"] in capsys.readouterr().out


def test_teach_variance_runs_end_to_end_in_quick_mode(tmp_path, capsys):
    result = teach_variance.main(["--quick", "--out", str(tmp_path)])
    assert [f.name for f in result["figures"]] == ["teach_variance.png"]
    assert (tmp_path / "teach_variance.png").read_bytes()[:4] == b"\x89PNG"
    assert "## In plain words" in (tmp_path / "summary.md").read_text()
    assert json.loads((tmp_path / "teach_variance.json").read_text())["slopes"] == result["slopes"]
    # Weight perturbation is the noisier, by more as the fan-in grows.
    fan_in = result["points"]["fan-in"]
    ratios = [teach_variance.ratio(pt, "measured") for pt in fan_in]
    assert 1 < ratios[0] < ratios[-1]
    assert "fan-in" in result["explanation"] and result["explanation"] in capsys.readouterr().out
