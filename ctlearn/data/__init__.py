"""Datasets (MNIST-1D, IDX files, TensorFlow Datasets) and the batch iterator over their splits."""

from ._batches import batches as batches
from ._batches import num_batches as num_batches
from ._dataset import Dataset as Dataset
from ._errors import DatasetNotAvailableError as DatasetNotAvailableError
from ._idx import read_idx as read_idx
from ._load import available_datasets as available_datasets
from ._load import check_dataset as check_dataset
from ._load import load_dataset as load_dataset
from ._split import ArraySplit as ArraySplit
from ._split import Split as Split
from ._stats import SCALINGS as SCALINGS
from ._streaming import StreamingSplit as StreamingSplit

__all__ = [
    "batches",
    "num_batches",
    "Dataset",
    "DatasetNotAvailableError",
    "read_idx",
    "available_datasets",
    "check_dataset",
    "load_dataset",
    "ArraySplit",
    "Split",
    "SCALINGS",
    "StreamingSplit",
]
