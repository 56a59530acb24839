"""``load_dataset``: one entry point that looks a dataset name up in one table."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

from ._dataset import Dataset
from ._errors import DatasetNotAvailableError
from ._idx import load_idx
from ._mnist1d import load_mnist1d
from ._stats import check_scaling
from ._tfds import INSTALL_HINT, load_tfds, tfds_has

Loader = Callable[..., Dataset]  # (name, *, data_dir, cache_dir, image_size) -> Dataset

SOURCES = ("auto", "local", "tfds")


@dataclasses.dataclass(frozen=True)
class _Entry:
    description: str
    loaders: dict[str, Loader]  # source -> loader, in the order source="auto" tries them


_TFDS_HINT = f"TFDS ({INSTALL_HINT}; downloads once, or pass data_dir= a TFDS data directory)"
_DATASETS: dict[str, _Entry] = {
    "mnist1d": _Entry(
        "MNIST-1D: 4000/1000 sequences of 40 values, 10 classes; generated offline by the mnist1d "
        "package and cached (no download)",
        {"local": load_mnist1d},
    ),
    "mnist": _Entry(
        "MNIST digits: 60000/10000 28x28x1 images, 10 classes; IDX files in data_dir, else "
        + _TFDS_HINT,
        {"local": load_idx, "tfds": load_tfds},
    ),
    "fashion_mnist": _Entry(
        "Fashion-MNIST: 60000/10000 28x28x1 images, 10 classes; IDX files in data_dir or "
        "/usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist), else "
        + _TFDS_HINT,
        {"local": load_idx, "tfds": load_tfds},
    ),
    "cifar10": _Entry(
        "CIFAR-10: 50000/10000 32x32x3 images, 10 classes; " + _TFDS_HINT,
        {"tfds": load_tfds},
    ),
    "cifar100": _Entry(
        "CIFAR-100: 50000/10000 32x32x3 images, 100 classes; " + _TFDS_HINT,
        {"tfds": load_tfds},
    ),
    "imagenet2012": _Entry(
        "ImageNet ILSVRC-2012: 1.28M/50000 images streamed from disk, resized and centre-cropped "
        "to 224x224x3, 1000 classes; TFDS after a manual download of the ILSVRC-2012 tar files "
        f"into TFDS's manual_dir ({INSTALL_HINT})",
        {"tfds": load_tfds},
    ),
}


def available_datasets() -> dict[str, str]:
    """Dataset name -> one line saying what it is and how to get it.

    Any other TFDS image-classification dataset can be loaded by its TFDS name as well.
    """
    return {name: entry.description for name, entry in _DATASETS.items()}


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    source: str = "auto",
    cache_dir: str | os.PathLike | None = None,
    image_size: int | None = None,
    scaling: str = "standardise",
) -> Dataset:
    """The dataset called ``name`` (see ``available_datasets``), normalised, as train and test.

    ``source`` picks where it comes from: ``"local"`` (generated, or files on this machine),
    ``"tfds"`` (TensorFlow Datasets) or ``"auto"`` (local first, then TFDS). ``data_dir`` is the
    folder holding the IDX files (mnist, fashion_mnist) or the TFDS data directory (mnist1d takes
    none); ``cache_dir`` is where ctlearn caches what it generates (default ``$CTLEARN_CACHE``,
    ``$XDG_CACHE_HOME/ctlearn`` or ``~/.cache/ctlearn``); ``image_size`` resizes in-memory
    image datasets to ``image_size``×``image_size`` (bilinear) and is the side of the square
    crops of datasets streamed from disk (default 224). A TFDS dataset without a test split uses
    its validation split as ``test``. TFDS downloads missing data unless ``$CTLEARN_OFFLINE=1``.
    ``scaling`` (``SCALINGS``): image inputs standardised per channel (default) or mapped from
    [0, 255] onto [-1, 1] (``"symmetric"``, as the FDFA paper's code does).

    Raises ``DatasetNotAvailableError`` for an unknown name or data that is not there.
    """
    check_dataset(name, source)
    check_scaling(scaling)
    entry = _lookup(name)
    loaders = entry.loaders if source == "auto" else {source: entry.loaders[source]}
    failures = []
    for label, loader in loaders.items():
        try:
            return loader(
                name,
                data_dir=data_dir,
                cache_dir=cache_dir,
                image_size=image_size,
                scaling=scaling,
            )
        except DatasetNotAvailableError as e:
            failures.append((label, e))
    if len(failures) == 1:
        raise failures[0][1]
    reasons = "\n".join(f"  - {label}: {e}" for label, e in failures)
    raise DatasetNotAvailableError(f"{name} is not available from any source:\n{reasons}")


def check_dataset(name: str, source: str = "auto") -> None:
    """Raises ``DatasetNotAvailableError`` unless ``name`` is a known dataset offering ``source``.

    Cheap (reads no data): for validating a configuration before any work is done.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; valid sources: {', '.join(SOURCES)}")
    entry = _lookup(name)
    if source != "auto" and source not in entry.loaders:
        valid = ", ".join(("auto", *entry.loaders))
        raise DatasetNotAvailableError(
            f"{name} has no {source!r} source; valid sources for {name}: {valid}"
        )


def _lookup(name: str) -> _Entry:
    if not isinstance(name, str):
        raise TypeError(f"a dataset name must be a str, got {name!r}")
    if name in _DATASETS:
        return _DATASETS[name]
    if tfds_has(name):
        return _Entry(f"TFDS dataset {name}", {"tfds": load_tfds})
    raise DatasetNotAvailableError(
        f"unknown dataset {name!r}; available datasets: {', '.join(_DATASETS)}, or the name of "
        f"any TFDS image-classification dataset ({INSTALL_HINT})"
    )
