"""Perturbation processes: shapes, determinism per key, ṗ = dp/dt, C¹ continuity across
presentations, isotropic rates of the documented power, the integrated OU's stationary law, and
validation. Fixed keys; tolerances stated where they are used."""

import math

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

from ctlearn.dynamics import CubicSpline, IntegratedOU, Sinusoids

SHAPES = [(2, 8), (16,)]  # 32 units over two perturbation points
PROCESSES = [Sinusoids(0.3, 0.5), CubicSpline(0.3, 0.5), IntegratedOU(0.3, 0.5)]
IDS = ["sinusoids", "spline", "ou"]


def flat(arrays) -> jax.Array:
    """Per-point arrays [n, *shape] as one [n, units] array."""
    return jnp.concatenate([a.reshape(a.shape[0], -1) for a in arrays], axis=-1)


@eqx.filter_jit
def evaluate(process, state, times):
    """(p, ṗ) at each of ``times``, stacked along a leading axis."""
    return jax.vmap(process, in_axes=(None, 0))(state, jnp.asarray(times, jnp.float32))


@eqx.filter_jit
def advance(process, state, duration: float):
    return process.next_presentation(state, duration)


def path(process, key, duration, times, presentations=3):
    """(p, ṗ) at local ``times`` of each of ``presentations`` consecutive presentations."""
    state = process.init(SHAPES, key=key)
    out = []
    for _ in range(presentations):
        out.append(evaluate(process, state, times))
        state = advance(process, state, duration)
    return out


@pytest.mark.parametrize("process", PROCESSES, ids=IDS)
def test_shapes_and_determinism(process):
    p, p_dot = process(process.init(SHAPES, key=jax.random.key(0)), 0.1)
    assert [a.shape for a in p] == [a.shape for a in p_dot] == SHAPES
    assert all(a.dtype == jnp.float32 for a in p + p_dot)

    same = path(process, jax.random.key(0), 0.7, [0.0, 0.3])
    again = path(process, jax.random.key(0), 0.7, [0.0, 0.3])
    other = path(process, jax.random.key(1), 0.7, [0.0, 0.3])
    leaves = [np.asarray(x) for x in jax.tree.leaves(same)]
    assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(leaves, jax.tree.leaves(again)))
    assert all(not np.allclose(a, np.asarray(b)) for a, b in zip(leaves, jax.tree.leaves(other)))


@pytest.mark.parametrize("process", PROCESSES[:2], ids=IDS[:2])
def test_rate_is_the_time_derivative(process):
    """ṗ equals the jvp of p in t (rtol 1e-4, atol 1e-5·σ/τ_p), inside segments and at knots."""
    state = process.next_presentation(process.init(SHAPES, key=jax.random.key(2)), 0.85)
    for t in [0.0, 0.1, 0.4, 0.5, 0.77, 1.3]:
        p_dot = process(state, t)[1]
        _, jvp = jax.jvp(lambda t: process(state, t)[0], (jnp.float32(t),), (jnp.float32(1),))
        for a, b in zip(jvp, p_dot):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * 0.3 / 0.5)


def test_integrated_ou_rate_and_noise():
    """ṗ = (o − p)/τ_p is the drift of p; only o is noisy, with scale 2σ/√τ_p; the state carries
    over between presentations."""
    process = IntegratedOU(0.3, 0.5)
    state = process.init(SHAPES, key=jax.random.key(3))
    drift, noise = process.drift(state, 0.0), process.diffusion(state, 0.0)
    for a, b in zip(process(state, 0.0)[1], drift.p):
        np.testing.assert_array_equal(a, b)
    for o, p in zip(noise.o, noise.p):
        np.testing.assert_allclose(o, 2 * 0.3 / math.sqrt(0.5), rtol=1e-6)
        np.testing.assert_array_equal(p, 0.0)
    assert process.next_presentation(state, 1.0) is state


def test_sinusoids_follow_their_formula():
    """p = (σ/τ_p)√(2/K) Σ_k sin(ω_k t + φ_k)/ω_k and ṗ = (σ/τ_p)√(2/K) Σ_k cos(ω_k t + φ_k),
    against float64 NumPy (atol 1e-5: float32 rounds phases below 45 rad by ≤ 2e-6, each of the
    four components' terms by ≤ 1.4e-6), with every
    frequency in its slice of the band."""
    process = Sinusoids(1.0, 1.0, components=4, band=(0.5, 2.0))
    state = process.init(SHAPES, key=jax.random.key(4))
    amplitude = math.sqrt(2 / 4)
    for t in [0.0, 0.37, 2.9]:
        p, p_dot = process(state, t)
        for omega, phase, a, b in zip(state.omega, state.phase, p, p_dot):
            theta = np.float64(t) * np.asarray(omega, np.float64) + np.asarray(phase, np.float64)
            expected = amplitude * (np.sin(theta) / np.asarray(omega, np.float64)).sum(0)
            np.testing.assert_allclose(a, expected, atol=1e-5)
            np.testing.assert_allclose(b, amplitude * np.cos(theta).sum(0), atol=1e-5)
    for omega in state.omega:
        slices = np.asarray(omega) / (2 * np.pi) - 0.5  # in [0, 1.5), slice k = [0.375k, ...)
        k = np.arange(4).reshape(4, *[1] * (omega.ndim - 1))
        assert np.all((slices >= 0.375 * (k + 0.25)) & (slices <= 0.375 * (k + 0.75)))


def test_spline_is_diffrax_backward_hermite_through_the_keyed_knots():
    """After several presentations (T/τ_p not an integer) the window's path equals Diffrax's
    backward Hermite interpolation through the knots, and knot j has the values
    σ·normal(fold_in(fold_in(key, j), point)) (atol 1e-6)."""
    key, sigma, tau, duration = jax.random.key(5), 0.3, 0.5, 1.3
    process = CubicSpline(sigma, tau)
    state = process.init(SHAPES, key=key)
    for _ in range(7):
        state = advance(process, state, duration)
    start = 7 * duration / tau  # the presentation starts 18.2 knot spacings in
    first = math.floor(start) - 1
    ts = (np.arange(process.knots) + first) * tau - 7 * duration
    knots = jax.jit(
        lambda key: tuple(
            jnp.stack(
                [
                    sigma * jax.random.normal(jax.random.fold_in(jax.random.fold_in(key, j), i), s)
                    for j in range(first, first + process.knots)
                ]
            )
            for i, s in enumerate(SHAPES)
        )
    )(key)
    ts = jnp.asarray(ts, jnp.float32)
    coeffs = jax.jit(diffrax.backward_hermite_coefficients)(ts, knots)
    reference = diffrax.CubicInterpolation(ts, coeffs)
    times = jnp.asarray([0.0, 0.61, 1.3, process.max_duration, ts[2]])
    p, p_dot = evaluate(process, state, times)
    expected = jax.vmap(lambda t: reference.evaluate(t) + reference.derivative(t))(times)
    for a, b in zip(p + p_dot, expected):
        np.testing.assert_allclose(a, b, atol=1e-5)
    for a, b in zip(p, knots):  # at a knot, p is the knot's value
        np.testing.assert_allclose(a[-1], b[2], atol=1e-6)


@pytest.mark.parametrize("process", PROCESSES[:2], ids=IDS[:2])
@pytest.mark.parametrize("duration", [1.7, 2.5])
def test_continuity_across_presentations(process, duration):
    """(p, ṗ) at t = T of presentation k equal those at t = 0 of k + 1, for the first boundaries
    and after 1000 presentations (σ = τ_p = 1, atol 1e-5: phases stay below 40 rad)."""
    process = type(process)(1.0, 1.0)
    state = process.init(SHAPES, key=jax.random.key(6))
    for k in range(1003):
        new = advance(process, state, duration)
        if k < 3 or k >= 1000:
            end, start = evaluate(process, state, [duration]), evaluate(process, new, [0.0])
            for a, b in zip(end[0] + end[1], start[0] + start[1]):
                np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
        state = new


def time_average(process, duration, nodes, weights, presentations, *, key):
    """The time average of ṗ ṗᵀ over ``presentations`` presentations, by the quadrature rule
    (``nodes`` in local time, ``weights`` summing to 1) within each; and the mean of ṗ."""

    def presentation(state, _):
        p_dot = flat(jax.vmap(lambda t: process(state, t)[1])(nodes))  # [nodes, units]
        second = jnp.einsum("q,qi,qj->ij", weights, p_dot, p_dot)
        return process.next_presentation(state, duration), (second, weights @ p_dot)

    state = process.init(SHAPES, key=key)
    _, (second, first) = jax.lax.scan(presentation, state, None, length=presentations)
    return np.asarray(second, np.float64).mean(0), np.asarray(first, np.float64).mean(0)


def check_isotropy(matrix, c, *, diagonal, off_rms, off_max):
    d = np.diag(matrix) / c
    off = matrix[~np.eye(len(matrix), dtype=bool)] / c
    assert np.all(np.abs(d - 1) < diagonal), np.abs(d - 1).max()
    assert np.sqrt(np.mean(off**2)) < off_rms, np.sqrt(np.mean(off**2))
    assert np.all(np.abs(off) < off_max), np.abs(off).max()


def test_sinusoids_rates_are_isotropic():
    """Over 2000 τ_p, sampled every τ_p/16: every unit's mean ṗ² is c = (σ/τ_p)² within 1% and
    their mean within 0.5%, whatever the draw (frequencies within a unit differ by ≥ 1.18/τ_p, so
    the cross terms average to < 0.2%). Off-diagonals: RMS < 0.05c (two units correlate only while
    their frequencies in one slice are closer than ~1/(2000 τ_p), which over 496 pairs happens ~2
    times, each adding at most (c/K)²/496 to the mean square: 20 are needed to fail); max < 0.5c
    (at most c/K per such coincidence)."""
    process = Sinusoids(0.3, 0.5)
    c = process.rate_power()
    assert c == pytest.approx((0.3 / 0.5) ** 2)
    duration, n = 1.25, 40
    nodes = (jnp.arange(n) + 0.5) * duration / n
    matrix, _ = time_average(
        process, duration, nodes, jnp.full(n, 1 / n), 800, key=jax.random.key(7)
    )
    assert np.mean(np.diag(matrix)) / c == pytest.approx(1, abs=0.005)
    check_isotropy(matrix, c, diagonal=0.01, off_rms=0.05, off_max=0.5)


def test_spline_rates_are_isotropic():
    """Over 20000 knot intervals (T = 8τ_p, so segments align with presentations), with 3-point
    Gauss–Legendre nodes per segment (exact for the quartic ṗ_i ṗ_j): per-unit relative std of the
    time-averaged ṗ² is 1.3% and of an off-diagonal 0.9% of c (measured over 400 independent units
    at this length), so: every diagonal within 10% of c = (14/5)(σ/τ_p)² (7.9 std), their mean
    within 2% (9 std), every off-diagonal < 0.07c (8 std; 496 pairs), RMS < 0.02c."""
    process = CubicSpline(0.3, 0.5)
    c = process.rate_power()
    assert c == pytest.approx(2.8 * (0.3 / 0.5) ** 2)
    tau, per = 0.5, 8
    gauss = np.array([-math.sqrt(3 / 5), 0.0, math.sqrt(3 / 5)]) / 2 + 0.5
    nodes = ((np.arange(per)[:, None] + gauss) * tau).ravel()
    weights = np.tile(np.array([5, 8, 5]) / 18, per) / per
    matrix, mean = time_average(
        process, per * tau, jnp.asarray(nodes), jnp.asarray(weights), 2500, key=jax.random.key(8)
    )
    assert np.mean(np.diag(matrix)) / c == pytest.approx(1, abs=0.02)
    check_isotropy(matrix, c, diagonal=0.1, off_rms=0.02, off_max=0.07)


def test_integrated_ou_starts_stationary():
    """(o, p) drawn from the stationary law: Var(o) = 2σ², Var(p) = Cov(o, p) = σ²,
    E[ṗ²] = c = (σ/τ_p)², E[p ṗ] = 0, over 2·10⁵ units (relative std ≤ 0.45%: tolerance 3%)."""
    sigma, tau = 0.3, 0.5
    process = IntegratedOU(sigma, tau)
    state = process.init([(200_000,)], key=jax.random.key(9))
    (o,), (p,) = state.o, state.p
    p_dot = process(state, 0.0)[1][0]
    assert np.var(o) == pytest.approx(2 * sigma**2, rel=0.03)
    assert np.var(p) == pytest.approx(sigma**2, rel=0.03)
    assert np.mean(o * p) == pytest.approx(sigma**2, rel=0.03)
    assert np.mean(p_dot**2) == pytest.approx(process.rate_power(), rel=0.03)
    assert abs(np.mean(p * p_dot)) < 0.03 * sigma**2 / tau


@eqx.filter_jit
def simulate_ou(process, shapes, duration, dt, *, key):
    """The integrated OU through diffrax (Heun, constant step, VirtualBrownianTree), as the
    simulator runs it: (p, ṗ) every 0.25 time units, as [times, units]."""
    init_key, noise_key = jax.random.split(key)
    state = process.init(shapes, key=init_key)
    shape = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), state)
    brownian = diffrax.VirtualBrownianTree(0.0, duration, tol=dt / 2, shape=shape, key=noise_key)
    terms = diffrax.MultiTerm(
        diffrax.ODETerm(lambda t, y, args: process.drift(y, t)),
        diffrax.ControlTerm(
            lambda t, y, args: lx.DiagonalLinearOperator(process.diffusion(y, t)), brownian
        ),
    )
    saveat = diffrax.SaveAt(
        ts=jnp.arange(1, int(duration / 0.25) + 1) * 0.25, fn=lambda t, y, args: process(y, t)
    )
    sol = diffrax.diffeqsolve(
        terms, diffrax.Heun(), 0.0, duration, dt, state, saveat=saveat, max_steps=None
    )
    return flat(sol.ys[0]), flat(sol.ys[1])


def test_integrated_ou_stationary_statistics_under_diffrax():
    """Over L = 400 τ_p (τ_p = 1, dt = 0.05, Heun), 128 units. Relative std of the estimates:
    Var(p) √(5τ_p/L) = 11% per unit, 1% for the mean; E[ṗ²] √(τ_p/L) = 5% per unit, 0.44% for
    the mean; an off-diagonal of the time-averaged ṗ ṗᵀ √(τ_p/2L) = 3.5% of c. Heun's stationary
    bias at this step is −0.3% (discrete Lyapunov equation). So: mean Var(p) = σ² within 6%, mean
    E[ṗ²] = c within 3%, every unit's E[ṗ²] within 35% of c, off-diagonals < 0.3c (8128 pairs),
    their RMS < 0.06c; and the same key gives the same path."""
    sigma, tau = 0.5, 1.0
    process = IntegratedOU(sigma, tau)
    shapes = [(4, 16), (64,)]
    p, p_dot = simulate_ou(process, shapes, 400.0, 0.05, key=jax.random.key(10))
    p, p_dot = np.asarray(p, np.float64), np.asarray(p_dot, np.float64)
    c = process.rate_power()
    assert np.mean(p**2) == pytest.approx(sigma**2, rel=0.06)
    assert np.mean(p_dot**2) == pytest.approx(c, rel=0.03)
    check_isotropy(p_dot.T @ p_dot / len(p_dot), c, diagonal=0.35, off_rms=0.06, off_max=0.3)
    again = simulate_ou(process, shapes, 400.0, 0.05, key=jax.random.key(10))
    np.testing.assert_array_equal(np.asarray(again[0]), p.astype(np.float32))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Sinusoids(-0.1, 1.0), "sigma=-0.1"),
        (lambda: Sinusoids(0.1, 0.0), "tau=0.0"),
        (lambda: CubicSpline(0.1, -1.0), "tau=-1.0"),
        (lambda: IntegratedOU(0.1, float("nan")), "tau=nan"),
        (lambda: IntegratedOU(float("inf"), 1.0), "sigma=inf"),
        (lambda: Sinusoids(0.1, 1.0, components=0), "components=0"),
        (lambda: Sinusoids(0.1, 1.0, components=2.5), "components=2.5"),
        (lambda: Sinusoids(0.1, 1.0, band=(2.0, 1.0)), r"band=\(2.0, 1.0\)"),
        (lambda: Sinusoids(0.1, 1.0, band=(0.0, 1.0)), r"band=\(0.0, 1.0\)"),
        (lambda: Sinusoids(0.1, 1.0, band=(1.0,)), r"band=\(1.0,\)"),
        (lambda: Sinusoids(0.1, 1.0, band=3.0), "band=3.0"),
        (lambda: CubicSpline(0.1, 1.0, knots=3), "knots=3"),
    ],
)
def test_invalid_configuration(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("process", PROCESSES, ids=IDS)
def test_invalid_use(process):
    with pytest.raises(ValueError, match=r"\(16, -1\)"):
        process.init([(16, -1)], key=jax.random.key(0))
    state = process.init(SHAPES, key=jax.random.key(0))
    with pytest.raises(ValueError, match="duration=0.0"):
        process.next_presentation(state, 0.0)


def test_spline_window_is_checked():
    """A presentation longer than (knots − 3)·τ_p is refused with the knots it needs; evaluating
    past the window fails at run time instead of extrapolating."""
    process = CubicSpline(0.1, 0.5, knots=8)
    state = process.init(SHAPES, key=jax.random.key(0))
    with pytest.raises(ValueError, match="duration=2.6.*knots >= 9"):
        process.next_presentation(state, 2.6)
    advance(process, state, 2.5)
    with pytest.raises(Exception, match="raise `knots`"):
        jax.block_until_ready(jax.jit(process)(state, 3.1))
