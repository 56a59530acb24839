"""Feedback alignment (FA, L-FA, LG-FA) and direct feedback (DFA, DKP, FDFA)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tree_allclose

from ctlearn.data import batches, load_dataset
from ctlearn.diagnostics import gradient_angles, normalised_variance, sample_estimates
from ctlearn.estimators import make_estimator
from ctlearn.estimators._fa import feedback_alignment_grads
from ctlearn.estimators._fdfa import fdfa_targets
from ctlearn.train import TrainConfig, train
from models import mlp


@pytest.fixture(scope="module")
def problem():
    kx, ky, km = jax.random.split(jax.random.PRNGKey(3), 3)
    model = mlp((10,), 4, widths=(9, 7, 6), key=km)
    x = jax.random.normal(kx, (16, 10))
    y = jax.random.randint(ky, (16,), 0, 4)
    return model, (x, y)


@pytest.mark.parametrize(
    "local, greedy, reference",
    [(False, False, "bp"), (True, False, "l-bp"), (False, True, "lg-bp")],
)
def test_feedback_alignment_with_the_true_weights_is_backpropagation(
    local, greedy, reference, problem
):
    model, (x, y) = problem
    trace = model(x)
    grads = feedback_alignment_grads(
        model,
        trace,
        y,
        model.layers,
        model.heads,
        loss="cross_entropy",
        local=local,
        greedy=greedy,
    )
    exact, _, _ = make_estimator(reference).estimate(model, (x, y), None, key=None)
    assert tree_allclose(grads, exact, rtol=1e-5, atol=1e-7)


def _cosine(a, b) -> float:
    a, b = np.ravel(a), np.ravel(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_fa_feedback_is_random_and_its_estimate_is_not_backpropagation(problem):
    # The test above hands FA the true weights; FA's own state must instead be fixed random
    # weights, neither the forward ones nor proportional to them, so that the hidden layers'
    # gradients it estimates are not BP's. Two independent draws of n weights have a cosine of
    # order 1/√n (n = 24-90 here), so |cosine| < 0.5 holds by a wide margin while a copy, or any
    # multiple, of the forward weights has |cosine| = 1.
    model, (x, y) = problem
    estimator = make_estimator("fa")
    state = estimator.init(model, key=jax.random.PRNGKey(0))
    for i, (layer, random) in enumerate(zip(model.layers, state[0])):
        assert abs(_cosine(random.weight, layer.weight)) < 0.5, i
        fan_in = layer.weight.shape[0]
        assert np.all(np.abs(random.weight) <= np.sqrt(6.0 / fan_in)), i  # U(±√(6/fan_in))
    grads, new_state, _ = estimator.estimate(model, (x, y), state, key=None)
    assert eqx.tree_equal(new_state, state)  # the feedback stays fixed
    exact, _, _ = make_estimator("bp").estimate(model, (x, y), None, key=None)
    for i in range(len(model.layers) - 1):  # hidden layers: their error came through feedback
        estimate, true = grads.layers[i].weight, exact.layers[i].weight
        assert _cosine(estimate, true) < 0.9, i
        assert np.linalg.norm(estimate - true) > 0.5 * np.linalg.norm(true), i
    # The output layer learns from its own error, which no feedback touches: that is BP's.
    assert tree_allclose(grads.layers[-1], exact.layers[-1], rtol=1e-5, atol=1e-7)


def test_dfa_with_the_true_jacobian_of_a_two_layer_net_is_backpropagation():
    # With a linear output layer, ∂y_L/∂y_1 = W_2ᵀ exactly: DFA fed that matrix is BP.
    kx, ky, km = jax.random.split(jax.random.PRNGKey(4), 3)
    model = mlp((6,), 3, widths=(8,), key=km)
    x, y = jax.random.normal(kx, (12, 6)), jax.random.randint(ky, (12,), 0, 3)
    feedback = (model.layers[1].weight.T,)
    grads, _, _ = make_estimator("dfa").estimate(model, (x, y), feedback, key=None)
    exact, _, _ = make_estimator("bp").estimate(model, (x, y), None, key=None)
    assert tree_allclose(grads, exact, rtol=1e-5, atol=1e-7)


@pytest.fixture(scope="module")
def mnist1d():
    return load_dataset("mnist1d")


# After five short epochs of mnist1d with each rule (the feedback has aligned), its estimate on a
# fresh batch points downhill: angle to the BP gradient below 90°, and the net is well above
# chance (10 %). FDFA's learned feedback also aligns every hidden layer. Measured with these
# settings: test accuracy 0.24-0.38, total angles 18-52°, FDFA's hidden layers 12-35°. DFA with
# zero forward weights (the paper's init) learns thanks to relu's slope of 1 at 0.
@pytest.mark.parametrize(
    "method, model_options",
    [
        ("fa", {}),
        ("l-fa", {}),
        ("lg-fa", {}),
        ("dfa", {}),
        ("dfa", {"init": "zeros"}),
        ("dkp", {}),
        ("fdfa", {}),
    ],
)
def test_feedback_rules_learn_and_give_descent_directions(method, model_options, mnist1d):
    options = {"widths": [64, 64], **model_options}
    config = TrainConfig(method=method, epochs=5, model_options=options)
    result = train(config, dataset=mnist1d, progress=False)
    assert result.metrics[-1]["test_acc"] > 0.18, result.metrics
    x, y = next(batches(mnist1d.test, 256, key=jax.random.PRNGKey(9)))
    grads, _, _ = make_estimator(method).estimate(
        result.model, (x, y), result.state.est_state, key=jax.random.PRNGKey(1)
    )
    exact, _, _ = make_estimator("bp").estimate(result.model, (x, y), None, key=None)
    angles = gradient_angles(grads, exact)
    assert angles["total"] < 80.0, angles
    assert angles["layers"][-1] < 0.5  # the output layer learns from its own, exact error
    if method == "fdfa":
        assert max(angles["layers"]) < 60.0, angles


def test_fdfa_penultimate_feedback_converges_to_the_output_weights(problem):
    # Eq. 13: with a linear output layer E[∂y_L/∂y_{L-1}] = W_Lᵀ, so the feedback of the last
    # hidden layer, averaged by eq. 8 (SGD on eq. 10 with step α), converges to it.
    model, (x, _) = problem
    alpha, steps = 0.02, 3000

    def step(feedback, key):
        targets = fdfa_targets(model, x, key)
        return tuple((1 - alpha) * b + alpha * t for b, t in zip(feedback, targets)), None

    start = tuple(jnp.zeros((4,) + s.shape[1:]) for s in model.activity_shapes(x)[:-1])
    keys = jax.random.split(jax.random.PRNGKey(5), steps)
    feedback, _ = jax.lax.scan(step, start, keys)
    target = model.layers[-1].weight.T
    error = float(jnp.linalg.norm(feedback[-1] - target) / jnp.linalg.norm(target))
    # Stationary relative error of the average is about sqrt(α/2 · Var/‖W‖²): ~0.05 here.
    assert error < 0.12, error


def test_fdfa_estimation_variance_scales_as_alpha_squared():
    # Proposition 2: with the feedback at its expectation (here the exact W_2ᵀ of a two-layer net)
    # one EMA step of size α leaves the hidden gradient with variance ∝ α².
    kx, ky, km = jax.random.split(jax.random.PRNGKey(6), 3)
    model = mlp((20,), 5, widths=(30,), key=km)
    x, y = jax.random.normal(kx, (8, 20)), jax.random.randint(ky, (8,), 0, 5)
    variances = {}
    for alpha in (0.1, 0.01):
        estimator = make_estimator("fdfa", feedback_optimizer="sgd", feedback_lr=alpha)
        exact_feedback = (model.layers[1].weight.T,)
        state = (exact_feedback, estimator.init(model, key=jax.random.PRNGKey(0))[1])
        samples = sample_estimates(
            estimator, model, (x, y), state, num=4000, key=jax.random.PRNGKey(int(1 / alpha))
        )
        hidden = samples.layers[0].weight
        variances[alpha] = float(jnp.sum(jnp.var(hidden, axis=0)))
    ratio = variances[0.1] / variances[0.01]
    assert ratio == pytest.approx(100.0, rel=0.1), variances


def test_normalised_variance_orders_the_estimators(problem):
    model, batch = problem
    values = {}
    for method in ("bp", "fg-w", "fg-a"):
        estimator = make_estimator(method)
        state = estimator.init(model, key=jax.random.PRNGKey(0))
        samples = sample_estimates(
            estimator, model, batch, state, num=2000, key=jax.random.PRNGKey(1)
        )
        values[method] = normalised_variance(samples)
    assert values["bp"] == pytest.approx(0.0, abs=1e-10)
    assert 0 < values["fg-a"] < values["fg-w"] < 1, values


def test_dfa_feedback_shapes_and_fixed_scale(problem):
    model, batch = problem
    feedback = make_estimator("dfa").init(model, key=jax.random.PRNGKey(0))
    assert [b.shape for b in feedback] == [(4, 9), (4, 7), (4, 6)]
    for b in feedback:
        bound = np.sqrt(6.0 / b.shape[1])
        assert np.all(np.abs(b) <= bound) and np.std(b) == pytest.approx(
            bound / np.sqrt(3), rel=0.5
        )
    _, new_state, _ = make_estimator("dfa").estimate(model, batch, feedback, key=None)
    assert all(np.array_equal(a, b) for a, b in zip(feedback, new_state))


def test_learned_feedback_starts_at_zero_and_moves(problem):
    model, batch = problem
    for method in ("dkp", "fdfa"):
        estimator = make_estimator(method)
        state = estimator.init(model, key=jax.random.PRNGKey(0))
        assert all(float(jnp.abs(b).max()) == 0.0 for b in state[0])
        _, new_state, _ = estimator.estimate(model, batch, state, key=jax.random.PRNGKey(1))
        assert all(float(jnp.abs(b).max()) > 0.0 for b in new_state[0])
        assert eqx.tree_equal(jax.tree.structure(state), jax.tree.structure(new_state))


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(feedback_optimizer="rmsprop"), "unknown feedback_optimizer 'rmsprop'; valid: adam"),
        (dict(feedback_lr=0.0), "feedback_lr must be a positive number, got 0.0"),
        (dict(feedback_decay=-1.0), "feedback_decay must be a number >= 0"),
    ],
)
def test_bad_feedback_options_fail_with_their_message(options, message):
    for method in ("dkp", "fdfa"):
        with pytest.raises(ValueError, match=message):
            make_estimator(method, **options)
