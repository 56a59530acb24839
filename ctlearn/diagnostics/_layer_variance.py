"""The conditional variance of a rule's first-layer estimate, one example at a time, beside the
exact predictions for Gaussian perturbations (the FDFA paper's Propositions 2, 5 and 6)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..estimators import AbstractEstimator, make_estimator
from ..losses import get_loss
from ..nn import Network
from ._angles import _flat


@eqx.filter_jit
def _variance_terms(estimators, model, states, x, y, keys, draws: int, chunk: int):
    loss = estimators[0].loss
    bp = make_estimator("bp", loss=loss)
    loss_fn = get_loss(loss)
    depth = len(model.layers)

    def one(args):
        xi, yi, key = args
        batch = (xi[None], yi[None])
        reference = _flat(bp.estimate(model, batch, None, key=key)[0].layers[0])

        def add_chunk(sums, chunk_key):
            def draw(k):
                estimates = [
                    est.estimate(model, batch, st, key=jax.random.fold_in(k, i))[0]
                    for i, (est, st) in enumerate(zip(estimators, states))
                ]
                return jnp.stack([_flat(g.layers[0]) for g in estimates])

            g = jax.vmap(draw)(jax.random.split(chunk_key, chunk)) - reference
            return (sums[0] + jnp.sum(g, 0), sums[1] + jnp.sum(g * g, 0)), None

        zeros = jnp.zeros((len(estimators),) + reference.shape, reference.dtype)
        (s1, s2), _ = jax.lax.scan(add_chunk, (zeros, zeros), jax.random.split(key, draws // chunk))
        variance = (s2 - s1 * s1 / draws) / (draws - 1)  # unbiased; shifted by the mean: exact

        # What the exact Gaussian predictions need: a = ∂L/∂y¹ and the active units.
        trace = model(batch[0])

        def batch_loss(post):
            out = model(batch[0], post=(post,) + (None,) * (depth - 1))
            return jnp.mean(loss_fn(out.logits, batch[1]))

        a = jax.grad(batch_loss)(jnp.zeros_like(trace.inputs[1]))
        return {
            "var": jnp.mean(variance, axis=1),
            "sq": jnp.mean(reference**2),
            "n_active": jnp.sum(model.layers[0].active(trace.pre[0])).astype(jnp.float32),
            "a2": jnp.sum(a**2),
            "x2": jnp.sum(trace.inputs[0] ** 2) + 1.0,  # the bias is an input of 1
        }

    return jax.lax.map(one, (x, y, keys))


def first_layer_variance_terms(
    estimators: Sequence[AbstractEstimator],
    model: Network,
    x: Float[Array, "examples ..."],
    y: Int[Array, " examples"],
    states: Sequence[Any] | None = None,
    *,
    draws: int,
    chunk: int,
    key: PRNGKeyArray,
) -> list[dict[str, np.ndarray | float]]:
    """For each of ``estimators`` (with its state from ``states``, default ``None``), per example
    of ``x`` taken alone: ``var``, the element mean of Var_v[g(W¹) | x] over ``draws``
    perturbations (unbiased; drawn ``chunk`` at a time, which must divide ``draws``); ``sq``,
    the element mean of the squared BP gradient of W¹ (weights and bias); ``n_active``, the
    active units of layer 1; ``a2`` = ‖∂L/∂y¹‖²; ``x2`` = ‖x‖² + 1; and ``params`` = P, the
    elements of W¹ and its bias. One compiled computation per network shape serves all the
    estimators."""
    if draws < 2 or chunk < 1 or draws % chunk:
        raise ValueError(
            f"draws ({draws}) must be at least 2 and a multiple of chunk ({chunk} >= 1)"
        )
    estimators = tuple(estimators)
    if not estimators:
        raise ValueError("first_layer_variance_terms needs at least one estimator")
    states = (None,) * len(estimators) if states is None else tuple(states)
    if len(states) != len(estimators):
        raise ValueError(f"{len(states)} states for {len(estimators)} estimators")
    keys = jax.random.split(key, x.shape[0])
    out = _variance_terms(estimators, model, states, x, y, keys, draws, chunk)
    shared = {k: np.asarray(v, np.float64) for k, v in out.items() if k != "var"}
    shared["params"] = float(_flat(model.layers[0]).size)
    var = np.asarray(out["var"], np.float64)
    return [{**shared, "var": var[:, i]} for i in range(len(estimators))]


def relative_variance(terms: dict) -> float:
    """E_x Var_v[g | x] in units of E_x (∂L/∂w)²: element means, averaged over the examples of
    ``first_layer_variance_terms``."""
    return float(np.sum(terms["var"]) / np.sum(terms["sq"]))


def predicted_relative_variance(method: str, terms: dict, alpha: float = 1.0) -> float:
    """The exact relative variance for Gaussian perturbations (Lemma 4, one example at a time):
    FG-W 1 + P (Prop. 5), FG-A 1 + n_active (Prop. 6), FDFA with converged feedback and an SGD
    feedback step α: α²(1 + n_active ‖a‖²/‖δ‖²) (Prop. 2), where a = ∂L/∂y¹ and δ = ∂L/∂z¹
    (a masked by the active units); ratios of sums over the examples of
    ``first_layer_variance_terms``."""
    sq, n = terms["sq"], terms["n_active"]
    if method == "fg-w":
        return 1.0 + terms["params"]
    if method == "fg-a":
        return float(np.sum(sq * (1.0 + n)) / np.sum(sq))
    if method == "fdfa":
        extra = n * terms["a2"] * terms["x2"] / terms["params"]
        return float(alpha**2 * np.sum(sq + extra) / np.sum(sq))
    raise ValueError(f"no prediction for method {method!r}; valid: fg-w, fg-a, fdfa")
