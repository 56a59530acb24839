"""ctlearn.data through TensorFlow Datasets, offline.

Every dataset here is synthetic: ``tfds.testing.mock_data`` generates random images and labels,
and the hand-written ``dataset_info.json`` files under tests/fixtures/tfds only give split sizes.
"""

import time
from pathlib import Path

import jax
import numpy as np
import pytest

from ctlearn.data import (
    ArraySplit,
    DatasetNotAvailableError,
    StreamingSplit,
    batches,
    load_dataset,
)

tfds = pytest.importorskip("tensorflow_datasets")
pytest.importorskip("tensorflow")  # the one TensorFlow import of this file

FIXTURES = Path(__file__).parent / "fixtures" / "tfds"
N = 24  # examples per split, as in the fixtures' dataset_info.json
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("CTLEARN_OFFLINE", "1")


@pytest.fixture
def mock_tfds():
    """TFDS serving synthetic examples for the datasets with a fixture (any data_dir is ignored)."""
    with tfds.testing.mock_data(
        num_examples=N, policy=tfds.testing.MockPolicy.USE_FILES, data_dir=str(FIXTURES)
    ):
        yield


def _raw(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The synthetic uint8 images and labels that the mock serves for ``name``."""
    data = tfds.load(name, split=split, as_supervised=True, batch_size=-1)
    return tfds.as_numpy(data)


@pytest.mark.parametrize(
    "name, mean, std, shape",
    [
        ("mnist", (0.1307,), (0.3081,), (28, 28, 1)),
        ("cifar10", CIFAR10_MEAN, CIFAR10_STD, (32, 32, 3)),
    ],
)
def test_small_tfds_datasets_load_into_memory(mock_tfds, name, mean, std, shape):
    ds = load_dataset(name, source="tfds")
    assert (ds.num_classes, ds.input_shape) == (10, shape)
    assert ds.source.startswith(f"tfds:{name}")
    for split, split_name in ((ds.train, "train"), (ds.test, "test")):
        images, labels = _raw(name, split_name)
        assert split.x.shape == (N, *shape) and split.x.dtype == np.float32
        assert split.y.shape == (N,) and split.y.dtype == np.int32
        assert np.isfinite(split.x).all() and 0 <= split.y.min() and split.y.max() < 10
        expected = (images / 255 - np.array(mean)) / np.array(std)
        np.testing.assert_allclose(split.x, expected, rtol=0, atol=1e-5)
        np.testing.assert_array_equal(split.y, labels)


def test_symmetric_scaling_of_a_tfds_dataset(mock_tfds):
    ds = load_dataset("cifar10", source="tfds", scaling="symmetric")
    images, _ = _raw("cifar10", "test")
    np.testing.assert_allclose(ds.test.x, images / 127.5 - 1.0, rtol=0, atol=1e-6)


def test_other_datasets_are_standardised_with_train_statistics(mock_tfds):
    ds = load_dataset("svhn_cropped")
    assert (ds.num_classes, ds.input_shape, len(ds.train)) == (10, (32, 32, 3), N)
    np.testing.assert_allclose(ds.train.x.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(ds.train.x.std(axis=(0, 1, 2)), 1, atol=1e-4)


def test_fashion_mnist_falls_back_to_tfds_without_idx_files(mock_tfds, tmp_path):
    ds = load_dataset("fashion_mnist", data_dir=tmp_path)
    assert ds.source.startswith("tfds:fashion_mnist")
    assert ds.train.x.shape == (N, 28, 28, 1)


@pytest.mark.parametrize("side", [48, 20])
def test_in_memory_datasets_are_resized_as_tensorflow_resizes(mock_tfds, side):
    import tensorflow as tf

    ds = load_dataset("cifar10", source="tfds", scaling="symmetric", image_size=side)
    assert ds.input_shape == (side, side, 3) and isinstance(ds.test.x, np.ndarray)
    images, labels = _raw("cifar10", "test")
    # TensorFlow's own bilinear resize (antialiased when shrinking), independent of JAX's.
    expected = tf.image.resize(images / 127.5 - 1.0, (side, side), "bilinear", antialias=True)
    np.testing.assert_allclose(ds.test.x, expected.numpy(), rtol=0, atol=1e-4)
    np.testing.assert_array_equal(ds.test.y, labels)


def test_a_resized_dataset_too_large_for_memory_is_streamed(mock_tfds, monkeypatch):
    import ctlearn.data._tfds as tfds_loader

    # 48 examples of 32x32x3 fit under the limit, at 64x64 they do not: streamed at 64x64.
    monkeypatch.setattr(tfds_loader, "_MAX_IN_MEMORY_BYTES", 2 * N * 32 * 32 * 3 * 4)
    assert isinstance(load_dataset("cifar10", image_size=32).train, ArraySplit)
    ds = load_dataset("cifar10", image_size=64)
    assert isinstance(ds.train, StreamingSplit) and ds.input_shape == (64, 64, 3)


def _epoch(split, batch_size, **kwargs):
    """Labels and one fingerprint per example (the sum of its input) over one epoch."""
    ys, prints, sizes = [], [], []
    for x, y in batches(split, batch_size, drop_last=False, **kwargs):
        assert x.dtype == np.float32 and y.dtype == np.int32
        assert x.shape == (len(y), *split.input_shape)
        assert np.isfinite(np.asarray(x)).all()
        ys.append(np.asarray(y))
        prints.append(np.asarray(x, np.float64).reshape(len(y), -1).sum(axis=1))
        sizes.append(len(y))
    return np.concatenate(ys), np.concatenate(prints), sizes


def test_imagenet2012_streams_at_224_by_default(mock_tfds):
    ds = load_dataset("imagenet2012")
    assert isinstance(ds.train, StreamingSplit) and not hasattr(ds.train, "x")
    assert (ds.num_classes, ds.input_shape, len(ds.train), len(ds.test)) == (
        1000,
        (224, 224, 3),
        N,
        N,
    )
    x, y = next(batches(ds.test, 4, shuffle=False))
    assert (x.shape, x.dtype, y.shape, y.dtype) == ((4, 224, 224, 3), np.float32, (4,), np.int32)


def test_streamed_order_is_reproducible_and_covers_each_example_once(mock_tfds):
    train = load_dataset("imagenet2012", image_size=40).train
    assert train.input_shape == (40, 40, 3)
    labels, stored, sizes = _epoch(train, 10, shuffle=False)
    assert sizes == [10, 10, 4] and labels.min() >= 0 and labels.max() < 1000
    np.testing.assert_array_equal(stored, _epoch(train, 10, shuffle=False)[1])
    key = jax.random.key(0)
    shuffled = _epoch(train, 10, key=key)[1]
    np.testing.assert_array_equal(shuffled, _epoch(train, 10, key=key)[1])
    assert not np.array_equal(shuffled, _epoch(train, 10, key=jax.random.key(1))[1])
    assert not np.array_equal(shuffled, stored)
    np.testing.assert_array_equal(np.sort(shuffled), np.sort(stored))  # each example once


def test_streamed_dataset_without_known_statistics_is_standardised(mock_tfds):
    ds = load_dataset("food101", image_size=32)
    assert isinstance(ds.train, StreamingSplit)
    assert (ds.num_classes, ds.input_shape) == (101, (32, 32, 3))
    x = np.concatenate([np.asarray(x) for x, _ in batches(ds.train, 8, shuffle=False)])
    # The statistics come from the first training images: here all N of them.
    np.testing.assert_allclose(x.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(x.std(axis=(0, 1, 2)), 1, atol=1e-4)


def test_unprepared_dataset_fails_fast_offline(tmp_path):
    start = time.perf_counter()
    with pytest.raises(DatasetNotAvailableError) as info:
        load_dataset("cifar10", data_dir=tmp_path)
    assert time.perf_counter() - start < 5
    message = str(info.value)
    assert str(tmp_path / "cifar10") in message and "tfds build cifar10" in message


def test_failed_download_becomes_dataset_not_available(tmp_path, monkeypatch):
    monkeypatch.setenv("CTLEARN_OFFLINE", "0")

    def no_network(self, *args, **kwargs):
        raise ConnectionError("synthetic failure: no route to host")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_network)
    monkeypatch.setattr("ctlearn.data._tfds.network_reachable", lambda: True)
    with pytest.raises(DatasetNotAvailableError, match="ConnectionError: synthetic failure"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_non_classification_tfds_dataset_is_rejected(tmp_path):
    with pytest.raises(DatasetNotAvailableError, match="not an image-classification dataset"):
        load_dataset("imdb_reviews", data_dir=tmp_path)
