"""The continuous-time simulator: its rules against the discrete estimators, its integration,
and its refusal of non-physical settings. Inputs are synthetic (Gaussian, random labels) unless a
test says otherwise."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ctlearn.dynamics as ct
from ctlearn.diagnostics import tree_cosine
from models import local_mixer, mlp

# Issue 5's thresholds for "the rule's ẇ equals −η × the discrete estimator with the same tangent".
COSINE = 0.9999
RELATIVE = 1e-4


@pytest.fixture(scope="module")
def problem():
    kx, ky, km = jax.random.split(jax.random.key(0), 3)
    model = mlp((10,), 4, (16, 12), key=km)
    x = jax.random.normal(kx, (8, 10))
    y = jax.random.randint(ky, (8,), 0, 4)
    return model, x, y


def _tangent(rule, model, x, key=3):
    shapes = rule.perturbation_shapes(model, x)
    keys = jax.random.split(jax.random.key(key), max(len(shapes), 1))
    return [jax.random.normal(k, s) for k, s in zip(keys, shapes)]


# Every registered twin (learned-feedback rules at α = 2), and FG-A with the ReLU mask.
TWINS = [
    ct.make_rule(name, lr=0.3, **({"feedback_lr": 2.0} if "feedback_lr" in ct.rule_options(name)
                                  else {}))
    for name in ct.RULES
] + [ct.FGARule(lr=0.3, mask=True)]  # fmt: skip


@pytest.mark.parametrize(
    "rule", TWINS, ids=lambda r: type(r).__name__ + ("-mask" if getattr(r, "mask", False) else "")
)
def test_instantaneous_rule_equals_minus_eta_times_the_discrete_estimator(rule, problem):
    model, x, y = problem
    state = rule.init(model, key=jax.random.key(1))
    if isinstance(rule, (ct.FDFARule, ct.DKPRule)):  # learned feedback part-way, not its zero
        state = tuple(0.1 * jax.random.normal(jax.random.key(2), b.shape) for b in state)
    check = ct.instantaneous_agreement(rule, model, x, y, _tangent(rule, model, x), state)
    assert check["cosine"] >= COSINE and check["relative_error"] <= RELATIVE, check
    if "state_cosine" in check:
        assert check["state_cosine"] >= COSINE and check["state_relative_error"] <= RELATIVE


def test_instantaneous_agreement_on_the_local_mixer():
    model = local_mixer((8,), 3, "S/1/1", blocks=2, patches=2, channels=8, groups=2,
                        key=jax.random.key(4))  # fmt: skip
    x = jax.random.normal(jax.random.key(5), (4, 8))
    y = jnp.array([0, 1, 2, 0])
    rule = ct.LGFGARule(lr=0.5)
    check = ct.instantaneous_agreement(rule, model, x, y, _tangent(rule, model, x))
    assert check["cosine"] >= COSINE and check["relative_error"] <= RELATIVE, check


def test_integrated_update_aligns_with_the_gradient_as_presentations_lengthen(problem):
    # One batch held, weights frozen: Δw = ∫ẇ dt → −η c T ∇L as T / τ_p grows (the time average
    # of ṗ ṗᵀ over more and more independent directions). Measured (seed 0): cosine 0.55, 0.75,
    # 0.91, 0.98 at T/τ_p = 2, 10, 40, 160; scale 2.2, 1.3, 1.05, 0.97.
    model, x, y = problem
    sim = ct.Simulator(ct.FGARule(lr=1.0), ct.Sinusoids(0.1, 0.05), dt0=0.005, max_steps=2000)
    points = ct.integrated_alignment(sim, model, x, y, [0.1, 2.0, 8.0], key=jax.random.key(0))
    cosines = [p.cosine for p in points]
    assert cosines[0] < cosines[1] < cosines[2]
    assert cosines[-1] > 0.95
    assert abs(points[-1].scale - 1) < 0.1
    assert points[-1].ratio == pytest.approx(160)


def _stream(model_inputs=10, presentations=6, batch=4, duration=0.5, transition=0.05):
    kx, ky = jax.random.split(jax.random.key(7))
    x = jax.random.normal(kx, (presentations, batch, model_inputs))
    y = jax.random.randint(ky, (presentations, batch), 0, 4)
    return ct.Presentations(x, y, duration=duration, transition=transition)


@pytest.mark.parametrize(
    "perturbation",
    [ct.Sinusoids(0.1, 0.05)]
    + [
        pytest.param(p, marks=pytest.mark.slow)  # their own tests cover them in the default run
        for p in (ct.CubicSpline(0.1, 0.05), ct.IntegratedOU(0.1, 0.05))
    ],
)
def test_simulation_is_reproducible_from_its_key(perturbation, problem):
    model, _, _ = problem
    stream = _stream(presentations=4)
    # η c T = 0.05 per presentation whatever the process's rate power c.
    lr = 0.05 / (perturbation.rate_power() * stream.duration)
    sim = ct.Simulator(ct.FGARule(lr=lr), perturbation, dt0=0.005)
    a = ct.simulate(sim, model, stream, key=jax.random.key(1), progress=False)
    b = ct.simulate(sim, model, stream, key=jax.random.key(1), progress=False)
    c = ct.simulate(sim, model, stream, key=jax.random.key(2), progress=False)
    leaves = lambda r: jax.tree.leaves(eqx.filter(r.model, eqx.is_inexact_array))
    assert all(bool(jnp.array_equal(u, v)) for u, v in zip(leaves(a), leaves(b)))
    assert not all(bool(jnp.array_equal(u, v)) for u, v in zip(leaves(a), leaves(c)))
    assert a.loss.shape == (4,) and bool(jnp.all(jnp.isfinite(a.loss)))
    assert int(a.steps[0]) == 100  # duration 0.5 at dt0 0.005
    moved = eqx.filter(a.model, eqx.is_inexact_array)
    start = eqx.filter(model, eqx.is_inexact_array)
    assert float(tree_cosine(a.delta, jax.tree.map(jnp.subtract, moved, start))) > 0.999


def test_gradient_flow_integrates_exactly_what_it_should(problem):
    # Gradient flow on one held batch from the same weights equals many tiny SGD steps.
    model, x, y = problem
    stream = ct.Presentations(x[None], y[None], duration=0.2)
    sim = ct.Simulator(ct.GradientFlow(lr=0.5), None, solver=diffrax.Euler(), dt0=0.01)
    result = ct.simulate(sim, model, stream, key=jax.random.key(0), progress=False)
    from ctlearn.estimators import make_estimator

    bp = make_estimator("bp")
    m = model
    for _ in range(20):
        g = bp.estimate(m, (x, y), None, key=None)[0]
        m = eqx.apply_updates(m, jax.tree.map(lambda v: -0.5 * 0.01 * v, g))
    for u, v in zip(jax.tree.leaves(eqx.filter(result.model, eqx.is_inexact_array)),
                    jax.tree.leaves(eqx.filter(m, eqx.is_inexact_array))):  # fmt: skip
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


def test_leaky_neurons_relax_to_the_instantaneous_network(problem):
    model, x, y = problem
    stream = ct.Presentations(jnp.stack([x, x]), jnp.stack([y, y]), duration=0.5)
    sim = ct.Simulator(ct.FGARule(lr=0.0), ct.Sinusoids(0.0, 0.05), neurons=ct.Leaky(0.02),
                       dt0=0.005)  # fmt: skip
    result = ct.simulate(sim, model, stream, key=jax.random.key(0), progress=False)
    # With no perturbation and no learning the states sit at the network's activities.
    np.testing.assert_allclose(result.neuron_state[-1], model(x).logits, rtol=1e-4, atol=1e-5)


def test_record_presentation_traces_signals():
    model = mlp((10,), 4, (8,), key=jax.random.key(0))
    stream = _stream(presentations=2)
    sim = ct.Simulator(ct.FGARule(lr=0.1), ct.Sinusoids(0.1, 0.05), dt0=0.005)

    def record(state, signals):
        return {"p_dot": signals.p_dot[0][0, :2], "r_dot": -signals.loss_rates[-1][0]}

    ts, rec = ct.record_presentation(sim, model, stream, key=jax.random.key(1), index=1,
                                     times=11, record=record)  # fmt: skip
    assert ts.shape == (11,) and rec["p_dot"].shape == (11, 2) and rec["r_dot"].shape == (11,)
    assert bool(jnp.all(jnp.isfinite(rec["r_dot"])))


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(dt0=0.1), r"fixed step dt0=0.1 is larger than tau_p=0.05"),
        (dict(dt0=0.01, neurons=ct.Leaky(0.005)), r"larger than neurons' tau=0.005"),
        (dict(dt0=0.01, perturbation=ct.Sinusoids(0.1, 1.0)), r"shorter than the perturbation"),
        (dict(dt0=0.01), r"dt0=0.01 gives too few time points for the perturbation's band"),
    ],
)
def test_non_physical_settings_fail_before_integrating(settings, message, problem):
    model, _, _ = problem
    options = dict(perturbation=ct.Sinusoids(0.1, 0.05))
    options.update(settings)
    sim = ct.Simulator(ct.FGARule(lr=0.1), **options)
    with pytest.raises(ValueError, match=message):
        ct.simulate(sim, model, _stream(), key=jax.random.key(0), progress=False)


def test_bad_components_fail_with_their_values():
    with pytest.raises(ValueError, match="time constant tau must be positive, got -1"):
        ct.Leaky(-1.0)
    with pytest.raises(ValueError, match="lr .* non-negative, got -0.1"):
        ct.FGARule(lr=-0.1)
    with pytest.raises(ValueError, match="unknown rate 'magic'"):
        ct.FGARule(lr=0.1, rate="magic")
    with pytest.raises(ValueError, match="give it a perturbation process"):
        ct.Simulator(ct.FGARule(lr=0.1), None, dt0=0.01)
    with pytest.raises(ValueError, match="transition"):
        ct.Presentations(jnp.zeros((2, 3, 4)), jnp.zeros((2, 3), int), duration=1.0,
                         transition=1.0)  # fmt: skip


def test_a_solve_that_runs_out_of_steps_names_its_settings(problem):
    model, _, _ = problem
    sim = ct.Simulator(ct.FGARule(lr=0.1), ct.Sinusoids(0.1, 0.05), dt0=0.005, max_steps=10)
    with pytest.raises(RuntimeError, match=r"presentation 0 failed.*max_steps=10.*dt0=0.005"):
        ct.simulate(sim, model, _stream(), key=jax.random.key(0), progress=False)


def test_measured_rate_differs_from_the_injected_rate(problem):
    # ż carries upstream perturbations through the weights: a different (biased) update.
    model, x, y = problem
    exact, measured = ct.FGARule(lr=1.0), ct.FGARule(lr=1.0, rate="measured")
    u = _tangent(exact, model, x)
    zeros = tuple(jnp.zeros_like(t) for t in u)
    args = ("cross_entropy", model, (x, jnp.zeros_like(x)), y, (zeros, tuple(u)))
    signals = ct.measure(exact, ct.Instantaneous(), *args)
    a, _ = exact.rates(model, signals, None)
    b, _ = measured.rates(model, signals, None)
    assert jnp.allclose(a.layers[0].weight, b.layers[0].weight)  # nothing upstream of layer 0
    assert not jnp.allclose(a.layers[1].weight, b.layers[1].weight)


def test_adaptive_solver_is_told_where_the_input_transition_ends():
    # Tsit5 with a PID controller on a smooth network; the end of the input transition is a jump
    # time of the controller, so the solve lands on it instead of stepping across it.
    model = mlp((10,), 4, (8,), activation="softplus", key=jax.random.key(0))
    stream = _stream(presentations=2, duration=0.5, transition=0.05)
    sim = ct.Simulator(
        ct.FGARule(lr=0.1),
        ct.Sinusoids(0.1, 0.05),
        solver=diffrax.Tsit5(),
        controller=diffrax.PIDController(rtol=1e-3, atol=1e-6),
        dt0=0.005,
    )
    result = ct.simulate(sim, model, stream, key=jax.random.key(1), progress=False)
    assert bool(jnp.all(jnp.isfinite(result.loss))) and int(result.steps[0]) > 1
