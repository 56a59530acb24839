"""Recording inside presentations: ``simulate(..., record=Recording(...))``.

Synthetic data (random inputs and labels, labelled as such) on a tiny network, fixed seeds.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ctlearn.dynamics as ct
from models import mlp

TIMES = 5


def _stream(presentations: int = 3) -> ct.Presentations:
    """Random inputs and labels (synthetic, not a dataset); the input blends over 0.2."""
    kx, ky = jax.random.split(jax.random.key(3))
    x = jax.random.normal(kx, (presentations, 4, 10))
    y = jax.random.randint(ky, (presentations, 4), 0, 3)
    return ct.Presentations(x, y, duration=1.0, transition=0.2)


def _setup():
    model = mlp((10,), 3, (8,), local_heads=False, key=jax.random.key(0))
    sim = ct.Simulator(ct.FGARule(lr=2.0), ct.Sinusoids(0.05, 0.2), dt0=0.02)
    return model, sim


def _record(state, signals):
    return {"w": state.params.layers[0].weight, "dw": state.delta, "x": signals.x}


def _weights(model) -> list:
    return jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))


def test_recording_traces_every_presentation_of_the_run_it_leaves_unchanged():
    model, sim = _setup()
    stream = _stream()
    key = jax.random.key(1)
    recording = ct.Recording(_record, TIMES)
    result = ct.simulate(sim, model, stream, key=key, progress=False, record=recording)
    starts = [model]  # the weights at the start of every presentation, from a plain run
    plain = ct.simulate(
        sim,
        model,
        stream,
        key=key,
        chunk=1,
        progress=False,
        callback=lambda done, partial: starts.append(partial.model),
    )
    assert plain.recorded is None
    w = result.recorded["w"]
    assert w.shape == (stream.num, TIMES, *model.layers[0].weight.shape)
    np.testing.assert_array_equal(result.steps, plain.steps)
    for got, want in zip(_weights(result.model), _weights(plain.model)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        recording.local_times(stream.duration), np.arange(TIMES) / TIMES, atol=1e-7
    )
    for k in range(stream.num):
        # Each presentation starts from the weights the previous ones learned.
        np.testing.assert_allclose(w[k, 0], starts[k].layers[0].weight, rtol=1e-6, atol=1e-7)
        # The weight change restarts at each presentation; the input blends from the last one.
        for dw in jax.tree.leaves(result.recorded["dw"]):
            assert float(jnp.max(jnp.abs(dw[k, 0]))) == 0.0
        np.testing.assert_allclose(result.recorded["x"][k, 0], stream.x[max(k - 1, 0)])
        np.testing.assert_allclose(result.recorded["x"][k, -1], stream.x[k], atol=1e-6)
    assert float(jnp.max(jnp.abs(w[-1, -1] - w[0, 0]))) > 1e-4  # it learned on the way


@pytest.mark.parametrize("times", [0, -2, True, 2.5])
def test_a_recording_needs_a_positive_integer_number_of_times(times):
    with pytest.raises(ValueError, match=f"times >= 1 .*got times={times!r}"):
        ct.Recording(_record, times)
