"""Wall-clock timing of several jit-compiled calls measured side by side."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import jax


def time_side_by_side(
    calls: dict[str, Callable[[], Any]], *, number: int = 10, repeats: int = 5, warmup: int = 0
) -> dict[str, float]:
    """Median seconds per call of each of ``calls``, measured in interleaved rounds.

    Every call runs once first (compilation, excluded). Each round then times ``number`` calls of
    each entry in turn (waiting for the device after each batch of calls), so drifts of the
    machine's speed affect every entry alike; the result is the median over ``repeats`` rounds.
    ``warmup`` untimed calls precede each entry's timed ones in every round, so that an entry is
    not charged for refilling the caches that the entries before it (say, a much larger
    computation) emptied.
    """
    if number < 1 or repeats < 1:
        raise ValueError(f"number and repeats must be positive, got {number} and {repeats}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    for call in calls.values():
        jax.block_until_ready(call())
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            for _ in range(warmup):
                jax.block_until_ready(call())
            start = time.perf_counter()
            for _ in range(number):
                out = call()
            jax.block_until_ready(out)
            samples[name].append((time.perf_counter() - start) / number)
    return {name: statistics.median(times) for name, times in samples.items()}
