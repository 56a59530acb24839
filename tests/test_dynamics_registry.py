"""The continuous rules by name (``ct.RULES``): every discrete estimator has its continuous
twin, the twins without a perturbation integrate to the registered estimator's SGD steps, and
bad names and options are refused. Inputs are synthetic (Gaussian, random labels)."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ctlearn.dynamics as ct
from ctlearn.estimators import ESTIMATORS, make_estimator
from models import mlp

ETA, DT, STEPS = 0.5, 0.01, 20


@pytest.fixture(scope="module")
def problem():
    """Two blocks (a hidden layer with its local head; a hidden layer and the output)."""
    kx, ky, km = jax.random.split(jax.random.key(5), 3)
    model = mlp((10,), 4, (16, 12), init="torch", key=km)
    x = jax.random.normal(kx, (8, 10))
    y = jax.random.randint(ky, (8,), 0, 4)
    return model, x, y


def test_every_discrete_method_has_its_continuous_twin_and_no_other():
    assert list(ct.RULES) == list(ESTIMATORS)
    for name in ct.RULES:
        rule = ct.make_rule(name, lr=0.1)
        assert isinstance(rule, ct.AbstractRule) and rule.lr == 0.1
        assert "lr" in ct.rule_options(name) and "loss" in ct.rule_options(name)


def _leaves(model):
    return jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))


# The twins that perturb nothing: with the batch held, Euler steps of dt integrate exactly the
# registered estimator's SGD steps of size η·dt (same feedback key: the same random pathway).
DETERMINISTIC = ["bp", "l-bp", "lg-bp", "fa", "l-fa", "lg-fa", "dfa"]


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_a_twin_without_perturbation_integrates_the_registered_estimators_sgd_steps(name, problem):
    model, x, y = problem
    rule = ct.make_rule(name, lr=ETA)
    assert rule.site == "none"
    stream = ct.Presentations(x[None], y[None], duration=STEPS * DT)
    sim = ct.Simulator(rule, None, solver=diffrax.Euler(), dt0=DT)
    result = ct.simulate(sim, model, stream, key=jax.random.key(0), progress=False)

    estimator = make_estimator(name)
    # ``prepare`` hands the rule's init the first half of the simulation key: the same random
    # feedback pathway as the estimator's init on that half (checked, so a change shows here).
    rule_key = jax.random.split(jax.random.key(0))[0]
    _, prepared = ct.prepare(sim, model, stream, key=jax.random.key(0))
    drawn = rule.init(model, key=rule_key)
    assert all(bool(jnp.array_equal(a, b)) for a, b in
               zip(jax.tree.leaves(drawn), jax.tree.leaves(prepared.rule)))  # fmt: skip
    m, state = model, estimator.init(model, key=rule_key)
    for _ in range(STEPS):
        g, state, _ = estimator.estimate(m, (x, y), state, key=None)
        m = eqx.apply_updates(m, jax.tree.map(lambda v: -ETA * DT * v, g))
    moved = [float(jnp.max(jnp.abs(u - v))) for u, v in zip(_leaves(m), _leaves(model))]
    assert max(moved) > 1e-3  # the weights did move
    for u, v in zip(_leaves(result.model), _leaves(m)):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


def test_dkp_twin_integrates_the_discrete_dkp_with_sgd_feedback_to_first_order(problem):
    """Euler on (w, B) updates w with the B at the step's start; the discrete DKP updates B
    first and projects through the new one. The two differ by O(η·α·dt²) a step, so over
    ``STEPS`` steps the weights agree to O(α·dt) relative to their change: checked against
    that order (measured: 0.008 for the weights, 0.0005 for the feedback, against α·dt = 0.02),
    and the change itself is checked to be large (the feedback starts random, not at zero)."""
    model, x, y = problem
    alpha = 2.0
    rule = ct.make_rule("dkp", lr=ETA, feedback_lr=alpha, feedback_init="kaiming")
    stream = ct.Presentations(x[None], y[None], duration=STEPS * DT)
    sim = ct.Simulator(rule, None, solver=diffrax.Euler(), dt0=DT)
    result = ct.simulate(sim, model, stream, key=jax.random.key(0), progress=False)

    estimator = make_estimator(
        "dkp", feedback_optimizer="sgd", feedback_lr=alpha * DT, feedback_init="kaiming"
    )
    m, state = model, estimator.init(model, key=jax.random.split(jax.random.key(0))[0])
    for _ in range(STEPS):
        g, state, _ = estimator.estimate(m, (x, y), state, key=None)
        m = eqx.apply_updates(m, jax.tree.map(lambda v: -ETA * DT * v, g))
    start_b = estimator.init(model, key=jax.random.split(jax.random.key(0))[0])[0]
    for what, continuous, discrete, start in (
        ("weights", _leaves(result.model), _leaves(m), _leaves(model)),
        ("feedback", list(result.rule_state), list(state[0]), list(start_b)),
    ):
        change = _distance(discrete, start)
        gap = _distance(continuous, discrete)
        assert change > 1e-2, what
        assert gap / change < alpha * DT, (what, gap, change)


def _distance(a, b):
    return float(jnp.sqrt(sum(jnp.sum((u - v) ** 2) for u, v in zip(a, b))))


def test_bad_names_and_options_are_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match="unknown rule 'sgd'.*valid rules: bp, l-bp"):
        ct.make_rule("sgd", lr=0.1)
    with pytest.raises(ValueError, match="rule 'fa' has no option.*mask.*valid options: lr"):
        ct.make_rule("fa", lr=0.1, mask=True)
    with pytest.raises(ValueError, match="unknown feedback_init 'ones'; valid: zeros, kaiming"):
        ct.make_rule("dkp", lr=0.1, feedback_init="ones")
    with pytest.raises(ValueError, match="feedback_decay"):
        ct.make_rule("dkp", lr=0.1, feedback_decay=-1.0)
    with pytest.raises(ValueError, match="learning rate"):
        ct.make_rule("l-fa", lr=float("nan"))


@pytest.mark.parametrize("name", ["l-bp", "lg-bp", "l-fa", "lg-fa"])
def test_local_twins_refuse_a_network_without_local_heads(name):
    model = mlp((10,), 4, (16, 12), local_heads=False, key=jax.random.key(0))
    with pytest.raises(ValueError, match="local head"):
        ct.make_rule(name, lr=0.1).init(model, key=jax.random.key(1))
