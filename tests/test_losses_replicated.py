from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tree_allclose

from ctlearn.losses import (
    contrastive_head_loss,
    get_loss,
    info_nce,
    linear_head_loss,
    naive_replicated_loss,
    replicated_loss,
)

N, P, G, C, K = 4, 3, 2, 5, 6  # N even: InfoNCE stacks two views of N / 2 examples
TOL = dict(rtol=1e-4, atol=1e-5)  # float32, a few reductions deep

HEADS = {
    "cross_entropy": (linear_head_loss(get_loss("cross_entropy")), jnp.array([0, 3, 5, 3])),
    "mse": (linear_head_loss(get_loss("mse")), jnp.linspace(-1.0, 1.0, N * K).reshape(N, K)),
    "info_nce": (contrastive_head_loss(temperature=0.5), None),
}


def _problem(seed: int):
    """Features [N, P, G, C] and linear-head parameters (W, b), float32, from a fixed seed."""
    rng = np.random.default_rng(seed)
    normal = lambda *shape: jnp.asarray(rng.standard_normal(shape), jnp.float32)
    return normal(N, P, G, C), (normal(G * C, K) / np.sqrt(G * C), 0.1 * normal(K))


def _xbar(x):
    return x.mean(1).reshape(x.shape[0], -1)


@pytest.mark.parametrize("head", HEADS)
def test_value_is_the_head_loss_replicated(head):
    fn, y = HEADS[head]
    x, params = _problem(0)
    fused = replicated_loss(fn, x, params, y)  # eager, once; everything else runs under jit
    expected = jnp.broadcast_to(fn(_xbar(x), params, y)[:, None, None], (N, P, G))
    assert fused.shape == (N, P, G)
    np.testing.assert_allclose(fused, expected, rtol=1e-6, atol=1e-6)
    naive = jax.jit(naive_replicated_loss, static_argnums=0)(fn, x, params, y)
    np.testing.assert_allclose(naive, fused, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("head", HEADS)
def test_jvp_matches_naive(head):
    fn, y = HEADS[head]
    x, params = _problem(1)
    x_dot, params_dot = _problem(2)

    @jax.jit
    def jvps(x, params, x_dot, params_dot):
        return [
            jax.jvp(partial(f, fn, y=y), (x, params), (x_dot, params_dot))
            for f in (replicated_loss, naive_replicated_loss)
        ]

    (value, tangent), (value_naive, tangent_naive) = jvps(x, params, x_dot, params_dot)
    assert tangent.shape == (N, P, G)
    np.testing.assert_allclose(value, value_naive, **TOL)
    np.testing.assert_allclose(tangent, tangent_naive, **TOL)


@pytest.mark.parametrize("head", HEADS)
def test_grad_matches_naive_for_any_cotangent(head):
    fn, y = HEADS[head]
    x, params = _problem(3)
    c = jnp.asarray(np.random.default_rng(4).standard_normal((N, P, G)), jnp.float32)  # per replica

    @partial(jax.jit, static_argnums=0)
    def grad(f, x, params):
        return jax.grad(lambda x, p: jnp.sum(c * f(fn, x, p, y)), argnums=(0, 1))(x, params)

    assert tree_allclose(
        grad(replicated_loss, x, params), grad(naive_replicated_loss, x, params), **TOL
    )


@pytest.mark.parametrize("head", HEADS)
def test_replicas_sum_to_the_gradient_of_the_mean_loss(head):
    fn, y = HEADS[head]
    x, params = _problem(5)

    @jax.jit
    def grads(x, params):
        losses = {
            "fused": lambda x, p: jnp.sum(replicated_loss(fn, x, p, y)) / N,
            "naive": lambda x, p: jnp.sum(naive_replicated_loss(fn, x, p, y)) / N,
            "direct": lambda x, p: jnp.mean(fn(_xbar(x), p, y)),
        }
        return {k: jax.grad(f, argnums=(0, 1))(x, params) for k, f in losses.items()}

    out = grads(x, params)
    assert tree_allclose(out["fused"], out["direct"], **TOL)
    assert tree_allclose(out["naive"], out["direct"], **TOL)


def test_replica_reaches_only_its_own_features():
    fn, y = HEADS["cross_entropy"]
    x, params = _problem(6)
    loss = partial(replicated_loss, fn, params=params, y=y)
    jac, jac_fwd, direct = jax.jit(
        lambda x: (
            jax.jacrev(loss)(x),  # [N,P,G, N,P,G,C]
            jax.jacfwd(loss)(x),
            jax.grad(lambda x: jnp.sum(fn(_xbar(x), params, y)))(x),
        )
    )(x)
    own = jnp.eye(N * P * G).reshape(N, P, G, N, P, G)[..., None]
    assert jnp.all(jnp.where(own == 0, jac, 0.0) == 0.0)
    # The replica's own block is d loss_n / d x[n, p, g].
    np.testing.assert_allclose(jnp.einsum("npgnpgc->npgc", jac), direct, **TOL)
    np.testing.assert_allclose(jac_fwd, jac, **TOL)


def test_info_nce_hand_computed():
    # Views (0, 2) and (1, 3) coincide; rows 0 and 1 are orthogonal. Each anchor sees its positive
    # at cosine 1 and two keys at cosine 0: loss = log(2 + e^(1/t)) - 1/t.
    z = 3.0 * jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    loss = jax.jit(info_nce, static_argnames="temperature")
    for t in (0.5, 1.0):
        expected = np.log(2.0 + np.exp(1.0 / t)) - 1.0 / t
        np.testing.assert_allclose(loss(z, temperature=t), np.full(4, expected), rtol=1e-6)
    # One example, two views: the positive is the only key.
    np.testing.assert_allclose(loss(jnp.array([[1.0, 2.0], [3.0, -1.0]])), 0.0, atol=1e-6)


def test_info_nce_keys_get_no_gradient():
    z = jnp.asarray(np.random.default_rng(7).standard_normal((N, 3)), jnp.float32)
    jac = jax.jit(jax.jacrev(info_nce))(z)  # [anchor, row, dim]
    others = ~jnp.eye(N, dtype=bool)[:, :, None]
    assert jnp.all(jnp.where(others, jac, 0.0) == 0.0)
    assert jnp.all(jnp.abs(jac[jnp.arange(N), jnp.arange(N)]).sum(-1) > 0)
    # Through the head: d loss_n / d xbar_m = 0 for m != n (the contract replicated_loss needs).
    fn, _ = HEADS["info_nce"]
    x, params = _problem(8)
    jac = jax.jit(jax.jacrev(lambda xbar: fn(xbar, params, None)))(_xbar(x))
    assert jnp.all(jnp.where(others, jac, 0.0) == 0.0)


def test_info_nce_odd_batch_raises():
    with pytest.raises(ValueError, match="N even"):
        jax.eval_shape(info_nce, jnp.ones((3, 2)))
    fn, _ = HEADS["info_nce"]
    _, params = _problem(9)
    with pytest.raises(ValueError, match="N even"):
        jax.eval_shape(partial(replicated_loss, fn), jnp.ones((3, P, G, C)), params, None)


def test_invalid_inputs_raise():
    fn, y = HEADS["cross_entropy"]
    _, params = _problem(10)
    summed = lambda xbar, p, y: jnp.sum(fn(xbar, p, y))
    for f in (replicated_loss, naive_replicated_loss):
        with pytest.raises(ValueError, match=r"\[batch, patches, groups, channels\]"):
            jax.eval_shape(partial(f, fn), jnp.ones((N, P, G * C)), params, y)
        with pytest.raises(ValueError, match="floating point"):
            jax.eval_shape(partial(f, fn), jnp.ones((N, P, G, C), jnp.int32), params, y)
        with pytest.raises(ValueError, match="one value per example"):
            jax.eval_shape(partial(f, summed), jnp.ones((N, P, G, C)), params, y)


def test_params_may_hold_non_array_leaves():
    x, (w, b) = _problem(11)
    y = HEADS["cross_entropy"][1]
    fn = lambda xbar, p, y: get_loss("cross_entropy")(p["act"](xbar @ p["w"] + p["b"]), y)
    params = {"w": w, "b": b, "act": jnp.tanh}

    def grad(f):
        return eqx.filter_jit(eqx.filter_grad(lambda p: jnp.sum(f(fn, x, p, y))))(params)

    assert tree_allclose(grad(replicated_loss), grad(naive_replicated_loss), **TOL)


def test_jit_and_vmap():
    fn, y = HEADS["cross_entropy"]
    x, params = _problem(12)
    x_dot, params_dot = _problem(13)
    loss_and_grad = lambda f, x, p: jax.value_and_grad(lambda x, p: jnp.mean(f(fn, x, p, y)))(x, p)
    expected = jax.jit(loss_and_grad, static_argnums=0)(naive_replicated_loss, x, params)
    assert tree_allclose(eqx.filter_jit(loss_and_grad)(naive_replicated_loss, x, params), expected)
    for jit in (partial(jax.jit, static_argnums=0), eqx.filter_jit):
        assert tree_allclose(jit(loss_and_grad)(replicated_loss, x, params), expected, **TOL)
    # Several tangents at once (as for several forward-gradient samples), and a leading batch axis.
    jvp = jax.jit(lambda xd, pd: jax.jvp(partial(replicated_loss, fn, y=y), (x, params), (xd, pd)))
    params_dots = jax.tree.map(lambda a: jnp.stack([a, 2 * a]), params_dot)
    _, stacked = jax.jit(jax.vmap(jvp))(jnp.stack([x_dot, -x_dot]), params_dots)
    np.testing.assert_allclose(stacked[0], jvp(x_dot, params_dot)[1], **TOL)
    np.testing.assert_allclose(
        stacked[1], jvp(-x_dot, jax.tree.map(lambda a: 2 * a, params_dot))[1], **TOL
    )
    loss = jax.jit(lambda x: replicated_loss(fn, x, params, y))
    batched = jax.jit(jax.vmap(loss))(jnp.stack([x, x_dot]))
    np.testing.assert_allclose(batched[1], loss(x_dot), **TOL)


def test_fused_memory_does_not_replicate_features():
    n, p, g, c, k = 8, 16, 16, 8, 4  # naive copies: G = 16 times the features
    x = jnp.zeros((n, p, g, c))
    params = (jnp.zeros((g * c, k)), jnp.zeros(k))
    y = jnp.zeros(n, dtype=jnp.int32)
    fn = linear_head_loss(get_loss("cross_entropy"))

    def temp_bytes(f):
        grad = jax.grad(lambda x, q: jnp.mean(f(fn, x, q, y)), argnums=(0, 1))
        jvp = lambda x, q, t: jax.jvp(lambda x, q: f(fn, x, q, y), (x, q), t)
        stats = [
            jax.jit(grad).lower(x, params).compile().memory_analysis(),
            jax.jit(jvp).lower(x, params, (x, params)).compile().memory_analysis(),
        ]
        if any(s is None for s in stats):
            pytest.skip("this backend reports no memory analysis")
        return [s.temp_size_in_bytes for s in stats]

    assert all(t <= 2 * x.nbytes for t in temp_bytes(replicated_loss))
    assert all(t >= 8 * x.nbytes for t in temp_bytes(naive_replicated_loss))
