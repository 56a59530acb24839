"""Weights updated once per presentation: the learning loop's discrete mode."""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp

from ._hardware import AbstractNonIdeality, non_negative_finite, require


class DiscreteUpdates(AbstractNonIdeality):
    """The synapses integrate the rule's ``ẇ`` over a presentation while the weights stay where
    they were, and the sum is written at its end (MGD's discrete mode: θ ← θ − η·ΣG every τ_θ,
    with τ_θ the presentation's duration; several examples per τ_θ are a presentation's batch).

    ``noise``: MGD's update noise θ_σ, one standard-normal draw per write common to every weight,
    ``θ ← θ + noise · ξ`` (none at the initial programming). The mode itself is not a
    non-ideality of strength zero: it is never left out.
    """

    noise: float = 0.0
    writes: ClassVar[bool] = True

    def __check_init__(self):
        require("noise", self.noise, non_negative_finite, "finite and >= 0", "DiscreteUpdates")

    def is_ideal(self):
        return False

    def write(self, params, state, key, *, stored=None):
        del state
        if stored is None:
            return params
        xi = jax.random.normal(key, (), dtype=jnp.float32)
        return jax.tree.map(lambda w: w + (self.noise * xi).astype(w.dtype), params)
