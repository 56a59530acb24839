"""ctlearn.data without TensorFlow: MNIST-1D, IDX files, errors and the batch iterator."""

import gzip
import random
import shutil
import struct
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import write_idx

from ctlearn.data import (
    ArraySplit,
    Dataset,
    DatasetNotAvailableError,
    available_datasets,
    batches,
    load_dataset,
    num_batches,
    read_idx,
)

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("CTLEARN_OFFLINE", "1")  # a TFDS fallback must never wait on the network


# --- MNIST-1D ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist1d_fresh(tmp_path_factory):
    """MNIST-1D generated into an empty cache, with the global random states around the load."""
    cache = tmp_path_factory.mktemp("cache")
    random.seed(7)
    np.random.seed(7)
    before = (random.getstate(), np.random.get_state())
    ds = load_dataset("mnist1d", cache_dir=cache)
    after = (random.getstate(), np.random.get_state())
    return ds, cache, before, after


def test_mnist1d_shapes_dtypes_and_normalisation(mnist1d_fresh):
    ds = mnist1d_fresh[0]
    assert (ds.name, ds.num_classes, ds.input_shape) == ("mnist1d", 10, (40,))
    assert (ds.train.x.shape, ds.train.y.shape) == ((4000, 40), (4000,))
    assert (ds.test.x.shape, ds.test.y.shape) == ((1000, 40), (1000,))
    assert len(ds.train) == 4000 and len(ds.test) == 1000
    for split in (ds.train, ds.test):
        assert split.x.dtype == np.float32 and split.y.dtype == np.int32
        assert np.isfinite(split.x).all()
        assert set(np.unique(split.y)) == set(range(10))
    # Standardised with the training mean and std (scalars), float32 rounding only.
    assert abs(float(ds.train.x.mean())) < 1e-5
    assert abs(float(ds.train.x.std()) - 1) < 1e-4
    assert abs(float(ds.test.x.mean())) < 0.1


def test_mnist1d_leaves_global_random_state_alone(mnist1d_fresh):
    _, _, (py_before, np_before), (py_after, np_after) = mnist1d_fresh
    assert py_after == py_before
    assert np_after[0] == np_before[0] and np.array_equal(np_after[1], np_before[1])
    assert np_after[2:] == np_before[2:]


def test_mnist1d_cache_is_written_once_then_reused(mnist1d_fresh, monkeypatch):
    ds, cache, _, _ = mnist1d_fresh
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 1 and files[0].startswith("mnist1d-") and files[0].endswith(".npz")
    assert str(cache / files[0]) in ds.source

    def no_generation(*args, **kwargs):
        raise AssertionError("mnist1d was regenerated although the cache holds it")

    monkeypatch.setattr("mnist1d.data.make_dataset", no_generation)
    again = load_dataset("mnist1d", cache_dir=cache)
    np.testing.assert_array_equal(again.train.x, ds.train.x)
    np.testing.assert_array_equal(again.test.y, ds.test.y)
    assert sorted(p.name for p in cache.iterdir()) == files  # no temporary file left behind


def test_mnist1d_is_deterministic_and_a_broken_cache_is_regenerated(mnist1d_fresh, tmp_path):
    ds, cache, _, _ = mnist1d_fresh
    name = next(cache.iterdir()).name
    (tmp_path / name).write_bytes(b"not an npz file")
    with pytest.warns(UserWarning, match="unreadable"):
        fresh = load_dataset("mnist1d", cache_dir=tmp_path)
    for a, b in ((fresh.train, ds.train), (fresh.test, ds.test)):
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.y, b.y)
    assert (tmp_path / name).read_bytes() == (cache / name).read_bytes()


def test_mnist1d_cache_dir_from_environment(mnist1d_fresh, tmp_path, monkeypatch):
    _, cache, _, _ = mnist1d_fresh
    cached = next(cache.iterdir())
    monkeypatch.setattr("mnist1d.data.make_dataset", lambda *a, **k: pytest.fail("regenerated"))
    for env, folder in (("CTLEARN_CACHE", tmp_path / "own"), ("XDG_CACHE_HOME", tmp_path / "xdg")):
        target = folder / "ctlearn" if env == "XDG_CACHE_HOME" else folder
        target.mkdir(parents=True)
        shutil.copy(cached, target / cached.name)
        monkeypatch.delenv("CTLEARN_CACHE", raising=False)
        monkeypatch.setenv(env, str(folder))
        assert str(target / cached.name) in load_dataset("mnist1d").source


def test_mnist1d_rejects_data_dir(tmp_path):
    with pytest.raises(ValueError, match="cache_dir"):
        load_dataset("mnist1d", data_dir=tmp_path, cache_dir=tmp_path)


# --- IDX files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, ">i2", ">f4"])
def test_read_idx_round_trips(tmp_path, dtype, compress):
    # Synthetic data, written by this test.
    array = np.arange(2 * 3 * 5).reshape(2, 3, 5).astype(dtype) - (0 if dtype == np.uint8 else 7)
    read = read_idx(write_idx(tmp_path / "a.idx", array, compress=compress))
    assert read.shape == (2, 3, 5) and read.dtype.isnative
    np.testing.assert_array_equal(read, array)


def test_idx_folder_loads_and_is_normalised(synthetic_idx_dir):
    folder, data = synthetic_idx_dir
    ds = load_dataset("mnist", data_dir=folder, source="local")
    assert (ds.num_classes, ds.input_shape, ds.source) == (10, (28, 28, 1), str(folder))
    for split, name in ((ds.train, "train"), (ds.test, "t10k")):
        images, labels = data[name]
        assert split.x.shape == (len(images), 28, 28, 1) and split.x.dtype == np.float32
        expected = (images[..., None] / 255 - MNIST_MEAN) / MNIST_STD
        np.testing.assert_allclose(split.x, expected, rtol=0, atol=1e-5)
        np.testing.assert_array_equal(split.y, labels)
        assert split.y.dtype == np.int32


def test_symmetric_scaling_maps_idx_images_onto_minus_one_to_one(synthetic_idx_dir):
    folder, data = synthetic_idx_dir
    ds = load_dataset("mnist", data_dir=folder, source="local", scaling="symmetric")
    images, _ = data["train"]
    # torchvision's Normalize(0.5, 0.5) after ToTensor: 0 -> -1, 255 -> 1 (synthetic images).
    np.testing.assert_allclose(ds.train.x[..., 0], images / 127.5 - 1.0, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="unknown input scaling 'unit'; valid: standardise"):
        load_dataset("mnist", data_dir=folder, source="local", scaling="unit")
    with pytest.raises(ValueError, match="does not apply; valid: standardise"):
        load_dataset("mnist1d", scaling="symmetric")


def _bilinear_2x(images: np.ndarray) -> np.ndarray:
    """Doubles each side by hand: with pixel centres at half-integers, output pixel i samples the
    input at i/2 - 1/4, i.e. 3/4 of its nearer and 1/4 of its farther neighbour, the nearer one
    alone at the borders."""

    def along(x, axis):
        n = x.shape[axis]
        near = np.repeat(np.arange(n), 2)  # output 2k and 2k+1 lie nearest input k
        far = np.clip(near + np.tile([-1, 1], n), 0, n - 1)
        return 0.75 * np.take(x, near, axis) + 0.25 * np.take(x, far, axis)

    return along(along(images, 1), 2)


def test_idx_images_are_resized_bilinearly(synthetic_idx_dir):
    folder, data = synthetic_idx_dir
    ds = load_dataset("mnist", data_dir=folder, source="local", image_size=56)
    assert ds.input_shape == (56, 56, 1) and ds.train.x.shape == (12, 56, 56, 1)
    for split, name in ((ds.train, "train"), (ds.test, "t10k")):
        images, labels = data[name]
        standardised = (images[..., None] / 255 - MNIST_MEAN) / MNIST_STD
        np.testing.assert_allclose(split.x, _bilinear_2x(standardised), rtol=0, atol=1e-4)
        np.testing.assert_array_equal(split.y, labels)
    # Shrinking averages (antialiasing): a 28-pixel side halved gives 2x2 means in the interior.
    small = load_dataset("mnist", data_dir=folder, source="local", image_size=14).train.x
    assert small.shape == (12, 14, 14, 1)
    mean = (data["train"][0][..., None] / 255 - MNIST_MEAN) / MNIST_STD
    np.testing.assert_allclose(small.mean(), mean.mean(), rtol=0, atol=1e-3)
    assert small.std() < mean.std()  # averaging neighbours of random images lowers the spread


def test_bad_image_sizes_are_refused_before_any_work(synthetic_idx_dir, monkeypatch):
    folder, _ = synthetic_idx_dir
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="image_size must be a positive int or None"):
            load_dataset("mnist", data_dir=folder, source="local", image_size=bad)
    with pytest.raises(ValueError, match="mnist1d holds sequences, not images"):
        load_dataset("mnist1d", image_size=64)
    import ctlearn.data._resize as resize

    monkeypatch.setattr(resize, "MAX_RESIZED_BYTES", 2**20)
    with pytest.raises(
        ValueError,
        match="mnist at 256×256 would hold 4 MiB in memory, over the 1 MiB limit; choose a smaller",
    ):
        load_dataset("mnist", data_dir=folder, source="local", image_size=256)


def test_corrupt_idx_files_raise_clear_errors(tmp_path):
    good = np.zeros((4, 28, 28), np.uint8)
    header = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", *good.shape)
    cases = {
        "not an IDX file": b"\x01\x02\x03\x04" + good.tobytes(),
        "holds 100 bytes": header + bytes(100),  # the header promises 4 * 28 * 28 bytes
        "truncated IDX header": bytes([0, 0, 0x08, 3, 0, 0]),
        "corrupt gzip": gzip.compress(header + good.tobytes())[:-12],
    }
    for message, content in cases.items():
        path = tmp_path / f"{message.replace(' ', '_')}.idx"
        path.write_bytes(content)
        with pytest.raises(ValueError, match=message) as info:
            read_idx(path)
        assert str(path) in str(info.value)


def test_idx_labels_that_do_not_match_the_images_are_rejected(synthetic_idx_dir):
    folder, data = synthetic_idx_dir
    write_idx(folder / "t10k-labels-idx1-ubyte", data["t10k"][1][:3])
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.*expected 5 uint8 labels"):
        load_dataset("mnist", data_dir=folder)


@pytest.mark.skipif(
    not FASHION_DIR.is_dir(),
    reason=f"{FASHION_DIR} is absent (Debian package dataset-fashion-mnist is not installed)",
)
def test_debian_fashion_mnist_is_found_and_loads():
    ds = load_dataset("fashion_mnist")
    assert ds.source == str(FASHION_DIR)
    assert (len(ds.train), len(ds.test), ds.num_classes) == (60000, 10000, 10)
    assert ds.input_shape == (28, 28, 1) and ds.train.x.dtype == np.float32
    np.testing.assert_array_equal(np.bincount(ds.train.y), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(ds.test.y), [1000] * 10)
    # The published mean/std standardise the real training set to within 0.01.
    assert abs(float(ds.train.x.mean())) < 0.01 and abs(float(ds.train.x.std()) - 1) < 0.01


# --- Errors -------------------------------------------------------------------------------------


def test_unknown_name_lists_the_available_datasets():
    with pytest.raises(DatasetNotAvailableError, match="unknown dataset 'no_such_set'") as info:
        load_dataset("no_such_set")
    for name in available_datasets():
        assert name in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_local_folder_says_where_it_looked_and_how_to_get_it(tmp_path):
    empty = tmp_path / "empty"
    with pytest.raises(DatasetNotAvailableError) as info:
        load_dataset("fashion_mnist", data_dir=empty, source="local")
    assert str(empty) in str(info.value)
    assert "apt-get install dataset-fashion-mnist" in str(info.value)
    # With source="auto" the TFDS fallback is tried too, and its failure is reported as well.
    with pytest.raises(DatasetNotAvailableError) as info:
        load_dataset("fashion_mnist", data_dir=empty)
    message = str(info.value)
    assert str(empty) in message and "apt-get install dataset-fashion-mnist" in message
    assert "tfds" in message.lower()


def test_missing_tfds_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # makes the import fail
    with pytest.raises(DatasetNotAvailableError, match=r"pip install 'ctlearn\[tfds\]'"):
        load_dataset("cifar10")
    with pytest.raises(DatasetNotAvailableError, match=r"ctlearn\[tfds\]"):
        load_dataset("no_such_set")


def test_bad_source_values():
    with pytest.raises(ValueError, match="valid sources: auto, local, tfds"):
        load_dataset("mnist1d", source="web")
    with pytest.raises(DatasetNotAvailableError, match="valid sources for mnist1d: auto, local"):
        load_dataset("mnist1d", source="tfds")


def test_available_datasets_describe_each_name_in_one_line():
    described = available_datasets()
    assert {"mnist1d", "mnist", "fashion_mnist", "cifar10", "cifar100", "imagenet2012"} <= set(
        described
    )
    assert all(isinstance(d, str) and d and "\n" not in d for d in described.values())


# --- Batches ------------------------------------------------------------------------------------


@pytest.fixture
def numbered_split():
    """23 synthetic examples whose inputs hold their own index, so an order can be read back."""
    n = 23
    return ArraySplit(np.repeat(np.arange(n, dtype=np.float32)[:, None], 3, axis=1), np.arange(n))


def _order(split, batch_size, **kwargs):
    return np.concatenate([np.asarray(y) for _, y in batches(split, batch_size, **kwargs)])


def test_batches_shapes_and_dtypes(numbered_split):
    out = list(batches(numbered_split, 5, key=jax.random.key(0)))
    assert len(out) == num_batches(numbered_split, 5) == 4
    for x, y in out:
        assert isinstance(x, jax.Array) and isinstance(y, jax.Array)
        assert (x.shape, x.dtype, y.shape, y.dtype) == ((5, 3), np.float32, (5,), np.int32)
        np.testing.assert_array_equal(x[:, 0], y)  # inputs stay with their labels


@pytest.mark.parametrize("make_key", [jax.random.key, jax.random.PRNGKey])
def test_batches_order_is_the_permutation_drawn_from_the_key(numbered_split, make_key):
    key = make_key(3)
    order = _order(numbered_split, 5, key=key, drop_last=False)
    np.testing.assert_array_equal(order, np.asarray(jax.random.permutation(key, 23)))
    np.testing.assert_array_equal(order, _order(numbered_split, 5, key=key, drop_last=False))
    other = _order(numbered_split, 5, key=make_key(4), drop_last=False)
    assert not np.array_equal(order, other)
    assert sorted(order) == list(range(23)) == sorted(other)  # every example exactly once


def test_batches_final_short_batch_and_stored_order(numbered_split):
    sizes = [len(y) for _, y in batches(numbered_split, 5, shuffle=False, drop_last=False)]
    assert sizes == [5, 5, 5, 5, 3] and num_batches(numbered_split, 5, drop_last=False) == 5
    np.testing.assert_array_equal(_order(numbered_split, 5, shuffle=False), np.arange(20))
    stored = _order(numbered_split, 4, key=jax.random.key(0), shuffle=False, drop_last=False)
    np.testing.assert_array_equal(stored, np.arange(23))


def test_batches_on_a_loaded_dataset(mnist1d_fresh):
    ds = mnist1d_fresh[0]
    x, y = next(batches(ds.test, 32, key=jax.random.key(0)))
    assert (x.shape, y.shape) == ((32, 40), (32,))


def test_batches_rejects_bad_arguments(numbered_split):
    with pytest.raises(ValueError, match="needs a PRNG key"):
        batches(numbered_split, 5)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="positive int"):
            num_batches(numbered_split, bad)
    with pytest.raises(ValueError, match="larger than the split"):
        batches(numbered_split, 24, key=jax.random.key(0))
    assert num_batches(numbered_split, 24, drop_last=False) == 1


def test_split_and_dataset_validate_their_contents():
    with pytest.raises(ValueError, match="x \\(4, 2\\) and y \\(3,\\)"):
        ArraySplit(np.zeros((4, 2)), np.zeros(3, int))
    with pytest.raises(ValueError, match="must be integers"):
        ArraySplit(np.zeros((4, 2)), np.zeros(4))
    split = ArraySplit(np.zeros((4, 2)), np.array([0, 1, 2, 5]))
    with pytest.raises(ValueError, match=r"labels span \[0, 5\]"):
        Dataset("toy", split, split, 3, (2,), "synthetic")
