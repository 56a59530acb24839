"""The continuous simulator refuses bad settings and bad data before integrating (issue 18,
item 4): non-finite rates and time constants, labels outside the model's classes, non-finite
inputs, each with an error naming the value (the data, not the learning rate)."""

import math

import jax
import jax.numpy as jnp
import pytest

import ctlearn.dynamics as ct
from models import mlp


@pytest.mark.parametrize("lr", [math.inf, -math.inf, math.nan, -1.0])
@pytest.mark.parametrize(
    "rule", [ct.FGARule, ct.LGFGARule, ct.FGWRule, ct.DFARule, ct.GradientFlow]
)
def test_rules_refuse_a_learning_rate_that_is_not_finite_and_non_negative(rule, lr):
    with pytest.raises(ValueError, match=r"learning rate lr .* finite and non-negative"):
        rule(lr=lr)


@pytest.mark.parametrize("alpha", [math.inf, math.nan, -0.5])
def test_fdfa_refuses_a_feedback_learning_rate_that_is_not_finite(alpha):
    with pytest.raises(ValueError, match=r"feedback_lr .* finite and non-negative"):
        ct.FDFARule(lr=0.1, feedback_lr=alpha)


def _setup(x=None, y=None, neurons=None):
    model = mlp((6,), 3, (5,), key=jax.random.key(0))
    kx, ky = jax.random.split(jax.random.key(1))
    x = jax.random.normal(kx, (2, 4, 6)) if x is None else x
    y = jax.random.randint(ky, (2, 4), 0, 3) if y is None else y
    stream = ct.Presentations(x, y, duration=0.5)
    sim = ct.Simulator(
        ct.FGARule(lr=0.5),
        ct.Sinusoids(0.1, 0.05),
        neurons=neurons or ct.Instantaneous(),
        dt0=0.005,
    )
    return sim, model, stream


def test_neurons_with_an_infinite_time_constant_are_refused_before_integrating():
    sim, model, stream = _setup(neurons=ct.Leaky(math.inf))
    with pytest.raises(ValueError, match=r"neurons' time constant tau=inf is not finite"):
        ct.simulate(sim, model, stream, key=jax.random.key(2), progress=False)


@pytest.mark.parametrize("label", [3, 7, -1])
def test_labels_outside_the_models_classes_are_refused_naming_the_data(label):
    y = jnp.zeros((2, 4), jnp.int32).at[1, 2].set(label)
    sim, model, stream = _setup(y=y)
    with pytest.raises(ValueError, match=rf"label y\[1, 2\]={label} is out of range") as err:
        ct.simulate(sim, model, stream, key=jax.random.key(2), progress=False)
    assert "0..2 (the model has 3 classes)" in str(err.value)
    assert "lr" not in str(err.value)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_inputs_are_refused_naming_the_data(bad):
    x = jnp.ones((2, 4, 6)).at[1, 3, 0].set(bad)
    sim, model, stream = _setup(x=x)
    with pytest.raises(ValueError, match=r"inputs x are not finite: presentation 1, example 3"):
        ct.prepare(sim, model, stream, key=jax.random.key(2))


def test_float_labels_are_refused():
    sim, model, stream = _setup(y=jnp.zeros((2, 4), jnp.float32))
    with pytest.raises(ValueError, match=r"labels y must be integer class indices"):
        sim.check(stream, model)


def test_good_data_passes_the_check():
    sim, model, stream = _setup()
    sim.check(stream, model)


def test_real_targets_of_an_mse_loss_pass_and_non_finite_ones_are_refused():
    # The MSE loss reads real-valued targets (the teaching demos use them); they must be finite.
    sim, model, stream = _setup(y=jnp.full((2, 4), 0.5, jnp.float32))
    mse = ct.Simulator(ct.FGARule(lr=0.5, loss="mse"), sim.perturbation, dt0=0.005, loss="mse")
    mse.check(stream, model)
    bad = ct.Presentations(stream.x, stream.y.at[0, 1].set(jnp.nan), duration=0.5)
    with pytest.raises(ValueError, match=r"target y\[0, 1\]=nan is not finite"):
        mse.check(bad, model)
    with pytest.raises(ValueError, match=r"labels y must be integer class indices"):
        sim.check(stream, model)  # cross-entropy still wants class indices
