"""Cross-checks of the continuous rules against the discrete estimators (Ren et al. 3.5)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from ..diagnostics import tree_cosine
from ..estimators import make_estimator
from ..nn import Network
from ._neurons import Instantaneous
from ._rule import AbstractRule
from ._simulate import Simulator, measure, prepare, run_presentations
from ._stream import Presentations


def _relative_error(a, b) -> Array:
    diff = sum(jnp.sum((u - v) ** 2) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    norm = sum(jnp.sum(v**2) for v in jax.tree.leaves(b))
    return jnp.sqrt(diff / norm)


def instantaneous_agreement(
    rule: AbstractRule,
    model: Network,
    x: Array,
    y: Array,
    tangent: Sequence[Array],
    state: Any = None,
    *,
    loss: str = "cross_entropy",
) -> dict[str, float]:
    """Compare the rule's instantaneous ``ẇ`` (unperturbed network, perturbation rate
    ``tangent``, input and weights still) with −η × its discrete estimator along ``tangent``.

    Returns the cosine and the relative error ‖ẇ + η g‖ / ‖η g‖ of the weight rates, and for rules
    with learned feedback the same for ``Ḃ`` against −α × the discrete feedback gradient."""
    tangent = tuple(tangent)
    zeros = tuple(jnp.zeros_like(t) for t in tangent)
    signals = measure(
        rule, Instantaneous(), loss, model, (x, jnp.zeros_like(x)), y, (zeros, tangent)
    )
    w_dot, state_dot = rule.rates(model, signals, state)
    grads, state_grads = rule.discrete(model, x, y, tangent, state)
    expected = jax.tree.map(lambda g: -rule.lr * g, eqx.filter(grads, eqx.is_inexact_array))
    w_dot = eqx.filter(w_dot, eqx.is_inexact_array)
    out = {
        "cosine": float(tree_cosine(w_dot, expected)),
        "relative_error": float(_relative_error(w_dot, expected)),
    }
    if state_grads is not None:
        alpha = rule.feedback_lr
        expected_state = jax.tree.map(lambda g: -alpha * g, state_grads)
        out["state_cosine"] = float(tree_cosine(state_dot, expected_state))
        out["state_relative_error"] = float(_relative_error(state_dot, expected_state))
    return out


@dataclasses.dataclass(frozen=True)
class AlignmentPoint:
    """One presentation length: ``duration`` T, ``ratio`` T / τ_p, ``cosine`` between the
    accumulated Δw and −∇L, and ``scale`` = ‖Δw‖ / (η c T ‖∇L‖) (1 when it is −η c T ∇L)."""

    duration: float
    ratio: float
    cosine: float
    scale: float


def integrated_alignment(
    simulator: Simulator,
    model: Network,
    x: Array,
    y: Array,
    durations: Sequence[float],
    *,
    key: PRNGKeyArray,
) -> list[AlignmentPoint]:
    """With the batch ``(x, y)`` held and the weights frozen, the weight change Δw = ∫ẇ dt
    accumulated over one presentation of each length T in ``durations``, against the exact
    gradient flow −η c T ∇L (c: the perturbation's rate power). As T / τ_p grows the time average
    covers more independent directions and the cosine tends to 1 (the cosine-vs-T curve)."""
    frozen = dataclasses.replace(simulator, freeze=True)
    exact = make_estimator("bp", loss=simulator.loss).estimate(model, (x, y), None, key=None)[0]
    exact = eqx.filter(exact, eqx.is_inexact_array)
    exact_norm = jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(exact)))
    c = 1.0 if simulator.perturbation is None else float(simulator.perturbation.rate_power())
    points = []
    for duration in durations:
        stream = Presentations(x[None], y[None], duration=float(duration))
        bound, state = prepare(frozen, model, stream, key=key)
        state, (_, _, _, failed, _) = run_presentations(bound, state, stream, 0, 1, key)
        if bool(failed[0]):
            raise RuntimeError(f"the solve over duration {duration} failed")
        scale = -simulator.rule.lr * c * duration
        target = jax.tree.map(lambda g, s=scale: s * g, exact)
        delta = eqx.filter(state.delta, eqx.is_inexact_array)
        norm = jnp.sqrt(sum(jnp.sum(d**2) for d in jax.tree.leaves(delta)))
        tau = None if simulator.perturbation is None else float(simulator.perturbation.tau)
        points.append(
            AlignmentPoint(
                float(duration),
                float(duration / tau) if tau else float("inf"),
                float(tree_cosine(delta, target)),
                float(norm / (simulator.rule.lr * c * duration * exact_norm)),
            )
        )
    return points
