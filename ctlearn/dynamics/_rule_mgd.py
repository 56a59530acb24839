"""Multiplexed gradient descent's learning loop (McCaughan et al., APL Mach. Learn. 1, 026118,
2023) as a continuous rule: the cost change correlated with the perturbation's value and
integrated with a time constant τ_θ."""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ..estimators._objective import assemble
from ._hardware import concrete
from ._rule import Signals
from ._rule_weight import _layer_grads, _WeightRule


class MGDRule(_WeightRule):
    """Weight perturbation read by value correlation: every weight wobbles by its own
    perturbation ``θ̃(t)`` (any process: the time-, code- and frequency-multiplexed ones of
    ``ctlearn.dynamics``), the circuit reads the cost change ``C̃`` it causes
    (``Signals.loss_changes``: ``L(w + θ̃) − L(w)`` when measured exactly, the output of a
    ``HighPass`` on the cost in an analog circuit) and every synapse forms ``G = C̃ · θ̃``.

    ``tau_theta`` (τ_θ, in the simulator's time unit) is the integration time constant: the rule's
    state ``G_int`` low-passes the estimate, ``τ_θ · dG_int/dt = G − G_int``, and the weights
    follow ``ẇ = −η · G_int`` (MGD's analog mode); ``tau_theta = 0`` applies ``G`` directly. The
    state carries over from presentation to presentation. With ``DiscreteUpdates`` among the
    non-idealities the weights are held and written once per presentation instead (MGD's
    discrete mode, τ_θ = the presentation's duration; then leave ``tau_theta = 0``).

    Scale: for a perturbation of value power ``E[θ̃ θ̃ᵀ] = s² I``, ``E[G] ≈ s² ∇L``, so the weights
    descend at ``η · s²`` per time unit (MGD's normalised rate is ``η / s²``). At first order in
    the perturbation ``C̃ = ∇L · θ̃`` and ``G`` is FG-W's estimate with direction ``θ̃``
    (``discrete``).
    """

    tau_theta: float = 0.0

    def __check_init__(self):
        tau = concrete(self.tau_theta)
        if tau is not None and not (math.isfinite(tau) and tau >= 0):
            raise ValueError(
                f"MGDRule: tau_theta (the integration time constant τ_θ) must be finite and "
                f">= 0, got {self.tau_theta!r}"
            )

    reads_changes: ClassVar[bool] = True
    greedy: ClassVar[bool] = False

    def time_constants(self):
        return {"integration tau_theta": self.tau_theta}

    def init(self, model, *, key):
        del key
        return jax.tree.map(jnp.zeros_like, eqx.filter(model, eqx.is_inexact_array))

    def estimate(self, model, signals: Signals):
        """``G = C̃ · θ̃`` at this instant, shaped like the model's trainable arrays."""
        if signals.loss_changes is None:
            raise ValueError("MGDRule needs the cost change (Signals.loss_changes); got None")
        layers = _layer_grads(model, signals.p, signals.loss_changes, greedy=False)
        return eqx.filter(assemble(model, layers), eqx.is_inexact_array)

    def scaled_gradient(self, model, signals: Signals, state, scale):
        g = self.estimate(model, signals)
        tau = self.tau_theta
        safe = jnp.where(tau > 0, tau, 1.0)
        # τ_θ = 0 (reachable with a traced τ_θ in a sweep) applies G directly; the state rests.
        used = jax.tree.map(lambda s, gi: scale * jnp.where(tau > 0, s, gi), state, g)
        state_rate = jax.tree.map(lambda s, gi: jnp.where(tau > 0, (gi - s) / safe, 0.0), state, g)
        return used, state_rate
