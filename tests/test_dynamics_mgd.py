"""Multiplexed gradient descent's loop as simulator components: the value-correlating rule
(``MGDRule``), its integration time constant τ_θ, the cost's high-pass (``HighPass``) and the
discrete mode (``DiscreteUpdates``), each checked against a hand formula or ``jax.grad``."""

import math

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ctlearn.dynamics as ct
from models.mlp import mlp

KEY = jax.random.PRNGKey(3)
XOR_X = jnp.array([[0, 0], [0, 1], [1, 0], [1, 1]], jnp.float32)
XOR_Y = jnp.array([0, 1, 1, 0], jnp.float32)
CHIP = 0.25
PARAMETERS = 2 * 3 + 3 + 3 * 1 + 1  # [2, 3, 1]: 13 weights and biases, Walsh order 16


def _net(key=KEY):
    return mlp(
        (2,), 1, (3,), activation="sigmoid", output_activation="sigmoid", local_heads=False,
        key=key,
    )  # fmt: skip


def _stream(count=4, batch=4, duration=16 * CHIP):
    order = jax.random.randint(jax.random.fold_in(KEY, 1), (count, batch), 0, 4)
    return ct.Presentations(XOR_X[order], XOR_Y[order], duration=duration)


def _simulator(rule, hardware=(), sigma=0.01, freeze=False, solver=None, dt0=CHIP / 16):
    return ct.Simulator(
        rule, ct.WalshCodes(sigma=sigma, tau=CHIP), loss="mse", dt0=dt0,
        hardware=hardware, freeze=freeze, solver=solver,
    )  # fmt: skip


def _mean_loss(net, x, y):
    out = net(x).logits[:, 0]
    return jnp.mean(0.5 * (out - y) ** 2)


def _shift(net, p):
    """``net`` with ``p`` (arrays in the order of the layers' leaves) added to its layers."""
    leaves, treedef = jax.tree.flatten(eqx.filter(net.layers, eqx.is_inexact_array))
    moved = jax.tree.unflatten(treedef, [w + d for w, d in zip(leaves, p)])
    static = eqx.filter(net.layers, eqx.is_inexact_array, inverse=True)
    return eqx.tree_at(lambda m: m.layers, net, eqx.combine(moved, static))


def _instant(rule, t=0.37):
    net = _net()
    perturbation = ct.WalshCodes(sigma=0.05, tau=CHIP)
    shapes = rule.perturbation_shapes(net, XOR_X)
    state = perturbation.init(shapes, key=KEY)
    p, p_dot = perturbation(state, t)
    signals = ct.measure(rule, ct.Instantaneous(), "mse", net, (XOR_X, None), XOR_Y, (p, p_dot))
    return net, p, signals


def test_the_rule_correlates_the_cost_change_with_the_perturbation_value():
    rule = ct.MGDRule(lr=2.0, loss="mse")
    net, p, signals = _instant(rule)
    change = _mean_loss(_shift(net, p), XOR_X, XOR_Y) - _mean_loss(net, XOR_X, XOR_Y)
    np.testing.assert_allclose(jnp.mean(signals.loss_changes[-1]), change, rtol=1e-4)
    w_dot, _ = rule.rates(net, signals, rule.init(net, key=KEY))
    got = jax.tree.leaves(eqx.filter(w_dot.layers, eqx.is_inexact_array))
    for g, pi in zip(got, p, strict=True):
        np.testing.assert_allclose(g, -2.0 * change * pi, rtol=1e-4, atol=1e-9)


def test_tau_theta_low_passes_the_estimate_and_the_weights_follow_the_integral():
    rule = ct.MGDRule(lr=2.0, loss="mse", tau_theta=0.5)
    net, p, signals = _instant(rule)
    held = jax.tree.map(lambda a: jnp.full_like(a, 0.3), rule.init(net, key=KEY))
    w_dot, state_rate = rule.rates(net, signals, held)
    g = ct.MGDRule(lr=1.0, loss="mse").estimate(net, signals)
    for w, s, gi in zip(*(jax.tree.leaves(a) for a in (w_dot, state_rate, g)), strict=True):
        np.testing.assert_allclose(w, -2.0 * 0.3, rtol=1e-6)
        np.testing.assert_allclose(s, (gi - 0.3) / 0.5, rtol=1e-5, atol=1e-7)


def test_over_one_walsh_period_the_change_is_the_gradient_times_the_value_power():
    # Frozen weights, one period (16 chips): the codes are orthogonal, so the integrated
    # −η ∫ θ̃_i C̃ dt = −η ∇_i L ∫ θ̃_i² dt up to O(σ) (third moments of the chips). ∫ θ̃_i² dt is
    # integrated here from the process itself, ∇L by jax.grad.
    sigma, lr = 0.01, 3.0
    stream = _stream(count=1)
    sim = _simulator(ct.MGDRule(lr=lr, loss="mse"), sigma=sigma, freeze=True)
    result = ct.simulate(sim, _net(), stream, key=KEY, progress=False)
    bound, state = ct.prepare(sim, _net(), stream, key=KEY)
    ts = jnp.linspace(0.0, stream.duration, 4097)
    values = jax.vmap(lambda t: sim.perturbation(state.perturbation, t)[0])(ts)
    power = [jnp.trapezoid(v**2, ts, axis=0) for v in values]
    net = _net()
    params, static = eqx.partition(net.layers, eqx.is_inexact_array)

    def loss_of(params):
        layers = eqx.combine(params, static)
        return _mean_loss(eqx.tree_at(lambda m: m.layers, net, layers), stream.x[0], stream.y[0])

    grads = jax.tree.leaves(jax.grad(loss_of)(params))
    delta = jax.tree.leaves(eqx.filter(result.delta.layers, eqx.is_inexact_array))
    for d, g, s in zip(delta, grads, power, strict=True):
        want = -lr * g * s
        np.testing.assert_allclose(d, want, rtol=0.03, atol=0.03 * float(jnp.max(jnp.abs(want))))
    assert float(result.alignment[0]) > 0.999


def _high_pass_response(tau, omega, periods=30):
    """The HighPass's output for a cost ``sin(ω t)`` (no perturbation effect), integrated by
    Diffrax from the component's own ``drift`` and ``observe``."""
    rule = ct.MGDRule(lr=1.0, loss="mse")
    _, _, base = _instant(rule)
    hp = ct.HighPass(tau=tau)

    def signals(t):
        cost = (jnp.sin(omega * t) * jnp.ones(4),)
        return eqx.tree_at(lambda s: (s.losses, s.loss_changes), base, (cost, cost))

    state = hp.init(None, signals(0.0), key=KEY)
    t1 = periods * 2 * math.pi / omega
    ts = jnp.linspace(t1 - 2 * math.pi / omega, t1, 401)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, y, _: hp.drift(signals(t), y, t)), diffrax.Tsit5(), 0.0, t1,
        0.01 / omega, state, saveat=diffrax.SaveAt(ts=ts), max_steps=100_000,
        stepsize_controller=diffrax.PIDController(rtol=1e-7, atol=1e-9),
    )  # fmt: skip
    out = jax.vmap(lambda t, y: hp.observe(signals(t), y, t).loss_changes[0][0])(ts, sol.ys)
    return float(jnp.max(jnp.abs(out)))


@pytest.mark.parametrize("omega_tau", [0.2, 1.0, 5.0])
def test_the_high_pass_has_the_first_order_gain(omega_tau):
    tau = 0.8
    gain = _high_pass_response(tau, omega_tau / tau)
    assert gain == pytest.approx(omega_tau / math.sqrt(1 + omega_tau**2), rel=0.01)


def test_a_zero_time_constant_high_pass_kept_in_is_the_exact_change():
    # Heun in both: the filter's state rules out PEC mode in the kept run.
    rule = ct.MGDRule(lr=3.0, loss="mse", tau_theta=0.5)
    sim = _simulator(rule, hardware=(ct.HighPass(),), solver=diffrax.Heun())
    stream = _stream()
    bound, state = ct.prepare(sim, _net(), stream, key=KEY, keep_ideal=True)
    assert len(bound.simulator.hardware) == 1
    state, (loss, _, _, _, alignment) = ct.run_presentations(
        bound, state, stream, 0, stream.num, jax.random.fold_in(KEY, 1)
    )
    ideal = ct.simulate(
        _simulator(rule, solver=diffrax.Heun()), _net(), stream, key=KEY, progress=False
    )
    np.testing.assert_allclose(loss, ideal.loss, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(state.delta), jax.tree.leaves(ideal.delta), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * float(jnp.max(jnp.abs(b))))


def test_a_slow_high_pass_reads_nearly_the_exact_change_and_a_fast_one_loses_it():
    # Chips of 0.25: a high-pass at τ_hp = 40 chips passes the perturbation's modulation (the
    # estimate stays aligned), one at τ_hp = chip/40 passes only its fast edges (small).
    stream = _stream(count=1)
    runs = {}
    for tau in (10.0, CHIP / 40):
        sim = _simulator(ct.MGDRule(lr=3.0, loss="mse"), hardware=(ct.HighPass(tau=tau),),
                         freeze=True, dt0=min(CHIP / 16, tau))  # fmt: skip
        runs[tau] = ct.simulate(sim, _net(), stream, key=KEY, progress=False)
    exact = ct.simulate(
        _simulator(ct.MGDRule(lr=3.0, loss="mse"), freeze=True), _net(), stream, key=KEY,
        progress=False,
    )  # fmt: skip
    size = lambda r: float(jnp.sqrt(sum(jnp.sum(a**2) for a in jax.tree.leaves(r.delta))))  # noqa: E731
    assert float(runs[10.0].alignment[0]) > 0.95
    assert size(runs[10.0]) == pytest.approx(size(exact), rel=0.1)
    assert size(runs[CHIP / 40]) < 0.3 * size(exact)


def test_hold_switch_shifts_the_filter_by_the_costs_jump_where_the_input_switches():
    """Two presentations of different XOR batches, instant switch, weights fixed (η = 0), a
    tiny perturbation: with ``hold_switch`` each example's filter copy L_f is shifted by its
    cost's jump ΔL = ℓ(x₂, y₂) − ℓ(x₁, y₁) at the switch, which then decays with τ_hp, so at the
    end the two runs' L_f differ by ΔL·e^(−T/τ_hp) (ΔL from the network by hand; within 0.5 %;
    two of the four examples do not switch)."""
    duration, tau = 16 * CHIP, 40.0
    first, second = jnp.array([0, 1, 2, 3]), jnp.array([1, 1, 2, 1])
    stream = ct.Presentations(
        jnp.stack([XOR_X[first], XOR_X[second]]),
        jnp.stack([XOR_Y[first], XOR_Y[second]]),
        duration=duration,
    )
    ends = {}
    for hold in (False, True):
        sim = _simulator(ct.MGDRule(lr=0.0, loss="mse"), sigma=1e-5, solver=diffrax.Heun(),
                         hardware=(ct.HighPass(tau=tau, hold_switch=hold),))  # fmt: skip
        result = ct.simulate(sim, _net(), stream, key=KEY, progress=False)
        (ends[hold],) = jax.tree.leaves(result.hardware_state[0].losses)
    net = _net()

    def per_example(index):  # each example is its own circuit, with its own cost
        return 0.5 * (net(XOR_X[index]).logits[:, 0] - XOR_Y[index]) ** 2

    jump = np.asarray(per_example(second) - per_example(first))
    assert np.all(np.abs(jump[[0, 3]]) > 0.01) and np.all(jump[[1, 2]] == 0)  # switched or not
    expected = jump * math.exp(-duration / tau)
    np.testing.assert_allclose(np.asarray(ends[True] - ends[False]), expected, rtol=5e-3, atol=1e-6)


def test_without_a_switch_hold_switch_changes_nothing():
    """The same batch twice: the cost does not jump, so holding the switch is the plain filter."""
    stream = _stream(count=1)
    stream = ct.Presentations(jnp.concatenate([stream.x] * 2), jnp.concatenate([stream.y] * 2),
                              duration=stream.duration)  # fmt: skip
    runs = [
        ct.simulate(
            _simulator(
                ct.MGDRule(lr=3.0, loss="mse"),
                solver=diffrax.Heun(),
                hardware=(ct.HighPass(tau=2.0, hold_switch=hold),),
            ),
            _net(),
            stream,
            key=KEY,
            progress=False,
        )  # fmt: skip
        for hold in (False, True)
    ]
    for a, b in zip(jax.tree.leaves(runs[0].delta), jax.tree.leaves(runs[1].delta), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9)


def test_discrete_updates_hold_the_weights_and_write_the_integral_at_the_end():
    stream = _stream(count=1)
    rule = ct.MGDRule(lr=3.0, loss="mse")
    held = ct.simulate(_simulator(rule, hardware=(ct.DiscreteUpdates(),)), _net(), stream,
                       key=KEY, progress=False)  # fmt: skip
    frozen = ct.simulate(_simulator(rule, freeze=True), _net(), stream, key=KEY, progress=False)
    start = jax.tree.leaves(eqx.filter(_net(), eqx.is_inexact_array))
    for d_held, d_frozen, w0, w1 in zip(
        jax.tree.leaves(held.delta), jax.tree.leaves(frozen.delta), start,
        jax.tree.leaves(eqx.filter(held.model, eqx.is_inexact_array)), strict=True,
    ):  # fmt: skip
        np.testing.assert_allclose(d_held, d_frozen, rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(w1, w0 + d_held, rtol=1e-6, atol=1e-7)


def test_update_noise_is_one_common_draw_per_write():
    noise, count = 0.1, 120
    sim = _simulator(ct.MGDRule(lr=0.0, loss="mse"), hardware=(ct.DiscreteUpdates(noise=noise),))
    models = []

    def keep(_, result):
        models.append(jax.tree.leaves(eqx.filter(result.model, eqx.is_inexact_array)))

    ct.simulate(sim, _net(), _stream(count=count), key=KEY, progress=False, chunk=1, callback=keep)
    start = jax.tree.leaves(eqx.filter(_net(), eqx.is_inexact_array))
    steps = []
    for before, after in zip([start] + models[:-1], models):
        moved = np.concatenate([np.ravel(a - b) for a, b in zip(after, before)])
        np.testing.assert_allclose(moved, moved[0], atol=1e-6)  # one draw for every weight
        steps.append(moved[0])
    # 120 draws: the sample standard deviation is within 4 standard errors (≈ 4/√240) of σ.
    assert np.std(steps) == pytest.approx(noise, rel=4 / math.sqrt(2 * count))
    assert abs(np.mean(steps)) < 4 * noise / math.sqrt(count)


def test_bad_settings_fail_before_any_work():
    with pytest.raises(ValueError, match="tau_theta"):
        ct.MGDRule(lr=1.0, tau_theta=-1.0)
    with pytest.raises(ValueError, match="HighPass: tau"):
        ct.HighPass(tau=math.inf)
    with pytest.raises(ValueError, match="DiscreteUpdates: noise"):
        ct.DiscreteUpdates(noise=-0.1)
    stream = _stream(count=1)
    sim = _simulator(ct.MGDRule(lr=1.0, loss="mse", tau_theta=CHIP / 32))
    with pytest.raises(ValueError, match="larger than integration tau_theta"):
        ct.prepare(sim, _net(), stream, key=KEY)
    sim = _simulator(ct.FGWRule(lr=1.0, loss="mse"), hardware=(ct.HighPass(tau=1.0),))
    with pytest.raises(ValueError, match="reads rates only: use Differentiator"):
        ct.prepare(sim, _net(), stream, key=KEY)
    sim = _simulator(ct.MGDRule(lr=1.0, loss="mse"), hardware=(ct.HighPass(tau=1.0, blank=4.0),))
    with pytest.raises(ValueError, match="blanking window"):
        ct.prepare(sim, _net(), stream, key=KEY)


def test_cost_noise_is_added_to_the_read_cost_with_its_rate():
    # One long presentation with frozen weights, recorded with and without the noise (same
    # perturbation): the differences are n(t) in the cost change and ṅ(t) in the loss rate.
    # n has standard deviation σ and ṅ σ/τ_n in stationarity: over 400 correlation times (≈ 200
    # independent values) the sample values are within 25 % (about 3.5 standard errors).
    sigma, tau_n, duration = 0.02, 0.125, 50.0
    stream = _stream(count=1, duration=duration)
    rule = ct.MGDRule(lr=1.0, loss="mse")

    def record(state, signals):
        return jnp.mean(signals.loss_changes[-1]), jnp.mean(signals.loss_rates[-1])

    runs = []
    for hardware in ((ct.CostNoise(sigma=sigma, tau=tau_n),), ()):
        sim = _simulator(rule, hardware=hardware, freeze=True, solver=diffrax.Heun())
        runs.append(ct.record_presentation(sim, _net(), stream, key=KEY, times=4001, record=record))
    (ts, (c1, r1)), (_, (c0, r0)) = runs
    n, n_dot = np.asarray(c1 - c0, np.float64), np.asarray(r1 - r0, np.float64)
    assert np.std(n) == pytest.approx(sigma, rel=0.25)
    assert np.std(n_dot) == pytest.approx(sigma / tau_n, rel=0.25)
    # ṅ is the rate of n: each step's change of n against the trapezoid of ṅ over it (ṅ is
    # rough, so they differ by O(√(Δt/τ_n)) per step, but the least-squares slope is 1).
    step, rate = np.diff(n), 0.5 * (n_dot[1:] + n_dot[:-1]) * np.diff(ts)
    assert np.dot(step, rate) / np.dot(rate, rate) == pytest.approx(1.0, abs=0.05)


def test_the_engine_resolves_the_integration_time_constant():
    # A τ_θ of one step: the automatic path sub-steps until rate·dt0 <= 0.15, naming τ_θ.
    sim = _simulator(ct.MGDRule(lr=1.0, loss="mse", tau_theta=CHIP / 16))
    substeps, why = ct.refinement(sim, None)
    assert substeps == 7 and "tau_theta" in why
    assert ct.refinement(_simulator(ct.MGDRule(lr=1.0, loss="mse")), None) == (1, None)


def test_at_first_order_the_rule_is_fg_ws_estimate_along_its_perturbation():
    # C̃ = L(w + θ̃) − L(w) from two forward passes → ∇L·θ̃ (FG-W's jvp) as θ̃ → 0: the rates
    # equal −η times the discrete estimator with direction θ̃ to O(σ) (here σ = 1e-3: 1 %).
    rule = ct.MGDRule(lr=2.0, loss="mse")
    net = _net()
    perturbation = ct.WalshCodes(sigma=1e-3, tau=CHIP)
    state = perturbation.init(rule.perturbation_shapes(net, XOR_X), key=KEY)
    p, p_dot = perturbation(state, 0.37)
    signals = ct.measure(rule, ct.Instantaneous(), "mse", net, (XOR_X, None), XOR_Y, (p, p_dot))
    w_dot, _ = rule.rates(net, signals, rule.init(net, key=KEY))
    grads, _ = rule.discrete(net, XOR_X, XOR_Y, p, None)
    got = jax.tree.leaves(eqx.filter(w_dot, eqx.is_inexact_array))
    want = jax.tree.leaves(eqx.filter(grads, eqx.is_inexact_array))
    for g, d in zip(got, want, strict=True):
        np.testing.assert_allclose(g, -2.0 * d, rtol=0.01, atol=0.01 * float(jnp.max(jnp.abs(d))))
