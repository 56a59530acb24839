"""Forward-gradient estimators are unbiased (Ren et al. Appendix 8).

For a fixed batch, the mean of K independent estimates must match the exact gradient g (BP for the
global rules, LG-BP for the local-greedy ones). Two statistics, each against its own standard error
estimated from the same K samples:

* scale: each draw's projection on the exact gradient, s_k = <ĝ_k, g>/|g|², has mean 1 for an
  unbiased estimator and 1 + ε for one off by a factor 1 + ε. The check demands
  |mean(s) − 1| ≤ Z_SCALE·se with se = std(s)/√K, so an unbiased estimator fails with probability
  6e-5 per case (two-sided normal tail at 4) and one off by 3 % is rejected with probability
  Φ(0.03/se − Z_SCALE). For a weight perturbation shared by all parameters s = u² with
  u ~ N(0, 1), so Var(s) = 2: with K = 128 000, se = 0.0040 and that power is Φ(3.6) ≈ 0.9998.
  The other global rules have a Var(s) of the same order and the local-greedy ones a smaller
  one, so they take fewer draws: every case asserts from its own measured se that the power is
  at least MIN_POWER, and a separate test runs the check on draws multiplied by 1.03 and by 0.97
  and asserts that it rejects them.
* element: every element's error against its standard error, |mean − exact| ≤ Z_ELEMENT·std/√K,
  which catches a bias in any direction (Z_ELEMENT = 6.5 keeps the false alarm below ~1e-6 over
  the ~100 elements tested), but only a large one: it is not what catches a 3 % scale error.

The cosine between mean and exact gradient is checked as well.
"""

import functools
import math

import equinox as eqx
import jax
import numpy as np
import pytest

from ctlearn.diagnostics import sample_estimates, tree_cosine
from ctlearn.estimators import make_estimator
from models import mlp

DRAWS = {"bp": 128_000, "lg-bp": 40_000}  # K, by the exact gradient compared with
Z_SCALE = 4.0
Z_ELEMENT = 6.5
SCALE_ERROR = 0.03  # the smallest relative scale error the check must catch
MIN_POWER = 0.99  # required probability of catching it, from the measured standard error

GLOBAL = [
    ("fg-w", {"shared": True}),
    ("fg-w", {"shared": False}),
    ("fg-w", {"shared": True, "noise": "rademacher"}),
    ("fg-a", {"shared": True}),
    ("fg-a", {"shared": False}),
    ("fg-a", {"shared": False, "mask": False}),
    ("fg-a", {"shared": False, "noise": "rademacher"}),
]
LOCAL_GREEDY = [
    ("lg-fg-w", {"shared": True}),
    ("lg-fg-w", {"shared": False}),
    ("lg-fg-a", {"shared": True}),
    ("lg-fg-a", {"shared": False}),
]


@functools.cache
def _problem():
    kx, ky, km = jax.random.split(jax.random.PRNGKey(0), 3)
    model = mlp((6,), 3, widths=(5, 4), key=km)
    # Synthetic batch: Gaussian inputs, random labels.
    x = jax.random.normal(kx, (4, 6))
    y = jax.random.randint(ky, (4,), 0, 3)
    return model, (x, y)


@pytest.fixture(scope="module")
def problem():
    return _problem()


def _bias_statistics(samples, exact):
    """z-scores of the draws against the exact gradient: 'scale' (mean projection on it minus 1),
    'element' (largest over elements), the scale's standard error and the cosine of the mean."""
    k = samples[0].shape[0]
    sq_norm = sum(float(e @ e) for e in exact)
    projection = sum((s @ e).astype(np.float64) for s, e in zip(samples, exact)) / sq_norm
    scale_se = projection.std() / np.sqrt(k)
    element_z = max(
        np.max(
            np.abs(s.mean(0, dtype=np.float64) - e.astype(np.float64))
            / (s.std(0, dtype=np.float64) / np.sqrt(k) + 1e-6 / Z_ELEMENT)
        )
        for s, e in zip(samples, exact)
    )
    mean = np.concatenate([s.mean(0, dtype=np.float64) for s in samples])
    flat = np.concatenate(exact).astype(np.float64)
    return {
        "scale": (projection.mean() - 1.0) / scale_se,
        "scale_se": scale_se,
        "element": element_z,
        "cosine": mean @ flat / (np.linalg.norm(mean) * np.linalg.norm(flat)),
    }


def _consistent_with_unbiased(stats) -> bool:
    return (
        abs(stats["scale"]) <= Z_SCALE and stats["element"] <= Z_ELEMENT and stats["cosine"] > 0.95
    )


# The cases whose draws the rejection test re-examines (a weight- and an activity-perturbed
# global rule, a local-greedy one), and those draws once sampled: the two tests share them.
REEXAMINED = [GLOBAL[0] + ("bp",), GLOBAL[3] + ("bp",), LOCAL_GREEDY[0] + ("lg-bp",)]
_kept = {}


def _draws(method, options, reference):
    """K estimates (one float32 array per leaf, shape (K, size)) and the exact gradient's leaves
    (float32, flat)."""
    name = (method, tuple(sorted(options.items())), reference)
    if name in _kept:
        return _kept[name]
    model, batch = _problem()
    est = make_estimator(method, **options)
    state = est.init(model, key=jax.random.PRNGKey(1))
    num = DRAWS[reference]
    sample = eqx.filter_jit(sample_estimates)  # compiled: far quicker than op-by-op at this size
    samples = sample(est, model, batch, state, num=num, key=jax.random.PRNGKey(2))
    exact, _, _ = make_estimator(reference).estimate(model, batch, None, key=None)
    leaves = jax.tree.leaves(eqx.filter(samples, eqx.is_array))
    exact_leaves = jax.tree.leaves(eqx.filter(exact, eqx.is_array))
    assert len(leaves) == len(exact_leaves)
    draws = (
        [np.asarray(s).reshape(num, -1) for s in leaves],
        [np.asarray(e).reshape(-1) for e in exact_leaves],
    )
    if name in [(m, tuple(sorted(o.items())), r) for m, o, r in REEXAMINED]:
        _kept[name] = draws
    return draws


def _check_unbiased(method, options, reference):
    stats = _bias_statistics(*_draws(method, options, reference))
    assert _consistent_with_unbiased(stats), stats
    # P(reject) for a mean projection at 1 + SCALE_ERROR: Φ(SCALE_ERROR/se − Z_SCALE).
    power = 0.5 * (1.0 + math.erf((SCALE_ERROR / stats["scale_se"] - Z_SCALE) / math.sqrt(2.0)))
    assert power >= MIN_POWER, f"power {power:.3f} against a 3 % scale error; {stats}"


@pytest.mark.parametrize("method,options", GLOBAL)
def test_global_forward_gradients_match_bp_in_expectation(method, options):
    _check_unbiased(method, options, "bp")


@pytest.mark.parametrize("method,options", LOCAL_GREEDY)
def test_local_greedy_forward_gradients_match_lg_bp_in_expectation(method, options):
    _check_unbiased(method, options, "lg-bp")


@pytest.mark.parametrize("method,options,reference", REEXAMINED)
def test_the_unbiasedness_check_rejects_a_three_percent_scale_error(method, options, reference):
    """Guards the tests above against weakness: the same check, on the same draws multiplied by
    1.03 (and by 0.97), says they are biased."""
    samples, exact = _draws(method, options, reference)
    assert _consistent_with_unbiased(_bias_statistics(samples, exact))
    for factor in (1.0 + SCALE_ERROR, 1.0 - SCALE_ERROR):
        stats = _bias_statistics([factor * s for s in samples], exact)
        assert not _consistent_with_unbiased(stats), (factor, stats)
        # The scale statistic itself rejects (the element check alone need not: it does only
        # where an element is exact, like the local heads' gradients of LG rules).
        assert abs(stats["scale"]) > Z_SCALE, (factor, stats)


def test_local_greedy_differs_from_global(problem):
    """Guards the test above against a vacuous pass: LG-BP and BP differ on this network."""
    model, batch = problem
    bp = make_estimator("bp").estimate(model, batch, None, key=None)[0]
    lg = make_estimator("lg-bp").estimate(model, batch, None, key=None)[0]
    assert float(tree_cosine(bp.layers[0], lg.layers[0])) < 0.99


def test_single_estimate_is_noisy_but_a_descent_direction_on_average(problem):
    model, batch = problem
    est = make_estimator("fg-a")
    samples = sample_estimates(est, model, batch, None, num=64, key=jax.random.PRNGKey(5))
    exact = make_estimator("bp").estimate(model, batch, None, key=None)[0]
    cosines = jax.vmap(lambda g: tree_cosine(g, exact))(samples)
    assert float(cosines.min()) < 0.99  # one draw is not the gradient
    assert float(cosines.mean()) > 0.0  # but it points downhill on average
