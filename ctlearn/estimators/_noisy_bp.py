"""Noisy BP: the exact gradient plus isotropic Gaussian noise of a set normalised variance, a
reference line for "how much variance can a rule afford" (the FDFA paper's Figure 6)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ._base import AbstractEstimator
from ._bp import BP


class NoisyBP(AbstractEstimator):
    """BP plus isotropic Gaussian noise whose power is ``ratio`` times the gradient's squared
    norm at every step, so that its normalised variance E‖g − ∇‖²/E‖g‖² is ratio/(1 + ratio)
    whatever the gradient's size. ``ratio`` may be a traced array, so that one compiled step
    serves every level. Unbiased: E g = ∇."""

    loss: str = "cross_entropy"
    ratio: Array | float = 0.0

    def __check_init__(self):
        if isinstance(self.ratio, (int, float)) and not self.ratio >= 0:
            raise ValueError(
                f"ratio (noise power over gradient power) must be >= 0, got {self.ratio}"
            )

    def estimate(self, model, batch, state, *, key):
        grads, state, diagnostics = BP(loss=self.loss).estimate(model, batch, state, key=key)
        leaves, treedef = jax.tree.flatten(grads)
        size = sum(a.size for a in leaves)
        sigma = jnp.sqrt(self.ratio * sum(jnp.sum(a * a) for a in leaves) / size)
        # One draw for all arrays: one random kernel, much cheaper to compile than one per array.
        flat = jax.random.normal(key, (size,))
        offsets = np.cumsum([0] + [a.size for a in leaves])
        noisy = [a + sigma * flat[o : o + a.size].reshape(a.shape) for a, o in zip(leaves, offsets)]
        return jax.tree.unflatten(treedef, noisy), state, diagnostics
