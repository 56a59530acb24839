"""A dataset: a train and a test split with what a model needs to know about them."""

from __future__ import annotations

import dataclasses

import numpy as np

from ._split import ArraySplit, Split


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A classification dataset, already normalised.

    ``train``/``test`` hold inputs of shape ``input_shape`` (images NHWC) and labels in
    ``[0, num_classes)``; ``source`` says where the data came from (a path, or ``tfds:NAME``).
    """

    name: str
    train: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, ...]
    source: str

    def __post_init__(self):
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        if self.num_classes < 2:
            raise ValueError(f"{self.name}: num_classes must be at least 2, got {self.num_classes}")
        for label, split in (("train", self.train), ("test", self.test)):
            if split.input_shape != self.input_shape:
                raise ValueError(
                    f"{self.name}: the {label} split has inputs of shape {split.input_shape}, "
                    f"the dataset says {self.input_shape}"
                )
            if isinstance(split, ArraySplit):
                low, high = int(np.min(split.y)), int(np.max(split.y))
                if low < 0 or high >= self.num_classes:
                    raise ValueError(
                        f"{self.name}: {label} labels span [{low}, {high}], outside "
                        f"[0, {self.num_classes}) for num_classes={self.num_classes}"
                    )
