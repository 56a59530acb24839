"""Batch normalisation with running statistics kept apart from the trainable parameters."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


class BatchStats(eqx.Module):
    """Running mean and variance of a normalised quantity, per channel: state, not parameters
    (training replaces them after every step; optimizers never see a gradient for them)."""

    mean: Float[Array, " channels"]
    var: Float[Array, " channels"]


class BatchNorm(eqx.Module):
    """Normalises over every axis but the last (channels): ``(z − μ)/√(σ² + eps)·scale + offset``.

    In training, μ and σ² are the batch's own; with ``inference=True`` (``Network.inference()``)
    they are the running statistics, updated after each training step as
    ``(1 − momentum)·old + momentum·batch`` (the unbiased batch variance), as PyTorch does.
    """

    scale: Float[Array, " channels"]
    offset: Float[Array, " channels"]
    stats: BatchStats
    momentum: float = eqx.field(static=True, default=0.1)
    eps: float = eqx.field(static=True, default=1e-5)
    inference: bool = eqx.field(static=True, default=False)

    @classmethod
    def create(cls, channels: int, *, momentum: float = 0.1, eps: float = 1e-5) -> BatchNorm:
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"BatchNorm momentum must be in (0, 1], got {momentum!r}")
        ones, zeros = jnp.ones((channels,), jnp.float32), jnp.zeros((channels,), jnp.float32)
        return cls(ones, zeros, BatchStats(zeros, ones), momentum, eps)

    def __call__(self, z: Float[Array, "*batch channels"]) -> Float[Array, "*batch channels"]:
        if self.inference:
            mean, var = self.stats.mean, self.stats.var
        else:
            axes = tuple(range(z.ndim - 1))
            mean, var = jnp.mean(z, axis=axes), jnp.var(z, axis=axes)
        return (z - mean) * jax.lax.rsqrt(var + self.eps) * self.scale + self.offset

    def updated_stats(self, z: Float[Array, "*batch channels"]) -> BatchStats:
        """The running statistics after seeing the batch ``z`` (the input to the normalisation)."""
        z = jax.lax.stop_gradient(z)
        axes = tuple(range(z.ndim - 1))
        count = z.size // z.shape[-1]
        mean = jnp.mean(z, axis=axes)
        var = jnp.var(z, axis=axes) * count / max(count - 1, 1)
        m = self.momentum
        return BatchStats((1 - m) * self.stats.mean + m * mean, (1 - m) * self.stats.var + m * var)
