"""``Presentations.from_split``: the presentation stream of a dataset split, in the order of
``ctlearn.data.batches`` (and so of ``ctlearn.train``). Data: a synthetic split whose inputs
carry their own index, so every order can be read off the stream."""

import jax
import numpy as np
import pytest

import ctlearn.dynamics as ct
from ctlearn.data import ArraySplit

N, BATCH = 10, 3  # 3 whole batches per epoch; example 9 is each epoch's dropped remainder


def _split():
    index = np.arange(N, dtype=np.float32)
    return ArraySplit(np.stack([index, -index], axis=1), (np.arange(N) % 4).astype(np.int32))


def test_shuffled_epochs_follow_the_documented_permutations():
    key = jax.random.key(3)
    stream = ct.Presentations.from_split(
        _split(), BATCH, duration=2.0, transition=0.5, key=key, epochs=2
    )
    assert stream.x.shape == (6, BATCH, 2) and stream.y.shape == (6, BATCH)
    assert stream.duration == 2.0 and stream.transition == 0.5
    for epoch in range(2):
        # by hand: epoch e's order is jax.random.permutation(fold_in(key, e), N), cut in batches
        order = np.asarray(jax.random.permutation(jax.random.fold_in(key, epoch), N))[:9]
        seen = np.asarray(stream.x[3 * epoch : 3 * epoch + 3, :, 0]).reshape(-1)
        np.testing.assert_array_equal(seen, order)
        np.testing.assert_array_equal(
            np.asarray(stream.y[3 * epoch : 3 * epoch + 3]).reshape(-1), order % 4
        )
    assert not np.array_equal(stream.x[:3], stream.x[3:])  # the two epochs differ


def test_count_cycles_epochs_and_cuts_the_last_one_short():
    stream = ct.Presentations.from_split(_split(), BATCH, duration=1.0, count=5)
    # stored order, each epoch's remainder (example 9) dropped
    expected = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(np.asarray(stream.x[:, :, 0]).reshape(-1), expected)
    one = ct.Presentations.from_split(_split(), BATCH, duration=1.0)
    assert one.num == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"count": 0}, "count .* must be an int >= 1, got 0"),
        ({"epochs": 0}, "epochs must be an int >= 1, got 0"),
        ({"count": 2.5}, "count .* must be an int >= 1, got 2.5"),
    ],
)
def test_bad_counts_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        ct.Presentations.from_split(_split(), BATCH, duration=1.0, **options)


def test_a_batch_larger_than_the_split_is_refused_naming_both():
    with pytest.raises(ValueError, match="batch_size"):
        ct.Presentations.from_split(_split(), 11, duration=1.0)
