"""Chip-multiplexed perturbations (time multiplexing, random ±1 codes, Walsh codes): the pulse
shape and ṗ = dp/dt, C¹ continuity across chips and presentations, the codes' statistics and
orthogonality, the documented rate power, the refusals, and both perturbation sites in a
simulator. Fixed keys; tolerances stated where they are used."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.stats

import ctlearn.dynamics as ct
from models.mlp import mlp

SHAPES = [(2, 5), (7,)]  # 17 units over two points
UNITS = 17
CHIPS = [ct.TimeMultiplexed(0.3, 0.5), ct.RandomCodes(0.3, 0.5), ct.WalshCodes(0.3, 0.5)]
IDS = ["time", "random", "walsh"]


def flat(arrays) -> np.ndarray:
    """Per-point arrays [..., *shape] (one leading axis) as one [n, units] array."""
    return np.concatenate([np.asarray(a).reshape(a.shape[0], -1) for a in arrays], axis=-1)


@eqx.filter_jit
def evaluate(process, state, times):
    return jax.vmap(process, in_axes=(None, 0))(state, jnp.asarray(times, jnp.float32))


@eqx.filter_jit
def signs_over(process, state, count: int):
    """The code c_i(n) of chips 0 … count − 1 of the current presentation: the sign of ṗ at a
    quarter chip (where sin 2πs = 1), [count, units]."""
    times = (jnp.arange(count) + 0.25) * process.tau
    _, p_dot = jax.vmap(process, in_axes=(None, 0))(state, times)
    scale = math.sqrt(2) / math.pi * process.sigma * state.gain * math.pi / process.tau
    return tuple(d / scale for d in p_dot)


@pytest.mark.parametrize("process", CHIPS, ids=IDS)
def test_pulse_shape_rate_and_continuity(process):
    """p = a·c·sin²(πs), ṗ = dp/dt (jvp in t, rtol 1e-4), p and ṗ zero at chip edges, and a
    presentation of T = 1.3 (not a whole number of chips) continues where the last ended (rtol
    1e-5, atol 1e-5 against rates up to 3.3: the offset is rounded to
    float32): the chip index and offset carry over."""
    state = process.init(SHAPES, key=jax.random.key(0))
    for t in [0.05, 0.2, 0.31, 0.62]:
        p_dot = process(state, t)[1]
        _, jvp = jax.jvp(lambda t: process(state, t)[0], (jnp.float32(t),), (jnp.float32(1),))
        for a, b in zip(jvp, p_dot):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    edges = evaluate(process, state, [0.0, 0.5, 1.0, 1.5])
    for a in jax.tree.leaves(edges):
        np.testing.assert_allclose(a, 0.0, atol=1e-6)
    for _ in range(3):
        new = process.next_presentation(state, 1.3)
        end, start = evaluate(process, state, [1.3, 1.45]), evaluate(process, new, [0.0, 0.15])
        for a, b in zip(jax.tree.leaves(end), jax.tree.leaves(start)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
        state = new


def test_time_multiplexing_visits_each_unit_once_per_cycle():
    """Exactly one unit is on in every chip, each unit once per cycle of P chips, in a random
    order that the key fixes; the pulse is √P larger than a code's (gain)."""
    process = ct.TimeMultiplexed(1.0, 1.0)
    state = process.init(SHAPES, key=jax.random.key(1))
    codes = flat(signs_over(process, state, 2 * UNITS))
    np.testing.assert_allclose(codes.sum(axis=1), 1.0, atol=1e-5)  # one unit per chip
    on = np.argmax(codes, axis=1)
    assert sorted(on[:UNITS]) == list(range(UNITS))
    np.testing.assert_array_equal(on[:UNITS], on[UNITS:])
    assert list(on[:UNITS]) != list(range(UNITS))  # shuffled
    assert float(state.gain) == pytest.approx(math.sqrt(UNITS))


def test_walsh_codes_are_hadamard_rows():
    """Each unit's signs over a period are a row of ``scipy.linalg.hadamard(N)`` (Sylvester's
    construction, independent of the popcount formula), rows distinct and never the constant
    row 0; they repeat after N chips."""
    process = ct.WalshCodes(1.0, 1.0)
    state = process.init(SHAPES, key=jax.random.key(2))
    order = ct.walsh_order(UNITS)
    assert order == 32
    codes = flat(signs_over(process, state, 2 * order)).T  # [units, chips]
    rows = np.concatenate([np.asarray(u).ravel() for u in state.units]).astype(int)
    assert len(set(rows)) == UNITS and rows.min() >= 1 and rows.max() < order
    np.testing.assert_allclose(codes[:, :order], scipy.linalg.hadamard(order)[rows], atol=1e-5)
    np.testing.assert_allclose(codes[:, order:], codes[:, :order], atol=1e-5)


def test_random_codes_statistics():
    """Over 4096 chips × 17 units (69,632 signs): the fraction of +1 is 1/2 and neither
    successive chips nor different units correlate. Each statistic is ~N(0, 1/n) under the
    hypothesis; the bound 5.3/√n fails with probability < 1e-7 each. Codes differ per key."""
    process = ct.RandomCodes(1.0, 1.0)
    state = process.init(SHAPES, key=jax.random.key(3))
    codes = flat(signs_over(process, state, 4096))  # [chips, units]
    assert set(np.unique(np.round(codes, 4))) == {-1.0, 1.0}
    bound = 5.3 / math.sqrt(codes.size)
    assert abs(codes.mean()) < bound
    assert abs(np.mean(codes[1:] * codes[:-1])) < 5.3 / math.sqrt(codes[1:].size)
    cross = (codes.T @ codes / codes.shape[0])[~np.eye(UNITS, dtype=bool)]
    assert np.max(np.abs(cross)) < 5.3 / math.sqrt(codes.shape[0]) * 1.5  # 272 pairs
    other = flat(signs_over(process, process.init(SHAPES, key=jax.random.key(4)), 64))
    assert not np.array_equal(codes[:64], other)


@pytest.mark.parametrize("process", [CHIPS[0], CHIPS[2]], ids=["time", "walsh"])
def test_rates_exactly_orthogonal_after_one_period(process):
    """∫ṗ_i ṗ_j dt over one period (midpoint rule, 64 nodes per chip, spread over three
    presentations of unequal length) is c·period·δ_ij: off-diagonals below 1e-5·c·period, the
    diagonal within 1e-4 (the midpoint rule integrates sin² exactly at this density)."""
    period = process.period(SHAPES)
    chips = round(period / process.tau)
    nodes = 64
    times = (np.arange(chips * nodes) + 0.5) * process.tau / nodes
    cuts = [0.0, 0.37 * period, 0.81 * period, period]
    state = process.init(SHAPES, key=jax.random.key(5))
    rates = []
    for start, end in zip(cuts[:-1], cuts[1:]):
        inside = times[(times >= start) & (times < end)] - start
        rates.append(flat(evaluate(process, state, inside)[1]))
        state = process.next_presentation(state, end - start)
    rates = np.concatenate(rates).astype(np.float64)
    matrix = rates.T @ rates * process.tau / nodes / (process.rate_power() * period)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-4)
    assert np.max(np.abs(matrix[~np.eye(UNITS, dtype=bool)])) < 1e-5


@pytest.mark.parametrize("process", CHIPS, ids=IDS)
def test_value_power_is_the_time_mean_of_p_squared(process):
    """Over one period (17 chips for time multiplexing, 32 for Walsh codes; 256 chips for
    random codes) ⟨p_i²⟩
    sampled at 16 midpoints per chip (exact for sin⁴: a trigonometric polynomial of degree 4)
    is ``value_power`` for every unit: within 1e-5 for the periodic codes, whose units spend
    the same share of the period on, and exactly (every chip carries one sign) for random codes."""
    state = process.init(SHAPES, key=jax.random.key(8))
    period = process.period(SHAPES)
    n, nodes = (256 if period is None else round(period / process.tau)), 16
    times = (np.arange(n * nodes) + 0.5) * process.tau / nodes
    values = flat(evaluate(process, state, times)[0]).astype(np.float64)
    np.testing.assert_allclose(np.mean(values**2, axis=0), process.value_power(), rtol=1e-5)


def test_random_codes_rate_power_and_crosstalk():
    """Over n = 2048 chips the mean ṗ_i² is c within 1e-4 (every chip contributes the same),
    and the crosstalk ∫ṗ_iṗ_j/(c·T) is a sum of n random signs over n: its RMS over the 136
    pairs is 1/√n within 25% (a χ²₁₃₆ bound failing with probability < 1e-6)."""
    process = ct.RandomCodes(0.3, 0.5)
    state = process.init(SHAPES, key=jax.random.key(6))
    n, nodes = 2048, 8
    times = (np.arange(n * nodes) + 0.5) * process.tau / nodes
    rates = flat(evaluate(process, state, times)[1]).astype(np.float64)
    matrix = rates.T @ rates / len(times) / process.rate_power()
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-4)
    off = matrix[np.triu_indices(UNITS, 1)]
    lo, hi = scipy.stats.chi2.ppf([5e-7, 1 - 5e-7], off.size) / off.size
    assert lo / n <= np.mean(off**2) <= hi / n


def test_sinusoid_allocations():
    """``"independent"`` spreads every frequency over the whole band; ``"grid"`` gives all
    units' components the distinct points of one linear grid (spacing Δ/(M − 1)), shuffled;
    every allocation keeps c = (σ/τ_p)² and is refused by name when unknown."""
    low, high = 0.5, 2.0
    grid = ct.Sinusoids(1.0, 1.0, components=3, allocation="grid")
    state = grid.init(SHAPES, key=jax.random.key(7))
    f = np.sort(np.concatenate([np.asarray(o).ravel() for o in state.omega]) / (2 * np.pi))
    assert f.size == 3 * UNITS
    np.testing.assert_allclose(np.diff(f), (high - low) / (f.size - 1), rtol=1e-4)
    assert f[0] == pytest.approx(low) and f[-1] == pytest.approx(high)
    first = np.asarray(state.omega[0]).ravel()
    assert not np.all(np.diff(first) > 0)  # shuffled, not in unit order
    independent = ct.Sinusoids(1.0, 1.0, components=4, allocation="independent")
    omega = np.concatenate(
        [np.asarray(o).ravel() for o in independent.init([(500,)], key=jax.random.key(8)).omega]
    ) / (2 * np.pi)
    assert omega.min() >= low and omega.max() <= high
    # Uniform over the band: a KS test at the 1e-6 level, and every component spans the band.
    assert scipy.stats.kstest(omega, "uniform", args=(low, high - low)).pvalue > 1e-6
    for allocation in ct.ALLOCATIONS:
        assert ct.Sinusoids(0.3, 0.5, allocation=allocation).rate_power() == pytest.approx(0.36)
    with pytest.raises(ValueError, match="unknown allocation 'shuffled'.*stratified"):
        ct.Sinusoids(0.3, 0.5, allocation="shuffled")


def tiny_problem(duration: float, batch: int = 2):
    model = mlp((3,), 2, (4,), activation="softplus", local_heads=False, key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (4, batch, 3))
    y = jax.random.randint(jax.random.key(2), (4, batch), 0, 2)
    return model, ct.Presentations(x, y, duration=duration)


def test_refusals_before_any_work():
    """A code longer than the presentation, a chip too short for the fixed step, and bad
    amplitudes are refused with the values named."""
    model, stream = tiny_problem(duration=8.0)
    sim = ct.Simulator(ct.FGWRule(lr=1.0), ct.WalshCodes(0.01, 1.0), dt0=0.125)
    with pytest.raises(
        ValueError,
        match=r"WalshCodes\(tau=1.0\) multiplexes 26 .*period of 32.*"
        r"duration 8.0.*>= 32.*tau to <= 0.25",
    ):
        ct.prepare(sim, model, stream, key=jax.random.key(0))
    sim = ct.Simulator(ct.FGWRule(lr=1.0), ct.TimeMultiplexed(0.01, 0.25), dt0=0.125)
    with pytest.raises(ValueError, match=r"dt0=0.125 gives too few time points.*dt0 <= 0.0625"):
        ct.prepare(sim, model, stream, key=jax.random.key(0))
    with pytest.raises(ValueError, match="sigma must be finite and >= 0"):
        ct.RandomCodes(-1.0, 1.0)
    with pytest.raises(ValueError, match="tau must be finite and > 0"):
        ct.WalshCodes(1.0, 0.0)
    assert ct.RandomCodes(1.0, 1.0).period(SHAPES) is None
    assert ct.WalshCodes(1.0, 0.5).period(SHAPES) == 16.0
    assert ct.TimeMultiplexed(1.0, 0.5).period(SHAPES) == 8.5


@pytest.mark.parametrize("process", CHIPS, ids=IDS)
@pytest.mark.parametrize("rule", ["fg-w", "fg-a"])
def test_both_sites_learn_in_a_simulator(process, rule):
    """Weight (FG-W: 26 parameters) and activity (FG-A: 2 examples × 6 units) perturbation with
    every chip family: the frozen-weight estimate over one period (or 64 chips for random
    codes) points along −∇L (cos > 0.5 where the code is exact, > 0.3 for random codes)."""
    site_units = 26 if rule == "fg-w" else 12
    process = type(process)(1e-3, 1.0)
    period = process.period([(site_units,)]) or 64.0
    model, stream = tiny_problem(duration=period)
    rules = {"fg-w": ct.FGWRule(lr=1.0), "fg-a": ct.make_rule("fg-a", lr=1.0)}
    sim = ct.Simulator(rules[rule], process, dt0=0.125, freeze=True)
    result = ct.simulate(sim, model, stream, key=jax.random.key(3), progress=False)
    cosine = np.asarray(result.alignment)
    assert np.all(np.isfinite(cosine))
    assert np.all(cosine > (0.3 if period == 64.0 else 0.5)), cosine
