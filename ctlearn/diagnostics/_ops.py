"""Where a compiled computation spends its time, op by op, from JAX's profiler trace."""

from __future__ import annotations

import gzip
import json
import re
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax

# XLA's names for the ops of a compiled CPU/GPU program, by kind (the compiler names fusions after
# their root and main ops: "ynn_fusion" is an XNNPACK matrix product, "copy_bitcast_fusion" a
# layout change).
_KINDS = (
    ("matrix products", re.compile(r"^(dot|ynn_fusion|xnn_fusion|onednn|convolution|gemm)")),
    ("layout copies and transposes", re.compile(r"^(copy|transpose|wrapped_(copy|transpose))")),
    ("random numbers", re.compile(r"(threefry|rng|random)")),
    ("reductions", re.compile(r"(reduce|add_rsqrt|rsqrt)")),
)
_NOT_OPS = re.compile(r"^(\$|Thunk|Pjit|Parse|PyArray|XlaModule|TfrtCpu|Execute)")


def op_kind(name: str) -> str:
    """The kind of an XLA op from its name in a profile: "matrix products", "layout copies and
    transposes", "random numbers", "reductions" or "elementwise and other"."""
    base = re.sub(r"\.\d+$", "", name)
    for kind, pattern in _KINDS:
        if pattern.search(base):
            return kind
    return "elementwise and other"


def op_times(call: Callable[[], Any], *, runs: int = 3) -> dict[str, float]:
    """Mean seconds per call spent in each XLA op of ``call()`` (a jit-compiled call, already
    compiled), from ``jax.profiler.trace`` over ``runs`` calls. Op names are the compiler's
    (fusions included); ``op_kind`` groups them. Raises if the trace holds no op events."""
    if runs < 1:
        raise ValueError(f"runs must be positive, got {runs}")
    jax.block_until_ready(call())
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder):
            for _ in range(runs):
                jax.block_until_ready(call())
        files = sorted(Path(folder).glob("**/*.trace.json.gz"))
        if not files:
            raise RuntimeError("the profiler wrote no trace; is another trace running?")
        with gzip.open(files[0]) as f:
            trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    totals: Counter = Counter()
    for event in events:
        if event.get("ph") == "X" and not _NOT_OPS.match(event.get("name", "")):
            totals[event["name"]] += event.get("dur", 0) * 1e-6 / runs
    if not totals:
        raise RuntimeError("the profiler trace holds no op events")
    return dict(totals)


def time_by_kind(times: dict[str, float]) -> dict[str, float]:
    """``op_times``' result summed by ``op_kind``."""
    out: Counter = Counter()
    for name, seconds in times.items():
        out[op_kind(name)] += seconds
    return dict(out)
