"""Perturbation directions: zero-mean, unit-variance, independent entries."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from ._objective import require_heads

NOISES = ("gaussian", "rademacher")


def check_noise(noise: str) -> None:
    if noise not in NOISES:
        raise ValueError(f"unknown noise {noise!r}; valid: {', '.join(NOISES)}")


def draw(key: PRNGKeyArray, shape: tuple[int, ...], noise: str) -> Array:
    """Gaussian N(0, 1) entries, or random signs ±1 (cheaper to draw, equally unbiased; the
    variance formulas of Ren et al. Table 1 assume Gaussian entries)."""
    if noise == "gaussian":
        return jax.random.normal(key, shape, jnp.float32)
    return _random_signs(key, shape)


def _random_signs(key: PRNGKeyArray, shape: tuple[int, ...]) -> Array:
    # Each random 32-bit word gives 32 signs: about 8x faster here than jax.random.rademacher,
    # which spends one word per sign (a draw per weight dominates an FG-W step otherwise).
    size = math.prod(shape)
    words = jax.random.bits(key, (-(-size // 32),), jnp.uint32)
    bits = (words[:, None] >> jnp.arange(32, dtype=jnp.uint32)) & 1
    return (1.0 - 2.0 * bits.reshape(-1)[:size].astype(jnp.float32)).reshape(shape)


def draw_many(key: PRNGKeyArray, shapes, noise: str) -> list[Array]:
    """Independent directions of the given shapes from one draw (one random kernel, whatever the
    number of arrays: cheaper to run and much cheaper to compile than one draw per array)."""
    sizes = [math.prod(shape) for shape in shapes]
    flat = draw(key, (sum(sizes),), noise)
    pieces = jnp.split(flat, list(itertools.accumulate(sizes))[:-1]) if sizes else []
    return [piece.reshape(shape) for piece, shape in zip(pieces, shapes)]


def check_layers(layers, num_layers: int | None = None) -> None:
    """``layers``: ``None`` (every layer) or a tuple of layer indices to perturb and train."""
    if layers is None:
        return
    if not isinstance(layers, tuple) or not all(isinstance(i, int) and i >= 0 for i in layers):
        raise ValueError(f"layers must be None or a tuple of layer indices, got {layers!r}")
    if num_layers is not None and any(i >= num_layers for i in layers):
        raise ValueError(f"layers {layers} out of range for a network of {num_layers} layers")


def selected(i: int, layers) -> bool:
    return layers is None or i in layers


def check_flags(**flags) -> None:
    """Each of ``flags`` (option name -> value) must be a bool."""
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, got {value!r}")


def check_samples(num_samples: int) -> None:
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")


def average_samples(one_sample, key: PRNGKeyArray, num_samples: int):
    """Run ``one_sample(key)`` -> ``(grads, diagnostics)`` for ``num_samples`` independent keys
    (vmapped) and average the gradients; diagnostics come from the first sample."""
    if num_samples == 1:
        return one_sample(key)
    grads, diags = jax.vmap(one_sample)(jax.random.split(key, num_samples))
    grads = jax.tree.map(lambda g: jnp.mean(g, axis=0), grads)
    return grads, jax.tree.map(lambda d: d[0], diags)


def check_options(*, noise: str, num_samples: int, layers, **flags) -> None:
    """Checks the options every perturbation-based estimator has (``flags`` must be bools)."""
    check_noise(noise)
    check_flags(**flags)
    check_samples(num_samples)
    check_layers(layers)


def check_model(estimator, model) -> None:
    """Checks that ``model`` suits a perturbation-based ``estimator``: its ``layers`` exist and,
    for a local-greedy rule, every non-final block has a local head."""
    check_layers(estimator.layers, len(model.layers))
    if estimator.greedy:
        require_heads(model, estimator.method)
