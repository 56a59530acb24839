"""DKP (Direct Kolen-Pollack) by value: its feedback update against a hand computation in NumPy,
and the Kolen-Pollack identity that fixes its sign. With plain SGD at one step size on both sides,
the output layer's weights and the last hidden layer's feedback receive transposed copies of the
same update, so after any number of steps B = (W_L − W_L(0))ᵀ exactly; a wrong sign would give its
negative, a wrong error or activity something else."""

import equinox as eqx
import jax
import numpy as np
import optax
import pytest

from ctlearn.estimators import make_estimator
from ctlearn.train import TrainState, train_step
from models import mlp


@pytest.fixture(scope="module")
def problem():
    # Synthetic inputs and labels (not a dataset): a 10-9-7-4 ReLU MLP, batch 16.
    kx, ky, km = jax.random.split(jax.random.key(11), 3)
    model = mlp((10,), 4, widths=(9, 7), local_heads=False, key=km)
    x = jax.random.normal(kx, (16, 10))
    y = jax.random.randint(ky, (16,), 0, 4)
    return model, x, y


def _by_hand(model, x, y):
    """Each layer's input, pre-activation, and e = ∂(mean CE)/∂logits, in float64 NumPy."""
    inputs, pres = [], []
    h = np.asarray(x, np.float64)
    for i, layer in enumerate(model.layers):
        inputs.append(h)
        z = h @ np.asarray(layer.weight, np.float64) + np.asarray(layer.bias, np.float64)
        pres.append(z)
        h = z if i == len(model.layers) - 1 else np.maximum(z, 0.0)
    p = np.exp(h - h.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    e = (p - np.eye(h.shape[1])[np.asarray(y)]) / len(p)
    return inputs, pres, e


def test_one_dkp_step_matches_a_hand_computation(problem):
    model, x, y = problem
    alpha = 0.3
    dkp = make_estimator("dkp", feedback_optimizer="sgd", feedback_lr=alpha)
    state = dkp.init(model, key=jax.random.key(0))
    grads, (feedback, _), _ = dkp.estimate(model, (x, y), state, key=jax.random.key(1))
    inputs, pres, e = _by_hand(model, x, y)
    # From zero, one SGD step on the gradient Σ_n e_n ⊗ y_{l,n} (y_l: hidden layer l's output).
    for i, b in enumerate(feedback):
        expected = -alpha * e.T @ inputs[i + 1]
        np.testing.assert_allclose(np.asarray(b), expected, rtol=1e-5, atol=1e-7)
    # Hidden layer l learns from (e B_l) ⊙ ReLU'(z_l), B_l already updated (FDFA's Algorithm 1
    # order); the output layer from e itself.
    last = len(model.layers) - 1
    for i, grad in enumerate(grads.layers):
        if i == last:
            delta = e
        else:
            delta = (e @ (-alpha * e.T @ inputs[i + 1])) * (pres[i] > 0)
        want = inputs[i].T @ delta
        np.testing.assert_allclose(np.asarray(grad.weight), want, rtol=1e-4, atol=1e-8)
        np.testing.assert_allclose(np.asarray(grad.bias), delta.sum(axis=0), rtol=1e-4, atol=1e-8)


def test_the_last_feedback_tracks_the_change_of_the_output_weights(problem):
    # The Kolen-Pollack identity (see the module docstring), over 25 steps of training.
    model, x, y = problem
    lr = 0.2
    dkp = make_estimator("dkp", feedback_optimizer="sgd", feedback_lr=lr)
    optimizer = optax.sgd(lr)
    params = eqx.filter(model, eqx.is_inexact_array)
    state = TrainState.start(model, optimizer.init(params), dkp.init(model, key=jax.random.key(0)))
    w0 = np.asarray(model.layers[-1].weight)
    key = jax.random.key(2)
    for _ in range(25):
        state, _, _ = train_step(dkp, optimizer, state, x, y, key)
    feedback, _ = state.est_state
    w = np.asarray(state.model.layers[-1].weight)
    change = w - w0
    assert np.linalg.norm(change) > 0.05 * np.linalg.norm(w0)  # the output layer did learn
    np.testing.assert_allclose(np.asarray(feedback[-1]), change.T, rtol=1e-4, atol=1e-6)


def test_a_kaiming_start_learns_from_dfa_matrices_and_bad_starts_fail(problem):
    model, x, y = problem
    alpha = 0.3
    key = jax.random.key(4)
    options = {"feedback_optimizer": "sgd", "feedback_lr": alpha, "feedback_init": "kaiming"}
    dkp = make_estimator("dkp", **options)
    start, _ = dkp.init(model, key=key)
    dfa_start = make_estimator("dfa").init(model, key=key)
    _, (feedback, _), _ = dkp.estimate(model, (x, y), dkp.init(model, key=key), key=key)
    inputs, _, e = _by_hand(model, x, y)
    for i, (b0, d0, b) in enumerate(zip(start, dfa_start, feedback)):
        np.testing.assert_array_equal(np.asarray(b0), np.asarray(d0))  # DFA's matrices
        want = np.asarray(b0, np.float64) - alpha * e.T @ inputs[i + 1]
        np.testing.assert_allclose(np.asarray(b), want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="unknown feedback_init 'ones'; valid: zeros, kaiming"):
        make_estimator("dkp", feedback_init="ones")
