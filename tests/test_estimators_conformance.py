"""Every registered estimator honours the same contract: gradient estimates shaped like the model,
finite, reproducible for a key, and jit-compiled once."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tree_allclose

from ctlearn.estimators import ESTIMATORS, make_estimator
from models import mlp

# Rules whose step draws nothing (FA/DFA draw their fixed feedback in init); every other
# registered rule must depend on its key.
DETERMINISTIC = {"bp", "l-bp", "lg-bp", "fa", "l-fa", "lg-fa", "dfa", "dkp"}


@pytest.fixture(scope="module")
def problem():
    kx, ky, km = jax.random.split(jax.random.PRNGKey(7), 3)
    model = mlp((12,), 4, widths=(10, 8, 6), key=km)
    x = jax.random.normal(kx, (5, 12))
    y = jax.random.randint(ky, (5,), 0, 4)
    return model, (x, y)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_estimate_has_the_model_structure_and_is_finite(name, problem):
    model, batch = problem
    estimator = make_estimator(name)
    state = estimator.init(model, key=jax.random.PRNGKey(0))
    grads, new_state, diagnostics = estimator.estimate(
        model, batch, state, key=jax.random.PRNGKey(1)
    )
    params = eqx.filter(model, eqx.is_inexact_array)
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    for g, p in zip(jax.tree.leaves(grads), jax.tree.leaves(params)):
        assert g.shape == p.shape and g.dtype == p.dtype == jnp.float32
        assert np.all(np.isfinite(g))
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    assert diagnostics["loss"].shape == () and np.isfinite(diagnostics["loss"])
    assert diagnostics["logits"].shape == (5, 4)
    # Every layer of the network receives a non-zero estimate.
    for layer in grads.layers:
        assert float(jnp.abs(layer.weight).sum()) > 0


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_estimate_is_a_pure_function_of_the_key(name, problem):
    model, batch = problem
    estimator = make_estimator(name)
    state = estimator.init(model, key=jax.random.PRNGKey(0))
    run = lambda seed: estimator.estimate(model, batch, state, key=jax.random.PRNGKey(seed))[0]
    assert tree_allclose(run(3), run(3), rtol=0, atol=0)
    assert tree_allclose(run(3), run(4), rtol=0, atol=0) == (name in DETERMINISTIC)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_estimate_compiles_once(name, problem):
    model, (x, y) = problem
    estimator = make_estimator(name)
    state = estimator.init(model, key=jax.random.PRNGKey(0))

    @eqx.filter_jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def step(model, x, y, state, key):
        return estimator.estimate(model, (x, y), state, key=key)

    for seed in range(3):
        step(model, x + seed, (y + seed) % 4, state, jax.random.PRNGKey(seed))
