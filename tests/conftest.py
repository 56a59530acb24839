import gzip
import os
import struct
from pathlib import Path

os.environ.setdefault("CTLEARN_OFFLINE", "1")  # never let a test wait on TFDS downloads

# The tests' arrays are small, so XLA's compilation, not the run, takes most of their time; without
# backend optimisation a compilation is much cheaper and the results differ only in
# rounding. The default suite therefore compiles unoptimised. CTLEARN_TEST_XLA_OPTIMISE=1 (or an
# optimisation level given in XLA_FLAGS) tests the optimised code that users run instead.
if os.environ.get("CTLEARN_TEST_XLA_OPTIMISE", "0") != "1" and "optimization_level" not in (
    os.environ.get("XLA_FLAGS", "")
):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
    ).strip()

import equinox as eqx
import jax
import numpy as np
import pytest


@pytest.fixture
def getkey():
    """A fresh, reproducible PRNG key per call."""
    counter = iter(range(10**6))
    base = jax.random.PRNGKey(1234)
    return lambda: jax.random.fold_in(base, next(counter))


def tree_allclose(a, b, **tolerances) -> bool:
    la, lb = (
        jax.tree.leaves(eqx.filter(a, eqx.is_array)),
        jax.tree.leaves(eqx.filter(b, eqx.is_array)),
    )
    return len(la) == len(lb) and all(
        np.allclose(np.asarray(x), np.asarray(y), **tolerances) for x, y in zip(la, lb)
    )


_IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(">i2"): 0x0B, np.dtype(">f4"): 0x0D}


def write_idx(path: Path, array: np.ndarray, *, compress: bool = False) -> Path:
    """Writes ``array`` as an IDX file (magic 00 00 type ndim, big-endian dims, big-endian data)."""
    big_endian = array.astype(array.dtype.newbyteorder(">"))
    magic = bytes([0, 0, _IDX_CODES[big_endian.dtype], array.ndim])
    header = magic + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + big_endian.tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.fixture
def synthetic_idx_dir(tmp_path):
    """A folder of the four MNIST IDX files holding synthetic images (train gzipped, test not)."""
    rng = np.random.default_rng(0)
    data = {}
    for split, n, compress in (("train", 12, True), ("t10k", 5, False)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        suffix = ".gz" if compress else ""
        write_idx(tmp_path / f"{split}-images-idx3-ubyte{suffix}", images, compress=compress)
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte{suffix}", labels, compress=compress)
        data[split] = (images, labels)
    return tmp_path, data
