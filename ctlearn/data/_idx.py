"""MNIST and Fashion-MNIST from local IDX files (the format they are distributed in)."""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from jaxtyping import Shaped

from ._dataset import Dataset
from ._env import cache_root
from ._errors import DatasetNotAvailableError
from ._resize import check_image_size, resize_splits
from ._split import ArraySplit
from ._stats import CHANNEL_STATS, check_scaling, scaling_stats, standardise

# IDX type codes (third magic byte) and the big-endian element types they stand for.
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"

# (images, labels) file names per split, each found with or without ".gz".
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Where each dataset is looked for when no data_dir is given (besides the ctlearn cache).
_SYSTEM_DIRS = {"fashion_mnist": (Path("/usr/share/datasets/fashion-mnist"),), "mnist": ()}
_HOW_TO_GET = {
    "fashion_mnist": (
        "install the Debian/Ubuntu package (apt-get install dataset-fashion-mnist, which puts the "
        "files in /usr/share/datasets/fashion-mnist), or pass data_dir= a folder holding them"
    ),
    "mnist": "pass data_dir= a folder holding them (from the MNIST distribution)",
}
_NUM_CLASSES = 10


def read_idx(path: str | os.PathLike) -> Shaped[np.ndarray, " ..."]:
    """The array stored in one IDX file, gzip-compressed or not, in native byte order.

    Raises ValueError naming the file when it is not a well-formed IDX file.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw.startswith(_GZIP_MAGIC):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt gzip data ({e})") from e
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_TYPES or raw[3] == 0:
        raise ValueError(
            f"{path} is not an IDX file: it starts with bytes {raw[:4].hex(' ') or '(none)'}, "
            f"expected 00 00, a type code in {{{', '.join(f'{c:02x}' for c in _IDX_TYPES)}}} "
            "and the number of dimensions (> 0)"
        )
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes for {ndim} dimensions)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: the header says shape {shape} of {dtype.name} ({expected} bytes of data), "
            f"but the file holds {len(raw) - header} bytes after the header"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def load_idx(
    name: str,
    *,
    data_dir: str | os.PathLike | None,
    cache_dir: str | os.PathLike | None,
    image_size: int | None,
    scaling: str = "standardise",
) -> Dataset:
    """MNIST or Fashion-MNIST from a folder of the four IDX files, as NHWC [n, 28, 28, 1] inputs
    scaled as ``scaling`` says (``SCALINGS``), or [n, image_size, image_size, 1] if
    ``image_size`` is given (bilinear resizing, ``resize_splits``).

    Looks in ``data_dir`` if given, else in the system folder (Fashion-MNIST:
    /usr/share/datasets/fashion-mnist) and in ``cache_root(cache_dir)/NAME``.
    """
    check_scaling(scaling)
    check_image_size(image_size)
    if data_dir is not None:
        candidates = (Path(data_dir).expanduser(),)
    else:
        candidates = (*_SYSTEM_DIRS[name], cache_root(cache_dir) / name)
    for directory in candidates:
        files = {
            split: [_find(directory, stem) for stem in stems] for split, stems in _FILES.items()
        }
        if all(p is not None for pair in files.values() for p in pair):
            break
    else:
        wanted = ", ".join(f"{stem}[.gz]" for stems in _FILES.values() for stem in stems)
        raise DatasetNotAvailableError(
            f"{name}: the IDX files ({wanted}) are not in {' or '.join(map(str, candidates))}; "
            f"to get them, {_HOW_TO_GET[name]}"
        )
    mean, std = scaling_stats(scaling, CHANNEL_STATS[name], 1)
    train, test = (_read_split(*files[split], mean, std) for split in ("train", "test"))
    if image_size is not None:
        train, test = resize_splits(name, (train, test), image_size)
    return Dataset(name, train, test, _NUM_CLASSES, train.input_shape, str(directory))


def _find(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_split(
    images_path: Path, labels_path: Path, mean: tuple[float, ...], std: tuple[float, ...]
) -> ArraySplit:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or len(images) == 0:
        raise ValueError(
            f"{images_path}: expected uint8 images of shape [n > 0, rows, cols], "
            f"got {images.dtype.name} of shape {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.shape != images.shape[:1]:
        raise ValueError(
            f"{labels_path}: expected {len(images)} uint8 labels to match {images_path.name}, "
            f"got {labels.dtype.name} of shape {labels.shape}"
        )
    if labels.max() >= _NUM_CLASSES:
        raise ValueError(f"{labels_path}: label {labels.max()} is outside [0, {_NUM_CLASSES})")
    return ArraySplit(standardise(images[..., None], mean, std), labels)
