"""The simulator's drift as a Diffrax term that can tabulate its perturbation along a grid."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._bound import BoundSimulator
from ._state import PresentationArgs, SimState
from ._waveform import AbstractTabulatedTerm


class CircuitTerm(AbstractTabulatedTerm):
    """``vf`` is the bound simulator's vector field. The perturbation process (closed-form: its
    whole state is in ``args``) is evaluated for many times in one batch
    (``AbstractPerturbation.grid``) and handed to the vector field at each: along each window's
    grid for the waveform engine (``tabulate``), or along the fixed step's grid of the whole
    presentation, read from ``args.table``, for a stepping solver that evaluates only there."""

    bound: BoundSimulator

    def vf(self, t, y: SimState, args: PresentationArgs) -> SimState:
        if args.table is None:
            return self.bound.vector_field(t, y, args)
        # A stepping solver whose evaluation times are all on the grid n·dt0 (``Plan.tabulate``).
        index = jnp.rint(t / self.bound.plan.dt0).astype(jnp.int32)
        value = jax.tree.map(lambda a: a[index], args.table)
        return self.bound.vector_field(t, y, args, perturbation=value)

    def tabulate(self, t0, h, panels: int, offsets, args: PresentationArgs):
        perturbation = self.bound.simulator.perturbation
        if perturbation is None:
            return None
        return perturbation.grid(args.perturbation, t0, h, panels, offsets)

    def vf_with(self, t, y: SimState, args: PresentationArgs, value) -> SimState:
        return self.bound.vector_field(t, y, args, perturbation=value)
