"""Floating-point work of a compiled computation, as the XLA compiler counts it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx


def compiled_flops(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    """Floating-point operations of one call of ``fn(*args, **kwargs)`` once compiled
    (``eqx.filter_jit``; nothing is run), from XLA's cost analysis. A multiply-add counts as two.
    Elementwise work is counted over whole arrays, also where the compiler fuses it into several
    consumers, so random-number and elementwise-heavy computations can be over-counted; the
    matrix products are exact. Raises if the backend reports no cost analysis."""
    compiled = eqx.filter_jit(fn).lower(*args, **kwargs).compile().compiled
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list | tuple):
        analysis = analysis[0] if analysis else None
    if not analysis or "flops" not in analysis:
        raise RuntimeError("this backend does not report the cost of compiled computations")
    return float(analysis["flops"])
