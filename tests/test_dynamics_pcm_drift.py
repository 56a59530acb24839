"""PCM drift after programming: the power law, aihwkit's conductance-dependent exponent,
folded exponents that never flip a weight, determinism per key, and refusals."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ctlearn.dynamics as ct
from models.mlp import mlp


def weights(model):
    return np.concatenate(
        [np.ravel(a) for a in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))]
    )


MODEL = mlp((30,), 4, (50,), local_heads=False, key=jax.random.key(0))


def test_a_fixed_exponent_is_a_power_law():
    """ν = 0.05 on every device: w(t)/w(0) = ((t + t0)/t0)^(−0.05) (rtol 1e-5), so the log-log
    slope of |w| against t + t0 is −ν; at t = 0 nothing changes."""
    drift = ct.PCMDrift(nu=0.05, t0=20.0)
    w0 = weights(MODEL)
    np.testing.assert_allclose(weights(drift(MODEL, 0.0, key=jax.random.key(1))), w0, rtol=1e-6)
    for t in (20.0, 1e3, 1e6):
        ratio = weights(drift(MODEL, t, key=jax.random.key(1)))[w0 != 0] / w0[w0 != 0]
        np.testing.assert_allclose(ratio, ((t + 20.0) / 20.0) ** -0.05, rtol=1e-5)
    assert np.array_equal(weights(ct.PCMDrift(nu=0.0)(MODEL, 1e6, key=jax.random.key(2))), w0)


def test_aihwkit_exponent_law_and_folded_draws():
    """μ_ν and σ_ν by hand at g = 1, 0.1 and 1e-3 (clipped at the ends); drawn exponents are
    |N(μ, σ)| (non-negative, mean within 5 standard errors); drift shrinks |w|, never flips it,
    and the same key draws the same devices."""
    mean, spread = ct.pcm_drift_exponent(jnp.array([1.0, 0.1, 1e-3]))
    expect_mean = np.clip(-0.0155 * np.log([1.0, 0.1, 1e-3]) + 0.0244, 0.049, 0.1)
    expect_spread = np.clip(-0.0125 * np.log([1.0, 0.1, 1e-3]) - 0.0059, 0.008, 0.045)
    np.testing.assert_allclose(mean, expect_mean, rtol=1e-6)
    np.testing.assert_allclose(spread, expect_spread, rtol=1e-6)
    assert float(mean[0]) == pytest.approx(0.049) and float(spread[2]) == pytest.approx(0.045)
    drift = ct.PCMDrift(w_max=0.5)
    nu = np.concatenate(
        [np.ravel(a) for a in jax.tree.leaves(drift.exponents(MODEL, key=jax.random.key(3)))]
    )
    assert np.all(nu >= 0)
    w0 = weights(MODEL)
    mu, sd = (np.asarray(a) for a in ct.pcm_drift_exponent(jnp.abs(w0) / 0.5))
    folded = sd * np.sqrt(2 / np.pi) * np.exp(-(mu**2) / (2 * sd**2)) + mu * (
        1 - 2 * _phi(-mu / sd)
    )
    assert abs(np.mean(nu - folded)) < 5 * np.sqrt(np.mean(sd**2) / nu.size)
    later = weights(drift(MODEL, 1e5, key=jax.random.key(3)))
    assert np.all(np.abs(later) <= np.abs(w0)) and np.all(np.sign(later) == np.sign(w0))
    np.testing.assert_array_equal(later, weights(drift(MODEL, 1e5, key=jax.random.key(3))))


def _phi(x):
    return 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: ct.PCMDrift(nu=-0.1), "nu must be finite and >= 0"),
        (lambda: ct.PCMDrift(nu_spread=-1.0), "nu_spread must be finite and >= 0"),
        (lambda: ct.PCMDrift(t0=0.0), "t0 must be finite and > 0"),
        (
            lambda: ct.PCMDrift()(MODEL, -1.0, key=jax.random.key(0)),
            "elapsed must be a finite time >= 0",
        ),
    ],
)
def test_bad_settings_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()
