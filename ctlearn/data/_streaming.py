"""A split streamed from a prepared TFDS dataset through ``tf.data`` (data too large for memory)."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax

from ._split import Split

# The usual ImageNet evaluation transform: shorter side to size / 0.875, then a centre crop.
_CROP_FRACTION = 0.875


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class StreamingSplit(Split):
    """A TFDS split read from disk batch by batch; it has no ``.x``/``.y`` arrays.

    Encoded images are shuffled (files and a ``shuffle_buffer`` of records, both seeded from the
    key), then decoded, optionally resized so that the shorter side is ``side / 0.875`` and
    centre-cropped to ``side x side`` (``resize``), and standardised per channel with
    ``mean``/``std`` (images scaled to [0, 1]). The order for a key is reproducible as long as
    TensorFlow's global seed is left unset (``tf.random.set_seed`` would change it).
    """

    builder: Any  # a prepared tfds.core.DatasetBuilder
    split: str
    num_examples: int
    example_shape: tuple[int, int, int]  # (height, width, channels) of every yielded image
    resize: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]
    shuffle_buffer: int = 10_000

    def __len__(self) -> int:
        return self.num_examples

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.example_shape)

    def __repr__(self) -> str:
        return (
            f"StreamingSplit(tfds:{self.builder.name}[{self.split}], n={self.num_examples}, "
            f"input_shape={self.input_shape})"
        )

    def _batches(self, batch_size, key, drop_last):
        import tensorflow as tf
        import tensorflow_datasets as tfds

        image_key, _ = self.builder.info.supervised_keys
        seed = None if key is None else int(jax.random.randint(key, (), 0, 2**31 - 1))
        data = self.builder.as_dataset(
            split=self.split,
            as_supervised=True,
            shuffle_files=seed is not None,
            decoders={image_key: tfds.decode.SkipDecoding()},  # shuffle small encoded records
            read_config=tfds.ReadConfig(shuffle_seed=seed),
        )
        if seed is not None:
            data = data.shuffle(self.shuffle_buffer, seed=seed, reshuffle_each_iteration=False)
        preprocess = functools.partial(
            self._preprocess, image_feature=self.builder.info.features[image_key]
        )
        data = data.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        data = data.batch(batch_size, drop_remainder=drop_last).prefetch(tf.data.AUTOTUNE)
        yield from data.as_numpy_iterator()

    def _preprocess(self, encoded, label, image_feature):
        import tensorflow as tf

        image = image_feature.decode_example(encoded)
        if self.resize:
            image = _resize_and_crop(image, self.example_shape[0])
        mean = tf.constant(self.mean, tf.float32)
        std = tf.constant(self.std, tf.float32)
        image = (tf.cast(image, tf.float32) / 255.0 - mean) / std
        return tf.ensure_shape(image, self.example_shape), tf.cast(label, tf.int32)


def _resize_and_crop(image, side: int):
    """Resizes [h, w, c] so that min(h, w) = side / 0.875, then crops the central side x side."""
    import tensorflow as tf

    shorter = round(side / _CROP_FRACTION)
    hw = tf.cast(tf.shape(image)[:2], tf.float32)
    new_hw = tf.cast(tf.math.ceil(hw * (shorter / tf.reduce_min(hw))), tf.int32)
    image = tf.image.resize(image, new_hw, antialias=True)
    top, left = (new_hw[0] - side) // 2, (new_hw[1] - side) // 2
    return tf.image.crop_to_bounding_box(image, top, left, side, side)
