"""Conv2d and FlatDense: shapes, values, exact local gradients, argument checks."""

import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tree_allclose

from ctlearn.losses import get_loss
from ctlearn.nn import Conv2d, Dense, FlatDense, identity, relu
from models import fdfa_cnn, fdfa_cnn_reference


def _normal(seed: int, shape: tuple[int, ...]) -> jnp.ndarray:
    # NumPy draws: a jax.random draw compiles anew for every shape, which dominates these tests.
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


@pytest.mark.parametrize(
    "options, pre_shape, out_shape",
    [
        ({}, (2, 8, 7, 4), (2, 8, 7, 4)),
        ({"pool": 2}, (2, 8, 7, 4), (2, 4, 3, 4)),  # odd width 7: floored to 3
        ({"padding": 1}, (2, 10, 9, 4), (2, 10, 9, 4)),
        ({"padding": (1, 0), "pool": 3}, (2, 10, 7, 4), (2, 3, 2, 4)),
        ({"padding": "SAME", "pool": 2}, (2, 10, 9, 4), (2, 5, 4, 4)),
        ({"padding": "VALID", "stride": 2}, (2, 4, 4, 4), (2, 4, 4, 4)),
        ({"padding": 1, "stride": (2, 1)}, (2, 5, 9, 4), (2, 5, 9, 4)),
    ],
)
def test_conv_shapes(options, pre_shape, out_shape, getkey):
    layer = Conv2d(3, 4, 3, key=getkey(), **options)
    y, z = layer(_normal(0, (2, 10, 9, 3)))
    assert z.shape == pre_shape and y.shape == out_shape
    assert z.dtype == y.dtype == jnp.float32


def test_conv_values_match_a_direct_sum(getkey):
    """HWIO kernel, NHWC images, explicit padding, stride and the max-pool, against NumPy loops."""
    layer = Conv2d(2, 3, (3, 2), stride=(2, 1), padding=1, pool=2, init="torch", key=getkey())
    x = np.asarray(_normal(1, (2, 7, 6, 2)))
    w, b = np.asarray(layer.weight), np.asarray(layer.bias)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    rows, cols = (7 + 2 - 3) // 2 + 1, 6 + 2 - 2 + 1
    z = np.empty((2, rows, cols, 3), np.float32)
    for i in range(rows):
        for j in range(cols):
            patch = xp[:, 2 * i : 2 * i + 3, j : j + 2, :]
            z[:, i, j, :] = np.einsum("nhwc,hwco->no", patch, w) + b
    r = np.maximum(z, 0)[:, : rows // 2 * 2, : cols // 2 * 2]
    pooled = r.reshape(2, rows // 2, 2, cols // 2, 2, 3).max(axis=(2, 4))
    y, z_layer = layer(jnp.asarray(x))
    np.testing.assert_allclose(z_layer, z, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y, pooled, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "options",
    [{}, {"pool": 2, "padding": 2}, {"stride": 2, "padding": 1}, {"init": "torch", "pool": 3}],
)
def test_conv_local_grad_is_the_exact_parameter_gradient(options, getkey):
    layer = Conv2d(3, 4, 3, key=getkey(), **options)
    x = _normal(2, (2, 10, 9, 3))
    delta = _normal(3, layer.pre_activation(x).shape)
    expected = eqx.filter_grad(lambda m: jnp.sum(m.pre_activation(x) * delta))(layer)
    got = layer.local_grad(x, delta)
    assert jax.tree.structure(got) == jax.tree.structure(layer)
    assert tree_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("build", [fdfa_cnn, fdfa_cnn_reference])
def test_local_grads_of_the_exact_delta_are_backprop_on_fdfa_cnn(build, getkey):
    """With ``delta_l = ∂L/∂z_l`` (the gradient at a zero perturbation), every layer's local
    gradient is its backprop gradient: the property every estimator builds on. The reference
    CNN's batch norms are pulled through both from the recorded linear output and by
    recomputing it."""
    model = build((28, 28, 1), 10, key=getkey())
    x = _normal(4, (4, 28, 28, 1))
    y = jnp.arange(4) % 10
    loss = lambda m, p=None: jnp.mean(get_loss("cross_entropy")(m(x, p).logits, y))
    deltas = jax.grad(lambda p: loss(model, p))(model.zeros_perturbation(x))
    trace = model(x)
    backprop = eqx.filter_grad(loss)(model).layers
    for i, layer in enumerate(model.layers):
        for linear in (None, trace.linear[i]):
            got = eqx.filter(layer.local_grad(trace.inputs[i], deltas[i], linear), eqx.is_array)
            assert tree_allclose(got, backprop[i], rtol=1e-4, atol=1e-6), (i, linear is None)
            assert float(jnp.abs(got.weight).sum()) > 0
    has_norm = [getattr(layer, "norm", None) is not None for layer in model.layers]
    assert has_norm == ([True, True, True, False] if build is fdfa_cnn_reference else [False] * 4)


def test_flat_dense_is_dense_on_flattened_input(getkey):
    key = getkey()
    flat = FlatDense(4 * 3 * 2, 5, init="torch", key=key)
    dense = Dense(4 * 3 * 2, 5, init="torch", key=key)
    x = _normal(5, (6, 4, 3, 2))
    x2 = x.reshape(6, -1)
    delta = _normal(6, (6, 5))
    assert tree_allclose(flat(x), dense(x2), rtol=0, atol=0)
    assert tree_allclose(flat.local_grad(x, delta), dense.local_grad(x2, delta), rtol=0, atol=0)
    assert jax.tree.structure(flat.local_grad(x, delta)) == jax.tree.structure(flat)
    assert flat.weight.shape == (24, 5) and flat.bias.shape == (5,)
    with pytest.raises(ValueError, match=re.escape("(6, 4, 3, 3)")):
        flat(jnp.zeros((6, 4, 3, 3)))


def test_flat_dense_batch_norm_by_hand(getkey):
    """``batch_norm=True``: the dense output normalised per unit over the batch (BatchNorm1d),
    checked against NumPy; its local gradient against ``jax.grad`` of the pre-activation."""
    layer = FlatDense(12, 5, batch_norm=True, init="torch", key=getkey())
    x = _normal(7, (8, 3, 4))
    w, b = np.asarray(layer.weight, np.float64), np.asarray(layer.bias, np.float64)
    lin = np.asarray(x, np.float64).reshape(8, 12) @ w + b
    expected = (lin - lin.mean(0)) / np.sqrt(lin.var(0) + 1e-5)
    z, linear = layer.pre_activation_and_linear(x)
    np.testing.assert_allclose(np.asarray(z), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(linear), lin, rtol=1e-5, atol=1e-5)
    delta = _normal(8, (8, 5))
    params, static = eqx.partition(layer, eqx.is_inexact_array)
    by_grad = jax.grad(lambda p: jnp.sum(eqx.combine(p, static).pre_activation(x) * delta))(params)
    for recorded in (None, linear):
        got = eqx.filter(layer.local_grad(x, delta, recorded), eqx.is_inexact_array)
        assert tree_allclose(got, by_grad, rtol=1e-4, atol=1e-5)
    # Normalisation removes any shift common to the batch, so the bias gets no gradient.
    np.testing.assert_allclose(np.asarray(by_grad.dense.bias), 0.0, atol=1e-5)
    assert float(jnp.abs(by_grad.norm.scale).sum()) > 0


@pytest.mark.parametrize("activation, gain", [(relu, 2.0**0.5), (identity, 1.0)])
def test_conv_kaiming_uniform_init(activation, gain, getkey):
    layer = Conv2d(6, 32, 5, activation=activation, key=getkey())
    bound = gain * (3.0 / (5 * 5 * 6)) ** 0.5
    w = np.asarray(layer.weight)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert np.all(np.asarray(layer.bias) == 0)


@pytest.mark.parametrize(
    "args, options, message",
    [
        ((0, 4, 3), {}, "in_channels must be a positive integer, got 0"),
        ((3, -2, 3), {}, "out_channels must be a positive integer, got -2"),
        ((3, 4, 0), {}, "kernel_size must be an integer >= 1 or a pair of them, got 0"),
        (
            (3, 4, (3, 3, 3)),
            {},
            "kernel_size must be an integer >= 1 or a pair of them, got (3, 3, 3)",
        ),
        ((3, 4, 3), {"stride": 0}, "stride must be an integer >= 1 or a pair of them, got 0"),
        ((3, 4, 3), {"padding": -1}, "padding must be an integer >= 0 or a pair of them, got -1"),
        ((3, 4, 3), {"padding": "FULL"}, "unknown Conv2d padding 'FULL'; valid:"),
        ((3, 4, 3), {"padding": "SAME", "stride": 2}, "'SAME' needs stride 1, got stride=(2, 2)"),
        ((3, 4, 3), {"pool": 0}, "pool must be None, a positive integer or a (window, stride)"),
        ((3, 4, 3), {"init": "xavier"}, "unknown init 'xavier'; valid: kaiming_uniform, torch"),
    ],
)
def test_conv_rejects_bad_arguments(args, options, message, getkey):
    with pytest.raises(ValueError, match=re.escape(message)):
        Conv2d(*args, key=getkey(), **options)


def test_conv_rejects_images_of_the_wrong_layout(getkey):
    layer = Conv2d(3, 4, 3, key=getkey())
    with pytest.raises(ValueError, match=re.escape("(2, 3, 9, 9)")):
        layer(jnp.zeros((2, 3, 9, 9)))


def test_zero_initialised_relu_layers_are_active_at_zero(getkey):
    conv = Conv2d(3, 4, 3, pool=2, init="zeros", key=getkey())
    flat = FlatDense(12, 4, init="zeros", key=getkey())
    for layer, x in ((conv, jnp.ones((2, 6, 6, 3))), (flat, jnp.ones((2, 2, 2, 3)))):
        z = layer.pre_activation(x)
        assert np.all(np.asarray(z) == 0)
        active = np.asarray(layer.active(z))
        if layer is flat:
            assert np.all(active)
        else:  # max-pooling routes each 2x2 window to one unit: one active unit per window
            assert active.sum() == active.size // 4
