"""Batch normalisation in conv layers, its running statistics, and AlexNet's shapes."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tree_allclose

from ctlearn.estimators import make_estimator
from ctlearn.nn import BatchNorm, Conv2d, Dense, FlatDense, Network, identity
from ctlearn.train import TrainState, eval_step, make_optimizer, train_step
from models import alexnet


def _small_bn_net(key):
    k = jax.random.split(key, 4)
    layers = (
        Conv2d(3, 4, 3, pool=(3, 2), batch_norm=True, key=k[0]),
        FlatDense(4 * 3 * 3, 6, key=k[1]),
        Dense(6, 3, identity, key=k[2]),
    )
    heads = (FlatDense(36, 3, identity, key=k[3]), None)
    return Network(layers, heads, (1, 3), flatten_input=False, input_shape=(9, 9, 3))


@pytest.fixture(scope="module")
def problem():
    kx, ky, km = jax.random.split(jax.random.PRNGKey(11), 3)
    x = 2.0 + 3.0 * jax.random.normal(kx, (8, 9, 9, 3))
    y = jax.random.randint(ky, (8,), 0, 3)
    return _small_bn_net(km), (x, y)


def test_batch_norm_normalises_with_batch_statistics_in_training_and_running_ones_after():
    norm = BatchNorm.create(5)
    z = 4.0 + 2.0 * jax.random.normal(jax.random.PRNGKey(0), (64, 5))
    out = np.asarray(norm(z))
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(0), 1.0, atol=1e-3)
    # Inference with the initial running statistics (mean 0, var 1) is the identity.
    np.testing.assert_allclose(dataclasses.replace(norm, inference=True)(z), z, rtol=1e-4)
    stats = norm.updated_stats(z)
    unbiased = np.var(np.asarray(z), axis=0, ddof=1)
    np.testing.assert_allclose(stats.mean, 0.1 * np.asarray(z).mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats.var, 0.9 + 0.1 * unbiased, rtol=1e-5)


def test_local_grad_through_batch_norm_equals_backpropagation(problem):
    # The property every estimator relies on: with the exact δ = ∂L/∂z at each perturbation
    # point, each layer's local gradient (through its own normalisation) is BP's gradient.
    model, (x, y) = problem
    zeros = model.zeros_perturbation(x)

    def loss(perturbation):
        logits = model(x, perturbation).logits
        return jnp.mean(jax.nn.logsumexp(logits, -1) - logits[jnp.arange(8), y])

    deltas = jax.grad(loss)(zeros)
    trace = model(x)
    exact, _, _ = make_estimator("bp").estimate(model, (x, y), None, key=None)
    for i, layer in enumerate(model.layers):
        # Recomputing the convolution, and reusing the one the forward pass recorded.
        for linear in (None, trace.linear[i]):
            local = layer.local_grad(trace.inputs[i], deltas[i], linear)
            assert tree_allclose(
                eqx.filter(local, eqx.is_inexact_array), exact.layers[i], rtol=1e-4, atol=1e-6
            ), (i, linear is None)
    assert trace.linear[0] is not None  # a batch-normalised layer records its convolution
    assert float(jnp.abs(exact.layers[0].norm.scale).sum()) > 0


def test_train_step_updates_running_statistics_from_the_batch_not_the_optimizer(problem):
    model, (x, y) = problem
    estimator = make_estimator("fdfa")
    optimizer = make_optimizer("adam", 1e-2, weight_decay=0.5)  # decay would corrupt stats
    state = TrainState.start(
        model,
        optimizer.init(eqx.filter(model, eqx.is_inexact_array)),
        estimator.init(model, key=jax.random.PRNGKey(0)),
    )
    new_state, loss, _ = train_step(estimator, optimizer, state, x, y, jax.random.PRNGKey(1))
    expected = model.layers[0].norm.updated_stats(model.layers[0].convolve(x))
    got = new_state.model.layers[0].norm.stats
    np.testing.assert_allclose(got.mean, expected.mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.var, expected.var, rtol=1e-5)
    assert np.isfinite(float(loss))
    # Evaluation uses the running statistics: one example alone gets the same output as in a batch.
    inference = new_state.model.inference()
    alone = inference(x[:1]).logits
    np.testing.assert_allclose(alone, inference(x).logits[:1], rtol=1e-5, atol=1e-6)


# Optimizer, step size and steps per rule: Adam at 1e-2 for 20 steps unless noted. Steps cost
# about a millisecond here; the compilation dominates. The 8-example training loss starts above
# chance (ln 3) and must fall by LOSS_DROP.
# * FA: with this draw of the random feedback the hidden layers' first updates ascend the loss
#   (the feedback is not yet aligned with the forward weights); it rises for tens of steps and
#   falls below its start only once the output weights have aligned with the feedback.
# * DKP: its feedback starts at zero and equals the output weights' change (the Kolen-Pollack
#   identity; sims.dkp_alignment), so the hidden layers' error at first comes almost entirely
#   through the initial output weights: their updates amplify the current logits, which raises the
#   loss of this net (the hidden-layer part of each update has e·Δz > 0). Adam, which moves the
#   hidden layers at its full step however small that error, raises the loss at every step size
#   tried (1e-3 to 1e-2, up to 60 steps). SGD moves them in proportion to the still small
#   feedback, so the loss falls, mostly through the output layer's exact error.
TRAINING = {
    "bp": ("adam", 1e-2, 20),
    "fa": ("adam", 1e-2, 60),
    "dfa": ("adam", 1e-2, 20),
    "dkp": ("sgd", 0.1, 20),
    "fdfa": ("adam", 1e-2, 20),
    "fg-a": ("adam", 1e-2, 20),
    "lg-fg-a": ("adam", 1e-2, 20),
}
LOSS_DROP = 0.1  # mean loss of the last 3 steps at least this far below the first step's


@pytest.mark.parametrize("method", list(TRAINING))
def test_estimators_train_a_batch_normalised_net(method, problem):
    model, (x, y) = problem
    name, learning_rate, steps = TRAINING[method]
    estimator = make_estimator(method)
    optimizer = make_optimizer(name, learning_rate)
    state = TrainState.start(
        model,
        optimizer.init(eqx.filter(model, eqx.is_inexact_array)),
        estimator.init(model, key=jax.random.PRNGKey(0)),
    )
    losses = []
    for step in range(steps):
        state, loss, _ = train_step(estimator, optimizer, state, x, y, jax.random.PRNGKey(step))
        losses.append(float(loss))
    assert np.all(np.isfinite(losses))
    assert np.mean(losses[-3:]) <= losses[0] - LOSS_DROP, losses
    test_loss, _ = eval_step(state.model, "cross_entropy", x, y)  # with the running statistics
    assert np.isfinite(float(test_loss))
    moved = state.model.layers[0].weight - model.layers[0].weight
    assert float(jnp.abs(moved).max()) > 0


def test_alexnet_shapes_and_direct_feedback_shapes():
    model = eqx.filter_eval_shape(alexnet, (224, 224, 3), 100, key=jax.random.PRNGKey(0))
    assert [s.shape[1:] for s in model.activity_shapes()] == [
        (27, 27, 64),
        (13, 13, 192),
        (13, 13, 384),
        (13, 13, 256),
        (6, 6, 256),
        (4096,),
        (4096,),
        (100,),
    ]
    assert model.layers[5].in_features == 9216
    assert all(model.layers[i].norm is not None for i in range(5))
    feedback = jax.eval_shape(
        lambda m: make_estimator("dfa").init(m, key=jax.random.PRNGKey(0)), model
    )
    assert [b.shape for b in feedback] == [
        (100, 27, 27, 64),
        (100, 13, 13, 192),
        (100, 13, 13, 384),
        (100, 13, 13, 256),
        (100, 6, 6, 256),
        (100, 4096),
        (100, 4096),
    ]
    with pytest.raises(ValueError, match="at least 63"):
        alexnet((32, 32, 3), 100, key=jax.random.PRNGKey(0))
