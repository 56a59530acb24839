"""Pulsed devices: stochastic pulse counts and the pulse cap, each response family's step
against its formula, bounds, up/down asymmetry and the drift of random pulses to the symmetry
point, cycle-to-cycle and device-to-device spreads, presets, refusals, and a device in a
simulator and an ensemble. Fixed keys; statistical bounds fail with probability < 1e-6."""

import math

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ctlearn.dynamics as ct
from models.mlp import mlp

N = 20_000  # devices in the statistical tests


def devices(device, shape=(N,), key=0):
    """A flat array of ``shape`` devices: the device's state for it."""
    model = {"w": jnp.zeros(shape)}
    draws = jax.random.normal(jax.random.key(key), (5, *shape))
    return ct.PulsedDeviceState(*({"w": d} for d in draws)), model


def write(device, state, stored, target, key=1):
    out = jax.jit(lambda s, t, o, k: device.write(t, s, k, stored=o))(
        state, {"w": target}, {"w": stored}, jax.random.key(key)
    )
    return np.asarray(out["w"], np.float64)


def test_pulse_count_is_stochastically_rounded_and_capped():
    """Constant steps, no noise: a request of 5.3 steps gives 5 or 6 pulses, 6 with probability
    0.3 (mean within 5 standard errors over 20,000 devices); a request of 100 steps is cut at
    max_pulses; a request below one step is lost with probability 1 − its fraction."""
    device = ct.PulsedDevice(dw_min=0.01, w_min=-10.0, w_max=10.0, max_pulses=31)
    state, _ = devices(device)
    zero = jnp.zeros(N)
    pulses = np.round(write(device, state, zero, zero + 0.053) / 0.01, 4)
    assert set(pulses) == {5.0, 6.0}
    se = math.sqrt(0.3 * 0.7 / N)
    assert abs(np.mean(pulses == 6.0) - 0.3) < 5 * se
    np.testing.assert_allclose(write(device, state, zero, zero - 1.0), -0.31, atol=1e-6)
    small = write(device, state, zero, zero + 0.002) / 0.01
    assert abs(np.mean(small) - 0.2) < 5 * math.sqrt(0.2 * 0.8 / N)


def test_responses_follow_their_formulas():
    """One pulse from w: constant δ; linear δ(1 − γ·w/bound); soft bounds δ(1 − w/bound), zero
    at the bound; aihwkit's exponential step δ·max(1 − A·exp(±γz), 0), z = 2a·w/range + b
    (float64 NumPy, rtol 1e-5, atol 1e-7: float32 w ± δ). Steps never carry a device past its
    bounds."""
    w = jnp.linspace(-0.9, 0.9, 7)
    lo, hi = -1.0, 1.0
    exp = ct.ExpStep()
    z = 2 * exp.a * np.asarray(w, np.float64) / (hi - lo) + exp.b
    cases = {
        ct.ConstantStep(): (np.ones(7), np.ones(7)),
        ct.LinearStep(0.3, 0.6): (1 - 0.3 * np.asarray(w) / hi, 1 - 0.6 * np.asarray(w) / lo),
        ct.SoftBounds(): (1 - np.asarray(w) / hi, 1 - np.asarray(w) / lo),
        exp: (
            np.maximum(1 - exp.a_up * np.exp(exp.gamma_up * z), 0),
            np.maximum(1 - exp.a_down * np.exp(-exp.gamma_down * z), 0),
        ),
    }
    for response, (up, down) in cases.items():
        device = ct.PulsedDevice(dw_min=0.01, response=response, w_min=lo, w_max=hi)
        state, _ = devices(device, (7,))
        moved_up = write(device, state, w, w + 0.01 * 0.999 + 1e-9) - np.asarray(w)
        moved_down = write(device, state, w, w - 0.01 * 0.999 - 1e-9) - np.asarray(w)
        # 0.999 steps: one pulse unless u < 0.001 draws none; the key gives one pulse here.
        np.testing.assert_allclose(moved_up, 0.01 * up, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(moved_down, -0.01 * down, rtol=1e-5, atol=1e-7)
    soft = ct.PulsedDevice(dw_min=0.3, response=ct.SoftBounds(), w_min=lo, w_max=hi)
    state, _ = devices(soft, (3,))
    far = write(soft, state, jnp.zeros(3), jnp.full(3, 50.0))
    assert np.all(far <= hi) and np.all(far > 0.99)  # approaches the bound, never passes it


@pytest.mark.parametrize(
    "response, w_min, w_max, by_hand",
    [
        # (α₊ − α₋)/(α₊/w_max − α₋/w_min) with α± = 1 ± 0.3: 0.6/(1.3 + 0.7)
        (ct.SoftBounds(), -1.0, 1.0, 0.3),
        # γ₊ = 0.5, γ₋ = 0.25 on [−0.75, 1.25]: 0.6/(1.3·0.5/1.25 + 0.7·0.25/0.75)
        (ct.LinearStep(gamma_up=0.5, gamma_down=0.25), -0.75, 1.25, 0.6 / (0.52 + 0.7 / 3)),
    ],
    ids=["soft_bounds", "linear_step"],
)
def test_asymmetric_devices_drift_to_their_symmetry_point(response, w_min, w_max, by_hand):
    """Up steps δ(1 + β), down steps δ(1 − β), β = 0.3: ``symmetry_point`` equals the value
    worked out by hand, and 400 writes of one random ± pulse each (a rule with no net signal)
    carry every device from 0 there; the devices' mean within 0.02."""
    beta = 0.3
    device = ct.PulsedDevice(dw_min=0.01, up_down=beta, response=response, w_min=w_min,
                             w_max=w_max)  # fmt: skip
    w_star = device.symmetry_point()
    assert w_star == pytest.approx(by_hand, rel=1e-12)
    state, _ = devices(device, (2000,))

    @jax.jit
    def step(w, k):
        sign = jax.random.rademacher(jax.random.fold_in(k, 0), w.shape).astype(w.dtype)
        out = device.write({"w": w + sign * 0.01}, state, jax.random.fold_in(k, 1), stored={"w": w})
        return out["w"], None

    steps = 400 if isinstance(response, ct.SoftBounds) else 1600  # γ < 1 pulls more slowly
    w, _ = jax.lax.scan(step, jnp.zeros(2000), jax.random.split(jax.random.key(3), steps))
    assert float(jnp.mean(w)) == pytest.approx(w_star, abs=0.02)


@pytest.mark.parametrize("response", [ct.ConstantStep(), ct.ExpStep(), ct.LinearStep()])
def test_a_response_without_a_symmetry_point_is_named(response):
    device = ct.PulsedDevice(dw_min=0.01, up_down=0.3, response=response, w_min=-1.0, w_max=1.0)
    with pytest.raises(ValueError, match=f"{type(response).__name__} response has no closed-form"):
        device.symmetry_point()


def test_cycle_to_cycle_noise():
    """One pulse on 20,000 devices: multiplicative noise spreads the step by c2c·δ, additive by
    c2c·dw_min (std within 5%: 10 standard errors of a standard deviation)."""
    for noise, c2c, response in [
        ("multiplicative", 0.3, ct.ConstantStep()),
        ("additive", 2.0, ct.SoftBounds()),
    ]:
        device = ct.PulsedDevice(
            dw_min=0.01, c2c=c2c, noise=noise, response=response, w_min=-100.0, w_max=100.0
        )
        state, _ = devices(device)
        steps = write(device, state, jnp.zeros(N), jnp.full(N, 0.00999999)) / 0.01
        assert np.mean(steps) == pytest.approx(1.0, abs=5 * c2c / math.sqrt(N))
        assert np.std(steps) == pytest.approx(c2c, rel=0.05)


def test_device_to_device_spread_is_drawn_once():
    """Step sizes are log-normal with relative spread dw_min_d2d, asymmetries β + up_down_d2d·ξ
    and bounds w·(1 + d2d·ξ), all from the state drawn by ``init`` (the same for every write,
    different for another key)."""
    device = ct.PulsedDevice(
        dw_min=0.01, w_min=-1.0, w_max=1.0, dw_min_d2d=0.3, up_down=0.1, up_down_d2d=0.05,
        w_min_d2d=0.2, w_max_d2d=0.1,
    )  # fmt: skip
    model = mlp((5,), 3, (2000,), local_heads=False, key=jax.random.key(0))  # 18,003 devices
    state = device.init(model, None, key=jax.random.key(4))
    up, down = (
        np.concatenate([np.ravel(a) for a in jax.tree.leaves(t)]) for t in device.steps(state)
    )
    size = (up + down) / 2 / 0.01
    beta = (up - down) / (up + down)
    assert np.mean(size) == pytest.approx(1.0, abs=0.02)
    assert np.std(np.log(size)) == pytest.approx(0.3, rel=0.05)
    assert np.mean(beta) == pytest.approx(0.1, abs=0.003)
    assert np.std(beta) == pytest.approx(0.05, rel=0.05)
    low, high = (
        np.concatenate([np.ravel(a) for a in jax.tree.leaves(t)]) for t in device.bounds(state)
    )
    assert np.std(low) == pytest.approx(0.2, rel=0.05) and np.std(high) == pytest.approx(
        0.1, rel=0.05
    )
    again = device.init(model, None, key=jax.random.key(4))
    other = device.init(model, None, key=jax.random.key(5))
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(again)))
    assert not np.array_equal(jax.tree.leaves(state)[0], jax.tree.leaves(other)[0])


def test_presets():
    """Every preset builds at a weight scale (steps and bounds scaled, the rest as published)
    and cites its source; an unknown name is refused with the valid ones."""
    for name, preset in ct.DEVICE_PRESETS.items():
        device = ct.PulsedDevice.preset(name, scale=0.5)
        assert device.dw_min == pytest.approx(0.5 * preset.fields["dw_min"])
        assert device.w_max == pytest.approx(0.5 * preset.fields["w_max"])
        assert device.c2c == preset.fields["c2c"]
        assert "aihwkit" in preset.source
    gv = ct.PulsedDevice.preset("gokmen_vlasov")
    assert round(2 / gv.dw_min) == 1250  # about 1200 states over [−1, 1]
    assert isinstance(ct.PulsedDevice.preset("ecram").response, ct.LinearStep)
    assert ct.PulsedDevice.preset("capacitor", c2c=0.0).c2c == 0.0
    with pytest.raises(ValueError, match="unknown device preset 'flash'; valid: reram_es"):
        ct.PulsedDevice.preset("flash")
    with pytest.raises(ValueError, match="scale must be finite and > 0"):
        ct.PulsedDevice.preset("ecram", scale=0.0)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: ct.PulsedDevice(dw_min=3.0, w_min=-1.0, w_max=1.0), "one pulse .dw_min=3.0."),
        (lambda: ct.PulsedDevice(dw_min=0.01, up_down=1.2), r"up_down must be in \(-1, 1\)"),
        (lambda: ct.PulsedDevice(dw_min=-0.01), "dw_min must be finite and >= 0"),
        (lambda: ct.PulsedDevice(c2c=-1.0), "c2c must be finite and >= 0"),
        (lambda: ct.PulsedDevice(w_max=-1.0), "w_max must be > 0"),
        (lambda: ct.PulsedDevice(max_pulses=0), "max_pulses must be an int >= 1"),
        (lambda: ct.PulsedDevice(noise="shot"), "unknown noise 'shot'"),
        (lambda: ct.PulsedDevice(dw_min=0.01, response=ct.SoftBounds()), "needs finite bounds"),
        (lambda: ct.LinearStep(gamma_up=1.5), r"gamma_up must be in \[0, 1\]"),
        (lambda: ct.PulsedDevice(response="soft"), "unknown device response 'soft'"),
        (lambda: ct.PulsedDevice(response=1.0), "response must be a device response"),
    ],
)
def test_bad_settings_are_refused(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_a_device_learns_in_a_simulator_and_an_ensemble():
    """FG-A on pulsed devices (the ECRAM preset at scale 0.5, steps of 0.002 and 0.004): an
    ensemble's second member equals its lone run (1e-5), and in both the weights move and stay
    within the devices' bounds."""
    model = mlp((4,), 3, (6,), local_heads=False, key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (3, 4, 4))
    y = jax.random.randint(jax.random.key(2), (3, 4), 0, 3)
    stream = ct.Presentations(x, y, duration=2.0)

    def sim(dw_min):
        device = ct.PulsedDevice.preset("ecram", scale=0.5, dw_min=dw_min)
        return ct.Simulator(
            ct.make_rule("fg-a", lr=30.0),
            ct.Sinusoids(0.01, 1.0),
            solver=diffrax.Euler(),  # compiles in half Heun's time
            dt0=0.05,
            hardware=(device,),
        )

    sims = [sim(0.002), sim(0.004)]
    keys = [jax.random.key(3), jax.random.key(4)]
    ensemble = ct.simulate_ensemble(sims, [model, model], stream, keys=keys, progress=False)
    m = 1  # the member whose numbers differ from the ensemble's structure-giving member 0
    lone = ct.simulate(sims[m], model, stream, key=keys[m], progress=False)
    a, b = lone.model.layers[0].weight, ensemble.member(m).model.layers[0].weight
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for m, run in enumerate([ensemble.member(0), lone]):
        learned = np.asarray(run.model.layers[0].weight - model.layers[0].weight)
        assert np.count_nonzero(learned) > 0
        state = ct.prepare(sims[m], model, stream, key=keys[m])[1].hardware[0]
        low, high = sims[m].hardware[0].bounds(state)
        w = run.model.layers[0].weight
        assert bool(jnp.all((w >= low.layers[0].weight) & (w <= high.layers[0].weight)))


def test_a_response_is_named_by_its_family():
    for name, family in ct.RESPONSES.items():
        device = ct.PulsedDevice(dw_min=0.01, response=name, w_min=-1.0, w_max=1.0)
        assert device.response == family()
    with pytest.raises(ValueError, match="unknown device response 'stepwise'; valid: constant"):
        ct.PulsedDevice(dw_min=0.01, response="stepwise", w_min=-1.0, w_max=1.0)


def test_linear_step_slopes_spread_from_device_to_device():
    """LinearStep's γ per device is |γ + gamma_d2d·ξ| with ξ the device's own draw (aihwkit's
    gamma_up_dtod): one pulse up from w = 0.5 (a request of exactly one step) moves every device
    by dw_min·(1 − γ_i·0.5/w_max), by hand from the drawn ξ; without the spread all move alike.
    The other spreads' draws are unchanged by it (their keys are their own)."""
    model = mlp((5,), 3, (40,), local_heads=False, key=jax.random.key(0))
    params = jax.tree.map(lambda a: jnp.full_like(a, 0.5), eqx.filter(model, eqx.is_inexact_array))
    target = jax.tree.map(lambda a: a + 0.1, params)
    moved = {}
    for spread in (0.0, 0.3):
        response = ct.LinearStep(0.5, 0.5, gamma_d2d=spread)
        device = ct.PulsedDevice(dw_min=0.1, response=response, w_min=-1.0, w_max=1.0)
        state = device.init(model, None, key=jax.random.key(4))
        written = device.write(target, state, jax.random.key(9), stored=params)
        got = np.concatenate([np.ravel(a) for a in jax.tree.leaves(written)])
        xi = np.concatenate([np.ravel(a) for a in jax.tree.leaves(state.response)])
        want = 0.5 + 0.1 * (1 - np.abs(0.5 + spread * xi) * 0.5)
        np.testing.assert_allclose(got, want, rtol=1e-6)
        moved[spread] = got
    assert np.ptp(moved[0.0]) == 0 and np.std(moved[0.3]) > 0.005
    plain = ct.PulsedDevice(dw_min=0.1, w_min=-1.0, w_max=1.0).init(
        model, None, key=jax.random.key(4)
    )
    assert all(
        np.array_equal(a, b)
        for a, b in zip(
            jax.tree.leaves((plain.step, plain.up_down)),
            jax.tree.leaves((state.step, state.up_down)),
        )
    )
