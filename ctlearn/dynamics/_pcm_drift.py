"""Conductance drift of phase-change memory after programming: g(t) = g_prog·((t + t0)/t0)^(−ν)."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..nn import Network
from ._hardware import non_negative_finite, positive, require


def pcm_drift_exponent(g: Float[Array, "*shape"]) -> tuple[Float[Array, "*shape"], ...]:
    """The mean and spread of PCM's drift exponent ν at normalised conductance g = g_T/g_max
    (IBM aihwkit's ``PCMLikeNoiseModel``, ``aihwkit/inference/noise/pcm.py``):
    μ_ν = clip(−0.0155·ln g + 0.0244, 0.049, 0.1), σ_ν = clip(−0.0125·ln g − 0.0059, 0.008,
    0.045)."""
    log_g = jnp.log(jnp.maximum(g, 1e-12))
    mean = jnp.clip(-0.0155 * log_g + 0.0244, 0.049, 0.1)
    spread = jnp.clip(-0.0125 * log_g - 0.0059, 0.008, 0.045)
    return mean, spread


class PCMDrift(eqx.Module):
    """The weights of a trained circuit a time ``elapsed`` after they were programmed (the
    simulator's time unit; aihwkit's reference time t0 = 20 s when it is seconds), each device
    relaxing as w·((elapsed + t0)/t0)^(−ν_i) with its own exponent ν_i ≥ 0 drawn once from the key.

    ``nu``: a fixed mean exponent (with ``nu_spread``, the standard deviation of the devices'
    exponents, folded at 0); ``None`` (default): aihwkit's PCM law, where the exponent's mean and
    spread depend on each device's conductance |w|/``w_max`` (``pcm_drift_exponent``). ``nu = 0``
    with ``nu_spread = 0`` is a device that does not drift. A weight and its sign are held by a
    pair of devices as in a differential PCM cell, so drift shrinks |w| and never flips it.
    """

    nu: float | None = None
    nu_spread: float = 0.0
    t0: float = 20.0
    w_max: float = 1.0

    def __check_init__(self):
        if self.nu is not None:
            require("nu", self.nu, non_negative_finite, "finite and >= 0 (or None)", "PCMDrift")
        require("nu_spread", self.nu_spread, non_negative_finite, "finite and >= 0", "PCMDrift")
        for name in ("t0", "w_max"):
            value = getattr(self, name)
            require(
                name,
                value,
                lambda v: positive(v) and math.isfinite(v),
                "finite and > 0",
                "PCMDrift",
            )

    def exponents(self, model: Network, *, key: PRNGKeyArray):
        """Every device's drift exponent ν_i (a tree shaped like the trainable arrays)."""
        params = eqx.filter(model, eqx.is_inexact_array)
        leaves, treedef = jax.tree.flatten(params)
        out = []
        for i, w in enumerate(leaves):
            if self.nu is None:
                mean, spread = pcm_drift_exponent(jnp.abs(w) / self.w_max)
            else:
                mean, spread = jnp.full_like(w, self.nu), jnp.full_like(w, self.nu_spread)
            xi = jax.random.normal(jax.random.fold_in(key, i), w.shape, w.dtype)
            out.append(jnp.abs(mean + spread * xi))
        return jax.tree.unflatten(treedef, out)

    def __call__(self, model: Network, elapsed: float, *, key: PRNGKeyArray) -> Network:
        """``model`` as read ``elapsed`` after programming (the same key, the same devices)."""
        if not (isinstance(elapsed, (int, float)) and math.isfinite(elapsed) and elapsed >= 0):
            raise ValueError(f"elapsed must be a finite time >= 0, got elapsed={elapsed!r}")
        params, static = eqx.partition(model, eqx.is_inexact_array)
        nu = self.exponents(model, key=key)
        factor = (elapsed + self.t0) / self.t0
        drifted = jax.tree.map(lambda w, n: w * factor ** (-n), params, nu)
        return eqx.combine(drifted, static)
