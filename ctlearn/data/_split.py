"""A split: a fixed set of (input, label) examples that ``batches`` reads in batches."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator

import jax
import numpy as np
from jaxtyping import Float, Int, PRNGKeyArray


class Split(abc.ABC):
    """One split of a dataset (train or test): ``len(split)`` examples of shape ``input_shape``.

    Concrete splits are ``ArraySplit`` (arrays in memory, ``.x``/``.y``) and ``StreamingSplit``
    (read from disk through ``tf.data``, for datasets too large for memory).
    """

    @abc.abstractmethod
    def __len__(self) -> int:
        """The number of examples."""

    @property
    @abc.abstractmethod
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input, without the batch axis."""

    @abc.abstractmethod
    def _batches(
        self, batch_size: int, key: PRNGKeyArray | None, drop_last: bool
    ) -> Iterator[tuple[Float[np.ndarray, " batch *input"], Int[np.ndarray, " batch"]]]:
        """Batches in an order fixed by ``key`` (``None``: the stored order); see ``batches``."""


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class ArraySplit(Split):
    """A split held in memory: inputs ``x`` float32 [n, *input_shape] and labels ``y`` int32 [n].

    ``x`` is converted to float32 and ``y`` (which must hold integers) to int32.
    """

    x: Float[np.ndarray, " n *input"]
    y: Int[np.ndarray, " n"]

    def __post_init__(self):
        x, y = np.asarray(self.x), np.asarray(self.y)
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"labels y must be integers, got dtype {y.dtype}")
        if y.ndim != 1 or x.ndim < 2 or len(x) != len(y) or len(y) == 0:
            raise ValueError(
                f"an ArraySplit needs x of shape [n, ...] and y of shape [n] with n > 0, "
                f"got x {x.shape} and y {y.shape}"
            )
        object.__setattr__(self, "x", x.astype(np.float32, copy=False))
        object.__setattr__(self, "y", y.astype(np.int32, copy=False))

    def __len__(self) -> int:
        return len(self.y)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def __repr__(self) -> str:
        return f"ArraySplit(x=float32{list(self.x.shape)}, y=int32[{len(self)}])"

    def _batches(self, batch_size, key, drop_last):
        n = len(self)
        stop = n - n % batch_size if drop_last else n
        if key is None:  # slices are views: no copy of the stored order
            for start in range(0, stop, batch_size):
                yield self.x[start : start + batch_size], self.y[start : start + batch_size]
            return
        order = np.asarray(jax.random.permutation(key, n))
        for start in range(0, stop, batch_size):
            index = order[start : start + batch_size]
            yield self.x[index], self.y[index]
