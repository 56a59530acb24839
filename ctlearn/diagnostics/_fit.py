"""Power-law fits on log-log axes: how a measured quantity scales with a size (batch, width)."""

from __future__ import annotations

import math

import numpy as np


def fit_power_law(x, y) -> tuple[float, float, float]:
    """``(slope, stderr, intercept)`` of ``log10 y = intercept + slope · log10 x``.

    Ordinary least squares on the logs of the positive, finite points ``(x, y)``; ``stderr`` is
    the asymptotic standard error of the slope, ``sqrt(s² / Σ(log10 x − mean)²)`` with the
    residual variance ``s² = SSR / (n − 2)`` (NaN for two points: an exact fit leaves no degree
    of freedom to estimate it). ``y ∝ x^a`` gives ``slope = a``, ``intercept = log10`` of the
    prefactor.
    """
    lx = np.log10(_positive(x, "x"))
    ly = np.log10(_positive(y, "y"))
    if lx.shape != ly.shape or lx.ndim != 1:
        raise ValueError(f"x and y must be 1-D of the same length, got {lx.shape} and {ly.shape}")
    n = lx.size
    if n < 2:
        raise ValueError(f"a power-law fit needs at least 2 points, got {n}")
    dx = lx - lx.mean()
    sxx = float(dx @ dx)
    if sxx == 0.0:
        raise ValueError("a power-law fit needs at least two distinct x values")
    slope = float(dx @ (ly - ly.mean())) / sxx
    intercept = float(ly.mean() - slope * lx.mean())
    if n == 2:
        return slope, math.nan, intercept
    residuals = ly - (intercept + slope * lx)
    stderr = math.sqrt(float(residuals @ residuals) / (n - 2) / sxx)
    return slope, stderr, intercept


def _positive(values, name: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"{name} must be positive and finite for a log-log fit, got {a}")
    return a
