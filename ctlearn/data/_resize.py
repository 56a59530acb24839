"""Square resizing of in-memory image datasets (e.g. 28×28 Fashion-MNIST for AlexNet, which needs
at least 63×63)."""

from __future__ import annotations

import jax
import numpy as np
from jaxtyping import Float

from ._split import ArraySplit

# An upper bound on what a resized dataset may hold in memory (train and test, float32).
MAX_RESIZED_BYTES = 4 * 2**30
_CHUNK = 2048  # images resized at once


def check_image_size(image_size: int | None) -> None:
    """Raises ``ValueError`` unless ``image_size`` is None or a positive int."""
    if image_size is not None and (
        isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1
    ):
        raise ValueError(f"image_size must be a positive int or None, got {image_size!r}")


def resize_splits(
    name: str, splits: tuple[ArraySplit, ...], image_size: int
) -> tuple[ArraySplit, ...]:
    """Every split's NHWC images resized to ``image_size``×``image_size`` (bilinear, antialiased
    when shrinking; ``jax.image.resize``); labels unchanged.

    Bilinear weights sum to one, so resizing commutes with the per-channel affine scaling the
    loaders apply: a standardised dataset stays standardised. Refuses, before any work, a result
    over ``MAX_RESIZED_BYTES``.
    """
    check_image_size(image_size)
    for split in splits:
        if len(split.input_shape) != 3:
            raise ValueError(
                f"{name}: image_size applies to image datasets (inputs H×W×C), but its inputs "
                f"have shape {split.input_shape}"
            )
    channels = splits[0].input_shape[-1]
    total = sum(len(s) for s in splits) * image_size * image_size * channels * 4
    if total > MAX_RESIZED_BYTES:
        raise ValueError(
            f"{name} at {image_size}×{image_size} would hold {total / 2**20:,.0f} MiB in memory, "
            f"over the {MAX_RESIZED_BYTES / 2**20:,.0f} MiB limit; choose a smaller image_size"
        )
    return tuple(ArraySplit(_resize(split.x, image_size), split.y) for split in splits)


def _resize(
    x: Float[np.ndarray, "n h w c"], image_size: int
) -> Float[np.ndarray, "n {image_size} {image_size} c"]:
    if x.shape[1:3] == (image_size, image_size):
        return x
    out = np.empty((len(x), image_size, image_size, x.shape[-1]), np.float32)
    for start in range(0, len(x), _CHUNK):
        chunk = x[start : start + _CHUNK]
        shape = (len(chunk), image_size, image_size, x.shape[-1])
        out[start : start + len(chunk)] = jax.image.resize(chunk, shape, "linear", antialias=True)
    return out
