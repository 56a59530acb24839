"""Many draws of a stochastic estimator, for checking bias and variance."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from ..estimators import AbstractEstimator, Batch
from ..nn import Network


@eqx.filter_jit
def sample_estimates(
    estimator: AbstractEstimator,
    model: Network,
    batch: Batch,
    state: Any,
    *,
    num: int,
    key: PRNGKeyArray,
) -> Network:
    """``num`` independent gradient estimates for one batch, stacked on a leading axis."""
    keys = jax.random.split(key, num)
    grads = jax.vmap(lambda k: estimator.estimate(model, batch, state, key=k)[0])(keys)
    return grads


def tree_cosine(a, b) -> Array:
    """Cosine of the angle between two PyTrees of arrays, seen as flat vectors."""
    dot = sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    na = jnp.sqrt(sum(jnp.vdot(x, x) for x in jax.tree.leaves(a)))
    nb = jnp.sqrt(sum(jnp.vdot(y, y) for y in jax.tree.leaves(b)))
    return dot / (na * nb)
