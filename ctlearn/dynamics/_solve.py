"""One presentation handed to ``diffrax.diffeqsolve``: the drift (the bound simulator's vector
field), the diffusion of the noisy parts of the state, and the solver, step-size controller and
steps of the binding's ``Plan`` (the waveform engine or a stepping solver). This is the only
place in ctlearn that calls ``diffeqsolve``."""

from __future__ import annotations

import dataclasses

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import PRNGKeyArray

from ._bound import BoundSimulator
from ._state import PresentationArgs, SimState, joined_perturbation, tuple_or_none
from ._term import CircuitTerm


def diffusion_term(
    bound: BoundSimulator,
    state: SimState,
    args: PresentationArgs,
    key: PRNGKeyArray,
    duration: float,
) -> diffrax.ControlTerm | None:
    """The SDE's noise: a ``ControlTerm`` whose diagonal scales act on the noisy parts of the
    state only (an ``IntegratedOU`` perturbation, activity noise, weight diffusion), driven by a
    ``VirtualBrownianTree`` shaped like those parts and reproducible from ``key`` (``None``
    when nothing is noisy)."""
    sim = bound.simulator

    def scales(t, y):
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

    g0 = scales(0.0, state)
    if not jax.tree.leaves(g0):
        return None
    shape = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), g0)
    tol = (sim.dt0 or duration / 1000) / 2
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


def solve_presentation(
    bound: BoundSimulator,
    state: SimState,
    args: PresentationArgs,
    duration: float,
    key: PRNGKeyArray,
    *,
    saveat: diffrax.SaveAt | None = None,
    progress: bool = False,
) -> diffrax.Solution:
    """One presentation over local time [0, ``duration``] from the split ``state`` (see
    ``split_state``), noise drawn from ``key``; saved at its end unless ``saveat`` says
    otherwise. A failed solve is reported in the solution's ``result`` (``throw=False``).
    With ``progress``, Diffrax's progress meter follows the solve."""
    plan = bound.plan
    if plan.engine == "waveform":
        # The plan admits the waveform engine only where nothing is noisy (see
        # ``waveform_obstacle``), so there is no diffusion term to build.
        terms = CircuitTerm(bound)
    else:
        if plan.tabulate:
            steps = round(duration / plan.dt0)
            perturbation = bound.simulator.perturbation
            table = perturbation.grid(args.perturbation, 0.0, plan.dt0, steps + 1, (0.0,))
            args = dataclasses.replace(args, table=jax.tree.map(lambda v: v[:, 0], table))
            terms = CircuitTerm(bound)
        else:
            terms = diffrax.ODETerm(bound.vector_field)
        noise = diffusion_term(bound, state, args, key, duration)
        if noise is not None:
            terms = diffrax.MultiTerm(terms, noise)
    return diffrax.diffeqsolve(
        terms,
        plan.solver,
        0.0,
        duration,
        plan.dt0,
        state,
        args=args,
        saveat=saveat or diffrax.SaveAt(t1=True),
        stepsize_controller=plan.controller,
        max_steps=plan.max_steps,
        throw=False,
        progress_meter=diffrax.TqdmProgressMeter() if progress else diffrax.NoProgressMeter(),
    )
