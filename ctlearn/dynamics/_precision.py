"""Limited weight precision and conductance range: what a device can store."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ._hardware import AbstractNonIdeality, concrete, is_inf, positive, require

ROUNDINGS = ("nearest", "stochastic")


class Quantisation(AbstractNonIdeality):
    """Weights stored as one of ``2**bits`` evenly spaced levels from −w_max to w_max (so zero
    is never a level for whole bits), and clipped to that range (the device's conductance range,
    in the model's weight units).

    Applied as a device is programmed: the conductances hold still during a presentation while
    the rule's ``ẇ`` is integrated (by the synapse's analog accumulator); at the end of each
    presentation the new value ``w + Δw`` is written, i.e. clipped and rounded to a level. With
    ``rounding="nearest"`` an update smaller than half a level is lost (learning stalls when
    ``η c T ‖∇L‖`` falls below it); ``"stochastic"`` rounds up with probability equal to the
    remainder (unbiased, from the simulation's key). The initial weights are written the same
    way. ``bits = inf`` (no rounding) with ``w_max = inf`` (no clipping) is the ideal device;
    every trainable array (weights and biases) is stored this way.
    """

    bits: float = jnp.inf
    w_max: float = jnp.inf
    rounding: str = eqx.field(static=True, default="nearest")
    writes: ClassVar[bool] = True

    def __check_init__(self):
        require("bits", self.bits, lambda v: v >= 1, ">= 1 (or inf)", "Quantisation")
        require("w_max", self.w_max, positive, "> 0 (or inf)", "Quantisation")
        bits, w_max = concrete(self.bits), concrete(self.w_max)
        if bits is not None and w_max is not None and bits < jnp.inf and w_max == jnp.inf:
            raise ValueError(
                f"Quantisation: bits={bits} needs a finite range w_max (the levels span "
                "[-w_max, w_max]); got w_max=inf"
            )
        if self.rounding not in ROUNDINGS:
            raise ValueError(
                f"Quantisation: unknown rounding {self.rounding!r}; valid: {', '.join(ROUNDINGS)}"
            )

    def is_ideal(self):
        return is_inf(self.bits, self.w_max)

    def step(self):
        """The spacing of the levels, 2 w_max / (2**bits − 1) (0: no rounding)."""
        finite = jnp.isfinite(self.bits) & jnp.isfinite(self.w_max)
        levels = jnp.where(finite, 2.0 ** jnp.where(finite, self.bits, 1.0) - 1, 1.0)
        return jnp.where(finite, 2 * jnp.where(finite, self.w_max, 0.0) / levels, 0.0)

    def write(self, params, state, key, *, stored=None):
        step = self.step()
        safe = jnp.where(step > 0, step, 1.0)
        leaves, treedef = jax.tree.flatten(params)
        stored = []
        for i, w in enumerate(leaves):
            clipped = jnp.clip(w, -self.w_max, self.w_max)
            scaled = (clipped + self.w_max) / safe  # level index from the bottom of the range
            if self.rounding == "nearest":
                level = jnp.round(scaled)
            else:
                u = jax.random.uniform(jax.random.fold_in(key, i), w.shape, w.dtype)
                level = jnp.floor(scaled + u)
            q = jnp.clip(level * safe - self.w_max, -self.w_max, self.w_max)
            stored.append(jnp.where(step > 0, q, clipped))
        return jax.tree.unflatten(treedef, stored)
