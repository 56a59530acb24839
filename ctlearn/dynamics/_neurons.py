"""Neuron models: how a layer's output activity follows its activation input."""

from __future__ import annotations

import abc

import equinox as eqx
from jaxtyping import Array

from ..nn import Network, Trace


class AbstractNeurons(eqx.Module):
    """Whether layers' activities are instantaneous functions of their inputs or states that
    relax towards them (then part of the simulated state)."""

    @abc.abstractmethod
    def init(self, model: Network, x: Array) -> tuple[Array, ...] | None:
        """The neuron state for input ``x`` at rest (``None`` when neurons have no state)."""

    @abc.abstractmethod
    def drift(self, model: Network, trace: Trace, state) -> tuple[Array, ...] | None:
        """The state's rate of change given the forward pass ``trace`` read from it."""

    @abc.abstractmethod
    def fastest_time_constant(self) -> float | None:
        """The shortest time constant (for step-size checks), ``None`` if there is none."""


class Instantaneous(AbstractNeurons):
    """Activity follows its input at once: ``y_l = f(z_l)`` (the discrete forward pass)."""

    def init(self, model, x):
        return None

    def drift(self, model, trace, state):
        return None

    def fastest_time_constant(self):
        return None


class Leaky(AbstractNeurons):
    """Leaky rate neurons: ``τ_x ẏ_l = −y_l + f(z_l)`` for every layer, ``tau`` in the simulator's
    time unit. Each layer reads the previous layer's state; the loss reads the output state."""

    tau: float = eqx.field(static=True)

    def __check_init__(self):
        if not self.tau > 0:
            raise ValueError(f"the neurons' time constant tau must be positive, got {self.tau}")

    def init(self, model, x):
        trace = model(x)
        return tuple(trace.inputs[1:]) + (trace.logits,)

    def drift(self, model, trace, state):
        targets = [layer.activate(z) for layer, z in zip(model.layers, trace.pre)]
        return tuple((f - y) / self.tau for f, y in zip(targets, state))

    def fastest_time_constant(self):
        return self.tau
