"""Forward-gradient estimators are unbiased (Ren et al. Appendix 8).

For a fixed batch, the mean of K independent estimates must match the exact gradient (BP for the
global rules, LG-BP for the local-greedy ones). Each element's error is compared with its own
standard error from the same K samples: |mean − exact| ≤ Z·std/√K with Z = 6.5, so a correct
implementation fails with probability below ~1e-6 over the ~100 elements tested, while a bias of a
few standard errors is caught. The cosine between mean and exact gradient is checked as well.
"""

import equinox as eqx
import jax
import numpy as np
import pytest

from ctlearn.diagnostics import sample_estimates, tree_cosine
from ctlearn.estimators import make_estimator
from models import mlp

K = 20_000
Z = 6.5


@pytest.fixture(scope="module")
def problem():
    key = jax.random.PRNGKey(0)
    kx, ky, km = jax.random.split(key, 3)
    model = mlp((6,), 3, widths=(5, 4), key=km)
    # Synthetic batch: Gaussian inputs, random labels.
    x = jax.random.normal(kx, (4, 6))
    y = jax.random.randint(ky, (4,), 0, 3)
    return model, (x, y)


def _check_unbiased(method, reference, options, problem):
    model, batch = problem
    est = make_estimator(method, **options)
    state = est.init(model, key=jax.random.PRNGKey(1))
    samples = sample_estimates(est, model, batch, state, num=K, key=jax.random.PRNGKey(2))
    exact, _, _ = make_estimator(reference).estimate(model, batch, None, key=None)
    mean = jax.tree.map(lambda s: s.mean(0), samples)
    for s, m, e in zip(
        jax.tree.leaves(samples),
        jax.tree.leaves(mean),
        jax.tree.leaves(eqx.filter(exact, eqx.is_array)),
    ):
        se = np.asarray(s.std(0)) / np.sqrt(K)
        err = np.abs(np.asarray(m) - np.asarray(e))
        assert np.all(err <= Z * se + 1e-6), f"max z-score {np.max(err / (se + 1e-12)):.2f}"
    assert float(tree_cosine(mean, exact)) > 0.95


@pytest.mark.parametrize(
    "method,options",
    [
        ("fg-w", {"shared": True}),
        ("fg-w", {"shared": False}),
        ("fg-w", {"shared": True, "noise": "rademacher"}),
        ("fg-a", {"shared": True}),
        ("fg-a", {"shared": False}),
        ("fg-a", {"shared": False, "mask": False}),
        ("fg-a", {"shared": False, "noise": "rademacher"}),
    ],
)
def test_global_forward_gradients_match_bp_in_expectation(method, options, problem):
    _check_unbiased(method, "bp", options, problem)


@pytest.mark.parametrize(
    "method,options",
    [
        ("lg-fg-w", {"shared": True}),
        ("lg-fg-w", {"shared": False}),
        ("lg-fg-a", {"shared": True}),
        ("lg-fg-a", {"shared": False}),
    ],
)
def test_local_greedy_forward_gradients_match_lg_bp_in_expectation(method, options, problem):
    _check_unbiased(method, "lg-bp", options, problem)


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
