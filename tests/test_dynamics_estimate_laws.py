"""The first-order estimate-quality laws of ``ctlearn.dynamics`` against Monte Carlo in NumPy:
random codes, time slots, Walsh rows (from ``scipy.linalg.hadamard``), sinusoids with random
phases (rates integrated on a dense grid), and the time-bandwidth law. Fixed seeds; each
tolerance is stated with what it covers."""

import math

import numpy as np
import pytest

import ctlearn.dynamics as ct


def gradients(rng, units, draws):
    """Heterogeneous gradients: normal entries with log-normal scales."""
    return rng.normal(size=(draws, units)) * np.exp(rng.normal(size=(draws, units)))


def mean_cosine(signs_of, units, chips, draws, seed, *, gaussian=False):
    rng = np.random.default_rng(seed)
    g = rng.normal(size=(draws, units)) if gaussian else gradients(rng, units, draws)
    return np.mean(
        [ct.first_order_cosine(signs_of(rng), np.ones(chips), g[d]) for d in range(draws)]
    )


def test_code_cosine_matches_monte_carlo():
    """P = 40 units, n = 16 and 64 chips, 3000 draws of random signs: the mean cosine is the law
    within 0.015 (the law is a ratio of expectations, E cos differs by O(1/P); the Monte Carlo
    error is ~0.002)."""
    for chips in (16, 64):
        mc = mean_cosine(
            lambda r, n=chips: r.choice([-1.0, 1.0], size=(40, n)), 40, chips, 3000, chips
        )
        assert mc == pytest.approx(ct.code_cosine(40, chips), abs=0.015)


def test_time_multiplexed_cosine_matches_monte_carlo():
    """Random slot orders of P = 40 units after n = 10 and 30 slots, Gaussian gradients: mean
    cosine within 0.03 of √(n/P) (the cosine is √X with X ~ Beta(n/2, (P − n)/2), and E √X
    falls below √E X by ~0.01 at n = 10; heavy-tailed gradients scatter far more, which is why
    the sim compares each draw with its own prediction); exactly 1 after a full cycle."""
    for chips in (10, 30):
        mc = mean_cosine(
            lambda r, n=chips: ct.slot_signs(r.permutation(40), n),
            40,
            chips,
            2000,
            1,
            gaussian=True,
        )
        assert mc == pytest.approx(ct.time_multiplexed_cosine(40, chips), abs=0.03)
    g = gradients(np.random.default_rng(2), 40, 1)[0]
    signs = ct.slot_signs(np.random.default_rng(3).permutation(40), 40)
    assert ct.first_order_cosine(signs, np.ones(40), g) == pytest.approx(1.0, abs=1e-12)
    assert ct.time_multiplexed_cosine(40, 80) == 1.0


def test_walsh_cosine_matches_monte_carlo():
    """P = 40 rows drawn from 1 … 63 of Hadamard(64), at m = 4, 16, 32 chips: mean cosine within
    0.02 of the aliasing law; exactly 1 at m = N."""
    order = ct.walsh_order(40)
    assert order == 64

    def rows(r):
        return ct.walsh_signs(1 + r.permutation(order - 1)[:40], m)

    for m in (4, 16, 32):
        mc = mean_cosine(rows, 40, m, 2000, m)
        assert mc == pytest.approx(ct.walsh_cosine(40, m, order), abs=0.02)
    m = order
    g = gradients(np.random.default_rng(4), 40, 1)[0]
    signs = rows(np.random.default_rng(5))
    assert ct.first_order_cosine(signs, np.ones(order), g) == pytest.approx(1.0, abs=1e-12)
    assert ct.walsh_cosine(40, order, order) == 1.0
    with pytest.raises(ValueError, match="powers of two"):
        ct.walsh_cosine(40, 12, order)


def test_chip_weights():
    """Whole chips weigh 1; a chip cut at fraction s weighs ∫₀ˢ sin²(2πu)du / ∫₀¹ sin²(2πu)du
    (checked by the midpoint rule)."""
    np.testing.assert_array_equal(ct.chip_weights(3.0, 1.0), [1.0, 1.0, 1.0])
    w = ct.chip_weights(2.3, 1.0)
    u = (np.arange(100_000) + 0.5) / 100_000 * 0.3
    assert w[:2].tolist() == [1.0, 1.0]
    assert w[2] == pytest.approx(2 * np.mean(np.sin(2 * np.pi * u) ** 2) * 0.3, rel=1e-6)
    with pytest.raises(ValueError, match="duration must be finite and > 0"):
        ct.chip_weights(0.0, 1.0)


def phase_monte_carlo(omega, g, duration, draws, seed):
    """E[g·Cg] and E‖Cg‖² over uniform phases, C_ij = ∫₀ᵀ ṗ_iṗ_j dt with ṗ_i = Σ_k cos(ω_ik t +
    φ_ik), integrated by the midpoint rule at 64 nodes per shortest period."""
    rng = np.random.default_rng(seed)
    nodes = int(64 * duration * omega.max() / (2 * np.pi)) + 1
    t = (np.arange(nodes) + 0.5) * duration / nodes
    inner, norm = [], []
    for _ in range(draws):
        phase = rng.uniform(0, 2 * np.pi, size=omega.shape)
        rates = np.cos(omega[:, :, None] * t + phase[:, :, None]).sum(axis=0)  # [P, nodes]
        c = rates @ rates.T * duration / nodes
        inner.append(g @ c @ g)
        norm.append(np.sum((c @ g) ** 2))
    return np.mean(inner), np.mean(norm)


@pytest.mark.parametrize("allocation", ["stratified", "independent", "grid"])
def test_sinusoid_cosine_matches_phase_monte_carlo(allocation):
    """Frequencies of 12 units × 2 components drawn by ``Sinusoids``; over 1500 phase draws the
    ratio E[g·Cg]/(‖g‖·√E‖Cg‖²) is ``sinusoid_cosine`` within 2% at T = 3τ and 12τ (its second
    moments are exact; the Monte Carlo error of E‖Cg‖² is ~1%)."""
    import jax

    process = ct.Sinusoids(1.0, 1.0, components=2, allocation=allocation)
    state = process.init([(12,)], key=jax.random.key(0))
    omega = np.asarray(state.omega[0], np.float64)
    g = gradients(np.random.default_rng(6), 12, 1)[0]
    for duration in (3.0, 12.0):
        inner, norm = phase_monte_carlo(omega, g, duration, 1500, 7)
        mc = inner / (np.linalg.norm(g) * math.sqrt(norm))
        assert ct.sinusoid_cosine(omega, g, duration) == pytest.approx(mc, rel=0.02)


@pytest.mark.parametrize("allocation", ["stratified", "independent"])
def test_time_bandwidth_law(allocation):
    """For T ≫ τ_p the phase-averaged prediction of drawn allocations (P = 60 units, K = 4,
    band (0.5, 2), averaged over 8 draws) approaches random codes of n_eff = 2ΔfT (independent)
    or ΔfT (stratified) chips: within 0.03 at T = 40τ and 80τ, where the two laws differ by
    0.09 to 0.13."""
    import jax

    process = ct.Sinusoids(1.0, 1.0, components=4, allocation=allocation)
    g = gradients(np.random.default_rng(8), 60, 1)[0]
    for duration in (40.0, 80.0):
        predicted = np.mean(
            [
                ct.sinusoid_cosine(
                    np.asarray(process.init([(60,)], key=jax.random.key(s)).omega[0]), g, duration
                )
                for s in range(8)
            ]
        )
        law = ct.code_cosine(60, ct.bandwidth_chips((0.5, 2.0), 1.0, duration, allocation))
        assert predicted == pytest.approx(law, abs=0.03)
    with pytest.raises(ValueError, match="'independent' and 'stratified'"):
        ct.bandwidth_chips((0.5, 2.0), 1.0, 10.0, "grid")


def test_grid_is_orthogonal_after_one_beat():
    """A shuffled grid of M = 48 frequencies: at T = grid_period the prediction is 1 within
    2e-3 (only sum-frequency terms remain), where independent frequencies are far from it."""
    import jax

    process = ct.Sinusoids(1.0, 1.0, components=4, allocation="grid")
    omega = np.asarray(process.init([(12,)], key=jax.random.key(1)).omega[0], np.float64)
    g = gradients(np.random.default_rng(9), 12, 1)[0]
    period = ct.grid_period((0.5, 2.0), 1.0, 48)
    assert period == pytest.approx(47 / 1.5)
    assert ct.sinusoid_cosine(omega, g, period) == pytest.approx(1.0, abs=2e-3)
    assert ct.code_cosine(12, ct.bandwidth_chips((0.5, 2.0), 1.0, period, "independent")) < 0.97
