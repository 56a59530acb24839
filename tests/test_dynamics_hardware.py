"""Non-idealities of analog circuits: ideal limits, reproducibility, physics and validation.

Synthetic data (random inputs and labels, labelled as such) on tiny networks, fixed seeds.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ctlearn.dynamics as ct
from models import mlp

KEY = jax.random.PRNGKey(0)


def synthetic_stream(
    presentations=4, batch=6, features=10, classes=3, duration=3.0, transition=0.3
):
    """Random inputs and labels (synthetic, not a dataset)."""
    kx, ky = jax.random.split(jax.random.PRNGKey(42))
    x = jax.random.normal(kx, (presentations, batch, features))
    y = jax.random.randint(ky, (presentations, batch), 0, 3)
    return ct.Presentations(x, y, duration=duration, transition=transition)


def tiny_model(key=KEY):
    return mlp((10,), 3, (12,), local_heads=False, key=key)


def simulator(hardware=(), lr=3.0, dt0=0.05, **kwargs):
    return ct.Simulator(
        rule=ct.FGARule(lr=lr),
        perturbation=ct.Sinusoids(sigma=0.01, tau=1.0),
        dt0=dt0,
        hardware=hardware,
        **kwargs,
    )


def leaves_equal(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(bool(jnp.array_equal(x, y)) for x, y in zip(la, lb))


ZERO_STRENGTH = (
    ct.ActivityNoise(sigma=0.0, tau=0.1),
    ct.Differentiator(tau=0.0),
    ct.Mismatch(gain_spread=0.0, offset_spread=0.0, lr_spread=0.0),
    ct.Quantisation(bits=math.inf, w_max=math.inf),
    ct.WeightDrift(tau=math.inf, sigma=0.0),
    ct.Injection(amplitude=math.inf, crosstalk=0.0),
)


def test_simulate_leaves_every_non_ideality_at_zero_strength_out():
    # Left out, so the run is the ideal simulator's own; kept in (as ensembles keep them), they
    # are compared with the ideal simulator in test_dynamics_crosscheck.py.
    stream = synthetic_stream()
    bound, _ = ct.prepare(simulator(ZERO_STRENGTH), tiny_model(), stream, key=KEY)
    assert bound.simulator.hardware == ()
    ideal = ct.simulate(simulator(), tiny_model(), stream, key=KEY, progress=False)
    each = [
        ct.simulate(simulator((h,)), tiny_model(), stream, key=KEY, progress=False)
        for h in ZERO_STRENGTH
    ]
    every = ct.simulate(simulator(ZERO_STRENGTH), tiny_model(), stream, key=KEY, progress=False)
    for h, result in zip(ZERO_STRENGTH + ("all",), each + [every]):
        assert leaves_equal(result.model, ideal.model), h
        assert leaves_equal(result.delta, ideal.delta), h
        assert np.array_equal(result.loss, ideal.loss), h
        assert np.array_equal(result.alignment, ideal.alignment), h


def test_noisy_runs_are_reproducible_from_their_key_and_differ_between_keys():
    stream = synthetic_stream(presentations=2, duration=2.0)
    noisy = simulator((ct.ActivityNoise(sigma=0.02, tau=0.2), ct.WeightDrift(sigma=0.01)))
    a = ct.simulate(noisy, tiny_model(), stream, key=KEY, progress=False)
    b = ct.simulate(noisy, tiny_model(), stream, key=KEY, progress=False)
    c = ct.simulate(noisy, tiny_model(), stream, key=jax.random.PRNGKey(1), progress=False)
    assert leaves_equal(a.model, b.model) and np.array_equal(a.loss, b.loss)
    assert leaves_equal(a.hardware_state, b.hardware_state)
    noise_a, noise_c = a.hardware_state[0].n[0], c.hardware_state[0].n[0]
    assert float(jnp.max(jnp.abs(noise_a - noise_c))) > 1e-3
    assert not np.array_equal(a.loss, c.loss)
    # The same model and perturbation but another noise path: the weights' random walk differs.
    w_a, w_c = a.model.layers[0].weight, c.model.layers[0].weight
    assert float(jnp.max(jnp.abs(w_a - w_c))) > 1e-3


def test_activity_noise_has_its_stated_amplitude_and_reaches_the_loss_but_not_the_rule():
    sigma, tau = 0.05, 0.1
    stream = synthetic_stream(presentations=1, duration=30.0, transition=0.0)
    sim = simulator((ct.ActivityNoise(sigma=sigma, tau=tau),), lr=0.0, dt0=0.02, freeze=True)

    def record(state, signals):
        return state.hardware[0].n[0][:, :4], signals.p_dot[0][:, :4]

    _, (n, p_dot) = ct.record_presentation(
        sim, tiny_model(), stream, key=KEY, times=400, record=record
    )
    # Stationary standard deviation σ (6 × 4 units × 300 correlation times).
    assert float(jnp.std(n)) == pytest.approx(sigma, rel=0.15)
    _, p_dot_ideal = ct.record_presentation(
        simulator(lr=0.0, dt0=0.02, freeze=True),
        tiny_model(),
        stream,
        key=KEY,
        times=400,
        record=lambda state, signals: signals.p_dot[0][:, :4],
    )
    assert np.array_equal(p_dot, p_dot_ideal)  # the rule's ẏ is the generator's own rate


def test_a_fast_differentiator_reads_the_exact_rates_and_a_slow_one_attenuates_them():
    stream = synthetic_stream(presentations=1, duration=8.0, transition=0.0)

    def rates(tau):
        sim = simulator((ct.Differentiator(tau=tau),), lr=0.0, dt0=0.002, freeze=True)
        _, (p_dot, r_dot) = ct.record_presentation(
            sim,
            tiny_model(),
            stream,
            key=KEY,
            times=200,
            record=lambda s, sig: (sig.p_dot[0], sig.loss_rates[-1]),
        )
        return p_dot[20:], r_dot[20:]  # after the filters' start

    exact_p, exact_r = rates(0.0)
    fast_p, fast_r = rates(0.005)
    slow_p, _ = rates(1.0)
    rel = lambda a, b: float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))  # noqa: E731
    assert rel(fast_p, exact_p) < 0.05
    assert rel(fast_r, exact_r) < 0.05
    # Components at ω ~ 1/τ_p through iω/(1 + iωτ_d) with τ_d = τ_p lose about half their power.
    assert float(jnp.linalg.norm(slow_p) / jnp.linalg.norm(exact_p)) < 0.85


def test_weight_drift_decays_weights_with_its_retention_time():
    stream = synthetic_stream(presentations=2, transition=0.0)
    tau = 4.0
    sim = simulator((ct.WeightDrift(tau=tau, rest=0.1),), lr=0.0)
    model = tiny_model()
    result = ct.simulate(sim, model, stream, key=KEY, progress=False)
    t = stream.num * stream.duration
    expected = 0.1 + (model.layers[0].weight - 0.1) * math.exp(-t / tau)
    # Heun with dt0 = 0.05 τ_w/80: a global error of order 1e-5 of the weights.
    np.testing.assert_allclose(result.model.layers[0].weight, expected, rtol=1e-4, atol=2e-5)


def test_quantisation_stores_levels_in_range_and_rounding_is_as_documented():
    q = ct.Quantisation(bits=3, w_max=1.0)
    step = 2.0 / 7
    w = {"a": jnp.linspace(-1.5, 1.5, 101)}
    stored = q.write(w, None, KEY)["a"]
    levels = -1.0 + step * jnp.arange(8)
    assert float(jnp.max(jnp.abs(stored))) <= 1.0 + 1e-6
    assert float(jnp.min(jnp.abs(stored[:, None] - levels[None]), axis=1).max()) < 1e-6
    assert float(jnp.max(jnp.abs(stored - jnp.clip(w["a"], -1, 1)))) <= step / 2 + 1e-6
    # Stochastic rounding is unbiased: the mean over many writes is the value itself.
    stochastic = ct.Quantisation(bits=3, w_max=1.0, rounding="stochastic")
    value = {"a": jnp.full((4000,), 0.1)}
    mean = float(jnp.mean(stochastic.write(value, None, KEY)["a"]))
    assert mean == pytest.approx(0.1, abs=4 * step / math.sqrt(4000))


def test_the_device_is_written_once_per_presentation_with_the_accumulated_update():
    stream = synthetic_stream(presentations=1)
    model = tiny_model()
    q = ct.Quantisation(bits=6, w_max=2.0)
    result = ct.simulate(simulator((q,), lr=200.0), model, stream, key=KEY, progress=False)
    start = q.write(eqx.filter(model, eqx.is_inexact_array), None, KEY)
    # The conductances held still during the presentation; the rule's change was then written.
    expected = q.write(jax.tree.map(jnp.add, start, result.delta), None, KEY)
    stored = jax.tree.leaves(eqx.filter(result.model, eqx.is_inexact_array))
    for got, want in zip(stored, jax.tree.leaves(expected)):
        np.testing.assert_allclose(got, want, atol=1e-6)  # the same level, to float rounding
    assert not leaves_equal(expected, start)
    # An update below half a level is lost with round-to-nearest.
    tiny = jax.tree.map(lambda w: w + 0.2 * 4.0 / 63, start)
    assert leaves_equal(q.write(tiny, None, KEY), start)


def test_mismatch_builds_the_stated_circuit_and_the_rule_measures_that_circuit():
    mismatch = ct.Mismatch(gain_spread=0.3, offset_spread=0.05, lr_spread=0.0)
    stream = synthetic_stream(presentations=1)
    model = tiny_model()
    sim = ct.Simulator(
        rule=ct.FGARule(lr=2.0),
        perturbation=ct.Sinusoids(sigma=1e-6, tau=1.0),
        dt0=0.05,
        hardware=(mismatch,),
    )
    bound, state = ct.prepare(sim, model, stream, key=KEY)
    draws = state.hardware[0]
    circuit = bound.circuit(state)
    gain = jnp.exp(0.3 * draws.gain[0] - 0.3**2 / 2)
    x = stream.x[0]
    z = x @ circuit.layers[0].weight + circuit.layers[0].bias
    expected = gain * (x @ model.layers[0].weight + model.layers[0].bias) + 0.05 * draws.offset[0]
    np.testing.assert_allclose(z, expected, rtol=1e-5, atol=1e-6)
    # The circuit's ẇ is −η × the discrete FG-A estimate of the circuit itself along ṗ.
    plain, args = ct.split_state(bound.simulator, state, stream, 0)
    signals = bound.signals(model, plain, 0.4, args)
    w_dot, _ = bound.simulator.rule.rates(model, signals, None)
    grads, _ = bound.simulator.rule.discrete(circuit, x, stream.y[0], signals.p_dot, None)
    np.testing.assert_allclose(
        w_dot.layers[0].weight, -2.0 * grads.layers[0].weight, rtol=1e-3, atol=1e-9
    )


def test_learning_rate_spread_scales_each_synapse_by_a_fixed_mean_one_factor():
    mismatch = ct.Mismatch(lr_spread=0.5)
    model = mlp((10,), 3, (400,), local_heads=False, key=KEY)
    stream = synthetic_stream(presentations=1)
    state = mismatch.init(model, None, key=KEY)
    w_dot = eqx.filter(jax.tree.map(jnp.ones_like, model), eqx.is_inexact_array)
    scaled = mismatch.synapses(w_dot, state).layers[0].weight
    assert float(jnp.mean(scaled)) == pytest.approx(1.0, abs=0.02)
    assert float(jnp.std(jnp.log(scaled))) == pytest.approx(0.5, rel=0.05)
    assert float(jnp.min(scaled)) > 0
    del stream


def test_injection_crosstalk_and_saturation():
    injection = ct.Injection(amplitude=0.5, crosstalk=0.1)
    p = (jnp.array([[0.0, 1.0, 0.0, 0.0, 3.0]]),)
    p_dot = (jnp.array([[1.0, 0.0, 0.0, 0.0, 0.0]]),)
    q, q_dot = injection.inject(p, p_dot)
    mixed = jnp.array([[0.1, 1.0, 0.1, 0.3, 3.0]])
    np.testing.assert_allclose(q[0], 0.5 * jnp.tanh(mixed / 0.5), rtol=1e-6)
    assert float(jnp.max(jnp.abs(q[0]))) < 0.5
    # Channel 0's rate leaks into its only neighbour, both through the saturating injector.
    slope = 1 / jnp.cosh(mixed / 0.5) ** 2
    np.testing.assert_allclose(q_dot[0], slope * jnp.array([[1.0, 0.1, 0, 0, 0]]), rtol=1e-5)


def test_an_ensemble_equals_its_members_run_one_by_one():
    stream = synthetic_stream(presentations=2)
    keys = [jax.random.PRNGKey(i) for i in range(2)]
    models = [tiny_model(k) for k in keys]

    def sim(sigma, tau_d, bits):
        return simulator(
            (
                ct.ActivityNoise(sigma=sigma, tau=0.2),
                ct.Differentiator(tau=tau_d),
                ct.Quantisation(bits=bits, w_max=2.0),
            )
        )

    sims = [sim(0.0, 0.0, math.inf), sim(0.03, 0.1, 8)]
    ensemble = ct.simulate_ensemble(sims, models, stream, keys=keys, chunk=2, progress=False)
    for m in range(2):
        alone = ct.simulate(sims[m], models[m], stream, key=keys[m], progress=False)
        member = ensemble.member(m)
        # Member 0 keeps its components at zero strength (the ensemble's structure); the
        # quantiser then still writes once per presentation, so it is close, not identical.
        tol = 1e-3 if m == 0 else 1e-5
        np.testing.assert_allclose(member.loss, alone.loss, rtol=tol, atol=tol)
        np.testing.assert_allclose(
            member.model.layers[0].weight, alone.model.layers[0].weight, rtol=tol, atol=tol
        )
    assert np.array_equal(np.asarray(ensemble.diverged), [-1, -1])
    with pytest.raises(ValueError, match="differs from member 0 in structure"):
        ct.simulate_ensemble(
            [sims[1], simulator()], models[:2], stream, keys=keys[:2], progress=False
        )


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: ct.ActivityNoise(sigma=0.1, tau=0.0), "tau must be > 0"),
        (lambda: ct.ActivityNoise(sigma=-0.1), "sigma must be finite and >= 0"),
        (lambda: ct.Differentiator(tau=-0.1), "tau must be finite and >= 0"),
        (lambda: ct.Differentiator(tau=0.1, measure=("pre",)), "unknown measure"),
        (lambda: ct.WeightDrift(tau=0.0), "tau must be > 0"),
        (lambda: ct.WeightDrift(tau=-5.0), "tau=-5.0"),
        (lambda: ct.Mismatch(gain_spread=-0.1), "gain_spread must be finite and >= 0"),
        (lambda: ct.Quantisation(bits=0), "bits must be >= 1"),
        (lambda: ct.Quantisation(bits=8), "needs a finite range w_max"),
        (lambda: ct.Quantisation(bits=8, w_max=1.0, rounding="up"), "unknown rounding"),
        (lambda: ct.Injection(crosstalk=0.7), "crosstalk must be in"),
        (lambda: ct.Injection(amplitude=0.0), "amplitude must be > 0"),
        (
            lambda: simulator((ct.Differentiator(tau=0.1), ct.Differentiator(tau=0.2))),
            "more than one Differentiator",
        ),
    ],
)
def test_nonsensical_parameters_fail_naming_the_value(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    ("hardware", "dt0", "match"),
    [
        ((ct.Differentiator(tau=5.0),), 0.05, r"tau_d=5.0 is longer than a presentation"),
        ((ct.Differentiator(tau=0.01),), 0.05, r"dt0=0.05 is larger than differentiator tau_d"),
        ((ct.ActivityNoise(sigma=0.1, tau=0.02),), 0.05, r"larger than activity noise tau"),
        ((ct.Differentiator(tau=0.1, blank=3.0),), 0.05, "blanking window blank=3.0"),
    ],
)
def test_physics_that_does_not_fit_the_presentations_fails_before_integrating(hardware, dt0, match):
    with pytest.raises(ValueError, match=match):
        ct.simulate(
            simulator(hardware, dt0=dt0),
            tiny_model(),
            synthetic_stream(),
            key=KEY,
            progress=False,
        )
