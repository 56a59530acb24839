"""Image-classification datasets through TensorFlow Datasets (imported only when used)."""

from __future__ import annotations

import importlib.util
import itertools
import logging
import math
import os
from pathlib import Path
from typing import Any

from ._dataset import Dataset
from ._env import downloads_disabled
from ._errors import DatasetNotAvailableError
from ._network import describe_probe, network_reachable
from ._resize import check_image_size, resize_splits
from ._split import ArraySplit, Split
from ._stats import CHANNEL_STATS, channel_stats, check_scaling, scaling_stats, standardise
from ._streaming import StreamingSplit

INSTALL_HINT = "pip install 'ctlearn[tfds]'"
# Datasets whose float32 inputs (train + test) would exceed this are streamed from disk instead.
_MAX_IN_MEMORY_BYTES = 4 * 2**30
_DEFAULT_IMAGE_SIZE = 224
# Streamed datasets without published statistics are standardised with those of this many
# training images (the first ones in stored order).
_STATS_SAMPLE = 1024
_STATS_BATCH = 256  # streamed images per batch while estimating statistics
_STATS_CHUNK = 4096  # in-memory images per chunk while computing statistics


def tfds_has(name: str) -> bool:
    """Whether TFDS is installed and has a dataset called ``name`` (``NAME[/CONFIG][:VERSION]``)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        return False
    try:
        tfds.builder_cls(name.split("/")[0].split(":")[0])
    except ValueError:  # DatasetNotFoundError, or a string that is no dataset name at all
        return False
    return True


def load_tfds(
    name: str,
    *,
    data_dir: str | os.PathLike | None,
    cache_dir: str | os.PathLike | None,
    image_size: int | None,
    scaling: str = "standardise",
) -> Dataset:
    """A TFDS image-classification dataset: its train split, and its test split (else validation).

    Small datasets are read into memory, their images resized to ``image_size``×``image_size``
    if it is given; those with images of varying size or too large for memory at that size (e.g.
    imagenet2012) become ``StreamingSplit``s whose images are resized and centre-cropped to
    ``image_size`` (default 224). ``data_dir`` is the TFDS data directory
    (default: TFDS's own); ``cache_dir`` is not used. Downloads unless ``$CTLEARN_OFFLINE`` is set.
    """
    check_scaling(scaling)
    check_image_size(image_size)
    tfds = _import_tfds(name)
    try:
        builder = tfds.builder(
            name, data_dir=None if data_dir is None else os.fspath(Path(data_dir).expanduser())
        )
    except tfds.core.DatasetNotFoundError as e:
        raise DatasetNotAvailableError(f"TFDS has no dataset called {name!r}") from e
    image_key, label_key = _classification_keys(builder, name)
    _prepare(builder, name)
    splits = builder.info.splits
    test_split = next((s for s in ("test", "validation") if s in splits), None)
    if "train" not in splits or test_split is None:
        raise DatasetNotAvailableError(
            f"{name}: ctlearn needs a 'train' and a 'test' (or 'validation') split; TFDS has "
            f"{', '.join(splits) or 'none'}"
        )
    shape = tuple(builder.info.features[image_key].shape)
    stats = scaling_stats(scaling, CHANNEL_STATS.get(builder.name), shape[-1])
    num_examples = splits["train"].num_examples + splits[test_split].num_examples
    variable = None in shape
    side = image_size or (_DEFAULT_IMAGE_SIZE if variable else shape[0])
    resize = variable or image_size is not None
    example_shape = (side, side, shape[-1]) if resize else shape
    if variable or num_examples * math.prod(example_shape) * 4 > _MAX_IN_MEMORY_BYTES:
        train, test = _streaming(builder, ("train", test_split), example_shape, resize, stats)
    else:
        train, test = _in_memory(tfds, builder, ("train", test_split), stats)
        if image_size is not None:
            train, test = resize_splits(name, (train, test), image_size)
    where = str(builder.data_dir) + ("" if test_split == "test" else f"; test split: {test_split}")
    num_classes = builder.info.features[label_key].num_classes
    return Dataset(
        name, train, test, num_classes, train.input_shape, f"tfds:{builder.name} ({where})"
    )


def _import_tfds(name: str) -> Any:
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise DatasetNotAvailableError(
            f"{name} is read through TensorFlow Datasets, which is not installed: {INSTALL_HINT}"
        ) from e
    if importlib.util.find_spec("tensorflow") is None:
        raise DatasetNotAvailableError(
            f"{name} is read through TensorFlow Datasets, which needs TensorFlow (not installed): "
            f"{INSTALL_HINT}"
        )
    return tfds


def _prepare(builder: Any, name: str) -> None:
    """Makes sure the dataset is prepared in the builder's data_dir, downloading it if allowed."""
    # TFDS logs a warning while it looks for a data folder that lacks its dataset_info.json
    # (e.g. one not there at all); whether the data is there is ours to say, in one error.
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        prepared = builder.is_prepared()
    finally:
        absl.setLevel(level)
    if prepared:
        return
    manual = builder.MANUAL_DOWNLOAD_INSTRUCTIONS
    if manual:
        manual_dir = Path(builder.data_dir_root) / "downloads" / "manual"
        how = (
            f"download its files by hand into {manual_dir} as TFDS explains "
            f"({' '.join(manual.split())}), then run again with downloads allowed"
        )
    else:
        how = (
            "run once with internet access (ctlearn then downloads and prepares it), or run "
            f"`tfds build {name} --data_dir DIR` and pass data_dir=DIR, or pass data_dir= a TFDS "
            "data directory where it is already prepared"
        )
    if downloads_disabled():
        raise DatasetNotAvailableError(
            f"{name} is not prepared in {builder.data_dir} and downloads are disabled "
            f"(CTLEARN_OFFLINE={os.environ['CTLEARN_OFFLINE']}); to get it, {how}"
        )
    if not network_reachable():  # once, instead of TFDS's retries (~200 s without a network)
        raise DatasetNotAvailableError(
            f"{name} is not prepared in {builder.data_dir} and there is no network to download "
            f"it ({describe_probe()}); to get it, {how}"
        )
    try:
        builder.download_and_prepare()
    except Exception as e:  # no network, a manual download, a TFDS defect: all mean "not here"
        raise DatasetNotAvailableError(
            f"{name} is not prepared in {builder.data_dir} and preparing it failed "
            f"({type(e).__name__}: {e}); to get it, {how}"
        ) from e


def _classification_keys(builder: Any, name: str) -> tuple[str, str]:
    """The (image, label) feature names, checking that the dataset is image classification."""
    from tensorflow_datasets.core import features

    keys = builder.info.supervised_keys
    if (
        isinstance(keys, tuple)
        and len(keys) == 2
        and all(isinstance(k, str) for k in keys)
        and isinstance(builder.info.features[keys[0]], features.Image)
        and isinstance(builder.info.features[keys[1]], features.ClassLabel)
    ):
        return keys
    raise DatasetNotAvailableError(
        f"{name} is not an image-classification dataset (TFDS supervised keys {keys!r}, "
        "expected an image and a class label)"
    )


def _in_memory(
    tfds: Any, builder: Any, split_names: tuple[str, str], stats: tuple | None
) -> tuple[Split, Split]:
    """Both splits read into memory, standardised with ``stats`` or the train split's own."""
    arrays = [
        tfds.as_numpy(builder.as_dataset(split=s, as_supervised=True, batch_size=-1))
        for s in split_names
    ]
    if stats is None:
        train_x = arrays[0][0]
        chunks = (train_x[i : i + _STATS_CHUNK] for i in range(0, len(train_x), _STATS_CHUNK))
        stats = channel_stats(chunks, scale=1 / 255)
    train, test = (ArraySplit(standardise(x, *stats), y) for x, y in arrays)
    return train, test


def _streaming(
    builder: Any,
    split_names: tuple[str, str],
    example_shape: tuple[int, int, int],
    resize: bool,
    stats: tuple | None,
) -> tuple[Split, Split]:
    """Both splits as ``StreamingSplit``s; without ``stats``, those of a sample of train images."""
    if stats is None:
        channels = example_shape[-1]
        probe = StreamingSplit(  # mean 0 and std 1 yield the images scaled to [0, 1]
            builder, split_names[0], 0, example_shape, resize, (0.0,) * channels, (1.0,) * channels
        )
        sample = probe._batches(_STATS_BATCH, None, False)
        num_batches = -(-_STATS_SAMPLE // _STATS_BATCH)
        stats = channel_stats(x for x, _ in itertools.islice(sample, num_batches))
    train, test = (
        StreamingSplit(
            builder, s, builder.info.splits[s].num_examples, example_shape, resize, *stats
        )
        for s in split_names
    )
    return train, test
