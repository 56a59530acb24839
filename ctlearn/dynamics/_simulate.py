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

from ..estimators._objective import block_losses
from ..losses import accuracy, get_loss
from ..nn import Network
from ._neurons import AbstractNeurons, Instantaneous
from ._rule import AbstractRule, Signals, perturb_weights
from ._stream import Presentations, blended_input


class SimState(eqx.Module):
    """Everything that evolves: the model's trainable arrays, the neurons' activities (leaky
    neurons), the perturbation process's state, the rule's state and ``delta``, the weight change
    accumulated since the start (integrated on its own, so small changes keep their precision)."""

    params: Any
    neurons: Any
    perturbation: Any
    rule: Any
    delta: Any


class Simulator(eqx.Module):
    """The static description of a simulation: rule, perturbation, neurons, loss, solver.

    ``perturbation`` may be ``None`` only for rules that perturb nothing (gradient flow, DFA).
    ``input_rate``: the tangent carries the input's own rate of change ``ẋ`` (what a circuit
    would see during transitions). ``weight_rate``: it also carries the weights' own rate ``Ẇ``
    (``Ẇx`` terms), found by one fixed-point iteration (the exact relation is implicit).
    ``freeze``: weights stay fixed and only ``delta`` integrates ``ẇ`` (for cross-checks).
    ``solver``/``dt0``/``controller``: Diffrax's; ``None`` controller means a constant step
    ``dt0``. ``max_steps`` per presentation.
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

    def __check_init__(self):
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
        if self.controller is None:
            scales = {"tau_p": tau_p, "neurons' tau": tau_x, "transition": stream.transition}
            for name, value in scales.items():
                if value and self.dt0 > value:
                    raise ValueError(
                        f"the fixed step dt0={self.dt0} is larger than {name}={value}: it would "
                        f"step over the dynamics; choose dt0 <= {value}"
                    )

    # -- the vector field ---------------------------------------------------------------------

    def signals(self, model: Network, state: SimState, t, args, w_dot=None) -> Signals:
        """The instantaneous signals at local time ``t`` (``w_dot``: tangent of the weights)."""
        previous, current, y, fixed = args
        x, x_dot = blended_input(previous, current, t, self._transition)
        if self.perturbation is None:
            p, p_dot = (), ()
        else:
            p, p_dot = self.perturbation(_joined(state.perturbation, fixed), t)
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
        )
        return dataclasses.replace(signals, x_dot=x_dot)  # the stream's rate, whether fed or not

    def vector_field(self, t, state: SimState, args) -> SimState:
        model = self._model(state)
        signals = self.signals(model, state, t, args)
        w_dot, rule_dot = self.rule.rates(model, signals, state.rule)
        if self.weight_rate:
            signals = self.signals(model, state, t, args, w_dot=w_dot)
            w_dot, rule_dot = self.rule.rates(model, signals, state.rule)
        w_dot = eqx.filter(w_dot, eqx.is_inexact_array)
        neurons_dot = None
        if state.neurons is not None:
            neurons_dot = self.neurons.drift(model, signals.trace, state.neurons)
        perturbation_dot = None
        if state.perturbation is not None:
            full = _joined(state.perturbation, args[3])
            perturbation_dot = eqx.filter(self.perturbation.drift(full, t), eqx.is_inexact_array)
        params_dot = jax.tree.map(jnp.zeros_like, w_dot) if self.freeze else w_dot
        return SimState(params_dot, neurons_dot, perturbation_dot, rule_dot, w_dot)

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
) -> Signals:
    """One ``jax.jvp`` of the network and its block losses at input ``x = (x, ẋ)`` and
    perturbation ``p = (p, ṗ)`` (entering where ``rule.site`` says), with leaky neurons' states
    ``activity`` (their rates from the neuron model) and optionally the weights' rate ``w_dot``."""
    (x, x_dot), (p, p_dot) = x, p
    site, greedy = rule.site, rule.greedy
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def forward(x, p, params, activity):
        net = eqx.combine(params, static)
        if site == "weights":
            net = perturb_weights(net, p)
        kwargs = {}
        if site == "pre":
            kwargs["perturbation"] = p
        elif site == "post":
            kwargs["post"] = tuple(p) + (None,)
        trace = net(x, greedy=greedy, activity=activity, **kwargs)
        return block_losses(loss, net, trace, y), trace

    activity_dot = None
    if activity is not None:
        _, trace0 = forward(x, p, params, activity)
        activity_dot = neurons.drift(model, trace0, activity)
    params_dot = jax.tree.map(jnp.zeros_like, params) if w_dot is None else w_dot
    (losses, trace), (loss_rates, trace_dot) = jax.jvp(
        forward, (x, p, params, activity), (x_dot, p_dot, params_dot, activity_dot)
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
    """``model`` and ``rule_state`` at the end; per presentation, the batch-mean ``loss`` and
    ``accuracy`` at its end, the solver's ``steps``; ``delta``: the accumulated weight change."""

    model: Network
    rule_state: Any
    delta: Any
    perturbation_state: Any
    neuron_state: Any
    loss: Array
    accuracy: Array
    steps: Array


def _diffusion_term(
    simulator: Simulator, state: SimState, fixed, key: PRNGKeyArray, duration: float
):
    """The perturbation's noise as a ``ControlTerm`` on the perturbation's part of the state,
    driven by a ``VirtualBrownianTree`` reproducible from ``key`` (``None`` without noise)."""
    if state.perturbation is None:
        return None
    full = _joined(state.perturbation, fixed)
    if simulator.perturbation.diffusion(full, 0.0) is None:
        return None
    shape = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), state.perturbation)
    tol = (simulator.dt0 or duration / 1000) / 2
    brownian = diffrax.VirtualBrownianTree(0.0, duration, tol=tol, shape=shape, key=key)
    zeros = jax.tree.map(jnp.zeros_like, state)

    def operator(t, y, args):
        g = simulator.perturbation.diffusion(_joined(y.perturbation, fixed), t)
        g = eqx.filter(g, eqx.is_inexact_array)

        def mv(dw):
            noise = jax.tree.map(lambda s, w: s * w, g, dw, is_leaf=lambda v: v is None)
            return eqx.tree_at(lambda z: z.perturbation, zeros, noise)

        return lx.FunctionLinearOperator(mv, shape)

    return diffrax.ControlTerm(operator, brownian)


def _solve_presentation(simulator, state, args, duration, key, saveat=None, progress=False):
    """One presentation. ``state.perturbation`` holds the process's floating-point arrays only;
    its other parts (keys, counters) travel as ``args[3]``, fixed during the presentation."""
    terms = diffrax.ODETerm(simulator.vector_field)
    noise = _diffusion_term(simulator, state, args[3], key, duration)
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
    simulator: Simulator, model: Network, stream: Presentations, *, key: PRNGKeyArray
) -> tuple[Simulator, SimState]:
    """The simulator bound to ``model``'s static structure and the initial state."""
    simulator.check(stream)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    bound = dataclasses.replace(simulator, _static=static, _transition=stream.transition)
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
    )
    return bound, state


def _joined(evolving, fixed):
    """The perturbation's whole state from its two parts (see ``split_state``)."""
    return fixed if evolving is None else eqx.combine(evolving, fixed)


def split_state(simulator: Simulator, state: SimState) -> tuple[SimState, Any]:
    """``state`` with only the perturbation's evolving floating-point arrays (what Diffrax
    integrates; none for closed-form processes, which only read their state), and the rest, which
    the vector field reads as ``args[3]`` (args: previous input, input, labels, rest)."""
    if simulator.perturbation is None or not simulator.perturbation.evolves:
        evolving, fixed = None, state.perturbation
    else:
        evolving, fixed = eqx.partition(state.perturbation, eqx.is_inexact_array)
    state = eqx.tree_at(lambda s: s.perturbation, state, evolving, is_leaf=lambda v: v is None)
    return state, fixed


@eqx.filter_jit
def run_presentations(
    simulator: Simulator, state: SimState, stream: Presentations, first, count, key
):
    """Presentations ``first .. first + count − 1`` as one ``lax.scan`` of solves, from a
    ``prepare``d simulator and state. Returns the new state and, per presentation, the loss and
    accuracy at its end, the solver's steps and whether the solve failed."""

    def step(state, k):
        previous = stream.x[jnp.maximum(k - 1, 0)]
        state, fixed = split_state(simulator, state)
        args = (previous, stream.x[k], stream.y[k], fixed)
        sol = _solve_presentation(
            simulator, state, args, stream.duration, jax.random.fold_in(key, k)
        )
        new = jax.tree.map(lambda a: a[-1], sol.ys)
        if simulator.perturbation is not None:
            full = _joined(new.perturbation, fixed)
            new = eqx.tree_at(
                lambda s: s.perturbation,
                new,
                simulator.perturbation.next_presentation(full, stream.duration),
                is_leaf=lambda v: v is None,
            )
        model = simulator._model(new)
        x, y = stream.x[k], stream.y[k]
        trace = model(x, activity=new.neurons)
        loss = jnp.mean(get_loss(simulator.loss)(trace.logits, y))
        failed = sol.result != diffrax.RESULTS.successful
        return new, (loss, accuracy(trace.logits, y), sol.stats["num_steps"], failed)

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
    losses, accs, steps = [], [], []
    bar = tqdm(total=stream.num, desc="presentations", unit="pres", disable=not progress)
    first = 0
    good_state = state
    while first < stream.num:
        count = min(chunk, stream.num - first)
        state, (loss, acc, n_steps, failed) = run_presentations(
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
            good = _result(bound, good_state, losses, accs, steps) if losses else None
            raise SimulationDiverged(
                f"the loss is not finite at presentation {bad} (lr={simulator.rule.lr}); the "
                "result up to the last finite chunk is kept in .result",
                presentation=bad,
                result=good,
            )
        good_state = state
        losses.append(loss)
        accs.append(acc)
        steps.append(n_steps)
        first += count
        bar.update(count)
        bar.set_postfix(loss=f"{float(loss[-1]):.4f}", refresh=False)
        if callback is not None:
            callback(first, _result(bound, state, losses, accs, steps))
    bar.close()
    return _result(bound, state, losses, accs, steps)


def _result(bound, state, losses, accs, steps) -> SimulationResult:
    return SimulationResult(
        bound._model(state),
        state.rule,
        state.delta,
        state.perturbation,
        state.neurons,
        jnp.concatenate(losses),
        jnp.concatenate(accs),
        jnp.concatenate(steps),
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
    local times (``SaveAt(fn=...)``, so only what is recorded is kept). With ``progress``,
    Diffrax's own progress meter follows the solve. Returns ``(ts, recorded)``."""
    bound, state = prepare(simulator, model, stream, key=key)
    previous = stream.x[max(index - 1, 0)]
    state, fixed = split_state(simulator, state)
    args = (previous, stream.x[index], stream.y[index], fixed)
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
