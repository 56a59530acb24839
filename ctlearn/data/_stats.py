"""Per-channel normalisation of uint8 images."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from jaxtyping import Float, Shaped, UInt8

# Mean and std per channel of the training images scaled to [0, 1] (the values in common use).
CHANNEL_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet2012": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


SCALINGS = ("standardise", "symmetric")
"""How image inputs are scaled: ``standardise`` per channel with the training set's mean and std
(ctlearn's default), or ``symmetric``, [0, 255] mapped linearly onto [-1, 1] (torchvision's
``Normalize(0.5, 0.5)``, which the FDFA paper's code uses)."""


def check_scaling(scaling: str) -> None:
    if scaling not in SCALINGS:
        raise ValueError(f"unknown input scaling {scaling!r}; valid: {', '.join(SCALINGS)}")


def scaling_stats(
    scaling: str, standard: tuple[tuple[float, ...], tuple[float, ...]] | None, channels: int
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The (mean, std) per channel that ``standardise`` applies for ``scaling``: ``standard``
    (the dataset's statistics, or ``None`` where they must be measured) when standardising,
    (0.5, 0.5) per channel for the symmetric scaling."""
    check_scaling(scaling)
    if scaling == "symmetric":
        return (0.5,) * channels, (0.5,) * channels
    return standard


def channel_stats(
    chunks: Iterable[Shaped[np.ndarray, "*batch channels"]], *, scale: float = 1.0
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std per channel (last axis) of ``scale`` times the values in ``chunks``.

    Sums are accumulated in float64 chunk by chunk, so the data never has to be in memory at once.
    A constant channel gets std 1 so that standardising it does not divide by zero.
    """
    total = total_sq = 0.0
    count = 0
    for chunk in chunks:
        flat = chunk.reshape(-1, chunk.shape[-1]).astype(np.float64) * scale
        total = total + flat.sum(axis=0)
        total_sq = total_sq + np.square(flat).sum(axis=0)
        count += len(flat)
    if count == 0:
        raise ValueError("channel_stats needs at least one value")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    std = np.where(std > 0, std, 1.0)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def standardise(
    images: UInt8[np.ndarray, "n *spatial channels"],
    mean: tuple[float, ...],
    std: tuple[float, ...],
) -> Float[np.ndarray, "n *spatial channels"]:
    """``(images / 255 - mean) / std`` per channel (the last axis), as float32."""
    if images.shape[-1] != len(mean) or len(mean) != len(std):
        raise ValueError(
            f"images with {images.shape[-1]} channel(s) (shape {images.shape}) cannot be "
            f"standardised with mean {mean} and std {std}"
        )
    scale = np.float32(1 / 255) / np.asarray(std, np.float32)
    shift = np.asarray(mean, np.float32) / np.asarray(std, np.float32)
    return images.astype(np.float32) * scale - shift
