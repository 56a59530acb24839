"""The "lars" optimizer that ctlearn builds, against LARS worked out by hand in NumPy.

Optax documents ``optax.lars`` as the chain: decoupled weight decay ``u = g + λ w`` (on the
leaves ``weight_decay_mask`` selects), the layer-wise trust ratio ``u ← u · c ‖w‖ / ‖u‖`` (on the
leaves ``trust_ratio_mask`` selects; 1 where ``‖w‖`` or ``‖u‖`` is 0), ``u ← −η_k u`` with the
schedule's rate at step k, then momentum ``m_k = u + μ m_{k−1}``, the update being ``m_k``.
ctlearn selects the weights (arrays with ndim ≥ 2) for both masks; the trust coefficient c is
Optax's default, 0.001. Parameters and gradients are synthetic (fixed-seed Gaussians).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ctlearn.train import TrainConfig, make_optimizer, make_schedule

TRUST_COEFFICIENT = 0.001  # optax.lars's default, which ctlearn does not change
LR, MOMENTUM, WEIGHT_DECAY = 0.5, 0.9, 0.01
# float32 against a float64 hand computation of a few norms and products per leaf.
RTOL, ATOL = 1e-5, 1e-9


def _normal(rng, shape, scale=1.0):
    return jnp.asarray(scale * rng.standard_normal(shape), jnp.float32)


def _params():
    rng = np.random.default_rng(0)
    return {
        "dense": {"weight": _normal(rng, (4, 3)), "bias": _normal(rng, (3,))},
        "conv": {"kernel": _normal(rng, (3, 3, 2, 2), 0.1)},
        # A zero-initialised matrix: ‖w‖ = 0, so its trust ratio falls back to 1.
        "zero": jnp.zeros((2, 2)),
    }


def _lars_by_hand(params, grads_per_step, lrs):
    """LARS (Optax's documented order of operations) in float64 NumPy: the updates of each step."""
    w = {k: np.asarray(v, np.float64) for k, v in _flat(params).items()}
    momentum = {k: np.zeros_like(v) for k, v in w.items()}
    updates = []
    for grads, lr in zip(grads_per_step, lrs):
        step = {}
        for name, g in _flat(grads).items():
            u = np.asarray(g, np.float64)
            if w[name].ndim >= 2:  # weights: decayed and scaled by the trust ratio
                u = u + WEIGHT_DECAY * w[name]
                w_norm, u_norm = np.linalg.norm(w[name]), np.linalg.norm(u)
                ratio = TRUST_COEFFICIENT * w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
                u = ratio * u
            momentum[name] = -lr * u + MOMENTUM * momentum[name]
            step[name] = momentum[name]
        for name in w:
            w[name] = w[name] + step[name]
        updates.append(step)
    return updates


def _flat(tree):
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    return {jax.tree_util.keystr(path): leaf for path, leaf in leaves}


def test_lars_applies_layer_wise_trust_ratios_as_documented():
    params = _params()
    rng = np.random.default_rng(1)
    grads_per_step = [jax.tree.map(lambda p: _normal(rng, p.shape), params) for _ in range(3)]
    # A schedule that changes every step (linear decay to 0 over 2 epochs of 2 steps): η_k =
    # LR · (1 − k/4), so the test also sees that each step reads its own rate.
    schedule = make_schedule("linear", LR, steps_per_epoch=2, epochs=2)
    lrs = [LR * (1 - k / 4) for k in range(len(grads_per_step))]
    optimizer = make_optimizer("lars", schedule, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)

    state = optimizer.init(params)
    update = jax.jit(optimizer.update)
    got = []
    for grads in grads_per_step:
        updates, state = update(grads, state, params)
        params = optax.apply_updates(params, updates)
        got.append(_flat(updates))

    expected = _lars_by_hand(_params(), grads_per_step, lrs)
    for k, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g.keys() == e.keys()
        for name in e:
            np.testing.assert_allclose(
                np.asarray(g[name]), e[name], rtol=RTOL, atol=ATOL, err_msg=f"step {k} {name}"
            )
    # The trust ratio is what makes this LARS and not SGD with momentum: the weights' first
    # update is far smaller than −η g (c‖w‖/‖g + λw‖ ≈ 1e-3 here), the bias's is exactly −η g.
    first = got[0]
    weight_grad = np.asarray(grads_per_step[0]["dense"]["weight"])
    assert np.linalg.norm(first["['dense']['weight']"]) < 1e-2 * LR * np.linalg.norm(weight_grad)
    np.testing.assert_allclose(
        first["['dense']['bias']"], -LR * np.asarray(grads_per_step[0]["dense"]["bias"]), rtol=RTOL
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("momentum", 1.0, "momentum must be a finite real number >= 0 and < 1, got 1.0"),
        ("momentum", -0.1, "momentum must be a finite real number >= 0 and < 1, got -0.1"),
        ("weight_decay", -1e-4, "weight_decay must be a finite real number >= 0, got -0.0001"),
        ("lr", 0.0, "lr must be a finite real number > 0, got 0.0"),
    ],
)
def test_bad_lars_options_are_refused_with_the_value(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(optimizer="lars", **{field: value})


def test_an_unknown_optimizer_name_lists_lars_among_the_valid_ones():
    message = "unknown optimizer 'LARS'; valid optimizers: sgd, adam, lars"
    with pytest.raises(ValueError, match=message):
        make_optimizer("LARS", optax.constant_schedule(LR))
