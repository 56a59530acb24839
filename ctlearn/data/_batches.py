"""Mini-batch iteration over a split, in an order fixed by a PRNG key."""

from __future__ import annotations

import numbers
from collections.abc import Iterator

import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ._split import Split


def num_batches(split: Split, batch_size: int, *, drop_last: bool = True) -> int:
    """How many batches ``batches(split, batch_size, drop_last=drop_last)`` yields."""
    batch_size = _check_batch_size(split, batch_size, drop_last)
    return len(split) // batch_size if drop_last else -(-len(split) // batch_size)


def batches(
    split: Split,
    batch_size: int,
    *,
    key: PRNGKeyArray | None = None,
    shuffle: bool = True,
    drop_last: bool = True,
) -> Iterator[tuple[Float[Array, " batch *input"], Int[Array, " batch"]]]:
    """One epoch of ``(x, y)`` batches: x float32 [batch_size, *input_shape], y int32 [batch_size].

    With ``shuffle`` the order is a pure function of ``key`` (a permutation of the examples drawn
    with ``jax.random.permutation``); ``shuffle=False`` keeps the stored order and ignores ``key``
    (for evaluation). ``drop_last=False`` yields a final, shorter batch with the remainder.
    """
    batch_size = _check_batch_size(split, batch_size, drop_last)
    if shuffle and key is None:
        raise ValueError(
            "batches(..., shuffle=True) needs a PRNG key: pass key=jax.random.key(...)"
        )
    return _as_jax(split._batches(batch_size, key if shuffle else None, drop_last))


def _as_jax(numpy_batches):
    for x, y in numpy_batches:
        yield jnp.asarray(x), jnp.asarray(y)


def _check_batch_size(split: Split, batch_size: int, drop_last: bool) -> int:
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, numbers.Integral)
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if drop_last and batch_size > len(split):
        raise ValueError(
            f"batch_size {batch_size} is larger than the split ({len(split)} examples) and "
            "drop_last=True would yield no batch; use a smaller batch_size or drop_last=False"
        )
    return int(batch_size)
