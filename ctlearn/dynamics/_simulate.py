"""``simulate``: a network learning in continuous time, integrated by Diffrax.

One PyTree state (weights, neuron states, perturbation state, the rule's state, and an
accumulator of the weight change) evolves under one vector field: the input stream gives
``(x, ẋ)``, the perturbation process ``(p, ṗ)``; one ``jax.jvp`` of the network and its losses
gives every signal's rate (the (x, ẋ) pairs of Ren et al. section 3.5), and the rule turns them
into ``ẇ``. Every presentation is one ``diffrax.diffeqsolve`` over its local time [0, T].
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jaxtyping import Array, PRNGKeyArray
from tqdm.auto import tqdm

from ..diagnostics import tree_cosine
from ..estimators._objective import block_losses
from ..losses import accuracy, get_loss
from ..nn import Network
from ._hardware import AbstractNonIdeality, concrete
from ._neurons import AbstractNeurons, Instantaneous
from ._rule import AbstractRule, Signals, perturb_weights
from ._stream import Presentations, blended_input


class SimState(eqx.Module):
    """Everything that evolves: the model's trainable arrays, the neurons' activities (leaky
    neurons), the perturbation process's state, the rule's state and ``delta``, the weight change
    accumulated since the start (integrated on its own, so small changes keep their precision;
    within a solve it holds the current presentation's change only), and the non-idealities'
    states (one entry per ``Simulator.hardware`` component; ``None`` where it has none)."""

    params: Any
    neurons: Any
    perturbation: Any
    rule: Any
    delta: Any
    hardware: tuple | None = None  # None, not (): equinox's tree_at tells nodes apart by identity


class Simulator(eqx.Module):
    """The static description of a simulation: rule, perturbation, neurons, loss, solver.

    ``perturbation`` may be ``None`` only for rules that perturb nothing (gradient flow, DFA).
    ``input_rate``: the tangent carries the input's own rate of change ``ẋ`` (what a circuit
    would see during transitions). ``weight_rate``: it also carries the weights' own rate ``Ẇ``
    (``Ẇx`` terms), found by one fixed-point iteration (the exact relation is implicit).
    ``freeze``: weights stay fixed and only ``delta`` integrates ``ẇ`` (for cross-checks).
    ``solver``/``dt0``/``controller``: Diffrax's; ``None`` controller means a constant step
    ``dt0``. ``max_steps`` per presentation. ``hardware``: the circuit's non-idealities
    (``AbstractNonIdeality`` components, at most one of each kind; see ``ctlearn.dynamics``).
    """

    rule: AbstractRule
    perturbation: Any
    neurons: AbstractNeurons = Instantaneous()
    loss: str = eqx.field(static=True, default="cross_entropy")
    solver: Any = diffrax.Heun()
    dt0: float | None = eqx.field(static=True, default=None)
    controller: Any = None
    input_rate: bool = eqx.field(static=True, default=False)
    weight_rate: bool = eqx.field(static=True, default=False)
    freeze: bool = eqx.field(static=True, default=False)
    max_steps: int = eqx.field(static=True, default=4096)
    hardware: tuple[AbstractNonIdeality, ...] = ()

    def __check_init__(self):
        kinds = [type(h) for h in self.hardware]
        for h in self.hardware:
            if not isinstance(h, AbstractNonIdeality):
                raise TypeError(
                    f"hardware must hold non-ideality components (AbstractNonIdeality), got {h!r}"
                )
        if len(set(kinds)) != len(kinds):
            twice = next(k for k in kinds if kinds.count(k) > 1).__name__
            raise ValueError(f"hardware holds more than one {twice}: give each kind once")
        if self.rule.site != "none" and self.perturbation is None:
            raise ValueError(
                f"rule {type(self.rule).__name__} perturbs the network ({self.rule.site!r}): "
                "give it a perturbation process"
            )
        if self.controller is None and self.dt0 is None:
            raise ValueError("a constant step needs dt0 (or give an adaptive controller)")
        if self.dt0 is not None and not self.dt0 > 0:
            raise ValueError(f"dt0 must be positive, got {self.dt0}")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {self.max_steps}")
        get_loss(self.loss)

    def check(self, stream: Presentations) -> None:
        """Non-physical settings fail here, before any integration, naming the values."""
        tau_p = None if self.perturbation is None else float(self.perturbation.tau)
        tau_x = self.neurons.fastest_time_constant()
        if tau_p is not None and stream.duration < tau_p:
            raise ValueError(
                f"the presentation (duration {stream.duration}) is shorter than the perturbation's "
                f"time scale tau_p={tau_p}: the rule could not average over it"
            )
        for h in self.hardware:
            h.check(stream)
        if self.controller is None:
            scales = {"tau_p": tau_p, "neurons' tau": tau_x, "transition": stream.transition}
            for h in self.hardware:
                if not h.is_ideal():
                    for name, value in h.time_constants().items():
                        scales[name] = concrete(value)
            for name, value in scales.items():
                if value and self.dt0 > value * (1 + 1e-6):  # float32 parameters round
                    raise ValueError(
                        f"the fixed step dt0={self.dt0} is larger than {name}={value}: it would "
                        f"step over the dynamics; choose dt0 <= {value}"
                    )

    # -- the vector field ---------------------------------------------------------------------

    def raw_signals(self, model: Network, state: SimState, t, args, w_dot=None) -> Signals:
        """The instantaneous signals at local time ``t`` as they are in the circuit (``w_dot``:
        tangent of the weights), before the non-idealities' ``observe``."""
        previous, current, y, fixed, fixed_hardware = args
        x, x_dot = blended_input(previous, current, t, self._transition)
        if self.perturbation is None:
            p, p_dot = (), ()
        else:
            p, p_dot = self.perturbation(_joined(state.perturbation, fixed), t)
        hardware = _joined_hardware(self.hardware, state.hardware, fixed_hardware)
        injected, noise = (p, p_dot), None
        for h, h_state in zip(self.hardware, hardware):
            injected = h.inject(*injected)
            extra = h.activity_noise(h_state, t)
            if extra is not None:
                noise = extra if noise is None else jax.tree.map(jnp.add, noise, extra)
        signals = measure(
            self.rule,
            self.neurons,
            self.loss,
            model,
            (x, x_dot if self.input_rate else jnp.zeros_like(x_dot)),
            y,
            (p, p_dot),
            activity=state.neurons,
            w_dot=w_dot,
            injected=injected,
            noise=noise,
            circuit=(lambda m: _circuit(self.hardware, m, hardware)) if self.hardware else None,
        )
        return dataclasses.replace(signals, x_dot=x_dot)  # the stream's rate, whether fed or not

    def signals(self, model: Network, state: SimState, t, args, w_dot=None) -> Signals:
        """The instantaneous signals at local time ``t`` as the synapses observe them."""
        return self._observe(self.raw_signals(model, state, t, args, w_dot), state, t, args)

    def _observe(self, signals: Signals, state: SimState, t, args) -> Signals:
        hardware = _joined_hardware(self.hardware, state.hardware, args[4])
        for h, h_state in zip(self.hardware, hardware):
            signals = h.observe(signals, h_state, t)
        return signals

    def vector_field(self, t, state: SimState, args) -> SimState:
        model = self._model(state)
        raw = self.raw_signals(model, state, t, args)
        signals = self._observe(raw, state, t, args)
        w_dot, rule_dot = self.rule.rates(model, signals, state.rule)
        if self.weight_rate:
            raw = self.raw_signals(model, state, t, args, w_dot=w_dot)
            signals = self._observe(raw, state, t, args)
            w_dot, rule_dot = self.rule.rates(model, signals, state.rule)
        w_dot = eqx.filter(w_dot, eqx.is_inexact_array)
        hardware = _joined_hardware(self.hardware, state.hardware, args[4])
        for h, h_state in zip(self.hardware, hardware):
            w_dot = h.synapses(w_dot, h_state)
        neurons_dot = None
        if state.neurons is not None:
            circuit = _circuit(self.hardware, model, hardware)
            neurons_dot = self.neurons.drift(circuit, raw.trace, state.neurons)
        perturbation_dot = None
        if state.perturbation is not None:
            full = _joined(state.perturbation, args[3])
            perturbation_dot = eqx.filter(self.perturbation.drift(full, t), eqx.is_inexact_array)
        if self.freeze or any(h.writes for h in self.hardware):
            params_dot = jax.tree.map(jnp.zeros_like, w_dot)
        else:
            params_dot = w_dot
        if not self.freeze:
            for h in self.hardware:
                drift = h.weight_drift(state.params)
                if drift is not None:
                    params_dot = jax.tree.map(jnp.add, params_dot, drift)
        hardware_dot = _tuple_or_none(
            h.drift(raw, h_state, t) if h.evolves else None
            for h, h_state in zip(self.hardware, hardware)
        )
        return SimState(params_dot, neurons_dot, perturbation_dot, rule_dot, w_dot, hardware_dot)

    def circuit(self, state: SimState, fixed_hardware=None) -> Network:
        """The network as the circuit realises it from ``state``'s stored conductances (device
        mismatch applied); ``fixed_hardware``: the fixed states where ``state`` was split."""
        hardware = _joined_hardware(self.hardware, state.hardware, fixed_hardware)
        return _circuit(self.hardware, self._model(state), hardware)

    _transition: float = eqx.field(static=True, default=0.0)
    _static: Any = eqx.field(static=True, default=None)

    def _model(self, state: SimState) -> Network:
        return eqx.combine(state.params, self._static)


def measure(
    rule: AbstractRule,
    neurons: AbstractNeurons,
    loss: str,
    model: Network,
    x: tuple[Array, Array],
    y: Array,
    p: tuple[tuple[Array, ...], tuple[Array, ...]],
    *,
    activity: tuple[Array, ...] | None = None,
    w_dot=None,
    injected: tuple[tuple[Array, ...], tuple[Array, ...]] | None = None,
    noise: tuple[tuple[Array, ...], tuple[Array, ...]] | None = None,
    circuit: Callable[[Network], Network] | None = None,
) -> Signals:
    """One ``jax.jvp`` of the network and its block losses at input ``x = (x, ẋ)`` and
    perturbation ``p = (p, ṗ)`` (entering where ``rule.site`` says), with leaky neurons' states
    ``activity`` (their rates from the neuron model) and optionally the weights' rate ``w_dot``.

    For a non-ideal circuit: ``injected`` is what reaches the perturbation points instead of
    ``p`` (the returned signals keep the generator's ``p``), ``noise = (n, ṅ)`` is added at every
    layer's activation input, and ``circuit`` maps the stored weights to the network as built."""
    (x, x_dot), (p, p_dot) = x, p
    site, greedy = rule.site, rule.greedy
    params, static = eqx.partition(model, eqx.is_inexact_array)
    injected = (p, p_dot) if injected is None else injected
    n, n_dot = (None, None) if noise is None else noise

    def forward(x, p, params, activity, n):
        net = eqx.combine(params, static)
        if site == "weights":
            net = perturb_weights(net, p)
        if circuit is not None:
            net = circuit(net)
        kwargs = {}
        if site == "pre":
            kwargs["perturbation"] = p if n is None else tuple(a + b for a, b in zip(p, n))
        else:
            if site == "post":
                kwargs["post"] = tuple(p) + (None,)
            if n is not None:
                kwargs["perturbation"] = n
        trace = net(x, greedy=greedy, activity=activity, **kwargs)
        return block_losses(loss, net, trace, y), trace

    activity_dot = None
    if activity is not None:
        _, trace0 = forward(x, injected[0], params, activity, n)
        activity_dot = neurons.drift(model if circuit is None else circuit(model), trace0, activity)
    params_dot = jax.tree.map(jnp.zeros_like, params) if w_dot is None else w_dot
    (losses, trace), (loss_rates, trace_dot) = jax.jvp(
        forward,
        (x, injected[0], params, activity, n),
        (x_dot, injected[1], params_dot, activity_dot, n_dot),
    )
    return Signals(x, x_dot, y, trace, trace_dot, losses, loss_rates, tuple(p), tuple(p_dot))


class SimulationDiverged(RuntimeError):
    """The loss stopped being finite at ``presentation``; ``result`` is the simulation up to the
    end of the last chunk whose presentations were all finite (``None`` if there was none)."""

    def __init__(self, message: str, *, presentation: int, result: SimulationResult | None):
        super().__init__(message)
        self.presentation = presentation
        self.result = result


class SimulationResult(eqx.Module):
    """``model`` (the stored conductances), ``circuit`` (the network they realise, device
    mismatch applied; ``model`` itself on ideal hardware) and the rule's, perturbation's,
    neurons' and non-idealities' states at the end; per presentation, the batch-mean ``loss``
    and ``accuracy`` of the circuit at its end, the solver's ``steps`` and ``alignment``, the
    cosine between the rule's weight change over the presentation and −∇L of the circuit on its
    batch at its start; ``delta``: the accumulated weight change."""

    model: Network
    rule_state: Any
    delta: Any
    perturbation_state: Any
    neuron_state: Any
    loss: Array
    accuracy: Array
    steps: Array
    alignment: Array
    circuit: Network
    hardware_state: tuple | None = None


def _diffusion_term(
    simulator: Simulator, state: SimState, args, key: PRNGKeyArray, duration: float
):
    """The SDE's noise: a ``ControlTerm`` whose diagonal scales act on the noisy parts of the
    state only (an ``IntegratedOU`` perturbation, activity noise, weight diffusion), driven by a
    ``VirtualBrownianTree`` shaped like those parts and reproducible from ``key`` (``None``
    when nothing is noisy)."""

    def scales(t, y):
        perturbation = None
        if y.perturbation is not None:
            g = simulator.perturbation.diffusion(_joined(y.perturbation, args[3]), t)
            perturbation = None if g is None else eqx.filter(g, eqx.is_inexact_array)
        params = None
        for h in simulator.hardware:
            g = h.weight_diffusion(y.params)
            if g is not None:
                params = g if params is None else jax.tree.map(jnp.hypot, params, g)
        states = () if y.hardware is None else y.hardware
        hardware = _tuple_or_none(
            h.diffusion(h_state, t) if h.evolves else None
            for h, h_state in zip(simulator.hardware, states)
        )
        return SimState(params, None, perturbation, None, None, hardware)

    g0 = scales(0.0, state)
    if not jax.tree.leaves(g0):
        return None
    shape = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), g0)
    tol = (simulator.dt0 or duration / 1000) / 2
    brownian = diffrax.VirtualBrownianTree(0.0, duration, tol=tol, shape=shape, key=key)
    zeros = jax.tree.map(jnp.zeros_like, state)

    def operator(t, y, args):
        g = scales(t, y)

        def mv(dw):
            noise = jax.tree.map(jnp.multiply, g, dw)
            return jax.tree.map(
                lambda n, z: z if n is None else n, noise, zeros, is_leaf=lambda v: v is None
            )

        return lx.FunctionLinearOperator(mv, shape)

    return diffrax.ControlTerm(operator, brownian)


def _solve_presentation(simulator, state, args, duration, key, saveat=None, progress=False):
    """One presentation. ``state.perturbation`` holds the process's floating-point arrays only;
    its other parts (keys, counters) travel as ``args[3]``, fixed during the presentation."""
    terms = diffrax.ODETerm(simulator.vector_field)
    noise = _diffusion_term(simulator, state, args, key, duration)
    if noise is not None:
        terms = diffrax.MultiTerm(terms, noise)
    dt0 = simulator.dt0
    if simulator.controller is None:
        controller = diffrax.ConstantStepSize()
    elif simulator._transition > 0:
        # The input's rate changes abruptly where the transition ends: tell the controller.
        controller = diffrax.ClipStepSizeController(
            simulator.controller, jump_ts=jnp.array([simulator._transition])
        )
    else:
        controller = simulator.controller
    return diffrax.diffeqsolve(
        terms,
        simulator.solver,
        0.0,
        duration,
        dt0,
        state,
        args=args,
        saveat=saveat or diffrax.SaveAt(t1=True),
        stepsize_controller=controller,
        max_steps=simulator.max_steps,
        throw=False,
        progress_meter=diffrax.TqdmProgressMeter() if progress else diffrax.NoProgressMeter(),
    )


def prepare(
    simulator: Simulator,
    model: Network,
    stream: Presentations,
    *,
    key: PRNGKeyArray,
    keep_ideal: bool = False,
) -> tuple[Simulator, SimState]:
    """The simulator bound to ``model``'s static structure and the initial state (weights as
    the device stores them). Non-idealities at their ideal values are left out, unless
    ``keep_ideal`` (ensembles keep every member's structure the same)."""
    simulator.check(stream)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    hardware = tuple(h for h in simulator.hardware if keep_ideal or not h.is_ideal())
    bound = dataclasses.replace(
        simulator, _static=static, _transition=stream.transition, hardware=hardware
    )
    rule_key, perturbation_key = jax.random.split(key)
    x0 = stream.x[0]
    perturbation_state = None
    if simulator.perturbation is not None:
        shapes = simulator.rule.perturbation_shapes(model, x0)
        perturbation_state = simulator.perturbation.init(shapes, key=perturbation_key)
    state = SimState(
        params,
        simulator.neurons.init(model, x0),
        perturbation_state,
        simulator.rule.init(model, key=rule_key),
        jax.tree.map(jnp.zeros_like, params),
        _tuple_or_none(None for _ in hardware),
    )
    if hardware:
        state = _init_hardware(bound, state, stream, key)
    return bound, state


def _init_hardware(bound: Simulator, state: SimState, stream: Presentations, key) -> SimState:
    """The non-idealities' states from the signals at the start of the first presentation:
    drawn first against the ideal circuit, then again (same keys) against the circuit they
    make, so that filters start from the signals they will see; then the first write."""
    keys = [jax.random.fold_in(key, 100 + i) for i in range(len(bound.hardware))]
    ideal = dataclasses.replace(bound, hardware=())
    plain, fixed = split_state(ideal, dataclasses.replace(state, hardware=None))
    args = (stream.x[0], stream.x[0], stream.y[0], *fixed)
    signals = ideal.raw_signals(ideal._model(plain), plain, 0.0, args)
    model = bound._model(state)
    states = tuple(h.init(model, signals, key=k) for h, k in zip(bound.hardware, keys))
    state = dataclasses.replace(state, hardware=states)
    plain, fixed = split_state(bound, state)
    args = (stream.x[0], stream.x[0], stream.y[0], fixed[0], fixed[1])
    signals = bound.raw_signals(model, plain, 0.0, args)
    states = tuple(h.init(model, signals, key=k) for h, k in zip(bound.hardware, keys))
    state = dataclasses.replace(state, hardware=states)
    return dataclasses.replace(state, params=_write(bound, state.params, states, key))


def _write(simulator: Simulator, params, hardware, key):
    """``params`` as the devices store them when written (unchanged on ideal hardware)."""
    for i, (h, h_state) in enumerate(zip(simulator.hardware, hardware)):
        if h.writes:
            params = h.write(params, h_state, jax.random.fold_in(key, 7919 + i))
    return params


def _joined(evolving, fixed):
    """The perturbation's whole state from its two parts (see ``split_state``)."""
    return fixed if evolving is None else eqx.combine(evolving, fixed)


def _joined_hardware(hardware, evolving, fixed):
    """Every non-ideality's state, from the evolving ones (in the ODE state) and the fixed ones
    (in ``args``); ``fixed`` is ``None`` when the state was not split."""
    if not hardware:
        return ()
    if fixed is None:
        return evolving
    return tuple(e if h.evolves else f for h, e, f in zip(hardware, evolving, fixed))


def _tuple_or_none(items) -> tuple | None:
    items = tuple(items)
    return items if items else None


def _circuit(hardware, model: Network, states) -> Network:
    if not hardware:
        return model
    for h, h_state in zip(hardware, states):
        model = h.network(model, h_state)
    return model


def split_state(simulator: Simulator, state: SimState) -> tuple[SimState, Any]:
    """``state`` with only what Diffrax integrates, and the rest, which the vector field reads
    from ``args`` (previous input, input, labels, and this rest). The rest is a pair: the
    perturbation's fixed part (its whole state for closed-form processes, which only read it;
    keys and counters otherwise) and the non-idealities' fixed states (drawn device
    parameters; ``None`` for evolving ones)."""
    if simulator.perturbation is None or not simulator.perturbation.evolves:
        evolving, fixed = None, state.perturbation
    else:
        evolving, fixed = eqx.partition(state.perturbation, eqx.is_inexact_array)
    states = () if state.hardware is None else state.hardware
    fixed_hardware = tuple(None if h.evolves else s for h, s in zip(simulator.hardware, states))
    evolving_hardware = _tuple_or_none(
        s if h.evolves else None for h, s in zip(simulator.hardware, states)
    )
    state = eqx.tree_at(lambda s: s.perturbation, state, evolving, is_leaf=lambda v: v is None)
    state = dataclasses.replace(state, hardware=evolving_hardware)
    return state, (fixed, fixed_hardware)


def _batch_gradient(simulator: Simulator, params, fixed_hardware, hardware, x, y):
    """∇ of the circuit's mean loss on ``(x, y)`` with respect to the stored weights."""

    def mean_loss(params):
        model = eqx.combine(params, simulator._static)
        trace = _circuit(simulator.hardware, model, hardware)(x)
        return jnp.mean(get_loss(simulator.loss)(trace.logits, y))

    return jax.grad(mean_loss)(params)


@eqx.filter_jit
def run_presentations(
    simulator: Simulator, state: SimState, stream: Presentations, first, count, key
):
    """Presentations ``first .. first + count − 1`` as one ``lax.scan`` of solves, from a
    ``prepare``d simulator and state. Returns the new state and, per presentation, the loss and
    accuracy of the circuit at its end, the solver's steps, whether the solve failed, and the
    alignment (cosine) of the rule's weight change over it with −∇L at its start."""

    def step(state, k):
        previous = stream.x[jnp.maximum(k - 1, 0)]
        x, y = stream.x[k], stream.y[k]
        total = state.delta
        state = dataclasses.replace(state, delta=jax.tree.map(jnp.zeros_like, total))
        full_hardware = state.hardware
        state, (fixed, fixed_hardware) = split_state(simulator, state)
        grad = _batch_gradient(simulator, state.params, fixed_hardware, full_hardware, x, y)
        args = (previous, x, y, fixed, fixed_hardware)
        presentation_key = jax.random.fold_in(key, k)
        sol = _solve_presentation(simulator, state, args, stream.duration, presentation_key)
        new = jax.tree.map(lambda a: a[-1], sol.ys)
        change = new.delta
        hardware = _joined_hardware(simulator.hardware, new.hardware, fixed_hardware)
        if any(h.writes for h in simulator.hardware):
            written = jax.tree.map(jnp.add, new.params, change)
            write_key = jax.random.fold_in(presentation_key, 1)
            new = dataclasses.replace(new, params=_write(simulator, written, hardware, write_key))
        new = dataclasses.replace(
            new, delta=jax.tree.map(jnp.add, total, change), hardware=_tuple_or_none(hardware)
        )
        if simulator.perturbation is not None:
            full = _joined(new.perturbation, fixed)
            new = eqx.tree_at(
                lambda s: s.perturbation,
                new,
                simulator.perturbation.next_presentation(full, stream.duration),
                is_leaf=lambda v: v is None,
            )
        trace = simulator.circuit(new)(x, activity=new.neurons)
        loss = jnp.mean(get_loss(simulator.loss)(trace.logits, y))
        failed = sol.result != diffrax.RESULTS.successful
        alignment = tree_cosine(change, jax.tree.map(jnp.negative, grad))
        steps = sol.stats["num_steps"]
        return new, (loss, accuracy(trace.logits, y), steps, failed, alignment)

    return jax.lax.scan(step, state, first + jnp.arange(count))


def simulate(
    simulator: Simulator,
    model: Network,
    stream: Presentations,
    *,
    key: PRNGKeyArray,
    chunk: int = 50,
    progress: bool = True,
    callback: Callable[[int, SimulationResult], None] | None = None,
) -> SimulationResult:
    """Present ``stream`` to ``model`` learning by ``simulator``'s rule; one solve per presentation,
    ``chunk`` presentations per compiled call (a progress bar counts presentations).

    Raises ``RuntimeError`` naming the presentation and the solver settings if a solve fails
    (e.g. it needs more than ``max_steps`` steps).
    """
    bound, state = prepare(simulator, model, stream, key=key)
    run_key = jax.random.fold_in(key, 1)
    metrics = []
    bar = tqdm(total=stream.num, desc="presentations", unit="pres", disable=not progress)
    first = 0
    good_state = state
    while first < stream.num:
        count = min(chunk, stream.num - first)
        state, (loss, acc, n_steps, failed, alignment) = run_presentations(
            bound, state, stream, first, count, run_key
        )
        if bool(jnp.any(failed)):
            bad = first + int(np.argmax(np.asarray(failed)))
            raise RuntimeError(
                f"the solve of presentation {bad} failed (Diffrax: not successful, e.g. more than "
                f"max_steps={simulator.max_steps} steps): solver {type(simulator.solver).__name__}"
                f", dt0={simulator.dt0}, controller={simulator.controller}, duration "
                f"{stream.duration}, tau_p="
                f"{None if simulator.perturbation is None else simulator.perturbation.tau}"
            )
        finite = np.isfinite(np.asarray(loss))
        if not finite.all():
            bad = first + int(np.argmin(finite))
            good = _result(bound, good_state, metrics) if metrics else None
            raise SimulationDiverged(
                f"the loss is not finite at presentation {bad} (lr={simulator.rule.lr}); the "
                "result up to the last finite chunk is kept in .result",
                presentation=bad,
                result=good,
            )
        good_state = state
        metrics.append((loss, acc, n_steps, alignment))
        first += count
        bar.update(count)
        bar.set_postfix(loss=f"{float(loss[-1]):.4f}", refresh=False)
        if callback is not None:
            callback(first, _result(bound, state, metrics))
    bar.close()
    return _result(bound, state, metrics)


def _result(bound, state, metrics) -> SimulationResult:
    loss, acc, steps, alignment = (jnp.concatenate(m) for m in zip(*metrics))
    return SimulationResult(
        bound._model(state),
        state.rule,
        state.delta,
        state.perturbation,
        state.neurons,
        loss,
        acc,
        steps,
        alignment,
        bound.circuit(state),
        state.hardware,
    )


def record_presentation(
    simulator: Simulator,
    model: Network,
    stream: Presentations,
    *,
    key: PRNGKeyArray,
    index: int = 0,
    times: int = 200,
    record: Callable[[SimState, Signals], Any],
    progress: bool = False,
) -> tuple[Array, Any]:
    """Traces during presentation ``index``: ``record(state, signals)`` at ``times`` evenly spaced
    local times (``SaveAt(fn=...)``, so only what is recorded is kept), ``signals`` as the
    synapses observe them. With ``progress``, Diffrax's own progress meter follows the solve.
    Returns ``(ts, recorded)``."""
    bound, state = prepare(simulator, model, stream, key=key)
    previous = stream.x[max(index - 1, 0)]
    state, (fixed, fixed_hardware) = split_state(bound, state)
    args = (previous, stream.x[index], stream.y[index], fixed, fixed_hardware)
    ts = jnp.linspace(0.0, stream.duration, times)

    def fn(t, y, args):
        return record(y, bound.signals(bound._model(y), y, t, args))

    sol = eqx.filter_jit(_solve_presentation)(
        bound,
        state,
        args,
        stream.duration,
        jax.random.fold_in(key, index),
        saveat=diffrax.SaveAt(ts=ts, fn=fn),
        progress=progress,
    )
    if sol.result != diffrax.RESULTS.successful:
        raise RuntimeError(f"the solve of presentation {index} failed: {sol.result}")
    return ts, sol.ys


def effective_learning_rate(simulator: Simulator, duration: float) -> float:
    """The discrete SGD learning rate per presentation that matches this rule on average:
    η · c · T, with c the perturbation's rate power (gradient flow: η · T)."""
    c = 1.0 if simulator.perturbation is None else float(simulator.perturbation.rate_power())
    return float(simulator.rule.lr) * c * duration
