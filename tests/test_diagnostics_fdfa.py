"""Library diagnostics of the FDFA paper's figures, each checked against an independent hand
formula or ``jax.grad``: FDFA's feedback fixed point, the first layer's conditional variance and
its predictions, noisy BP, and the compiled ν and per-layer angles. All inputs are synthetic
(Gaussian, fixed seeds)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctlearn.diagnostics import (
    converged_feedback,
    first_layer_variance_terms,
    layer_angles,
    normalised_variance_of,
    predicted_relative_variance,
    relative_variance,
)
from ctlearn.estimators import NoisyBP, make_estimator
from ctlearn.nn import relu
from models import fdfa_fc


def _net(depth, n0=6, width=5, classes=3, seed=0):
    return fdfa_fc(
        (n0,), classes, depth=depth, width=width, local_heads=False, key=jax.random.key(seed)
    )


def _data(n, n0=6, classes=3, seed=1):
    kx, ky = jax.random.split(jax.random.key(seed))
    return jax.random.normal(kx, (n, n0)), jax.random.randint(ky, (n,), 0, classes)


def test_converged_feedback_is_the_mean_jacobian_written_by_hand():
    x, _ = _data(16)
    two = _net(2)
    (b1,) = converged_feedback(two, x)
    np.testing.assert_allclose(b1, two.layers[1].weight.T, rtol=0, atol=1e-6)  # linear output
    three = _net(3)
    b1, b2 = converged_feedback(three, x)
    w1, w2, w3 = (layer.weight for layer in three.layers)
    z2 = relu(x @ w1 + three.layers[0].bias) @ w2 + three.layers[1].bias
    # ctlearn's ReLU has slope 1 at 0 (an example whose first layer is all off has z² = 0 here).
    mask = (z2 >= 0).astype(jnp.float32)  # [batch, n2]
    expected = jnp.mean(jnp.einsum("jo,bj,ij->boi", w3, mask, w2), axis=0)
    np.testing.assert_allclose(b2, w3.T, rtol=0, atol=1e-6)
    np.testing.assert_allclose(b1, expected, rtol=0, atol=1e-5)


def _by_hand(model, xi, yi):
    """∇ of every weight and bias, and ∂L/∂y¹, from a loss written on the raw arrays."""
    (w1, b1), (w2, b2) = [(layer.weight, layer.bias) for layer in model.layers]

    def loss(params, y1_shift):
        w1, b1, w2, b2 = params
        y1 = relu(xi @ w1 + b1) + y1_shift
        logits = y1 @ w2 + b2
        return -jax.nn.log_softmax(logits)[yi]

    params = (w1, b1, w2, b2)
    grads = jax.grad(loss)(params, jnp.zeros_like(b1))
    a = jax.grad(loss, argnums=1)(params, jnp.zeros_like(b1))
    return grads, a, int(jnp.sum(xi @ w1 + b1 >= 0))


def test_first_layer_variance_of_fg_w_matches_gaussian_moments_and_its_terms_match_jax_grad():
    model = _net(2)
    x, y = _data(2)
    fg_w = make_estimator("fg-w")
    (terms,) = first_layer_variance_terms(
        [fg_w], model, x, y, draws=16384, chunk=1024, key=jax.random.key(2)
    )
    for i in range(2):
        grads, a, n_active = _by_hand(model, x[i], y[i])
        first = jnp.concatenate([grads[0].ravel(), grads[1].ravel()])
        total = sum(float(jnp.sum(g**2)) for g in grads)
        # g = (∇·v) v with v ~ N(0, I) over every parameter: Var g_i = ‖∇‖² + ∇_i². The
        # estimate's error is dominated by (∇·v)² ~ ‖∇‖² χ²₁: relative sd √(2/16384) ≈ 1.1 %,
        # so 6 % is over 5 sd (a 3 % scale error in g would move it by 6 %).
        expected_var = total + float(jnp.mean(first**2))
        assert abs(terms["var"][i] / expected_var - 1) < 0.06, (terms["var"][i], expected_var)
        np.testing.assert_allclose(terms["sq"][i], jnp.mean(first**2), rtol=1e-5)
        np.testing.assert_allclose(terms["a2"][i], jnp.sum(a**2), rtol=1e-5)
        np.testing.assert_allclose(terms["x2"][i], jnp.sum(x[i] ** 2) + 1, rtol=1e-6)
        assert terms["n_active"][i] == n_active
    assert terms["params"] == 6 * 5 + 5
    assert relative_variance(terms) == pytest.approx(np.sum(terms["var"]) / np.sum(terms["sq"]))


def test_predicted_relative_variances_by_hand():
    terms = dict(sq=np.array([1.0, 3.0]), n_active=np.array([2.0, 4.0]), a2=np.array([0.5, 1.0]))
    terms.update(x2=np.array([2.0, 4.0]), params=8.0)
    assert predicted_relative_variance("fg-w", terms) == 9.0
    assert predicted_relative_variance("fg-a", terms) == pytest.approx((1 * 3 + 3 * 5) / 4)
    extra = (2 * 0.5 * 2 / 8) + (4 * 1.0 * 4 / 8)  # n_active ‖a‖² ‖x‖² / P per example
    assert predicted_relative_variance("fdfa", terms, alpha=0.5) == pytest.approx(
        0.25 * (4 + extra) / 4
    )
    with pytest.raises(ValueError, match="no prediction for method 'dfa'; valid: fg-w"):
        predicted_relative_variance("dfa", terms)
    with pytest.raises(ValueError, match="multiple of chunk"):
        first_layer_variance_terms(
            [make_estimator("fg-a")], _net(2), *_data(1), draws=10, chunk=4, key=jax.random.key(0)
        )


def test_noisy_bp_has_the_normalised_variance_it_is_built_with_and_is_bp_at_zero():
    model = _net(3)
    x, y = _data(32)
    key = jax.random.key(3)
    bp = make_estimator("bp").estimate(model, (x, y), None, key=key)[0]
    same = NoisyBP(ratio=0.0).estimate(model, (x, y), None, key=key)[0]
    assert all(jnp.array_equal(a, b) for a, b in zip(jax.tree.leaves(bp), jax.tree.leaves(same)))
    for ratio in (0.1, 3.0):
        nu = normalised_variance_of(
            NoisyBP(ratio=jnp.float32(ratio)), model, None, x, y, key, 256, True
        )
        # 256 draws of isotropic noise in 83 dimensions: the measured noise power has relative
        # sd √(2/(256·83)) ≈ 1 %, so ν/(1 − ν) is within 5 % (5 sd) of the ratio.
        assert abs(float(nu) / (1 - float(nu)) / ratio - 1) < 0.05, (ratio, nu)
        sampled = normalised_variance_of(
            NoisyBP(ratio=jnp.float32(ratio)), model, None, x, y, key, 256, False
        )
        assert abs(float(sampled) - float(nu)) < 0.05
    with pytest.raises(ValueError, match="ratio .* must be >= 0, got -1"):
        NoisyBP(ratio=-1.0)


def test_layer_angles_are_zero_for_bp_and_open_with_noise():
    model = _net(3)
    x, y = _data(32)
    key = jax.random.key(4)
    exact = layer_angles(make_estimator("bp"), model, None, x, y, key, 2)
    assert exact.shape == (4,) and float(jnp.max(exact)) < 0.1
    noisy = layer_angles(NoisyBP(ratio=jnp.float32(100.0)), model, None, x, y, key, 1)
    # One draw with 100× the gradient's power in noise: cos ≈ 1/√101 overall, about 84°.
    assert 75 < float(noisy[-1]) < 90
