"""Losses of a network's trace, and assembling per-layer gradients into a model-shaped PyTree.

Shared by every estimator so that the global and local objectives are defined in one place.
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from ..losses import get_loss
from ..nn import AbstractLayer, Network, ReplicatedHead, Trace


def head_loss(loss: str, head: AbstractLayer, logits: Array, y: Array) -> Array:
    """Per-example loss [batch] of a head's output: the named ``loss``, unless the head scores
    its outputs its own way (a contrastive ``ReplicatedHead``)."""
    if isinstance(head, ReplicatedHead):
        return head.example_loss(loss, logits, y)
    return get_loss(loss)(logits, y)


def block_losses(loss: str, model: Network, trace: Trace, y: Array) -> tuple[Array | None, ...]:
    """Every block's loss, per example [batch]: its local head's, or the network's for the last
    block; blocks without a head give ``None``. A ``ReplicatedHead`` gives its replicas
    [batch, patches, groups] instead; their sum over replicas has the example's gradient."""
    fn = get_loss(loss)
    out = []
    for head, features, logits in zip(model.heads[:-1], trace.outputs, trace.head_logits):
        if head is None:
            out.append(None)
        elif isinstance(head, ReplicatedHead):
            out.append(head.replicated_losses(loss, features, y))
        else:
            out.append(fn(logits, y))
    return tuple(out) + (fn(trace.logits, y),)


def per_example(ell: Array) -> Array:
    """A block loss summed over its replicas: [batch]."""
    return ell.reshape(ell.shape[0], -1).sum(axis=1)


def local_objective(loss: str, model: Network, trace: Trace, y: Array) -> Array:
    """Sum over blocks of the batch-mean local losses (the L-BP / LG-BP objective)."""
    return sum(
        jnp.mean(per_example(ell)) for ell in block_losses(loss, model, trace, y) if ell is not None
    )


def require_heads(model: Network, method: str) -> None:
    """Local methods train each non-final block by its head's loss: fail early if one is missing."""
    missing = [b for b, h in enumerate(model.heads[:-1]) if h is None]
    if missing:
        raise ValueError(
            f"method {method!r} trains each block by its local head's loss, but block(s) "
            f"{missing} of this model have no local head; build the model with local_heads=True"
        )


def zeros_like_params(model: Network) -> Network:
    return jax.tree.map(jnp.zeros_like, eqx.filter(model, eqx.is_inexact_array))


def assemble(
    model: Network,
    layer_grads: Sequence[AbstractLayer],
    head_grads: Sequence[AbstractLayer | None] | None = None,
) -> Network:
    """A model-shaped gradient PyTree from per-layer (and per-head) gradients; zeros elsewhere."""
    grads = zeros_like_params(model)
    grads = eqx.tree_at(
        lambda g: g.layers, grads, tuple(eqx.filter(g, eqx.is_inexact_array) for g in layer_grads)
    )
    if head_grads is not None:
        heads = tuple(
            z if h is None else eqx.filter(h, eqx.is_inexact_array)
            for z, h in zip(grads.heads, head_grads)
        )
        grads = eqx.tree_at(lambda g: g.heads, grads, heads, is_leaf=lambda x: x is None)
    return grads


def exact_head_grads(
    loss: str, model: Network, trace: Trace, y: Array
) -> tuple[AbstractLayer | None, ...]:
    """Each local head's exact gradient of its batch-mean loss: a linear readout's own, local
    gradient (what both papers use for heads), from the head input and the error at its output."""
    grads = []
    for head, features, logits in zip(model.heads, trace.outputs, trace.head_logits):
        if head is None:
            grads.append(None)
            continue
        error = jax.grad(lambda z, head=head: jnp.mean(head_loss(loss, head, z, y)))(logits)
        grads.append(head.local_grad(jax.lax.stop_gradient(features), error))
    return tuple(grads)
