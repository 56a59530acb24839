"""Plasticity rules: what every synapse does with the signals it can see, in continuous time."""

from __future__ import annotations

import abc
import math
from typing import Any, ClassVar

import equinox as eqx
import jax
from jaxtyping import Array, PRNGKeyArray

from ..nn import Network, Trace

SITES = ("pre", "post", "weights", "none")


class Signals(eqx.Module):
    """What the circuit offers the rules at one instant.

    ``x`` and ``x_dot`` are the input and its rate of change; ``trace`` is the forward pass at the
    current state (perturbation included) and ``trace_dot``
    its rate of change (the forward-mode tangent: the (x, ẋ) pairs); ``losses[b]`` is block ``b``'s
    loss per example (or per replica) and ``loss_rates[b]`` its rate, so the reward rate is
    ``ṙ = −loss_rates``; ``p`` and ``p_dot`` are the perturbation and its injected rate.
    ``loss_changes[b]``: the change of block ``b``'s loss that the perturbation causes now,
    ``C̃ = L(w + p) − L(w)`` per example, measured only for rules that correlate it with the
    perturbation's value (``AbstractRule.reads_changes``; ``None`` otherwise).
    """

    x: Array
    x_dot: Array
    y: Array
    trace: Trace
    trace_dot: Trace
    losses: tuple[Array | None, ...]
    loss_rates: tuple[Array | None, ...]
    p: tuple[Array, ...]
    p_dot: tuple[Array, ...]
    loss_changes: tuple[Array | None, ...] | None = None


class AbstractRule(eqx.Module):
    """A learning rule: weight rates ``ẇ`` (shaped like the model's trainable arrays) and the rate
    of the rule's own state (learned feedback), from the instantaneous ``Signals``.

    ``site`` says where the rule's perturbation enters: at the layers' pre-activations ("pre"),
    added to the hidden layers' outputs ("post"), to the weights ("weights"), or nowhere ("none").
    ``greedy``: blocks are separated by a stop-gradient and each learns from its own local loss.
    ``lr`` is η, in 1 / time unit.
    """

    lr: eqx.AbstractVar[float]
    site: eqx.AbstractClassVar[str]
    greedy: eqx.AbstractClassVar[bool]
    reads_changes: ClassVar[bool] = False
    """Whether the rule reads the cost change ``Signals.loss_changes`` (value correlation, as
    in multiplexed gradient descent) besides the rates."""

    def __check_init__(self):
        require_rate("the learning rate lr (η)", self.lr)

    def init(self, model: Network, *, key: PRNGKeyArray) -> Any:
        """The rule's initial state (fixed or learned feedback; ``None`` when it has none)."""
        del model, key
        return None

    def full_rate(self, model: Network) -> float:
        """The fastest rate (1 / time unit) at which a part of ``model`` learns from a signal that
        does not scale with the perturbation's rate power c (local heads' exact gradients, direct
        feedback, learned feedback matrices), 0 for purely perturbative rules. Such parts move
        η/(η·c) times faster than the perturbed layers; the waveform engine keeps its windows
        short against this rate."""
        del model
        return 0.0

    def time_constants(self) -> dict[str, float]:
        """The rule's own time constants by name (for the fixed-step check); none by default."""
        return {}

    def perturbation_shapes(self, model: Network, x: Array) -> list[tuple[int, ...]]:
        """Shapes of the perturbation the rule needs, one array per perturbed quantity."""
        if self.site == "pre":
            return [s.shape for s in model.perturbation_shapes(x)]
        if self.site == "post":
            return [s.shape for s in model.activity_shapes(x)[:-1]]
        if self.site == "weights":
            return [a.shape for a in weight_leaves(model)]
        return []

    @abc.abstractmethod
    def discrete(self, model: Network, x: Array, y: Array, tangent, state: Any) -> tuple:
        """The discrete estimator this rule is the continuous form of, evaluated with the
        direction ``tangent`` (shaped like the perturbation): ``(grads, state gradient or
        None)``. At zero perturbation and rate ``tangent``, ``rates`` equals −η (and −α) times
        it (``instantaneous_agreement`` checks this)."""

    @abc.abstractmethod
    def scaled_gradient(
        self, model: Network, signals: Signals, state: Any, scale: float
    ) -> tuple[Network, Any]:
        """``(scale · g, state rate)`` at this instant: ``g`` the descent direction the rule
        estimates (ẇ = −η g), in the structure of ``eqx.filter(model, eqx.is_inexact_array)``,
        times ``scale`` applied wherever it costs least (on a signal before a contraction,
        rather than on every weight after it); and the rate of the rule's own state (learned
        feedback; zeros for fixed feedback; ``None`` when it has none)."""

    def rates(self, model: Network, signals: Signals, state: Any) -> tuple[Network, Any]:
        """``(ẇ, state rate)`` with ``ẇ = −η g``: the one place where η enters a weight rate."""
        return self.scaled_gradient(model, signals, state, -self.lr)


def require_rate(name: str, value: Any) -> None:
    """Refuse a rate (1 / time unit) that is negative, NaN or infinite: an infinite rate would
    integrate before diverging. Traced values (vmapped sweeps) are checked by their members."""
    try:
        v = float(value)
    except (TypeError, jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be finite and non-negative, got {value!r}")


def head_rate(rule: AbstractRule, model: Network) -> float:
    """``rule.lr`` where a greedy rule trains local heads by their exact gradient, else 0."""
    has_heads = any(h is not None for h in getattr(model, "heads", ()))
    return rule.lr if rule.greedy and has_heads else 0.0


def weight_leaves(model: Network) -> list[Array]:
    """The layers' trainable arrays, in a fixed order (weight perturbation's sites)."""
    return jax.tree.leaves(eqx.filter(model.layers, eqx.is_inexact_array))


def perturb_weights(model: Network, p) -> Network:
    """``model`` with ``p`` (arrays in the order of ``weight_leaves``) added to its layers'
    trainable arrays."""
    params, static = eqx.partition(model.layers, eqx.is_inexact_array)
    leaves, treedef = jax.tree.flatten(params)
    moved = jax.tree.unflatten(treedef, [w + dw for w, dw in zip(leaves, p)])
    return eqx.tree_at(lambda m: m.layers, model, eqx.combine(moved, static))
