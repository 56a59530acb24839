"""Compiled diagnostics to call inside a training loop: normalised variance and per-layer angles
of a rule's estimate on one batch, from many draws."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..estimators import AbstractEstimator, make_estimator
from ..nn import Network
from ._angles import _flat
from ._sampling import sample_estimates, tree_cosine
from ._variance import stack_leaves


@eqx.filter_jit
def normalised_variance_of(
    estimator: AbstractEstimator,
    model: Network,
    state: Any,
    x: Float[Array, "batch ..."],
    y: Int[Array, " batch"],
    key: PRNGKeyArray,
    draws: int,
    unbiased: bool,
) -> Array:
    """ν = E‖g − E g‖²/E‖g‖² of ``estimator`` on the batch ``(x, y)`` from ``draws`` estimates
    (the normalisation of ``normalised_variance``). With ``unbiased`` the rule's expectation is
    taken to be BP's gradient ∇: the spread S = mean‖g − ∇‖² is measured about it and
    E‖g‖² = ‖∇‖² + S, which resolves ν close to 0 and close to 1 alike; otherwise both come from
    the samples (spread about their mean, with the K/(K−1) correction)."""
    samples = stack_leaves(sample_estimates(estimator, model, (x, y), state, num=draws, key=key))
    if unbiased:
        bp = make_estimator("bp", loss=estimator.loss)
        mean = _flat(bp.estimate(model, (x, y), None, key=key)[0])
        spread = jnp.sum(jnp.mean((samples - mean) ** 2, axis=0))
        return spread / (jnp.sum(mean**2) + spread)
    spread = jnp.sum(jnp.var(samples, axis=0, ddof=1))
    return spread / jnp.sum(jnp.mean(samples**2, axis=0))


@eqx.filter_jit
def layer_angles(
    estimator: AbstractEstimator,
    model: Network,
    state: Any,
    x: Float[Array, "batch ..."],
    y: Int[Array, " batch"],
    key: PRNGKeyArray,
    draws: int,
) -> Float[Array, " layers_plus_one"]:
    """Degrees between each layer's mean estimate (over ``draws``) and its BP gradient on the
    batch ``(x, y)``, then over all layers together (NaN where a gradient is zero)."""
    samples = sample_estimates(estimator, model, (x, y), state, num=draws, key=key)
    mean = jax.tree.map(lambda a: jnp.mean(a, axis=0), samples)
    reference = make_estimator("bp", loss=estimator.loss).estimate(model, (x, y), None, key=key)[0]
    pairs = list(zip(mean.layers, reference.layers)) + [(mean.layers, reference.layers)]
    cosines = jnp.stack(
        [
            tree_cosine(eqx.filter(m, eqx.is_inexact_array), eqx.filter(r, eqx.is_inexact_array))
            for m, r in pairs
        ]
    )
    return jnp.degrees(jnp.arccos(jnp.clip(cosines, -1.0, 1.0)))
