"""Band-limited noise in a circuit, and activity noise: a random signal at every neuron's
activation input that no rule knows of."""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._hardware import AbstractNonIdeality, is_zero, non_negative_finite, positive, require


class ActivityNoiseState(eqx.Module):
    """The white-noise-driven drive ``o`` and the noise ``n`` it filters, one array per layer."""

    o: tuple[Float[Array, "*shape"], ...]
    n: tuple[Float[Array, "*shape"], ...]


class AbstractFilteredNoise(AbstractNonIdeality):
    """Band-limited noise: an Ornstein–Uhlenbeck drive ``o`` filtered once,
    ``do = −o/τ_n dt + (2σ/√τ_n) dW`` and ``τ_n ṅ = o − n``, one array per shape of
    ``noise_shapes``: an SDE integrated with the rest of the state on a Diffrax Brownian path
    (reproducible from the simulation's key); ``n`` is C¹, so its rate ``ṅ`` exists. In
    stationarity ``n`` has standard deviation ``sigma`` and ``ṅ`` standard deviation
    ``sigma/tau``; ``tau`` (τ_n) is its correlation time. ``sigma = 0`` is the ideal circuit."""

    sigma: eqx.AbstractVar[float | Array]
    tau: eqx.AbstractVar[float | Array]
    evolves: ClassVar[bool] = True

    def __check_init__(self):
        owner = type(self).__name__
        require("sigma", self.sigma, non_negative_finite, "finite and >= 0", owner)
        require("tau", self.tau, positive, "> 0 (a time constant)", owner)

    @abc.abstractmethod
    def noise_shapes(self, signals) -> list[tuple[int, ...]]:
        """The shapes of the noise arrays, from the signals at the start."""

    def is_ideal(self):
        return is_zero(self.sigma)

    def init(self, model, signals, *, key):
        o, n = [], []
        for i, shape in enumerate(self.noise_shapes(signals)):
            z = jax.random.normal(jax.random.fold_in(key, i), (2, *shape))
            # The stationary law: n = σ z₀ and o − n = σ z₁ (E[n ṅ] = 0).
            n.append(self.sigma * z[0])
            o.append(self.sigma * (z[0] + z[1]))
        return ActivityNoiseState(tuple(o), tuple(n))

    def noise(self, state: ActivityNoiseState) -> tuple[tuple, tuple]:
        """``(n, ṅ)`` now."""
        return state.n, tuple((o - n) / self.tau for o, n in zip(state.o, state.n))

    def drift(self, signals, state: ActivityNoiseState, t):
        return ActivityNoiseState(
            tuple(-o / self.tau for o in state.o),
            tuple((o - n) / self.tau for o, n in zip(state.o, state.n)),
        )

    def diffusion(self, state: ActivityNoiseState, t):
        # Only the drive is noisy: ``None`` for ``n`` keeps it out of the Brownian path (no
        # random numbers are drawn for it; the solver gives it no noise).
        scale = 2 * self.sigma / jnp.sqrt(self.tau)
        return ActivityNoiseState(tuple(jnp.full_like(o, scale) for o in state.o), None)


class ActivityNoise(AbstractFilteredNoise):
    """Read noise of the neurons: ``n`` is added to every layer's activation input, for every
    example, on top of any injected perturbation; it changes the loss (so ``ṙ``) and the neurons'
    measured rates, but no rule sees it as its own perturbation.

    ``n`` is band-limited thermal-like noise (``AbstractFilteredNoise``): in stationarity it has
    standard deviation ``sigma`` (in the units of the activation input, like the perturbation's
    σ_p) and ``ṅ`` has standard deviation ``sigma/tau``; ``tau`` (τ_n, in the simulator's time
    unit) is its correlation time, the circuit's bandwidth limit. ``sigma = 0`` is the ideal
    circuit.
    """

    sigma: float | Array = 0.0
    tau: float | Array = 0.1

    def time_constants(self):
        return {"activity noise tau": self.tau}

    def noise_shapes(self, signals):
        return [z.shape for z in signals.trace.pre]

    def activity_noise(self, state: ActivityNoiseState, t):
        return self.noise(state)
