"""The FDFA paper's networks: Table B.5 sizes, the CNN's shapes, every estimator on the CNN."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tree_allclose

from ctlearn.estimators import ESTIMATORS, make_estimator
from ctlearn.nn import Conv2d, FlatDense
from models import MODELS, fdfa_cnn, fdfa_cnn_reference, fdfa_fc, make_model

MNIST, CIFAR10 = (28, 28, 1), (32, 32, 3)


def _count_params(layers) -> int:
    return sum(math.prod(a.shape) for a in jax.tree.leaves(layers))


def _truncate(n: int, unit: float, digits: int) -> float:
    # Table B.5 truncates: 3 layers on MNIST have 1,276,810 parameters, printed "1.2M".
    return math.floor(n / unit * 10**digits) / 10**digits


# (input shape, depth, neurons, parameters as printed in Table B.5)
TABLE_B5 = [
    (MNIST, 2, 810, "636K"),
    (MNIST, 3, 1610, "1.2M"),
    (MNIST, 4, 2410, "1.9M"),
    (CIFAR10, 2, 1010, "3.08M"),
    (CIFAR10, 3, 2010, "4.08M"),
    (CIFAR10, 4, 3010, "5.08M"),
]


@pytest.mark.parametrize("input_shape, depth, neurons, params", TABLE_B5)
def test_fdfa_fc_sizes_match_table_b5(input_shape, depth, neurons, params):
    # Shapes only: no need to draw millions of weights.
    model = eqx.filter_eval_shape(
        fdfa_fc, input_shape, 10, depth, local_heads=False, key=jax.random.PRNGKey(0)
    )
    assert len(model.layers) == depth
    assert sum(layer.out_features for layer in model.layers) == neurons
    number, unit = params[:-1], {"K": 1e3, "M": 1e6}[params[-1]]
    digits = len(number.partition(".")[2])
    assert _truncate(_count_params(model.layers), unit, digits) == float(number)


def test_fdfa_fc_blocks_and_options():
    model = eqx.filter_eval_shape(fdfa_fc, MNIST, 10, 4, width=32, key=jax.random.PRNGKey(0))
    assert [layer.out_features for layer in model.layers] == [32, 32, 32, 10]
    assert model.block_ends == (1, 2, 4)
    assert all(h is not None for h in model.heads[:-1]) and model.heads[-1] is None
    with pytest.raises(ValueError, match="must be an integer >= 2, got 1"):
        fdfa_fc(MNIST, 10, 1, key=jax.random.PRNGKey(0))


def test_the_two_layer_fc_net_is_one_block_so_lg_fg_a_is_fg_a():
    # Depth 2 is one hidden layer and the output: one block, no local head. Local-greedy learning
    # then has nothing to separate: LG-FG-A gives FG-A's estimate for the same key (the paper
    # reports no LG-FG-A at depth 2 for this reason).
    model = fdfa_fc((12,), 3, 2, width=8, key=jax.random.PRNGKey(0))
    assert model.num_blocks == 1 and model.heads == (None,)
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 12))
    y = jnp.arange(5) % 3
    key = jax.random.PRNGKey(2)
    fg_a = make_estimator("fg-a").estimate(model, (x, y), None, key=key)[0]
    lg_fg_a = make_estimator("lg-fg-a").estimate(model, (x, y), None, key=key)[0]
    assert tree_allclose(fg_a, lg_fg_a, rtol=0, atol=0)
    assert float(jnp.abs(fg_a.layers[0].weight).sum()) > 0


@pytest.mark.parametrize(
    "input_shape, pre, activity",
    [
        (MNIST, [(24, 24, 15), (8, 8, 40), (128,), (10,)], [(12, 12, 15), (4, 4, 40)]),
        (CIFAR10, [(28, 28, 15), (10, 10, 40), (128,), (10,)], [(14, 14, 15), (5, 5, 40)]),
    ],
)
def test_fdfa_cnn_shapes(input_shape, pre, activity):
    model = eqx.filter_eval_shape(fdfa_cnn, input_shape, 10, key=jax.random.PRNGKey(0))
    x = jax.ShapeDtypeStruct((3,) + input_shape, jnp.float32)
    assert jax.eval_shape(lambda m, x: m(x).logits, model, x).shape == (3, 10)
    assert [s.shape for s in model.perturbation_shapes(x)] == [(3,) + s for s in pre]
    # Convolutions report their pooled maps: what the next layer and the local heads receive.
    expected = [(3,) + s for s in activity] + [(3, 128), (3, 10)]
    assert [s.shape for s in model.activity_shapes(x)] == expected
    assert [type(layer) for layer in model.layers[:2]] == [Conv2d, Conv2d]
    assert model.block_ends == (1, 2, 4) and model.heads[-1] is None
    for head, shape in zip(model.heads[:2], activity):
        assert head.in_features == math.prod(shape) and head.out_features == 10


def test_fdfa_cnn_without_heads_and_bad_shapes():
    model = eqx.filter_eval_shape(fdfa_cnn, MNIST, 10, local_heads=False, key=jax.random.PRNGKey(0))
    assert model.heads == (None, None, None)
    with pytest.raises(ValueError, match=r"\(height, width, channels\), got \(784,\)"):
        fdfa_cnn((784,), 10, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=r"at least 16×16, got \(12, 12, 1\)"):
        fdfa_cnn((12, 12, 1), 10, key=jax.random.PRNGKey(0))


@pytest.mark.parametrize(
    "input_shape, pre, activity",
    [
        # The paper's public code: 4000 (MNIST) and 5760 (CIFAR10) inputs to the 128-unit layer.
        (MNIST, [(24, 24, 15), (20, 20, 40), (128,), (10,)], [(24, 24, 15), (10, 10, 40)]),
        (CIFAR10, [(28, 28, 15), (24, 24, 40), (128,), (10,)], [(28, 28, 15), (12, 12, 40)]),
    ],
)
def test_fdfa_cnn_reference_shapes(input_shape, pre, activity):
    model = eqx.filter_eval_shape(fdfa_cnn_reference, input_shape, 10, key=jax.random.PRNGKey(0))
    x = jax.ShapeDtypeStruct((3,) + input_shape, jnp.float32)
    assert [s.shape for s in model.perturbation_shapes(x)] == [(3,) + s for s in pre]
    expected = [(3,) + s for s in activity] + [(3, 128), (3, 10)]
    assert [s.shape for s in model.activity_shapes(x)] == expected
    assert [type(layer) for layer in model.layers[:3]] == [Conv2d, Conv2d, FlatDense]
    assert [layer.pool for layer in model.layers[:2]] == [None, (2, 2)]
    assert all(layer.norm is not None for layer in model.layers[:3])
    assert model.layers[2].in_features == math.prod(activity[1])
    assert model.block_ends == (1, 2, 4) and model.heads[-1] is None
    for head, shape in zip(model.heads[:2], activity):
        assert head.in_features == math.prod(shape) and head.out_features == 10
    with pytest.raises(ValueError, match=r"at least 10×10, got \(9, 9, 1\)"):
        fdfa_cnn_reference((9, 9, 1), 10, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=r"fdfa_cnn_reference needs an image input_shape"):
        fdfa_cnn_reference((784,), 10, key=jax.random.PRNGKey(0))


def test_fdfa_cnn_reference_running_statistics_of_its_dense_batch_norm():
    # The 128-unit layer's running statistics follow its own linear output (BatchNorm1d).
    model = fdfa_cnn_reference((12, 12, 1), 10, key=jax.random.PRNGKey(1))
    x = jnp.asarray(np.random.default_rng(0).standard_normal((6, 12, 12, 1)), jnp.float32)
    trace = model(x)
    hidden = np.asarray(trace.inputs[2], np.float64).reshape(6, -1)
    linear = hidden @ np.asarray(model.layers[2].weight) + np.asarray(model.layers[2].bias)
    stats = model.updated_batch_stats(x)[2]
    np.testing.assert_allclose(stats.mean, 0.1 * linear.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(stats.var, 0.9 + 0.1 * linear.var(0, ddof=1), rtol=1e-4)


def test_registered_by_name():
    assert MODELS["fdfa_fc"] is fdfa_fc and MODELS["fdfa_cnn"] is fdfa_cnn
    assert MODELS["fdfa_cnn_reference"] is fdfa_cnn_reference
    model = eqx.filter_eval_shape(make_model, "fdfa_cnn", CIFAR10, 10, key=jax.random.PRNGKey(0))
    x = jax.ShapeDtypeStruct((1,) + CIFAR10, jnp.float32)
    assert jax.eval_shape(lambda m, x: m(x).logits, model, x).shape == (1, 10)


@pytest.fixture(scope="module")
def cnn_problem():
    rng = np.random.default_rng(3)
    model = fdfa_cnn(MNIST, 10, key=jax.random.PRNGKey(3))
    x = jnp.asarray(rng.standard_normal((4,) + MNIST), jnp.float32)
    y = jnp.asarray(rng.integers(0, 10, 4))
    return model, (x, y)


@pytest.fixture(scope="module")
def estimate(cnn_problem):
    """Each estimator's ``(grads, state, diagnostics)`` on the CNN problem, computed once."""
    model, batch = cnn_problem
    cache = {}

    def run(name):
        if name not in cache:
            estimator = make_estimator(name)
            state = estimator.init(model, key=jax.random.PRNGKey(0))
            cache[name] = estimator.estimate(model, batch, state, key=jax.random.PRNGKey(1))
        return cache[name]

    return run


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_every_estimator_runs_on_the_cnn(name, cnn_problem, estimate):
    model, _ = cnn_problem
    grads, _, diagnostics = estimate(name)
    params = eqx.filter(model, eqx.is_inexact_array)
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    for g, p in zip(jax.tree.leaves(grads), jax.tree.leaves(params)):
        assert g.shape == p.shape and g.dtype == jnp.float32
        assert np.all(np.isfinite(g))
    assert diagnostics["logits"].shape == (4, 10) and np.isfinite(diagnostics["loss"])
    for layer in grads.layers:
        assert float(jnp.abs(layer.weight).sum()) > 0


@pytest.mark.parametrize("name", ["lg-fg-a", "lg-fg-w"])
def test_local_heads_on_feature_maps_get_their_exact_gradient(name, estimate):
    """Greedy rules train the heads on the pooled conv maps exactly: as LG-BP does."""
    grads, reference = estimate(name)[0], estimate("lg-bp")[0]
    assert tree_allclose(grads.heads, reference.heads, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method", ["dfa", "dkp", "fdfa"])
def test_direct_feedback_into_the_cnn_feature_maps_has_their_shapes(method):
    # One design for DFA, DKP and FDFA: B_l maps the 10 outputs onto the whole pooled map of
    # layer l, [10, H, W, C]; the error reaches the pre-activation through the layer's pooling.
    from ctlearn.estimators import make_estimator

    model = eqx.filter_eval_shape(fdfa_cnn, MNIST, 10, key=jax.random.PRNGKey(0))
    state = jax.eval_shape(
        lambda m: make_estimator(method).init(m, key=jax.random.PRNGKey(0)), model
    )
    feedback = state if method == "dfa" else state[0]
    assert [b.shape for b in feedback] == [(10, 12, 12, 15), (10, 4, 4, 40), (10, 128)]
