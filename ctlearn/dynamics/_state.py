"""The state Diffrax integrates (``SimState``) and what the vector field reads beside it during
one presentation (``PresentationArgs``, Diffrax's ``args``), with the split between them."""

from __future__ import annotations

import dataclasses
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from ._simulator import Simulator
from ._stream import Presentations


class SimState(eqx.Module):
    """Everything that evolves: the model's trainable arrays, the neurons' activities (leaky
    neurons), the perturbation process's state, the rule's state and ``delta``, the weight change
    accumulated since the start (integrated on its own, so small changes keep their precision;
    within a solve it holds the current presentation's change only), and the non-idealities'
    states (one entry per ``Simulator.hardware`` component; ``None`` where it has none). Within
    a solve ``params`` is ``None`` where the stored weights follow from ``delta`` (see
    ``without_weights``)."""

    params: Any
    neurons: Any
    perturbation: Any
    rule: Any
    delta: Any
    hardware: tuple | None = None  # None, not (): equinox's tree_at tells nodes apart by identity


class PresentationArgs(eqx.Module):
    """What the vector field reads beside the state during one presentation (Diffrax's
    ``args``): the ``previous`` presentation's input batch (the input blends from it), this
    presentation's input batch ``x`` and labels ``y``, the ``perturbation``'s fixed part (its
    whole state for closed-form processes, which only read it; keys and counters otherwise) and
    the non-idealities' fixed states ``hardware`` (drawn device parameters; ``None`` for the
    evolving ones, whose states are in ``SimState``); ``table``: the perturbation's ``(p, ṗ)``
    at every step time ``n·dt0`` where the plan tabulates it (``None`` otherwise); ``start``:
    the stored weights at the presentation's start where the integrated state leaves them out
    (see ``without_weights``; ``None`` otherwise)."""

    previous: Array
    x: Array
    y: Array
    perturbation: Any
    hardware: tuple
    table: Any = None
    start: Any = None


def split_state(
    simulator: Simulator, state: SimState, stream: Presentations, k
) -> tuple[SimState, PresentationArgs]:
    """``state`` with only what Diffrax integrates, and the ``PresentationArgs`` of presentation
    ``k`` of ``stream`` (an int or a traced index) holding the rest. ``simulator``: the one whose
    perturbation and non-idealities made ``state`` (a ``BoundSimulator``'s ``simulator``)."""
    if simulator.perturbation is None or not simulator.perturbation.evolves:
        evolving, fixed = None, state.perturbation
    else:
        evolving, fixed = eqx.partition(state.perturbation, eqx.is_inexact_array)
    states = () if state.hardware is None else state.hardware
    fixed_hardware = tuple(None if h.evolves else s for h, s in zip(simulator.hardware, states))
    evolving_hardware = tuple_or_none(
        s if h.evolves else None for h, s in zip(simulator.hardware, states)
    )
    state = eqx.tree_at(lambda s: s.perturbation, state, evolving, is_leaf=lambda v: v is None)
    state = dataclasses.replace(state, hardware=evolving_hardware)
    previous = stream.x[jnp.maximum(k - 1, 0)]
    args = PresentationArgs(previous, stream.x[k], stream.y[k], fixed, fixed_hardware)
    return state, args


def joined_perturbation(evolving, fixed):
    """The perturbation's whole state from its two parts (see ``split_state``)."""
    return fixed if evolving is None else eqx.combine(evolving, fixed)


def joined_hardware(hardware, evolving, fixed):
    """Every non-ideality's state, from the evolving ones (in the ODE state) and the fixed ones
    (in ``PresentationArgs``); ``fixed`` is ``None`` when the state was not split."""
    if not hardware:
        return ()
    if fixed is None:
        return evolving
    return tuple(e if h.evolves else f for h, e, f in zip(hardware, evolving, fixed))


def tuple_or_none(items) -> tuple | None:
    """``items`` as a tuple, ``None`` when there are none (``SimState.hardware``'s convention)."""
    items = tuple(items)
    return items if items else None


def weights_move_alone(simulator: Simulator, params) -> bool:
    """Whether a non-ideality of ``simulator`` moves the stored weights ``params`` on their own
    (``weight_drift``, ``weight_diffusion``): only then must a presentation integrate them
    beside ``delta``, the learned change (asked of the kinds, whatever their strength)."""
    return any(
        jax.eval_shape(lambda p, h=h: (h.weight_drift(p), h.weight_diffusion(p)), params)
        != (None, None)
        for h in simulator.hardware
    )


def learns_in_place(simulator: Simulator) -> bool:
    """Whether the stored weights follow the learned change within a presentation: not when
    they are frozen, nor on devices written only at a presentation's end (``writes``)."""
    return not simulator.freeze and not any(h.writes for h in simulator.hardware)


def without_weights(
    simulator: Simulator, state: SimState, args: PresentationArgs
) -> tuple[SimState, PresentationArgs]:
    """A split presentation's ``state`` without the stored weights and its ``args`` holding
    them as ``start``, where nothing moves them but the learned change: they are then
    ``start + delta`` (or ``start``, see ``learns_in_place``) at every instant, and the solver
    steps one weight-sized array instead of two. Unchanged otherwise."""
    if state.params is None or weights_move_alone(simulator, state.params):
        return state, args
    args = dataclasses.replace(args, start=state.params)
    return dataclasses.replace(state, params=None), args


def with_weights(state: SimState, args: PresentationArgs, in_place: bool) -> SimState:
    """``state`` whole again: the stored weights rebuilt from ``args.start`` where
    ``without_weights`` left them out, ``start + delta`` or, unless ``in_place`` (see
    ``learns_in_place``), ``start`` (leaves of ``delta`` may carry leading axes, e.g. the
    members, that ``start`` lacks)."""
    if state.params is not None or args.start is None:
        return state
    if in_place:
        params = jax.tree.map(jnp.add, args.start, state.delta)
    else:
        params = jax.tree.map(lambda w, d: jnp.broadcast_to(w, d.shape), args.start, state.delta)
    return dataclasses.replace(state, params=params)
