"""``simulate``: a network learning in continuous time, integrated by Diffrax.

One PyTree state (``SimState``: weights, neuron states, perturbation state, the rule's state,
an accumulator of the weight change, the non-idealities' states) evolves under one vector field
(``BoundSimulator.vector_field``): the input stream gives ``(x, ẋ)``, the perturbation process
``(p, ṗ)``; one ``jax.jvp`` of the network and its losses (``measure``) gives every signal's
rate, and the rule turns them into ``ẇ``. Every presentation is one solve over its local time
[0, T] (``solve_presentation``); ``run_presentations`` scans over them, ``simulate`` runs a
stream in compiled chunks and builds the ``SimulationResult``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray
from tqdm.auto import tqdm

from ..diagnostics import tree_cosine
from ..losses import accuracy, get_loss
from ..nn import Network
from ._bound import BoundSimulator
from ._bound import prepare as prepare
from ._measure import measure as measure
from ._record import Recording
from ._simulator import Simulator as Simulator
from ._solve import solve_presentation
from ._state import SimState as SimState
from ._state import joined_hardware, joined_perturbation, tuple_or_none
from ._state import split_state as split_state
from ._stream import Presentations


class SimulationResult(eqx.Module):
    """``model`` (the stored conductances), ``circuit`` (the network they realise, device
    mismatch applied; ``model`` itself on ideal hardware) and the rule's, perturbation's,
    neurons' and non-idealities' states at the end; per presentation, the batch-mean ``loss``
    and ``accuracy`` of the circuit at its end, the solver's ``steps`` and ``alignment``, the
    cosine between the rule's weight change over the presentation and −∇L of the circuit on its
    batch at its start; ``delta``: the accumulated weight change; ``recorded``: what a
    ``Recording`` kept, leaves shaped [presentations, times, ...] (``None`` without one)."""

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
    recorded: Any = None


def simulation_result(
    bound: BoundSimulator,
    state: SimState,
    loss: Array,
    accuracy: Array,
    steps: Array,
    alignment: Array,
    recorded: Any = None,
) -> SimulationResult:
    """The ``SimulationResult`` of a run that ended in ``state`` (whole, not split), with its
    per-presentation metrics."""
    return SimulationResult(
        model=bound.model(state),
        rule_state=state.rule,
        delta=state.delta,
        perturbation_state=state.perturbation,
        neuron_state=state.neurons,
        loss=loss,
        accuracy=accuracy,
        steps=steps,
        alignment=alignment,
        circuit=bound.circuit(state),
        hardware_state=state.hardware,
        recorded=recorded,
    )


class SimulationDiverged(RuntimeError):
    """The loss stopped being finite at ``presentation``; ``result`` is the simulation up to the
    end of the last chunk whose presentations were all finite (``None`` if there was none)."""

    def __init__(self, message: str, *, presentation: int, result: SimulationResult | None):
        super().__init__(message)
        self.presentation = presentation
        self.result = result


def _batch_gradient(bound: BoundSimulator, params, hardware, x, y):
    """∇ of the circuit's mean loss on ``(x, y)`` with respect to the stored weights, the
    non-idealities in states ``hardware``."""

    def mean_loss(params):
        trace = bound.realise(eqx.combine(params, bound.static), hardware)(x)
        return jnp.mean(get_loss(bound.simulator.loss)(trace.logits, y))

    return jax.grad(mean_loss)(params)


def _presentations(
    bound: BoundSimulator,
    state: SimState,
    stream: Presentations,
    first,
    count: int,
    key: PRNGKeyArray,
    recording: Recording | None,
):
    """``run_presentations``, and what ``recording`` kept in each presentation (``None``
    without one)."""
    sim = bound.simulator

    def step(state, k):
        total = state.delta
        state = dataclasses.replace(state, delta=jax.tree.map(jnp.zeros_like, total))
        full_hardware = state.hardware
        state, args = split_state(sim, state, stream, k)
        state = bound.switch(state, args, stream.y[jnp.maximum(k - 1, 0)])
        grad = _batch_gradient(bound, state.params, full_hardware, args.x, args.y)
        presentation_key = jax.random.fold_in(key, k)
        saveat = None if recording is None else recording.saveat(bound, stream.duration)
        sol = solve_presentation(
            bound, state, args, stream.duration, presentation_key, saveat=saveat
        )
        recorded, end = (None, sol.ys) if recording is None else sol.ys
        new = jax.tree.map(lambda a: a[-1], end)
        change = new.delta
        hardware = joined_hardware(sim.hardware, new.hardware, args.hardware)
        if any(h.writes for h in sim.hardware):
            written = jax.tree.map(jnp.add, new.params, change)
            write_key = jax.random.fold_in(presentation_key, 1)
            stored = bound.write(written, hardware, write_key, stored=new.params)
            new = dataclasses.replace(new, params=stored)
        new = dataclasses.replace(
            new, delta=jax.tree.map(jnp.add, total, change), hardware=tuple_or_none(hardware)
        )
        if sim.perturbation is not None:
            full = joined_perturbation(new.perturbation, args.perturbation)
            new = eqx.tree_at(
                lambda s: s.perturbation,
                new,
                sim.perturbation.next_presentation(full, stream.duration),
                is_leaf=lambda v: v is None,
            )
        trace = bound.circuit(new)(args.x, activity=new.neurons)
        loss = jnp.mean(get_loss(sim.loss)(trace.logits, args.y))
        failed = sol.result != diffrax.RESULTS.successful
        alignment = tree_cosine(change, jax.tree.map(jnp.negative, grad))
        steps = sol.stats["num_steps"]
        return new, ((loss, accuracy(trace.logits, args.y), steps, failed, alignment), recorded)

    state, (metrics, recorded) = jax.lax.scan(step, state, first + jnp.arange(count))
    return state, metrics, recorded


@eqx.filter_jit
def run_presentations(
    bound: BoundSimulator, state: SimState, stream: Presentations, first, count: int, key
):
    """Presentations ``first .. first + count − 1`` as one ``lax.scan`` of solves, from a
    ``prepare``d simulator and state. Returns the new state and, per presentation, the loss and
    accuracy of the circuit at its end, the solver's steps, whether the solve failed, and the
    alignment (cosine) of the rule's weight change over it with −∇L at its start."""
    state, metrics, _ = _presentations(bound, state, stream, first, count, key, None)
    return state, metrics


_run = eqx.filter_jit(_presentations)


def simulate(
    simulator: Simulator,
    model: Network,
    stream: Presentations,
    *,
    key: PRNGKeyArray,
    chunk: int = 50,
    progress: bool = True,
    callback: Callable[[int, SimulationResult], None] | None = None,
    record: Recording | None = None,
) -> SimulationResult:
    """Present ``stream`` to ``model`` learning by ``simulator``'s rule; one solve per presentation,
    ``chunk`` presentations per compiled call (a progress bar counts presentations). ``record``:
    what to keep from inside every presentation (``SimulationResult.recorded``).

    Raises ``RuntimeError`` naming the presentation and the solver settings if a solve fails
    (e.g. it needs more than ``max_steps`` steps).
    """
    bound, state = prepare(simulator, model, stream, key=key)
    run_key = jax.random.fold_in(key, 1)
    chunks = []
    bar = tqdm(total=stream.num, desc="presentations", unit="pres", disable=not progress)
    first = 0
    good_state = state
    while first < stream.num:
        count = min(chunk, stream.num - first)
        # ``first`` as an array: a Python int is static to filter_jit, so every chunk would
        # compile again.
        state, (loss, acc, n_steps, failed, alignment), recorded = _run(
            bound, state, stream, jnp.asarray(first), count, run_key, record
        )
        if bool(jnp.any(failed)):
            bad = first + int(np.argmax(np.asarray(failed)))
            used = bound.plan
            why = (
                "the waveform engine's sweeps did not converge in a window: shorten its window "
                "or use solver=diffrax.Heun()"
                if used.engine == "waveform"
                else f"Diffrax: not successful, e.g. more than max_steps={used.max_steps} steps"
            )
            raise RuntimeError(
                f"the solve of presentation {bad} failed ({why}): solver "
                f"{type(used.solver).__name__}, dt0={simulator.dt0}, controller="
                f"{simulator.controller}, duration {stream.duration}, tau_p="
                f"{None if simulator.perturbation is None else simulator.perturbation.tau}"
            )
        finite = np.isfinite(np.asarray(loss))
        if not finite.all():
            bad = first + int(np.argmin(finite))
            raise SimulationDiverged(
                f"the loss is not finite at presentation {bad} (lr={simulator.rule.lr}); the "
                "result up to the last finite chunk is kept in .result",
                presentation=bad,
                result=_result(bound, good_state, chunks) if chunks else None,
            )
        good_state = state
        chunks.append((loss, acc, n_steps, alignment, recorded))
        first += count
        bar.update(count)
        bar.set_postfix(loss=f"{float(loss[-1]):.4f}", refresh=False)
        if callback is not None:
            callback(first, _result(bound, state, chunks))
    bar.close()
    return _result(bound, state, chunks)


def _result(bound: BoundSimulator, state: SimState, chunks: list) -> SimulationResult:
    """The result from the chunks' metrics, concatenated along the presentations."""
    *metrics, recorded = zip(*chunks)
    loss, acc, steps, alignment = (jnp.concatenate(m) for m in metrics)
    if recorded[0] is not None:
        recorded = jax.tree.map(lambda *a: jnp.concatenate(a), *recorded)
    else:
        recorded = None
    return simulation_result(bound, state, loss, acc, steps, alignment, recorded)


def effective_learning_rate(simulator: Simulator, duration: float) -> float:
    """The discrete SGD learning rate per presentation that matches this rule on average:
    η · c · T, with c the perturbation's rate power (gradient flow: η · T)."""
    c = 1.0 if simulator.perturbation is None else float(simulator.perturbation.rate_power())
    return float(simulator.rule.lr) * c * duration
