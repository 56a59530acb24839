"""Replicated local losses: one copy of a head's loss per example, patch and group.

Features ``x`` have shape [N, P, G, C] (batch, patches, groups, channels per group). A head loss
``fn(xbar, params, y) -> [N]`` reads ``xbar = x.mean(1).reshape(N, G * C)`` (group-major), head
parameters ``params`` (any PyTree) and targets ``y`` (not differentiated). Contract: loss n depends
on ``xbar[m]`` for m != n only through ``stop_gradient`` (true for per-example losses and for
InfoNCE with stop-gradient keys).

The replicated loss L has shape [N, P, G]. Every replica L[n, p, g] has the value of loss n; its
derivative reaches only ``x[n, p, g]``, where it equals that of loss n, and its derivative with
respect to ``params`` is that of loss n divided by P * G. Summing the replicas of one example thus
gives exactly the gradient of its loss, for the backbone features and for the head (Appendix 12 of
"Scaling Forward Gradient with Local Losses", with the head no longer P * G times too large).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PyTree

HeadLoss = Callable[[Float[Array, "batch features"], PyTree, Any], Float[Array, " batch"]]


def linear_head_loss(loss_fn: Callable[[Array, Any], Array]) -> HeadLoss:
    """The head loss ``fn(xbar, (W, b), y) = loss_fn(xbar @ W + b, y)``, per example [N].

    ``loss_fn(outputs, targets) -> [N]`` is a per-example loss, e.g. ``get_loss("cross_entropy")``.
    """

    def fn(xbar: Float[Array, "batch features"], params: tuple[Array, Array], y: Any) -> Array:
        w, b = params
        return loss_fn(xbar @ w + b, y)

    return fn


def naive_replicated_loss(
    fn: HeadLoss,
    x: Float[Array, "batch patches groups channels"],
    params: PyTree,
    y: Any,
) -> Float[Array, "batch patches groups"]:
    """The replicated loss of ``replicated_loss``, built with stop-gradient masks instead.

    Ground truth for ``replicated_loss``: it materialises one masked copy of ``xbar`` per replica,
    O(N * P * G * G * C) memory, and scales the head's derivative by 1 / (P * G) per replica.
    """
    n, p, g, c = _check_features(x)
    xbar = jax.lax.stop_gradient(x.mean(1))
    # Value zero; derivative 1/P with respect to x[n, p, g] only.
    live = x / p - jax.lax.stop_gradient(x / p)
    mask = jnp.eye(g, dtype=x.dtype)[None, None, :, :, None]
    # [N, P, G (replica), G (slot), C]: replica g's own slot g carries its patch's live part.
    xbar_rep = xbar[:, None, None] + mask * live[:, :, :, None, :]
    xbar_rep = xbar_rep.reshape(n, p * g, g * c).transpose(1, 0, 2)

    def share(a: Any) -> Any:  # value a, derivative 1 / (P * G)
        if not eqx.is_inexact_array(a):
            return a
        return a / (p * g) + jax.lax.stop_gradient(a - a / (p * g))

    params_rep = jax.tree.map(share, params)
    losses = jax.vmap(lambda xb: _head(fn, xb, params_rep, y))(xbar_rep)  # [P * G, N]
    return losses.T.reshape(n, p, g)


def replicated_loss(
    fn: HeadLoss,
    x: Float[Array, "batch patches groups channels"],
    params: PyTree,
    y: Any,
) -> Float[Array, "batch patches groups"]:
    """The replicated loss [N, P, G] of head loss ``fn``, computed once, with a fused JVP rule.

    ``fn(xbar, params, y) -> [N]`` reads ``xbar = x.mean(1).reshape(N, G * C)``; loss n may depend
    on ``xbar[m]``, m != n, only through ``stop_gradient``. Replica [n, p, g] has the value of loss
    n; its derivative reaches only ``x[n, p, g]`` (where it is that of loss n) and ``params`` (that
    of loss n over P * G), so the replicas of an example sum to the gradient of its loss.

    Memory stays O(N * P * G * C). The JVP rule is linear in the tangents and ``jax.grad``
    transposes it, so forward and reverse mode both hold for any cotangent on the output. ``y`` gets
    no derivative; leaves of ``params`` and ``y`` that are not arrays are held fixed.
    """
    _check_features(x)
    params_dyn, params_static = eqx.partition(params, eqx.is_array)
    y_dyn, y_static = eqx.partition(y, eqx.is_array)

    def head(xbar: Array, p: PyTree, t: Any) -> Array:
        return fn(xbar, eqx.combine(p, params_static), eqx.combine(t, y_static))

    return _fused(head, x, params_dyn, y_dyn)


@partial(jax.custom_jvp, nondiff_argnums=(0,))
def _fused(fn: HeadLoss, x: Array, params: PyTree, y: Any) -> Array:
    n, p, g, _ = x.shape
    loss = _head(fn, x.mean(1).reshape(n, -1), params, y)
    return jnp.broadcast_to(loss[:, None, None], (n, p, g))


@_fused.defjvp
def _fused_jvp(fn: HeadLoss, primals: tuple, tangents: tuple) -> tuple[Array, Array]:
    x, params, y = primals
    x_dot, params_dot, _ = tangents
    n, p, g, c = x.shape
    xbar = x.mean(1).reshape(n, -1)
    loss, pullback = jax.vjp(lambda xb: _head(fn, xb, params, y), xbar)
    # Row n is d loss_n / d xbar_n: by fn's contract no other loss reaches xbar_n.
    (j,) = pullback(jnp.ones_like(loss))
    _, loss_dot_params = jax.jvp(lambda q: _head(fn, xbar, q, y), (params,), (params_dot,))
    # tangent[n,p,g] = <x_dot[n,p,g], j[n,g]> / P + <d loss_n / d params, params_dot> / (P G):
    # linear in the tangents, so JAX transposes it for reverse mode.
    loss_dot = jnp.einsum("npgc,ngc->npg", x_dot, j.reshape(n, g, c)) / p
    loss_dot = loss_dot + loss_dot_params[:, None, None] / (p * g)
    return jnp.broadcast_to(loss[:, None, None], (n, p, g)), loss_dot.astype(loss.dtype)


def _head(fn: HeadLoss, xbar: Array, params: PyTree, y: Any) -> Array:
    loss = fn(xbar, params, y)
    if jnp.shape(loss) != (xbar.shape[0],):
        raise ValueError(
            f"the head loss must return one value per example, shape ({xbar.shape[0]},); "
            f"got shape {jnp.shape(loss)}"
        )
    return loss


def _check_features(x: Array) -> tuple[int, int, int, int]:
    if jnp.ndim(x) != 4:
        raise ValueError(
            f"features must have shape [batch, patches, groups, channels]; got shape {jnp.shape(x)}"
        )
    if not jnp.issubdtype(jnp.result_type(x), jnp.floating):
        raise ValueError(f"features must be floating point; got dtype {jnp.result_type(x)}")
    return x.shape
