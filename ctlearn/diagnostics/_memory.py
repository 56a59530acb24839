"""Memory a compiled computation needs, as the XLA compiler plans it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx


def compiled_memory(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, int]:
    """Bytes of ``fn(*args, **kwargs)`` once compiled (``eqx.filter_jit``; nothing is run):
    ``temp`` (the compiler's peak working memory), ``argument``, ``output`` and their sum
    ``total``. Raises if the backend does not report a memory analysis."""
    compiled = eqx.filter_jit(fn).lower(*args, **kwargs).compile().compiled
    stats = compiled.memory_analysis()
    if stats is None:
        raise RuntimeError("this backend does not report the memory of compiled computations")
    out = {
        "temp": int(stats.temp_size_in_bytes),
        "argument": int(stats.argument_size_in_bytes),
        "output": int(stats.output_size_in_bytes),
    }
    out["total"] = sum(out.values())
    return out
