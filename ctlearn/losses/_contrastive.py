"""SimCLR-style InfoNCE with stop-gradient keys (eq. 6 of "Scaling Forward Gradient with Local
Losses"), per anchor, usable as a replicated head loss."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._replicated import HeadLoss

# Logit of an anchor against itself: excluded from the softmax, finite so no NaN can appear.
_SELF_LOGIT = -1e9


def info_nce(z: Float[Array, "batch dim"], *, temperature: float = 0.5) -> Float[Array, " batch"]:
    """InfoNCE of every row of two stacked views of the same examples, per anchor [N].

    Rows [0, N/2) are view 1 and [N/2, N) view 2. With u the l2-normalised rows of ``z``
    (u = z / sqrt(max(|z|^2, 1e-12))) and keys k = stop_gradient(u), anchor n has logits
    u_n . k_m / temperature over every row m != n; its loss is the cross-entropy of its positive,
    the other view of the same example. Because the keys carry no gradient, loss n depends on row
    m != n only through stop_gradient.
    """
    n = z.shape[0]
    if z.ndim != 2 or n % 2:
        raise ValueError(
            f"info_nce needs two stacked views, shape [N, dim] with N even; got shape {z.shape}"
        )
    u = z * jax.lax.rsqrt(jnp.maximum(jnp.sum(z**2, axis=-1, keepdims=True), 1e-12))
    logits = u @ jax.lax.stop_gradient(u).T / temperature
    logits = jnp.where(jnp.eye(n, dtype=bool), _SELF_LOGIT, logits)
    positive = (jnp.arange(n) + n // 2) % n
    return jax.nn.logsumexp(logits, axis=-1) - logits[jnp.arange(n), positive]


def contrastive_head_loss(temperature: float = 0.5) -> HeadLoss:
    """The head loss ``fn(xbar, (W, b), y) = info_nce(xbar @ W + b)``, per anchor [N]; ignores y."""

    def fn(xbar: Float[Array, "batch features"], params: tuple[Array, Array], y: Any) -> Array:
        w, b = params
        return info_nce(xbar @ w + b, temperature=temperature)

    return fn
