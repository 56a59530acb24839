"""Angles between a gradient estimate and the true gradient, per layer and overall."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from ..nn import Network


def _flat(tree) -> jax.Array:
    leaves = jax.tree.leaves(eqx.filter(tree, eqx.is_inexact_array))
    if not leaves:
        return jnp.zeros((0,), jnp.float32)
    return jnp.concatenate([jnp.ravel(a) for a in leaves])


def angle_degrees(a, b) -> float:
    """The angle in degrees between two PyTrees of arrays seen as flat vectors (NaN when either
    is zero: a zero estimate has no direction)."""
    u, v = _flat(a), _flat(b)
    norms = float(jnp.linalg.norm(u) * jnp.linalg.norm(v))
    if norms == 0.0:
        return math.nan
    cosine = max(-1.0, min(1.0, float(jnp.dot(u, v)) / norms))
    return math.degrees(math.acos(cosine))


def gradient_angles(estimate: Network, reference: Network) -> dict[str, object]:
    """Angles (degrees) between an estimator's gradient and a reference (usually BP's) gradient:
    ``"layers"`` one per layer (weights and bias together), ``"total"`` over the layers.

    Below 90° the estimate is a descent direction for the reference objective.
    """
    layers = tuple(angle_degrees(e, r) for e, r in zip(estimate.layers, reference.layers))
    return {"layers": layers, "total": angle_degrees(estimate.layers, reference.layers)}
