"""Weight drift: stored conductances relax and wander on their own."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._hardware import AbstractNonIdeality, is_inf, is_zero, non_negative_finite, positive, require


class WeightDrift(AbstractNonIdeality):
    """``dw = −(w − rest)/τ_w dt + σ_w dW`` for every trainable array, besides the rule's ``ẇ``.

    ``tau`` (τ_w, the retention time, in the simulator's time unit; ``inf``: no decay) makes
    stored values decay towards ``rest`` (in weight units, the conductance at rest), acting like
    a weight decay of rate 1/τ_w. ``sigma`` (weight units per √time) is a random walk of every
    stored value, integrated on the simulation's ``VirtualBrownianTree`` (reproducible from its
    key). ``tau = inf`` with ``sigma = 0`` is the ideal device.
    """

    tau: float = jnp.inf
    sigma: float = 0.0
    rest: float = 0.0

    def __check_init__(self):
        require("tau", self.tau, positive, "> 0 (or inf)", "WeightDrift")
        require("sigma", self.sigma, non_negative_finite, "finite and >= 0", "WeightDrift")
        require("rest", self.rest, lambda v: abs(v) < float("inf"), "finite", "WeightDrift")

    def is_ideal(self):
        return is_inf(self.tau) and is_zero(self.sigma)

    def weight_drift(self, params):
        return jax.tree.map(lambda w: -(w - self.rest) / self.tau, params)

    def weight_noise(self):
        return None if is_zero(self.sigma) else f"sigma={self.sigma}"

    def weight_diffusion(self, params):
        if self.weight_noise() is None:  # decay alone: no Brownian term to integrate
            return None
        return jax.tree.map(lambda w: jnp.full_like(w, self.sigma), params)
