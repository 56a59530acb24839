"""One presentation handed to ``diffrax.diffeqsolve``: the drift (the bound simulator's vector
field), the diffusion of the noisy parts of the state, and the solver, step-size controller and
steps of the binding's ``Plan`` (the waveform engine or a stepping solver). This is the only
place in ctlearn that calls ``diffeqsolve``.

Noise is driven by a Brownian path reproducible from the presentation's key: at a fixed step
Diffrax's ``UnsafeBrownianPath`` (one normal increment per step, drawn from the key and the
step's times: the same law as the tree's increments without its bisection), otherwise (adaptive
steps) a ``VirtualBrownianTree``. Under ``vmap`` (ensembles) a fixed-step presentation is solved
once for all members, the member axis carried in the state (``MemberTerm``), instead of a
vmapped solve. Where nothing but the learned change moves the stored weights, the solver steps
only that change (``without_weights``): the weights are rebuilt from it where they are read, in
the vector field and in every save.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import PRNGKeyArray

from ._bound import BoundSimulator
from ._engine import Plan
from ._members import MemberTerm, member_axes
from ._simulator import Simulator
from ._state import (
    PresentationArgs,
    SimState,
    joined_perturbation,
    learns_in_place,
    tuple_or_none,
    with_weights,
    without_weights,
)
from ._term import CircuitTerm

BROWNIAN_PATHS = ("increments", "tree")
"""``solve_presentation``'s noise paths: ``"increments"`` (``diffrax.UnsafeBrownianPath``: valid
at a fixed step only) and ``"tree"`` (``diffrax.VirtualBrownianTree``: any steps)."""


MEMBER_SOLVES = ("fused", "vmap")
"""``Plan.members``: an ensemble's fixed-step presentations solved once for all members
(``"fused"``) or each member's solve vmapped (``"vmap"``)."""


WEIGHT_STATES = ("rebuilt", "stepped")
"""``Plan.weights``: where only the learned change moves the stored weights, a solve steps that
change alone and rebuilds the weights from it where they are read (``"rebuilt"``,
``without_weights``), or steps the weights beside it (``"stepped"``)."""


def fixed_step(plan: Plan) -> bool:
    """Whether ``plan`` integrates every presentation by a stepping solver at the constant step
    dt0 (so that every member of an ensemble takes the same steps, and the fixed-step noise path
    is valid)."""
    return plan.engine == "diffrax" and isinstance(plan.controller, diffrax.ConstantStepSize)


def brownian_kind(plan: Plan, kind: str | None) -> str:
    """The Brownian path ``kind`` (one of ``BROWNIAN_PATHS``) resolved for ``plan``: ``None`` is
    ``"increments"`` at a fixed step and ``"tree"`` otherwise. Refuses an unknown kind, and
    ``"increments"`` where the steps are not fixed."""
    if kind is None:
        return "increments" if fixed_step(plan) else "tree"
    if kind not in BROWNIAN_PATHS:
        raise ValueError(f"unknown Brownian path {kind!r}; valid: {', '.join(BROWNIAN_PATHS)}")
    if kind == "increments" and not fixed_step(plan):
        raise ValueError(
            "brownian='increments' (one increment per step) needs a stepping solver at a "
            f"constant step; this plan has controller {type(plan.controller).__name__} "
            f"({plan.engine} engine): use brownian='tree'"
        )
    return kind


def brownian_path(
    bound: BoundSimulator, shape, key: PRNGKeyArray, duration: float, kind: str | None = None
) -> diffrax.AbstractBrownianPath:
    """The Brownian motion shaped ``shape`` (a tree of ``jax.ShapeDtypeStruct``) that drives a
    presentation's noise, reproducible from ``key``: ``brownian_kind(bound.plan, kind)``."""
    if brownian_kind(bound.plan, kind) == "increments":
        return diffrax.UnsafeBrownianPath(shape=shape, key=key)
    tol = (bound.plan.dt0 or bound.simulator.dt0 or duration / 1000) / 2
    return diffrax.VirtualBrownianTree(0.0, duration, tol=tol, shape=shape, key=key)


class Diffusion(eqx.Module):
    """The diffusion of the noisy parts of the state (an ``IntegratedOU`` perturbation, activity
    noise, weight diffusion) as a diagonal linear operator on Brownian increments ``shape``d
    like those parts; the rest of the state gets no noise. A PyTree (the simulator's numbers
    are leaves), so that members of an ensemble each carry their own."""

    simulator: Simulator
    shape: Any = eqx.field(static=True)

    def scales(self, t, y: SimState, args: PresentationArgs) -> SimState:
        """The diagonal of the diffusion at ``t``: ``None`` where the state is not noisy."""
        sim = self.simulator
        perturbation = None
        if y.perturbation is not None:
            full = joined_perturbation(y.perturbation, args.perturbation)
            g = sim.perturbation.diffusion(full, t)
            perturbation = None if g is None else eqx.filter(g, eqx.is_inexact_array)
        params = None
        for h in sim.hardware:
            g = h.weight_diffusion(y.params)
            if g is not None:
                params = g if params is None else jax.tree.map(jnp.hypot, params, g)
        states = () if y.hardware is None else y.hardware
        hardware = tuple_or_none(
            h.diffusion(h_state, t) if h.evolves else None
            for h, h_state in zip(sim.hardware, states)
        )
        return SimState(params, None, perturbation, None, None, hardware)

    def __call__(self, t, y: SimState, args: PresentationArgs) -> lx.FunctionLinearOperator:
        g = self.scales(t, y, args)
        zeros = jax.tree.map(jnp.zeros_like, y)

        def mv(dw):
            noise = jax.tree.map(jnp.multiply, g, dw)
            return jax.tree.map(
                lambda n, z: z if n is None else n, noise, zeros, is_leaf=lambda v: v is None
            )

        return lx.FunctionLinearOperator(mv, self.shape)


def diffusion_term(
    bound: BoundSimulator,
    state: SimState,
    args: PresentationArgs,
    key: PRNGKeyArray,
    duration: float,
    brownian: str | None = None,
) -> diffrax.ControlTerm | None:
    """The SDE's noise: ``Diffusion`` driven by ``brownian_path(bound, ..., key, duration,
    brownian)`` (``None`` when nothing is noisy)."""
    probe = Diffusion(bound.simulator, None)
    g0 = jax.eval_shape(probe.scales, 0.0, state, args)
    if not jax.tree.leaves(g0):
        return None
    shape = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), g0)
    path = brownian_path(bound, shape, key, duration, brownian)
    return diffrax.ControlTerm(Diffusion(bound.simulator, shape), path)


def presentation_terms(
    bound: BoundSimulator,
    state: SimState,
    args: PresentationArgs,
    key: PRNGKeyArray,
    duration: float,
    brownian: str | None = None,
) -> tuple[diffrax.AbstractTerm, PresentationArgs]:
    """The Diffrax terms of one presentation and its ``args`` (with the perturbation's table
    where the plan tabulates it)."""
    plan = bound.plan
    if plan.engine == "waveform":
        # The plan admits the waveform engine only where nothing is noisy (see
        # ``waveform_obstacle``), so there is no diffusion term to build.
        return CircuitTerm(bound), args
    if plan.tabulate:
        args = tabulated(bound, args, duration)
        terms = CircuitTerm(bound)
    else:
        terms = diffrax.ODETerm(CircuitTerm(bound).vf)
    noise = diffusion_term(bound, state, args, key, duration, brownian)
    if noise is not None:
        terms = diffrax.MultiTerm(terms, noise)
    return terms, args


def tabulated(bound: BoundSimulator, args: PresentationArgs, duration: float) -> PresentationArgs:
    """``args`` with the perturbation's ``(p, ṗ)`` at every step time n·dt0 of a presentation
    (``args.table``) where the plan tabulates it; ``args`` unchanged otherwise."""
    plan = bound.plan
    if plan.engine != "diffrax" or not plan.tabulate:
        return args
    steps = round(duration / plan.dt0)
    table = bound.simulator.perturbation.grid(args.perturbation, 0.0, plan.dt0, steps + 1, (0.0,))
    return dataclasses.replace(args, table=jax.tree.map(lambda v: v[:, 0], table))


def _diffeqsolve(plan, terms, state, args, duration, saveat, progress):
    return diffrax.diffeqsolve(
        terms,
        plan.solver,
        0.0,
        duration,
        plan.dt0,
        state,
        args=args,
        saveat=saveat,
        stepsize_controller=plan.controller,
        max_steps=plan.max_steps,
        throw=False,
        # Forward only (nothing backpropagates through a presentation); Diffrax's fixed-step
        # noise path (UnsafeBrownianPath) needs it.
        adjoint=diffrax.ForwardMode(),
        progress_meter=diffrax.TqdmProgressMeter() if progress else diffrax.NoProgressMeter(),
    )


def solve_presentation(
    bound: BoundSimulator,
    state: SimState,
    args: PresentationArgs,
    duration: float,
    key: PRNGKeyArray,
    *,
    saveat: diffrax.SaveAt | None = None,
    progress: bool = False,
    brownian: str | None = None,
) -> diffrax.Solution:
    """One presentation over local time [0, ``duration``] from the split ``state`` (see
    ``split_state``), noise drawn from ``key`` along ``brownian_path(..., brownian)`` (``None``:
    the plan's ``brownian``); saved at
    its end unless ``saveat`` says otherwise. A failed solve is reported in the solution's
    ``result`` (``throw=False``). With ``progress``, Diffrax's progress meter follows the solve.

    Under ``vmap`` (an ensemble's members) a fixed-step presentation saved at its end is solved
    once for all members, the member axis carried in the state (``MemberTerm``): every member
    gets what it would get alone, one step loop serves all of them (unless the plan says
    ``members="vmap"``)."""
    saveat = saveat or diffrax.SaveAt(t1=True)
    brownian = bound.plan.brownian if brownian is None else brownian
    if bound.plan.members not in MEMBER_SOLVES:
        raise ValueError(
            f"Plan.members={bound.plan.members!r} is not a way to solve an ensemble's members; "
            f"valid: {', '.join(MEMBER_SOLVES)}"
        )
    if bound.plan.weights not in WEIGHT_STATES:
        raise ValueError(
            f"Plan.weights={bound.plan.weights!r} is not a way to hold the stored weights in a "
            f"solve; valid: {', '.join(WEIGHT_STATES)}"
        )
    fusable = (
        bound.plan.members == "fused"
        and fixed_step(bound.plan)
        and saveat == diffrax.SaveAt(t1=True)
        and not progress
    )
    if bound.plan.weights == "rebuilt":
        state, args = without_weights(bound.simulator, state, args)
    saveat = whole_saves(bound.simulator, saveat)
    dynamic, static = eqx.partition((bound, state, args, key), eqx.is_array)
    solution_static = []

    def alone(dynamic):
        bound, state, args, key = eqx.combine(dynamic, static)
        terms, args = presentation_terms(bound, state, args, key, duration, brownian)
        sol = _diffeqsolve(bound.plan, terms, state, args, duration, saveat, progress)
        arrays, rest = eqx.partition(sol, eqx.is_array)
        solution_static.append(rest)
        return arrays

    solve = jax.custom_batching.custom_vmap(alone)

    @solve.def_vmap
    def members(size, in_batched, dynamic):
        (batched,) = in_batched  # one entry per argument of ``alone``
        axes = jax.tree.map(lambda b: 0 if b else None, batched)
        if not fusable:
            arrays = jax.vmap(alone, in_axes=(axes,))(dynamic)
            return arrays, jax.tree.map(lambda _: True, arrays)
        sol = _solve_members(static, dynamic, batched, size, duration, brownian, saveat)
        arrays, rest = eqx.partition(sol, eqx.is_array)
        solution_static.append(rest)
        return arrays, jax.tree.map(lambda _: True, arrays)

    arrays = solve(dynamic)
    return eqx.combine(arrays, solution_static[-1])


def whole_saves(simulator: Simulator, saveat: diffrax.SaveAt) -> diffrax.SaveAt:
    """``saveat`` whose every save (``SubSaveAt.fn``) sees and keeps the whole state, the
    stored weights rebuilt where the integrated state leaves them out (``without_weights``)."""

    in_place = learns_in_place(simulator)

    def whole(sub: diffrax.SubSaveAt) -> diffrax.SubSaveAt:
        fn = sub.fn
        return dataclasses.replace(
            sub, fn=lambda t, y, args: fn(t, with_weights(y, args, in_place), args)
        )

    is_sub = lambda v: isinstance(v, diffrax.SubSaveAt)  # noqa: E731
    return dataclasses.replace(saveat, subs=jax.tree.map(whole, saveat.subs, is_leaf=is_sub))


def _solve_members(static, dynamic, batched, size: int, duration: float, brownian, saveat):
    """The fixed-step presentation of ``size`` members (``dynamic``'s leaves carry the member
    axis first where ``batched`` says so) as one solve saved by ``saveat`` (at its end); every
    leaf of the solution gets the member axis first."""
    bound_batched, state_batched, args_batched, key_batched = batched
    bound_axes, state_axes, args_axes, key_axes = jax.tree.map(lambda b: 0 if b else None, batched)
    bound_dynamic, state, args_dynamic, key = dynamic
    bound_static, _, args_static, _ = static
    # Every member's state evolves on its own: shared initial values are copied.
    state = jax.tree.map(
        lambda a, b: a if b else jnp.broadcast_to(a, (size, *a.shape)), state, state_batched
    )

    def member_terms(bound_dynamic, state, args_dynamic, key):
        bound = eqx.combine(bound_dynamic, bound_static)
        args = eqx.combine(args_dynamic, args_static)
        return presentation_terms(bound, state, args, key, duration, brownian)[0]

    def member_table(bound_dynamic, args_dynamic):
        bound = eqx.combine(bound_dynamic, bound_static)
        return tabulated(bound, eqx.combine(args_dynamic, args_static), duration).table

    terms = eqx.filter_vmap(
        member_terms, in_axes=(bound_axes, 0, args_axes, key_axes), axis_size=size
    )(bound_dynamic, state, args_dynamic, key)
    # Members that share their perturbation's state share one table.
    shared = not any(
        jax.tree.leaves((bound_batched.simulator.perturbation, args_batched.perturbation))
    )
    table = eqx.filter_vmap(
        member_table,
        in_axes=(bound_axes, args_axes),
        out_axes=None if shared else 0,
        axis_size=size,
    )(bound_dynamic, args_dynamic)
    args = dataclasses.replace(eqx.combine(args_dynamic, args_static), table=table)
    args_batched = dataclasses.replace(
        args_batched, table=jax.tree.map(lambda _: not shared, table)
    )
    fused = MemberTerm(terms, size, *member_axes(args, args_batched))
    first = jax.tree.map(lambda a, b: a[0] if b else a, bound_dynamic, bound_batched)
    plan = eqx.combine(first, bound_static).plan
    sol = _diffeqsolve(plan, fused, state, args, duration, saveat, False)
    # ys: [times, members, ...] -> [members, times, ...]; the rest is shared by all members.
    ys = jax.tree.map(lambda a: jnp.moveaxis(a, 1, 0), sol.ys)
    rest = jax.tree.map(
        lambda a: jnp.broadcast_to(a, (size, *a.shape)) if eqx.is_array(a) else a,
        eqx.tree_at(lambda s: s.ys, sol, None),
    )
    return eqx.tree_at(lambda s: s.ys, rest, ys, is_leaf=lambda v: v is None)
