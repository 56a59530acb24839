"""Floating-point work of the matrix products a compiled computation runs."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import equinox as eqx

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
