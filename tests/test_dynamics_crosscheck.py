"""Cross-checks of the continuous simulator that can fail: every rule's instantaneous ``ẇ``
(and FDFA's ``Ḃ``) against a value worked out by hand from first principles (a plain-jnp forward
pass, ``jax.grad``/``jax.jvp`` of it, never the library's update helpers); every non-ideality
kept in at zero strength against the ideal simulator; divergence, alone and in an ensemble.

Inputs are synthetic (Gaussian, random labels) on tiny MLPs, fixed seeds.
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ctlearn.dynamics as ct
from models import mlp

# float32: the rule and the hand formula sum the same products in different orders.
RTOL = 1e-4
ATOL = 1e-6  # times the largest entry of the expected update (entries that cancel to ~0)

BATCH, FEATURES, CLASSES = 6, 10, 3


# -- a hand-written network: the same arrays, none of the library's forward or update code ----


def _arrays(model):
    """Per layer ``(W, b)``, the local head's ``(W, b)`` per block (``None``: no head), and the
    hidden activations, read off the model."""
    layers = [(layer.weight, layer.bias) for layer in model.layers]
    heads = [None if h is None else (h.weight, h.bias) for h in model.heads]
    return layers, heads, [layer.activation for layer in model.layers]


def _cross_entropy(logits, y):
    """Per-example −log softmax(logits)[y], written out."""
    return jax.nn.logsumexp(logits, axis=-1) - jnp.take_along_axis(logits, y[:, None], 1)[:, 0]


def _forward(model, layers, x, *, pre=None, post=None, greedy=False):
    """The MLP by hand: ``z_l = h_{l-1} W_l + b_l + pre_l``, ``h_l = f_l(z_l) + post_l``; with
    ``greedy`` a stop-gradient at every block's input. Returns the inputs ``h_{l-1}``, the ``z_l``
    and the outputs ``h_l`` of every layer."""
    _, _, activations = _arrays(model)
    starts = set(model.block_starts[1:])
    h, inputs, zs, outs = x, [], [], []
    for i, ((w, b), f) in enumerate(zip(layers, activations)):
        if greedy and i in starts:
            h = jax.lax.stop_gradient(h)
        inputs.append(h)
        z = h @ w + b + (0.0 if pre is None else pre[i])
        h = f(z) + (0.0 if post is None or i >= len(post) else post[i])
        zs.append(z)
        outs.append(h)
    return inputs, zs, outs


def _block_losses(model, layers, heads, x, y, *, pre=None, greedy=False):
    """Every block's per-example loss: its head's cross-entropy on its last layer's output,
    the network's for the last block."""
    _, _, outs = _forward(model, layers, x, pre=pre, greedy=greedy)
    losses = []
    for b, end in enumerate(model.block_ends):
        if heads[b] is None:
            losses.append(_cross_entropy(outs[-1], y) if b == len(heads) - 1 else None)
        else:
            wh, bh = heads[b]
            losses.append(_cross_entropy(outs[end - 1] @ wh + bh, y))
    return losses


def _slope(f, z):
    """f′(z) elementwise, from ``jax.grad`` of the scalar activation."""
    return jnp.vectorize(jax.grad(f))(z)


def _per_unit_deltas(model, layers, heads, x, y, *, greedy):
    """``∂ℓ^b_n/∂z_{l,n}`` for every layer, ``ℓ^b`` the loss that scores layer ``l`` (its block's
    with ``greedy``, else the network's); examples are independent, so the gradient of the
    batch sum holds every example's own row."""
    zeros = [jnp.zeros((x.shape[0], w.shape[1])) for w, _ in layers]

    def total(pre, b):
        return jnp.sum(_block_losses(model, layers, heads, x, y, pre=pre, greedy=greedy)[b])

    blocks = [model.block_of_layer(i) if greedy else -1 for i in range(len(layers))]
    return [jax.grad(total)(zeros, b)[i] for i, b in enumerate(blocks)]


def _head_rates(model, heads, x, y, lr):
    """−η × each local head's gradient of its batch-mean loss, its input held."""
    layers, _, _ = _arrays(model)
    _, _, outs = _forward(model, layers, x, greedy=True)
    rates = []
    for b, end in enumerate(model.block_ends):
        if heads[b] is None:
            rates.append(None)
            continue
        features = outs[end - 1]
        grad = jax.grad(lambda wb, h=features: jnp.mean(_cross_entropy(h @ wb[0] + wb[1], y)))
        rates.append(tuple(-lr * g for g in grad(heads[b])))
    return rates


def _contract(lr, inputs, deltas):
    """−η (x_{l-1}ᵀ δ_l, Σ_n δ_l) per layer."""
    return [(-lr * h.T @ d, -lr * jnp.sum(d, axis=0)) for h, d in zip(inputs, deltas)]


# -- the expected ẇ of each rule, at zero perturbation with rate ``tangent`` ----------------


def _expected_activity(rule, model, x, y, tangent, state):
    layers, heads, activations = _arrays(model)
    greedy = isinstance(rule, ct.LGFGARule)
    g = _per_unit_deltas(model, layers, heads, x, y, greedy=greedy)
    inputs, zs, _ = _forward(model, layers, x)
    if rule.rate == "measured":  # ẏ = ż: the pre-activations' total rate along ṗ
        u = jax.jvp(
            lambda p: _forward(model, layers, x, pre=p, greedy=greedy)[1],
            ([jnp.zeros_like(t) for t in tangent],),
            (list(tangent),),
        )[1]
    else:
        u = list(tangent)
    blocks = [model.block_of_layer(i) if greedy else 0 for i in range(len(layers))]
    # The loss rate seen by layer l: Σ over the layers its loss reaches of ∇_z ℓ · ṗ (the rate of
    # the loss in the circuit is always along the injected ṗ, whatever the rule calls ẏ).
    d = [
        sum(
            jnp.sum(g[j] * tangent[j], axis=1) for j in range(len(layers)) if blocks[j] == blocks[i]
        )
        for i in range(len(layers))
    ]
    n = x.shape[0]
    deltas = []
    for i, f in enumerate(activations):
        delta = d[i][:, None] * u[i] / n
        if rule.mask:
            delta = jnp.where(_slope(f, zs[i]) != 0, delta, 0.0)
        deltas.append(delta)
    head_rates = _head_rates(model, heads, x, y, rule.lr) if greedy else None
    return _contract(rule.lr, inputs, deltas), head_rates, None


def _expected_weight(rule, model, x, y, tangent, state):
    layers, heads, _ = _arrays(model)
    greedy = isinstance(rule, ct.LGFGWRule)
    v = [(tangent[2 * i], tangent[2 * i + 1]) for i in range(len(layers))]

    def mean_loss(ls, b):
        return jnp.mean(_block_losses(model, ls, heads, x, y, greedy=greedy)[b])

    blocks = [model.block_of_layer(i) if greedy else -1 for i in range(len(layers))]
    scales = {}
    for b in set(blocks):
        grads = jax.grad(mean_loss)(layers, b)
        # ∇_w L^b · v over every array the block's loss depends on (other blocks' give zero).
        scales[b] = sum(jnp.vdot(gw, vw) + jnp.vdot(gb, vb) for (gw, gb), (vw, vb) in zip(grads, v))
    rates = [
        (-rule.lr * scales[b] * vw, -rule.lr * scales[b] * vb) for b, (vw, vb) in zip(blocks, v)
    ]
    head_rates = _head_rates(model, heads, x, y, rule.lr) if greedy else None
    return rates, head_rates, None


def _dfa_weights(rule, model, x, y, feedback):
    """DFA by hand: e = (softmax(logits) − onehot(y)) / N, δ_l = f′(z_l) ⊙ (e B_l), the output
    layer learns from e itself."""
    layers, _, activations = _arrays(model)
    inputs, zs, outs = _forward(model, layers, x)
    e = (jax.nn.softmax(outs[-1], axis=-1) - jax.nn.one_hot(y, outs[-1].shape[-1])) / x.shape[0]
    deltas = [_slope(f, z) * (e @ b) for f, z, b in zip(activations[:-1], zs[:-1], feedback)]
    return _contract(rule.lr, inputs, deltas + [e])


def _expected_dfa(rule, model, x, y, tangent, state):
    return _dfa_weights(rule, model, x, y, state), None, [jnp.zeros_like(b) for b in state]


def _expected_fdfa(rule, model, x, y, tangent, state):
    layers, _, _ = _arrays(model)
    # The outputs' rate when the hidden layers' outputs move at ṗ: one jvp of the hand forward.
    y_dot = jax.jvp(
        lambda q: _forward(model, layers, x, post=q)[2][-1],
        ([jnp.zeros_like(t) for t in tangent],),
        (list(tangent),),
    )[1]
    n = x.shape[0]
    targets = [jnp.einsum("no,nu->ou", y_dot, t) / n for t in tangent]
    b_dot = [rule.feedback_lr * (t - b) for t, b in zip(targets, state)]
    return _dfa_weights(rule, model, x, y, state), None, b_dot


def _expected_gradient_flow(rule, model, x, y, tangent, state):
    layers, heads, _ = _arrays(model)
    grads = jax.grad(lambda ls: jnp.mean(_block_losses(model, ls, heads, x, y)[-1]))(layers)
    return [(-rule.lr * gw, -rule.lr * gb) for gw, gb in grads], None, None


def _expected_local_gradient_flow(rule, model, x, y, tangent, state):
    layers, heads, _ = _arrays(model)
    greedy = isinstance(rule, ct.LocalGreedyGradientFlow)

    def objective(ls, hs):
        return sum(
            jnp.mean(ell)
            for ell in _block_losses(model, ls, hs, x, y, greedy=greedy)
            if ell is not None
        )

    grads, head_grads = jax.grad(objective, argnums=(0, 1))(layers, heads)
    rates = [(-rule.lr * gw, -rule.lr * gb) for gw, gb in grads]
    head_rates = [None if g is None else (-rule.lr * g[0], -rule.lr * g[1]) for g in head_grads]
    return rates, head_rates, None


def _expected_feedback_alignment(rule, model, x, y, tangent, state):
    """FA by hand: the output error e = (softmax − onehot) / N goes down layer by layer,
    δ_l = f′(z_l) ⊙ g_l and g_{l-1} = δ_l B_lᵀ with B_l the fixed random copy of W_l; at a block's
    output a local rule adds (L-FA) or substitutes (LG-FA) its head's error sent through the
    head's random copy."""
    layers, heads, activations = _arrays(model)
    feedback_layers, feedback_heads = state
    inputs, zs, outs = _forward(model, layers, x)
    n, classes = x.shape[0], outs[-1].shape[-1]
    error = lambda logits: (jax.nn.softmax(logits, axis=-1) - jax.nn.one_hot(y, classes)) / n
    local = isinstance(rule, (ct.LFARule, ct.LGFARule))
    deltas = [None] * len(layers)
    g = error(outs[-1])
    for b in reversed(range(len(model.block_ends))):
        end = model.block_ends[b]
        if local and heads[b] is not None:
            wh, bh = heads[b]
            from_head = error(outs[end - 1] @ wh + bh) @ feedback_heads[b].weight.T
            g = from_head if isinstance(rule, ct.LGFARule) else g + from_head
        for i in reversed(range(model.block_starts[b], end)):
            deltas[i] = _slope(activations[i], zs[i]) * g
            g = deltas[i] @ feedback_layers[i].weight.T
    head_rates = _head_rates(model, heads, x, y, rule.lr) if local else None
    return (
        _contract(rule.lr, inputs, deltas),
        head_rates,
        [jax.tree.map(jnp.zeros_like, part) for part in state],
    )


def _expected_dkp(rule, model, x, y, tangent, state):
    """DFA by hand through the current B_l, and Ḃ_l = −α (eᵀ y_l + λ B_l)."""
    layers, _, _ = _arrays(model)
    _, _, outs = _forward(model, layers, x)
    e = (jax.nn.softmax(outs[-1], axis=-1) - jax.nn.one_hot(y, outs[-1].shape[-1])) / x.shape[0]
    b_dot = [
        -rule.feedback_lr * (e.T @ h + rule.feedback_decay * b) for h, b in zip(outs[:-1], state)
    ]
    return _dfa_weights(rule, model, x, y, state), None, b_dot


RULES = [
    (ct.FGARule(lr=0.7), _expected_activity),
    (ct.FGARule(lr=0.7, mask=True), _expected_activity),
    (ct.FGARule(lr=0.7, rate="measured"), _expected_activity),
    (ct.LGFGARule(lr=0.7), _expected_activity),
    (ct.LGFGARule(lr=0.7, mask=True), _expected_activity),
    (ct.FGWRule(lr=0.7), _expected_weight),
    (ct.LGFGWRule(lr=0.7), _expected_weight),
    (ct.DFARule(lr=0.7), _expected_dfa),
    (ct.FDFARule(lr=0.7, feedback_lr=2.0), _expected_fdfa),
    (ct.GradientFlow(lr=0.7), _expected_gradient_flow),
    (ct.LocalGradientFlow(lr=0.7), _expected_local_gradient_flow),
    (ct.LocalGreedyGradientFlow(lr=0.7), _expected_local_gradient_flow),
    (ct.FARule(lr=0.7), _expected_feedback_alignment),
    (ct.LFARule(lr=0.7), _expected_feedback_alignment),
    (ct.LGFARule(lr=0.7), _expected_feedback_alignment),
    (ct.DKPRule(lr=0.7, feedback_lr=2.0), _expected_dkp),
    (ct.DKPRule(lr=0.7, feedback_lr=2.0, feedback_decay=0.5), _expected_dkp),
]


def _rule_id(rule):
    options = [
        name
        for name, on in (("mask", getattr(rule, "mask", False)),
                         ("measured", getattr(rule, "rate", "") == "measured"),
                         ("decay", getattr(rule, "feedback_decay", 0.0) > 0))
        if on
    ]  # fmt: skip
    return "-".join([type(rule).__name__] + options)


@pytest.fixture(scope="module")
def problem():
    """Two blocks (a hidden layer with its local head; a hidden layer and the output), torch
    init so that biases are non-zero."""
    kx, ky, km = jax.random.split(jax.random.key(11), 3)
    model = mlp((FEATURES,), CLASSES, (12, 8), init="torch", key=km)
    x = jax.random.normal(kx, (BATCH, FEATURES))
    y = jax.random.randint(ky, (BATCH,), 0, CLASSES)
    return model, x, y


def _assert_close(actual, expected, scale, what):
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL * scale, err_msg=what)


@pytest.mark.parametrize(("rule", "expected"), RULES, ids=[_rule_id(r) for r, _ in RULES])
def test_instantaneous_rates_equal_a_hand_computation(rule, expected, problem):
    model, x, y = problem
    shapes = rule.perturbation_shapes(model, x)
    keys = jax.random.split(jax.random.key(3), max(len(shapes), 1))
    tangent = tuple(jax.random.normal(k, s) for k, s in zip(keys, shapes))
    state = rule.init(model, key=jax.random.key(4))
    if isinstance(rule, (ct.FDFARule, ct.DKPRule)):  # learned feedback part-way, not zero
        state = tuple(0.3 * jax.random.normal(jax.random.key(5), b.shape) for b in state)
    zeros = tuple(jnp.zeros_like(t) for t in tangent)
    signals = ct.measure(
        rule, ct.Instantaneous(), "cross_entropy", model, (x, jnp.zeros_like(x)), y,
        (zeros, tangent),
    )  # fmt: skip
    w_dot, state_dot = rule.rates(model, signals, state)

    layer_rates, head_rates, state_rates = expected(rule, model, x, y, tangent, state)
    scale = max(float(jnp.max(jnp.abs(a))) for pair in layer_rates for a in pair)
    assert scale > 0
    for i, (w, b) in enumerate(layer_rates):
        _assert_close(w_dot.layers[i].weight, w, scale, f"layer {i} weight")
        _assert_close(w_dot.layers[i].bias, b, scale, f"layer {i} bias")
    for k, head in enumerate(w_dot.heads):
        if head is None:
            continue
        want = (0.0, 0.0) if head_rates is None else head_rates[k]  # only local rules train heads
        _assert_close(head.weight, jnp.broadcast_to(want[0], head.weight.shape), scale, "head")
        _assert_close(head.bias, jnp.broadcast_to(want[1], head.bias.shape), scale, "head bias")
    if state_rates is None:
        assert state_dot is None
    else:
        state_rates, state_dot = jax.tree.leaves(state_rates), jax.tree.leaves(state_dot)
        state_scale = max(float(jnp.max(jnp.abs(s))) for s in state_rates) or 1.0
        for i, (got, want) in enumerate(zip(state_dot, state_rates, strict=True)):
            _assert_close(got, want, state_scale, f"feedback {i} rate")


def test_every_registered_rule_has_its_hand_computation():
    """Each rule in ``ct.RULES`` (the twins of the discrete estimators) appears in the table
    above, so none escapes the check against first principles."""
    checked = {type(rule) for rule, _ in RULES}
    missing = [name for name, cls in ct.RULES.items() if cls not in checked]
    assert not missing, f"continuous rules without a hand cross-check: {missing}"


# -- non-idealities kept in at zero strength ------------------------------------------------

KEY = jax.random.key(0)
INF = float("inf")


def _stream(presentations=3, *, scale_from=None, scale=1.0):
    """Random inputs and labels (synthetic); from presentation ``scale_from`` on, the inputs
    are ``scale`` times larger."""
    kx, ky = jax.random.split(jax.random.key(42))
    x = jax.random.normal(kx, (presentations, BATCH, FEATURES))
    if scale_from is not None:
        x = x.at[scale_from:].multiply(scale)
    y = jax.random.randint(ky, (presentations, BATCH), 0, CLASSES)
    return ct.Presentations(x, y, duration=3.0, transition=0.3)


def _tiny(key=KEY):
    return mlp((FEATURES,), CLASSES, (12,), local_heads=False, key=key)


def _fga(hardware=()):
    # Euler: the comparison holds for any solver, and it compiles in half Heun's time.
    return ct.Simulator(
        ct.FGARule(lr=3.0),
        ct.Sinusoids(sigma=0.01, tau=1.0),
        solver=diffrax.Euler(),
        dt0=0.05,
        hardware=hardware,
    )


# Each kind at its ideal value (its ``is_ideal``), its numbers made by ``v``: Python floats as a
# user writes them, or float32 arrays as an ensemble hands them to the compiled computation.
ZERO_STRENGTH = {
    "ActivityNoise": lambda v: ct.ActivityNoise(sigma=v(0.0), tau=v(0.1)),
    "CostNoise": lambda v: ct.CostNoise(sigma=v(0.0), tau=v(0.1)),
    "Differentiator": lambda v: ct.Differentiator(tau=v(0.0)),
    "Mismatch": lambda v: ct.Mismatch(v(0.0), v(0.0), v(0.0)),
    "WeightDrift": lambda v: ct.WeightDrift(tau=v(INF), sigma=v(0.0)),
    "Injection": lambda v: ct.Injection(amplitude=v(INF), crosstalk=v(0.0)),
    "Quantisation": lambda v: ct.Quantisation(bits=v(INF), w_max=v(INF)),
    "PulsedDevice": lambda v: ct.PulsedDevice(dw_min=v(0.0), w_min=v(-INF), w_max=v(INF)),
}
# A different compiled graph (the kept components' terms are still there, adding zeros and
# multiplying by ones) may fuse and round differently: measured ≤ 1.2e-7 of each array's
# largest entry. Relative to the largest entry, as biases start at zero.
COMPARED = ("params", "delta", "circuit", "loss", "alignment")
KEPT_TOLERANCE = dict.fromkeys(COMPARED, 1e-6)
# The quantiser (and a pulsed device) keeps the conductances still within a presentation and
# writes w + Δw at its end, even at bits = w_max = inf (dw_min = 0): each presentation's Δw
# then differs from the ideal one at second order (the rule evaluated at the start weights
# instead of the moving ones). Measured,
# relative to each array's largest entry: 1.2e-3 for Δw and for the weights' biases (which
# start at zero, so they are all Δw), 1.4e-6 for the loss, 4.2e-5 for the alignment.
QUANTISED_TOLERANCE = {"params": 5e-3, "delta": 5e-3, "circuit": 5e-3, "loss": 1e-5,
                       "alignment": 2e-4}  # fmt: skip


@pytest.fixture(scope="module")
def ideal_run():
    return ct.simulate(_fga(), _tiny(), _stream(), key=KEY, progress=False)


def _kept_run(hardware):
    """The run with ``hardware`` kept in, however ideal, as ``simulate_ensemble`` runs it."""
    stream = _stream()
    bound, state = ct.prepare(_fga(hardware), _tiny(), stream, key=KEY, keep_ideal=True)
    assert len(bound.simulator.hardware) == len(hardware)  # kept, not stripped
    run_key = jax.random.fold_in(KEY, 1)  # simulate's
    state, (loss, _, _, failed, alignment) = ct.run_presentations(
        bound, state, stream, 0, stream.num, run_key
    )
    assert not bool(jnp.any(failed))
    return {
        "params": state.params,
        "delta": state.delta,
        "circuit": eqx.filter(bound.circuit(state), eqx.is_inexact_array),
        "loss": loss,
        "alignment": alignment,
    }


def _assert_kept_equals_ideal(hardware, ideal_run, tolerance):
    kept = _kept_run(hardware)
    ideal = {
        "params": eqx.filter(ideal_run.model, eqx.is_inexact_array),
        "delta": ideal_run.delta,
        "circuit": eqx.filter(ideal_run.circuit, eqx.is_inexact_array),
        "loss": ideal_run.loss,
        "alignment": ideal_run.alignment,
    }
    for name, want in ideal.items():
        got = jax.tree.leaves(kept[name])
        for i, (a, b) in enumerate(zip(got, jax.tree.leaves(want), strict=True)):
            scale = float(jnp.max(jnp.abs(b)))
            assert scale > 0, (name, i)
            np.testing.assert_allclose(
                a, b, rtol=0, atol=tolerance[name] * scale, err_msg=f"{hardware} {name} [{i}]"
            )


def test_non_idealities_kept_at_zero_strength_are_the_ideal_simulator(ideal_run):
    # Together, with float32 numbers (traced, as in an ensemble), the components that act on the
    # circuit, the perturbation's path and the measured rates. The noisy ones (ActivityNoise,
    # WeightDrift: a Brownian path to compile) run in the slow test below.
    hardware = tuple(
        ZERO_STRENGTH[k](jnp.float32) for k in ("Differentiator", "Mismatch", "Injection")
    )
    assert all(h.is_ideal() for h in hardware)
    _assert_kept_equals_ideal(hardware, ideal_run, KEPT_TOLERANCE)


@pytest.mark.parametrize("kind", ["Quantisation", "PulsedDevice"])
def test_writing_devices_kept_at_zero_strength_are_the_ideal_simulator_to_second_order(
    kind, ideal_run
):
    device = ZERO_STRENGTH[kind](jnp.float32)
    assert device.is_ideal()
    _assert_kept_equals_ideal((device,), ideal_run, QUANTISED_TOLERANCE)


@pytest.mark.slow
@pytest.mark.parametrize("numbers", [float, jnp.float32], ids=["python", "float32"])
@pytest.mark.parametrize("kind", ZERO_STRENGTH)
def test_each_non_ideality_kept_at_zero_strength_is_the_ideal_simulator(kind, numbers, ideal_run):
    component = ZERO_STRENGTH[kind](numbers)
    assert component.is_ideal()
    tolerance = QUANTISED_TOLERANCE if kind == "Quantisation" else KEPT_TOLERANCE
    _assert_kept_equals_ideal((component,), ideal_run, tolerance)


# -- divergence ------------------------------------------------------------------------------


def _flow(lr):
    # Gradient flow: divergence and its bookkeeping do not depend on the rule; this one compiles
    # fastest. η as a float32 array: runs that differ only in η share one compiled computation.
    return ct.Simulator(ct.GradientFlow(lr=jnp.float32(lr)), None, solver=diffrax.Euler(), dt0=0.05)


def _same_results(a, b, tol):
    for name in ("loss", "accuracy", "alignment", "steps"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=tol, atol=tol)
    for part in (lambda r: eqx.filter(r.model, eqx.is_inexact_array), lambda r: r.delta):
        for u, v in zip(jax.tree.leaves(part(a)), jax.tree.leaves(part(b)), strict=True):
            np.testing.assert_allclose(u, v, rtol=tol, atol=tol)


def test_a_run_that_diverges_after_good_chunks_keeps_the_last_good_chunk():
    # Inputs 1e3 times larger from presentation 5 on make the gradient flow blow up there
    # (presentations 0-4 learn normally). With chunks of 2, chunks [0, 1] and [2, 3] are good;
    # chunk [4, 5] holds a good and the first bad presentation, so the result kept is the run
    # over presentations 0-3: exactly a run of that prefix alone, from the same key.
    stream = _stream(6, scale_from=5, scale=1e3)
    with pytest.raises(ct.SimulationDiverged, match="presentation 5") as failure:
        ct.simulate(_flow(3.0), _tiny(), stream, key=KEY, chunk=2, progress=False)
    assert failure.value.presentation == 5
    kept = failure.value.result
    assert kept.loss.shape == (4,) and bool(jnp.all(jnp.isfinite(kept.loss)))
    prefix = ct.Presentations(stream.x[:4], stream.y[:4], duration=stream.duration,
                              transition=stream.transition)  # fmt: skip
    alone = ct.simulate(_flow(3.0), _tiny(), prefix, key=KEY, chunk=4, progress=False)
    _same_results(kept, alone, 1e-6)


def test_an_ensemble_member_that_diverges_leaves_the_others_as_they_run_alone():
    # Inputs 10 times larger from presentation 2 on: η = 0.3 and 1 still learn, η = 30 blows up.
    stream = _stream(4, scale_from=2, scale=10.0)
    lrs = (0.3, 30.0, 1.0)
    keys = [jax.random.key(i) for i in range(3)]
    models = [_tiny(k) for k in keys]
    sims = [_flow(lr) for lr in lrs]
    ensemble = ct.simulate_ensemble(sims, models, stream, keys=keys, chunk=4, progress=False)
    with pytest.raises(ct.SimulationDiverged) as failure:
        ct.simulate(sims[1], models[1], stream, key=keys[1], chunk=4, progress=False)
    assert failure.value.presentation > 0  # it learned before it diverged
    assert np.array_equal(np.asarray(ensemble.diverged), [-1, failure.value.presentation, -1])
    assert not bool(jnp.any(ensemble.failed))
    for m in (0, 2):
        alone = ct.simulate(sims[m], models[m], stream, key=keys[m], chunk=4, progress=False)
        _same_results(ensemble.member(m), alone, 1e-5)  # the existing ensemble test's tolerance
