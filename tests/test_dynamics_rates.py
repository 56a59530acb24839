"""The simulator's ``input_rate`` and ``weight_rate`` options against a hand computation.

``input_rate=True`` puts the input's own rate ẋ into the tangent during a presentation's input
transition: the loss rate ṙ the circuit measures is then the derivative of the loss along
(ẋ, ṗ) together. ``weight_rate=True`` puts the weights' own rate Ẇ into it, by one fixed-point
iteration: Ẇ₁ is the rule's rate without it, and the rule is evaluated again with the loss rate
along (ṗ, Ẇ₁). The expected values come from a plain-jnp MLP (not the library's forward or
rules), its loss differentiated with ``jax.jvp``, the input blend written out, and continuous
FG-A written out as ẇ_l = −η h_{l−1}ᵀ (ṙ ⊙ ṗ_l) / N.

Inputs are synthetic (Gaussian, random labels) on a tiny MLP, fixed seeds.
"""

from __future__ import annotations

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ctlearn.dynamics as ct
from models import mlp

BATCH, FEATURES, CLASSES = 6, 10, 3
DURATION, TRANSITION = 3.0, 0.5
DURING, AFTER = 0.2, 1.0  # local times inside and after the input transition
LR = 2.0  # Ẇ₁'s share of ṙ then stands far above float32 rounding (asserted below)
# float32: the library and the hand computation sum the same products in different orders.
RTOL, ATOL = 1e-4, 1e-6  # ATOL times the largest entry compared


# -- by hand ---------------------------------------------------------------------------------


def _layers(model):
    return [(layer.weight, layer.bias) for layer in model.layers]


def _forward(model, layers, x, p):
    """The MLP by hand, ``z_l = h_{l−1} W_l + b_l + p_l``: every layer's input and the logits."""
    assert len(p) == len(layers)
    h, inputs = x, []
    for (w, b), layer, p_l in zip(layers, model.layers, p):
        inputs.append(h)
        h = layer.activation(h @ w + b + p_l)
    return inputs, h


def _losses(model, layers, x, p, y):
    """Per-example cross-entropy, −log softmax(logits)[y], written out."""
    logits = _forward(model, layers, x, p)[1]
    return jax.nn.logsumexp(logits, axis=-1) - jnp.take_along_axis(logits, y[:, None], 1)[:, 0]


def _loss_rate(model, x, p, y, *, x_dot=None, p_dot=None, w_dot=None):
    """ṙ per example: ``jax.jvp`` of the hand loss along the given rates (the others held)."""
    layers = _layers(model)
    zero = lambda tree: jax.tree.map(jnp.zeros_like, tree)  # noqa: E731
    tangents = (
        zero(x) if x_dot is None else x_dot,
        zero(list(p)) if p_dot is None else list(p_dot),
        zero(layers) if w_dot is None else w_dot,
    )
    return jax.jvp(
        lambda x_, p_, ls: _losses(model, ls, x_, p_, y), (x, list(p), layers), tangents
    )[1]


def _fga(model, x, p, p_dot, r_dot):
    """Continuous FG-A by hand: per layer (−η h_{l−1}ᵀ (ṙ ṗ_l)/N, −η Σ_n ṙ_n ṗ_l,n / N)."""
    inputs, _ = _forward(model, _layers(model), x, p)
    n = x.shape[0]
    return [
        (-LR * h.T @ (r_dot[:, None] * u) / n, -LR * jnp.sum(r_dot[:, None] * u, axis=0) / n)
        for h, u in zip(inputs, p_dot)
    ]


def _blend(previous, current, t):
    """The stream's C¹ smoothstep from ``previous`` to ``current`` over ``TRANSITION``: (x, ẋ)."""
    u = min(max(t / TRANSITION, 0.0), 1.0)
    s, s_dot = u * u * (3 - 2 * u), (6 * u * (1 - u) / TRANSITION if 0 < t < TRANSITION else 0.0)
    return previous + s * (current - previous), s_dot * (current - previous)


# -- the simulator ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(7)
    x = jnp.asarray(rng.standard_normal((2, BATCH, FEATURES)), jnp.float32)
    y = jnp.asarray(rng.integers(0, CLASSES, (2, BATCH)), jnp.int32)
    stream = ct.Presentations(x, y, duration=DURATION, transition=TRANSITION)
    model = mlp((FEATURES,), CLASSES, (12,), local_heads=False, init="torch", key=jax.random.key(7))
    return stream, model


def _bound(stream, model, **options):
    """The simulator prepared (same key, so the same perturbation), at presentation 1 (its
    input blends from presentation 0's)."""
    sim = ct.Simulator(
        ct.FGARule(lr=LR),
        ct.Sinusoids(sigma=0.1, tau=1.0),
        solver=diffrax.Euler(),
        dt0=0.05,
        **options,
    )
    bound, state = ct.prepare(sim, model, stream, key=jax.random.key(3))
    plain, args = ct.split_state(bound.simulator, state, stream, 1)
    return bound, plain, args


def _signals(bound, plain, args, t, w_dot=None):
    return bound.raw_signals(bound.model(plain), plain, jnp.float32(t), args, w_dot)


def _close(actual, expected, what):
    expected = np.asarray(expected)
    scale = float(np.max(np.abs(expected)))
    assert scale > 0, what
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL * scale, err_msg=what)


def _delta_rates(bound, plain, args, t):
    """The vector field's rate of ``delta`` (the learned ẇ) per layer, as (weight, bias)."""
    rates = bound.vector_field(jnp.float32(t), plain, args).delta
    return [(layer.weight, layer.bias) for layer in rates.layers]


def _close_rates(actual, expected, what):
    for i, ((aw, ab), (ew, eb)) in enumerate(zip(actual, expected, strict=True)):
        _close(aw, ew, f"{what}: layer {i} weight")
        _close(ab, eb, f"{what}: layer {i} bias")


def test_input_rate_adds_the_inputs_own_rate_to_the_loss_rate_during_the_transition(problem):
    stream, model = problem
    on, plain, args = _bound(stream, model, input_rate=True)
    off, _, _ = _bound(stream, model, input_rate=False)

    x, x_dot = _blend(stream.x[0], stream.x[1], DURING)
    assert float(jnp.max(jnp.abs(x_dot))) > 0.1  # the input is moving
    with_x, without_x = _signals(on, plain, args, DURING), _signals(off, plain, args, DURING)
    _close(with_x.x, x, "the blended input")
    _close(with_x.x_dot, x_dot, "the input's rate")
    p, p_dot = with_x.p, with_x.p_dot
    assert min(float(jnp.max(jnp.abs(u))) for u in p_dot) > 0  # the perturbation is moving
    y = stream.y[1]

    expected_on = _loss_rate(model, x, p, y, x_dot=x_dot, p_dot=p_dot)
    expected_off = _loss_rate(model, x, p, y, p_dot=p_dot)
    _close(with_x.loss_rates[-1], expected_on, "ṙ along (ẋ, ṗ)")
    _close(without_x.loss_rates[-1], expected_off, "ṙ along ṗ alone")
    # The difference is the input's own term, and it is far above the tolerance.
    input_term = _loss_rate(model, x, p, y, x_dot=x_dot)
    _close(with_x.loss_rates[-1] - without_x.loss_rates[-1], input_term, "ṙ's input term")
    assert float(jnp.max(jnp.abs(input_term))) > 1e3 * ATOL * float(jnp.max(jnp.abs(expected_on)))
    # The rule learns from that ṙ: the vector field's ẇ is FG-A's with it.
    _close_rates(
        _delta_rates(on, plain, args, DURING), _fga(model, x, p, p_dot, expected_on), "ẇ with ẋ"
    )
    _close_rates(
        _delta_rates(off, plain, args, DURING), _fga(model, x, p, p_dot, expected_off), "ẇ"
    )

    # After the transition the input is still: the two agree, on ṗ's term alone.
    x_after, x_dot_after = _blend(stream.x[0], stream.x[1], AFTER)
    assert float(jnp.max(jnp.abs(x_dot_after))) == 0.0
    with_x, without_x = _signals(on, plain, args, AFTER), _signals(off, plain, args, AFTER)
    expected = _loss_rate(model, x_after, with_x.p, y, p_dot=with_x.p_dot)
    _close(with_x.loss_rates[-1], expected, "ṙ after the transition, input_rate=True")
    _close(without_x.loss_rates[-1], expected, "ṙ after the transition, input_rate=False")


def test_weight_rate_adds_the_rules_first_rate_to_the_loss_rate(problem):
    stream, model = problem
    on, plain, args = _bound(stream, model, weight_rate=True)
    off, _, _ = _bound(stream, model, weight_rate=False)
    t = AFTER  # the input is still: only ṗ and Ẇ move the loss
    x, y = stream.x[1], stream.y[1]
    plain_signals = _signals(off, plain, args, t)
    p, p_dot = plain_signals.p, plain_signals.p_dot

    # The fixed-point iteration by hand: Ẇ₁ from ṙ₀ (along ṗ), then ṙ₁ along (ṗ, Ẇ₁) and Ẇ₂.
    r0 = _loss_rate(model, x, p, y, p_dot=p_dot)
    w1 = _fga(model, x, p, p_dot, r0)
    r1 = _loss_rate(model, x, p, y, p_dot=p_dot, w_dot=w1)
    w2 = _fga(model, x, p, p_dot, r1)

    _close(plain_signals.loss_rates[-1], r0, "ṙ₀ along ṗ")
    # The rule's own first rate, as the vector field computes it before the iteration.
    rule_w1, _ = on.simulator.rule.rates(on.model(plain), plain_signals, plain.rule)
    _close_rates([(a.weight, a.bias) for a in rule_w1.layers], w1, "Ẇ₁")
    signals = _signals(on, plain, args, t, w_dot=rule_w1)
    _close(signals.loss_rates[-1], r1, "ṙ₁ along (ṗ, Ẇ₁)")
    # The difference is the weights' own term ∇_W ℓ · Ẇ₁, far above the tolerance.
    weight_term = _loss_rate(model, x, p, y, w_dot=w1)
    _close(signals.loss_rates[-1] - plain_signals.loss_rates[-1], weight_term, "ṙ's Ẇ term")
    assert float(jnp.max(jnp.abs(weight_term))) > 1e3 * ATOL * float(jnp.max(jnp.abs(r1)))
    # The vector field learns from ṙ₁ with weight_rate, from ṙ₀ without.
    _close_rates(_delta_rates(on, plain, args, t), w2, "ẇ with weight_rate")
    _close_rates(_delta_rates(off, plain, args, t), w1, "ẇ without weight_rate")
