"""The discrete BP reference of the analog studies (``ctlearn.sweep.discrete_bp``): its steps
against ``jax.grad`` by hand, its first-order agreement with the simulator's gradient flow, its
rows against the member networks, the parameter mean the sweeps record, and its refusals."""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ctlearn.dynamics as ct
from ctlearn.sweep import AnalogBase, discrete_bp, train_discrete_bp
from ctlearn.sweep._analog import dataset, initial_network, parameter_means
from models import mlp
from sims._analog import mlp_model


def synthetic_stream(presentations: int, *, duration: float = 1.0):
    """Synthetic data (labelled as such): Gaussian inputs, random labels of 3 classes."""
    kx, ky = jax.random.split(jax.random.key(7))
    x = jax.random.normal(kx, (presentations, 6, 5))
    y = jax.random.randint(ky, (presentations, 6), 0, 3)
    return ct.Presentations(x, y, duration=duration)


def flat(model):
    return jnp.concatenate(
        [v.ravel() for v in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))]
    )


def test_each_presentation_is_one_sgd_step_of_the_exact_gradient():
    """Three presentations: w ← w − lr·∇ mean CE, with ∇ from ``jax.grad`` of a log-softmax
    written here (not the library's loss or estimator)."""
    model = mlp((5,), 3, (4,), key=jax.random.key(0))
    stream = synthetic_stream(3)
    lr = 0.3

    def mean_ce(params, static, x, y):
        logits = eqx.combine(params, static)(x).logits
        logp = logits - jax.scipy.special.logsumexp(logits, axis=-1, keepdims=True)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=-1))

    expected = model
    for x, y in zip(stream.x, stream.y):
        params, static = eqx.partition(expected, eqx.is_inexact_array)
        grads = jax.grad(mean_ce)(params, static, x, y)
        expected = eqx.combine(jax.tree.map(lambda p, g: p - lr * g, params, grads), static)
    got = train_discrete_bp(model, stream, lr)
    np.testing.assert_allclose(flat(got), flat(expected), rtol=1e-5, atol=1e-6)
    assert float(jnp.max(jnp.abs(flat(got) - flat(model)))) > 1e-3  # it moved


def test_small_steps_match_the_simulators_gradient_flow_to_first_order():
    """One SGD step of η·T per presentation against gradient flow ẇ = −η∇L integrated by the
    simulator over presentations of duration T (no transition): the total weight changes differ
    by a term of higher order in η·T (measured 1.8 % at η·T = 0.02 and 0.1 % at 0.002); the
    tolerances are 3 % and 0.3 %, and the difference must shrink at least 5-fold."""
    model = mlp((5,), 3, (4,), key=jax.random.key(1))
    stream = synthetic_stream(2, duration=1.0)
    errors = []
    for eta in (0.02, 0.002):
        sim = ct.Simulator(ct.GradientFlow(lr=eta), None, solver=diffrax.Heun(), dt0=0.05)
        flow = ct.simulate(sim, model, stream, key=jax.random.key(0), progress=False).model
        steps = train_discrete_bp(model, stream, eta * stream.duration)
        d_flow, d_steps = flat(flow) - flat(model), flat(steps) - flat(model)
        errors.append(float(jnp.linalg.norm(d_steps - d_flow) / jnp.linalg.norm(d_flow)))
    assert errors[0] < 0.03 and errors[1] < 0.003
    assert errors[1] < errors[0] / 5


def test_rows_are_the_members_networks_trained_and_measured():
    """Seed s starts from the sweep member's network of seed s; its row's accuracy and
    parameter mean equal the trained network's, computed here with numpy."""
    base = AnalogBase.from_dict({"widths": [8], "presentations": 4, "test_size": 100})
    rows = discrete_bp(base, mlp_model, [0, 3], lr=0.5)
    assert [r["seed"] for r in rows] == [0, 3]
    data = dataset(base.dataset)
    for row, seed in zip(rows, [0, 3]):
        start = initial_network(base, data, mlp_model, seed)
        trained = train_discrete_bp(start, base.stream(data), 0.5)
        logits = np.asarray(trained(jnp.asarray(data.test.x[:100])).logits)
        accuracy = np.mean(logits.argmax(-1) == np.asarray(data.test.y[:100]))
        assert row["test_accuracy"] == pytest.approx(accuracy, abs=1e-6)
        assert row["weight_mean"] == pytest.approx(
            float(np.mean(np.asarray(flat(trained)))), rel=1e-5
        )
        assert np.isfinite(row["test_loss"])
    assert rows[0]["test_accuracy"] != rows[1]["test_accuracy"]  # different initial networks


def test_parameter_means_are_per_member_means_of_every_stored_number():
    a = mlp((5,), 3, (4,), key=jax.random.key(0))
    b = mlp((5,), 3, (4,), key=jax.random.key(1))
    parts = [eqx.partition(m, eqx.is_array) for m in (a, b)]
    arrays = jax.tree.map(lambda *v: jnp.stack(v), *(p for p, _ in parts))
    means = parameter_means(eqx.combine(arrays, parts[0][1]))
    by_hand = [np.mean(np.asarray(flat(m))) for m in (a, b)]  # 5·4 + 4 + 4·3 + 3 numbers each
    np.testing.assert_allclose(np.asarray(means), by_hand, rtol=1e-6)


@pytest.mark.parametrize("lr", [0.0, -1.0, float("nan"), True, "0.1"])
def test_a_bad_learning_rate_is_refused(lr):
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        train_discrete_bp(mlp((5,), 3, (4,), key=jax.random.key(0)), synthetic_stream(1), lr)


@pytest.mark.parametrize("seeds", [[], [1.5], [True]])
def test_bad_seeds_are_refused_before_any_work(seeds):
    base = AnalogBase.from_dict({"widths": [8], "presentations": 2})
    with pytest.raises(ValueError, match="seeds must be a non-empty list of ints"):
        discrete_bp(base, mlp_model, seeds, lr=0.1)
