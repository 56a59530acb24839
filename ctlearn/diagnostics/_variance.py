"""Variance of forward-gradient estimators: theory (Ren et al. Table 1) and measurement."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def gradient_statistics(per_example: Float[Array, "examples ..."]) -> tuple[Array, Array]:
    """``(V, S)`` of Table 1 from per-example exact gradients over a data distribution.

    V is the element-wise variance of the gradient across examples, S the element-wise squared mean
    gradient, both averaged over the elements (the trailing axes).
    """
    g = per_example.reshape(per_example.shape[0], -1)
    return jnp.mean(jnp.var(g, axis=0)), jnp.mean(jnp.mean(g, axis=0) ** 2)


def predicted_variance(
    V: Array, S: Array, *, batch_size: int, perturbed: int, shared: bool
) -> Array:
    """Element-wise average variance of a forward-gradient estimate with Gaussian directions.

    ``perturbed`` is the number of perturbed quantities each element's directional derivative sums
    over: p·q (the layer's weights) for weight perturbation, q (its units) for activity
    perturbation. Shared directions: (M+2)/N·V + (M+1)·S; independent: (M+2)/N·V + (M+1)/N·S.
    """
    n, m = batch_size, perturbed
    return (m + 2) / n * V + (m + 1) * S / (1 if shared else n)


def measured_variance(samples: Float[Array, "samples ..."]) -> Array:
    """Element-wise variance across samples (leading axis), averaged over elements."""
    flat = samples.reshape(samples.shape[0], -1)
    return jnp.mean(jnp.var(flat, axis=0))


def stack_leaves(tree) -> Array:
    """All array leaves of a PyTree batched on a leading axis, concatenated per sample."""
    leaves = jax.tree.leaves(tree)
    return jnp.concatenate([leaf.reshape(leaf.shape[0], -1) for leaf in leaves], axis=1)


def normalised_variance(samples) -> float:
    """``E‖g − E g‖² / E‖g‖²`` over the leading (sample) axis of a PyTree of stacked estimates:
    the estimator's variance normalised by its expected squared norm (FDFA paper, Figure 6), so
    rules of different scales compare. 0 for a deterministic rule, 1 for pure noise."""
    leaves = jax.tree.leaves(eqx.filter(samples, eqx.is_inexact_array))
    total_var = sum(float(jnp.sum(jnp.var(a, axis=0))) for a in leaves)
    mean_sq = sum(float(jnp.sum(jnp.mean(a.astype(jnp.float32) ** 2, axis=0))) for a in leaves)
    if mean_sq == 0.0:
        raise ValueError("normalised_variance: every sample is zero")
    return total_var / mean_sq
