"""``BoundSimulator``: a ``Simulator`` bound to a network's structure and an input stream, made
by ``prepare`` with the initial state. It assembles the network from a state and gives the
instantaneous signals and the vector field that Diffrax integrates."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from ..nn import Network
from ._engine import Plan, plan
from ._measure import measure
from ._rule import Signals
from ._simulator import Simulator
from ._state import (
    PresentationArgs,
    SimState,
    joined_hardware,
    joined_perturbation,
    learns_in_place,
    split_state,
    tuple_or_none,
)
from ._stream import Presentations, blended_input


class BoundSimulator(eqx.Module):
    """``simulator`` bound to a network and a stream: ``simulator`` holds only the non-idealities
    ``prepare`` kept (those at their ideal values are left out unless kept), ``static`` is the
    network's non-trainable part (a state's ``params`` complete it) and ``transition`` the
    stream's input transition (a local time); ``plan`` is how each presentation is integrated
    (``ctlearn.dynamics.plan``: the waveform engine or a Diffrax stepping solver)."""

    simulator: Simulator
    static: Any = eqx.field(static=True)
    transition: float = eqx.field(static=True)
    plan: Plan

    def model(self, state: SimState) -> Network:
        """The network with ``state``'s weights (the stored conductances)."""
        return eqx.combine(state.params, self.static)

    def circuit(self, state: SimState, fixed_hardware: tuple | None = None) -> Network:
        """The network as the circuit realises it from ``state``'s stored conductances (device
        mismatch applied); ``fixed_hardware``: the fixed states where ``state`` was split."""
        hardware = joined_hardware(self.simulator.hardware, state.hardware, fixed_hardware)
        return self.realise(self.model(state), hardware)

    def realise(self, model: Network, hardware: tuple) -> Network:
        """``model`` as built by the non-idealities in states ``hardware`` (one per component)."""
        if not self.simulator.hardware:
            return model
        for h, h_state in zip(self.simulator.hardware, hardware):
            model = h.network(model, h_state)
        return model

    def write(self, params, hardware: tuple, key: PRNGKeyArray, stored=None):
        """``params`` as the devices store them when written (unchanged on ideal hardware);
        ``stored``: what they held before (``None``: the initial programming)."""
        for i, (h, h_state) in enumerate(zip(self.simulator.hardware, hardware)):
            if h.writes:
                key_i = jax.random.fold_in(key, 7919 + i)
                params = h.write(params, h_state, key_i, stored=stored)
        return params

    def switch(self, state: SimState, args: PresentationArgs, previous_y) -> SimState:
        """``state`` (split, as the presentation of ``args`` starts) with the non-idealities
        that react to the switch of input and labels (``switches``) adjusted: their ``switch``
        sees the raw signals under the previous input (``args.previous``) and labels
        (``previous_y``) and under the new ones, both at local time 0."""
        sim = self.simulator
        if not any(h.switches for h in sim.hardware):
            return state
        model = self.model(state)
        t = jnp.zeros(())
        old = dataclasses.replace(args, x=args.previous, y=previous_y)
        before = self.raw_signals(model, state, t, old)
        after = self.raw_signals(model, state, t, args)
        hardware = tuple(
            h.switch(h_state, before, after) if h.switches else h_state
            for h, h_state in zip(sim.hardware, state.hardware)
        )
        return dataclasses.replace(state, hardware=hardware)

    def raw_signals(
        self,
        model: Network,
        state: SimState,
        t,
        args: PresentationArgs,
        w_dot=None,
        perturbation=None,
    ) -> Signals:
        """The instantaneous signals at local time ``t`` as they are in the circuit (``w_dot``:
        tangent of the weights), before the non-idealities' ``observe``. ``perturbation``: the
        process's ``(p, ṗ)`` at ``t`` where the caller has it already (a tabulated grid)."""
        sim = self.simulator
        x, x_dot = blended_input(args.previous, args.x, t, self.transition)
        if sim.perturbation is None:
            p, p_dot = (), ()
        elif perturbation is not None:
            p, p_dot = perturbation
        else:
            p, p_dot = sim.perturbation(
                joined_perturbation(state.perturbation, args.perturbation), t
            )
        hardware = joined_hardware(sim.hardware, state.hardware, args.hardware)
        injected, noise = (p, p_dot), None
        for h, h_state in zip(sim.hardware, hardware):
            injected = h.inject(*injected)
            extra = h.activity_noise(h_state, t)
            if extra is not None:
                noise = extra if noise is None else jax.tree.map(jnp.add, noise, extra)
        signals = measure(
            sim.rule,
            sim.neurons,
            sim.loss,
            model,
            (x, x_dot if sim.input_rate else None),
            args.y,
            (p, p_dot),
            activity=state.neurons,
            w_dot=w_dot,
            injected=injected,
            noise=noise,
            circuit=(lambda m: self.realise(m, hardware)) if sim.hardware else None,
        )
        for h, h_state in zip(sim.hardware, hardware):
            extra = h.cost_noise(h_state, t)
            if extra is not None:
                signals = with_cost_noise(signals, *extra)
        return dataclasses.replace(signals, x_dot=x_dot)  # the stream's rate, whether fed or not

    def signals(
        self, model: Network, state: SimState, t, args: PresentationArgs, w_dot=None
    ) -> Signals:
        """The instantaneous signals at local time ``t`` as the synapses observe them."""
        return self._observe(self.raw_signals(model, state, t, args, w_dot), state, t, args)

    def _observe(self, signals: Signals, state: SimState, t, args: PresentationArgs) -> Signals:
        hardware = joined_hardware(self.simulator.hardware, state.hardware, args.hardware)
        for h, h_state in zip(self.simulator.hardware, hardware):
            signals = h.observe(signals, h_state, t)
        return signals

    def vector_field(
        self, t, state: SimState, args: PresentationArgs, perturbation=None
    ) -> SimState:
        """The rate of every part of the (split) state at local time ``t`` (Diffrax's ODE);
        ``perturbation``: ``(p, ṗ)`` at ``t`` if already evaluated (see ``raw_signals``)."""
        sim = self.simulator
        model = self.model(state)
        raw = self.raw_signals(model, state, t, args, perturbation=perturbation)
        signals = self._observe(raw, state, t, args)
        w_dot, rule_dot = sim.rule.rates(model, signals, state.rule)
        if sim.weight_rate:
            raw = self.raw_signals(model, state, t, args, w_dot, perturbation)
            signals = self._observe(raw, state, t, args)
            w_dot, rule_dot = sim.rule.rates(model, signals, state.rule)
        w_dot = eqx.filter(w_dot, eqx.is_inexact_array)
        hardware = joined_hardware(sim.hardware, state.hardware, args.hardware)
        for h, h_state in zip(sim.hardware, hardware):
            w_dot = h.synapses(w_dot, h_state)
        neurons_dot = None
        if state.neurons is not None:
            circuit = self.realise(model, hardware)
            neurons_dot = sim.neurons.drift(circuit, raw.trace, state.neurons)
        perturbation_dot = None
        if state.perturbation is not None:
            full = joined_perturbation(state.perturbation, args.perturbation)
            perturbation_dot = eqx.filter(sim.perturbation.drift(full, t), eqx.is_inexact_array)
        if learns_in_place(sim):
            params_dot = w_dot
        else:
            params_dot = jax.tree.map(jnp.zeros_like, w_dot)
        if not sim.freeze:
            for h in sim.hardware:
                drift = h.weight_drift(state.params)
                if drift is not None:
                    params_dot = jax.tree.map(jnp.add, params_dot, drift)
        hardware_dot = tuple_or_none(
            h.drift(raw, h_state, t) if h.evolves else None
            for h, h_state in zip(sim.hardware, hardware)
        )
        return SimState(params_dot, neurons_dot, perturbation_dot, rule_dot, w_dot, hardware_dot)


def prepare(
    simulator: Simulator,
    model: Network,
    stream: Presentations,
    *,
    key: PRNGKeyArray,
    keep_ideal: bool = False,
) -> tuple[BoundSimulator, SimState]:
    """``simulator`` bound to ``model``'s static structure and to ``stream``, and the initial
    state (weights as the device stores them). Non-idealities at their ideal values are left
    out, unless ``keep_ideal`` (ensembles keep every member's structure the same)."""
    simulator.check(stream, model)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    hardware = tuple(h for h in simulator.hardware if keep_ideal or not h.is_ideal())
    kept = dataclasses.replace(simulator, hardware=hardware)
    bound = BoundSimulator(kept, static, stream.transition, plan(kept, stream, model))
    rule_key, perturbation_key = jax.random.split(key)
    x0 = stream.x[0]
    perturbation_state = None
    if simulator.perturbation is not None:
        shapes = simulator.rule.perturbation_shapes(model, x0)
        check_period(simulator.perturbation, shapes, stream.duration)
        perturbation_state = simulator.perturbation.init(shapes, key=perturbation_key)
    state = SimState(
        params,
        simulator.neurons.init(model, x0),
        perturbation_state,
        simulator.rule.init(model, key=rule_key),
        jax.tree.map(jnp.zeros_like, params),
        tuple_or_none(None for _ in hardware),
    )
    if hardware:
        state = _init_hardware(bound, state, stream, key)
    return bound, state


def check_period(perturbation, shapes, duration: float) -> None:
    """Refuse a multiplexing code whose period is longer than a presentation: the presentation's
    estimate would see only part of the code, crediting some units and not others."""
    period = perturbation.period(shapes)
    if period is not None and period > duration * (1 + 1e-6):
        units = sum(math.prod(s) for s in shapes)
        raise ValueError(
            f"{type(perturbation).__name__}(tau={perturbation.tau!r}) multiplexes {units} "
            f"perturbed units over a period of {period:.6g}, longer than the presentation "
            f"(duration {duration!r}): lengthen the presentation to >= {period:.6g}, shorten "
            f"tau to <= {perturbation.tau * duration / period:.6g}, or perturb fewer units"
        )


def _init_hardware(
    bound: BoundSimulator, state: SimState, stream: Presentations, key: PRNGKeyArray
) -> SimState:
    """The non-idealities' states from the signals at the start of the first presentation:
    drawn first against the ideal circuit, then again (same keys) against the circuit they
    make, so that filters start from the signals they will see; then the first write."""
    keys = [jax.random.fold_in(key, 100 + i) for i in range(len(bound.simulator.hardware))]
    ideal = dataclasses.replace(bound, simulator=dataclasses.replace(bound.simulator, hardware=()))
    plain, args = split_state(ideal.simulator, dataclasses.replace(state, hardware=None), stream, 0)
    signals = ideal.raw_signals(ideal.model(plain), plain, 0.0, args)
    model = bound.model(state)
    states = tuple(h.init(model, signals, key=k) for h, k in zip(bound.simulator.hardware, keys))
    state = dataclasses.replace(state, hardware=states)
    plain, args = split_state(bound.simulator, state, stream, 0)
    signals = bound.raw_signals(model, plain, 0.0, args)
    states = tuple(h.init(model, signals, key=k) for h, k in zip(bound.simulator.hardware, keys))
    state = dataclasses.replace(state, hardware=states)
    return dataclasses.replace(state, params=bound.write(state.params, states, key))


def with_cost_noise(signals: Signals, n: tuple, n_dot: tuple) -> Signals:
    """``signals`` with ``n`` (one scalar per block) added to every example's block cost and to
    its cost change, and ``ṅ`` to its rate."""

    def add(values, extra):
        if values is None:
            return None
        return tuple(None if v is None else v + e for v, e in zip(values, extra, strict=True))

    return dataclasses.replace(
        signals,
        losses=add(signals.losses, n),
        loss_rates=add(signals.loss_rates, n_dot),
        loss_changes=add(signals.loss_changes, n),
    )
