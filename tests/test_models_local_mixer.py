"""LocalMixer: Table 2's presets, its stages' local updates, replicated losses and every estimator.

Inputs are synthetic (Gaussian signals and images, random labels) unless a test says otherwise.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tree_allclose

from ctlearn.diagnostics import compiled_matmul_flops, sample_estimates, tree_cosine
from ctlearn.estimators import make_estimator
from ctlearn.estimators._fa import feedback_alignment_grads
from ctlearn.estimators._fg_a import spread
from ctlearn.nn import GroupedLinear, TokenMixing, TokenwiseLinear, patchify
from models import LOCAL_MIXER_PRESETS, local_mixer

TABLE_2 = {"S/1/1": 272e3, "M/1/16": 429e3, "M/8/16": 919e3, "L/8/64": 13.1e6}
INPUT = {"MNIST": (28, 28, 1), "CIFAR-10": (32, 32, 3)}


def _count(tree) -> int:
    return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree) if hasattr(a, "shape"))


@pytest.mark.parametrize("preset", sorted(TABLE_2))
def test_presets_have_table_2_parameter_counts(preset):
    shape = INPUT[LOCAL_MIXER_PRESETS[preset].dataset]
    net = jax.eval_shape(lambda k: local_mixer(shape, 10, preset, key=k), jax.random.key(0))
    assert abs(_count(net) / TABLE_2[preset] - 1) < 0.01


def test_imagenet_preset_backbone_size():
    # L/32/64 on 224×224 images: 1024 tokens of 7×7×3; the notes give a 16.3M-parameter backbone.
    net = jax.eval_shape(
        lambda k: local_mixer((224, 224, 3), 1000, "L/32/64", key=k), jax.random.key(0)
    )
    backbone = _count(net.layers[:-1])
    assert abs(backbone / 16.3e6 - 1) < 0.01


def test_patchify_is_row_major_and_checks_the_grid():
    x = jnp.arange(4 * 4).reshape(1, 4, 4, 1).astype(jnp.float32)
    tokens = patchify(x, (2, 2))
    assert tokens.shape == (1, 4, 4)
    np.testing.assert_array_equal(tokens[0, 1], [2, 3, 6, 7])  # top-right patch
    np.testing.assert_array_equal(tokens[0, 2], [8, 9, 12, 13])  # bottom-left patch
    np.testing.assert_array_equal(patchify(jnp.arange(6.0)[None], (3,))[0, 1], [2, 3])
    with pytest.raises(ValueError, match="must divide"):
        patchify(x, (3, 3))
    with pytest.raises(ValueError, match="divisible"):
        local_mixer((28, 28, 1), 10, "M/8/16", key=jax.random.key(0))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"preset": "XL/9"}, "unknown LocalMixer preset"),
        ({"groups": 3}, "must divide channels"),
        ({"blocks": 0}, "positive integer"),
        ({"objective": "magic"}, "unknown objective"),
        ({"temperature": 0.0}, "temperature must be positive"),
    ],
)
def test_bad_options_fail_with_their_message(options, message):
    with pytest.raises(ValueError, match=message):
        local_mixer((40,), 10, key=jax.random.key(0), **options)


def _tiny(key=None, **options):
    """A 2-block mixer on 1-D signals of length 8 cut into 2 tokens; 8 channels in 2 groups."""
    settings = dict(blocks=2, patches=2, channels=8, groups=2)
    settings.update(options)
    key = jax.random.key(0) if key is None else key
    return local_mixer((8,), 3, "S/1/1", key=key, **settings)


def _problem_model(**options):
    """``_tiny`` with fixed weights; the zero-initialised readout gets random weights so that
    every path carries a gradient. The same weights whatever the (static) options."""
    km = jax.random.key(7)
    model = _tiny(km, **options)
    readout = model.layers[-1]
    return eqx.tree_at(
        lambda m: m.layers[-1].weight, model, 0.3 * jax.random.normal(km, readout.weight.shape)
    )


@pytest.fixture(scope="module")
def problem():
    kx, ky = jax.random.split(jax.random.key(5))
    x = jax.random.normal(kx, (4, 8))
    y = jax.random.randint(ky, (4,), 0, 3)
    return _problem_model(), (x, y)


def test_forward_shapes_for_signals_and_images():
    net = _tiny()
    trace = net(jnp.ones((3, 8)))
    assert trace.logits.shape == (3, 3)
    assert [z.shape for z in trace.pre] == [
        (3, 2, 8),
        (3, 2, 2, 4),
        (3, 2, 8),
        (3, 2, 8),
        (3, 2, 2, 4),
        (3, 3),
    ]
    assert all(h.shape == (3, 3) for h in trace.head_logits[:-1])
    image_net = local_mixer((8, 8, 3), 5, "M/8/16", patches=4, channels=16, key=jax.random.key(1))
    assert image_net(jnp.ones((2, 8, 8, 3))).logits.shape == (2, 5)


@pytest.mark.parametrize("norm_grad", [True, False])
@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda k, ng: TokenwiseLinear(6, 8, grid=(2,), norm_grad=ng, key=k), (3, 12)),
        (lambda k, ng: TokenMixing(4, norm_grad=ng, key=k), (3, 4, 2, 3)),
        (lambda k, ng: GroupedLinear(2, 8, 6, norm_grad=ng, key=k), (3, 4, 8)),
    ],
)
def test_local_update_is_the_gradient_through_the_layer(make, shape, norm_grad):
    kx, kl, kd = jax.random.split(jax.random.key(2), 3)
    layer = make(kl, norm_grad)
    x = jax.random.normal(kx, shape)
    delta = jax.random.normal(kd, layer.pre_activation(x).shape)
    local = layer.local_grad(x, delta)
    # With the linear output the forward pass records, nothing is recomputed; the same update.
    _, z, linear = layer.forward(x)
    assert linear.shape == z.shape
    recorded = layer.local_grad(x, delta, linear)
    if norm_grad:  # exact: the vjp of the whole stage
        exact = eqx.filter_grad(lambda m: jnp.sum(m.pre_activation(x) * delta))(layer)
    else:  # "NG": the output normalisation is skipped
        h = jax.nn.standardize(layer.inputs(x), axis=-1, epsilon=1e-5)
        exact = eqx.filter_grad(lambda m: jnp.sum(m.linear(h) * delta))(layer)
    assert tree_allclose(eqx.filter(local, eqx.is_array), exact, rtol=1e-5, atol=1e-6)
    assert tree_allclose(eqx.filter(recorded, eqx.is_array), exact, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["lg-fg-a", "lg-bp"])
def test_pulling_back_through_the_norms_adds_no_matrix_product(method):
    # The forward pass records each layer's linear output, so the local updates' pullback through
    # the output normalisation ("norm_grad") costs elementwise work only. A local_grad that
    # recomputed the linear map would add one product per layer here.
    x = jax.random.normal(jax.random.key(3), (16, 8))
    y = jnp.arange(16) % 3
    estimator = make_estimator(method)

    def flops(norm_grad):
        model = _tiny(norm_grad=norm_grad, channels=32, groups=4)
        fn = lambda m, x, y, k: estimator.estimate(m, (x, y), None, key=k)[0]  # noqa: E731
        return compiled_matmul_flops(fn, model, x, y, jax.random.key(4))

    assert flops(True) == flops(False) > 0


def test_spread_gives_each_unit_its_replica_derivative():
    d = jnp.arange(2 * 3 * 2, dtype=jnp.float32).reshape(2, 3, 2)
    u = jnp.ones((2, 3, 8))
    out = spread(d, u)
    np.testing.assert_array_equal(out[1, 2, :4], d[1, 2, 0])
    np.testing.assert_array_equal(out[1, 2, 4:], d[1, 2, 1])
    np.testing.assert_array_equal(spread(d, jnp.ones((2, 3, 2, 4)))[0, 1, 1], d[0, 1, 1])
    with pytest.raises(ValueError, match="cannot be scored"):
        spread(d, jnp.ones((2, 4, 8)))


@pytest.mark.parametrize(
    "local, greedy, reference",
    [(False, False, "bp"), (True, False, "l-bp"), (False, True, "lg-bp")],
)
def test_feedback_alignment_with_the_true_weights_is_backpropagation(
    local, greedy, reference, problem
):
    # Holds only if the residual connections and the normalisations' derivatives are right.
    model, (x, y) = problem
    grads = feedback_alignment_grads(
        model,
        model(x),
        y,
        model.layers,
        model.heads,
        loss="cross_entropy",
        local=local,
        greedy=greedy,
    )
    exact, _, _ = make_estimator(reference).estimate(model, (x, y), None, key=None)
    assert tree_allclose(grads, exact, rtol=1e-4, atol=1e-6)


def test_fused_and_naive_replicated_losses_give_the_same_local_gradients(problem):
    model, batch = problem
    naive = _problem_model(fused=False)
    for method in ("l-bp", "lg-bp"):
        fused_grads = make_estimator(method).estimate(model, batch, None, key=None)[0]
        naive_grads = make_estimator(method).estimate(naive, batch, None, key=None)[0]
        assert tree_allclose(fused_grads, naive_grads, rtol=1e-5, atol=1e-7)
    key = jax.random.key(3)
    fused_fg = make_estimator("lg-fg-a").estimate(model, batch, None, key=key)[0]
    naive_fg = make_estimator("lg-fg-a").estimate(naive, batch, None, key=key)[0]
    assert tree_allclose(fused_fg, naive_fg, rtol=1e-4, atol=1e-6)


K = 20_000
Z = 6.5


@pytest.mark.parametrize(
    "method, reference",
    [("lg-fg-a", "lg-bp"), pytest.param("fg-a", "bp", marks=pytest.mark.slow)],
)
def test_activity_perturbation_is_unbiased_on_the_mixer(method, reference, problem):
    # As tests/test_estimators_unbiased.py: each element within Z standard errors of the exact
    # gradient (a correct estimator fails with probability < 1e-6), and the mean aligned with it.
    model, batch = problem
    est = make_estimator(method)
    samples = sample_estimates(est, model, batch, None, num=K, key=jax.random.key(4))
    exact = make_estimator(reference).estimate(model, batch, None, key=None)[0]
    mean = jax.tree.map(lambda s: s.mean(0), samples)
    for s, m, e in zip(
        jax.tree.leaves(samples),
        jax.tree.leaves(mean),
        jax.tree.leaves(eqx.filter(exact, eqx.is_array)),
    ):
        se = np.asarray(s.std(0)) / np.sqrt(K)
        err = np.abs(np.asarray(m) - np.asarray(e))
        assert np.all(err <= Z * se + 1e-6), f"max z-score {np.max(err / (se + 1e-12)):.2f}"
    assert float(tree_cosine(mean, exact)) > 0.95


def test_replicated_losses_lower_the_variance_of_local_forward_gradients(problem):
    # Ren et al. section 4: a perturbation scored only by the loss of its own patch and group is
    # less noisy than one scored by the whole example's loss (same mean: both unbiased).
    model, batch = problem
    plain = _problem_model(replicated=False)
    est = make_estimator("lg-fg-a")
    exact = make_estimator("lg-bp").estimate(model, batch, None, key=None)[0]

    def spread_of(net):
        samples = sample_estimates(est, net, batch, None, num=2000, key=jax.random.key(6))
        errors = jax.tree.map(
            lambda s, e: jnp.sum((s - e) ** 2) / s.shape[0],
            eqx.filter(samples.layers[:5], eqx.is_array),
            eqx.filter(exact.layers[:5], eqx.is_array),
        )
        return float(sum(jax.tree.leaves(errors)))

    assert spread_of(model) < 0.8 * spread_of(plain)


METHODS = [
    "bp",
    "l-bp",
    "lg-bp",
    "fg-w",
    "fg-a",
    "lg-fg-w",
    "lg-fg-a",
    "fa",
    "l-fa",
    "lg-fa",
    "dfa",
]


@pytest.mark.parametrize("method", METHODS)
def test_every_estimator_gives_a_finite_model_shaped_estimate(method, problem):
    model, batch = problem
    est = make_estimator(method)
    state = est.init(model, key=jax.random.key(0))
    grads, _, diagnostics = eqx.filter_jit(est.estimate)(model, batch, state, key=jax.random.key(1))
    params = eqx.filter(model, eqx.is_array)
    assert jax.tree.structure(eqx.filter(grads, eqx.is_array)) == jax.tree.structure(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert diagnostics["logits"].shape == (4, 3)


def test_contrastive_mixer_scores_two_views_by_info_nce():
    net = _tiny(objective="contrastive", projection=6)
    assert net.heads[0].weight.shape == (8, 6)
    x = jax.random.normal(jax.random.key(0), (6, 8))  # 3 examples, two views each
    y = jnp.array([0, 1, 2, 0, 1, 2])
    grads, _, diag = make_estimator("lg-fg-a").estimate(net, (x, y), None, key=jax.random.key(1))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert float(jnp.abs(grads.heads[0].weight).sum()) > 0


# 5 epochs of mnist1d (4000 sequences, chance 10 %) on a 2-block mixer of 2 tokens, 32 channels
# in 4 groups; Adam 1e-3, batch 32, seed 0. Measured test accuracy: BP 0.21, LG-BP 0.22,
# LG-FG-A 0.18, FA 0.19, LG-FA 0.19 (FG-A 0.17, DFA 0.16, LG-FG-W 0.12).
@pytest.mark.parametrize(
    "method",
    ["bp", "lg-fg-a"] + [pytest.param(m, marks=pytest.mark.slow) for m in ("lg-bp", "fa", "lg-fa")],
)
def test_estimators_train_the_mixer_on_mnist1d_above_chance(method):
    from ctlearn.data import load_dataset
    from ctlearn.train import TrainConfig, train

    mixer = dict(preset="S/1/1", patches=2, channels=32, groups=4, blocks=2)
    config = TrainConfig(
        model="local_mixer", model_options=mixer, method=method, epochs=5, batch_size=32
    )
    result = train(config, dataset=load_dataset("mnist1d"), progress=False)
    assert result.metrics[-1]["test_acc"] > 0.14
    assert result.metrics[-1]["train_loss"] < result.metrics[0]["train_loss"]
