"""Floating-point work of a compiled computation, as the XLA compiler counts it."""

from __future__ import annotations

import math
import re
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


_DEFINITION = re.compile(r"^\s*(?:ROOT\s+)?%([\w.\-]+)\s*=\s*\w+\[([\d,]*)\]")
_DOT = re.compile(r"\bdot\(%([\w.\-]+),\s*%([\w.\-]+)\)(.*)$")
_CONTRACTING = re.compile(r"lhs_contracting_dims=\{([\d,]*)\}")


def compiled_matmul_flops(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    """Floating-point operations of the matrix products (``dot``s) of ``fn(*args, **kwargs)``
    once compiled and optimised (what the program really runs: dead and duplicate products are
    gone), two per multiply-add: ``2 × output size × contracted size`` summed over the compiled
    program's dots. Convolutions are not counted."""
    text = eqx.filter_jit(fn).lower(*args, **kwargs).compile().compiled.as_text()
    shapes = {}
    for line in text.splitlines():
        match = _DEFINITION.match(line)
        if match:
            dims = match.group(2)
            shapes[match.group(1)] = tuple(int(d) for d in dims.split(",")) if dims else ()
    total = 0.0
    for line in text.splitlines():
        dot, definition = _DOT.search(line), _DEFINITION.match(line)
        if dot is None or definition is None:
            continue
        lhs = shapes[dot.group(1)]
        contracting = _CONTRACTING.search(dot.group(3))
        axes = [int(a) for a in contracting.group(1).split(",")] if contracting.group(1) else []
        inner = math.prod(lhs[a] for a in axes)
        total += 2.0 * math.prod(shapes[definition.group(1)]) * inner
    return total
