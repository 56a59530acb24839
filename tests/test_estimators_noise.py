"""Perturbation directions: zero mean, unit variance, independent entries."""

import jax
import numpy as np
import pytest

from ctlearn.estimators._noise import draw, draw_many

N = 1_000_003  # not a multiple of 32: the last packed word is partly used
Z = 6.0  # a correct sampler fails one of these checks with probability < 1e-6


@pytest.mark.parametrize("noise", ["gaussian", "rademacher"])
def test_directions_have_zero_mean_unit_variance_and_no_neighbour_correlation(noise):
    u = np.asarray(draw(jax.random.PRNGKey(0), (N,), noise), dtype=np.float64)
    assert u.shape == (N,) and np.all(np.isfinite(u))
    if noise == "rademacher":
        assert set(np.unique(u)) == {-1.0, 1.0}
    assert abs(u.mean()) < Z / np.sqrt(N)
    assert abs(np.mean(u**2) - 1.0) < Z * np.sqrt(np.var(u**2) + 1e-12) / np.sqrt(N) + 1e-9
    # Entries drawn from the same random word (lags 1..31) and from neighbouring words (32).
    for lag in (1, 2, 16, 31, 32):
        corr = np.mean(u[:-lag] * u[lag:])
        assert abs(corr) < Z / np.sqrt(N - lag), (lag, corr)


@pytest.mark.parametrize("noise", ["gaussian", "rademacher"])
def test_draw_many_gives_independent_arrays_of_the_asked_shapes(noise):
    shapes = [(3, 5), (7,), (2, 2, 2), (40,)]
    key = jax.random.PRNGKey(1)
    arrays = draw_many(key, shapes, noise)
    assert [a.shape for a in arrays] == shapes
    again = draw_many(key, shapes, noise)
    assert all(np.array_equal(a, b) for a, b in zip(arrays, again))
    other = draw_many(jax.random.PRNGKey(2), shapes, noise)
    assert not np.array_equal(arrays[-1], other[-1])
