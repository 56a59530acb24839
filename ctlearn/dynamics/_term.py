"""The simulator's drift as a Diffrax term that can tabulate its perturbation along a grid."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from ._bound import BoundSimulator
from ._state import PresentationArgs, SimState, learns_in_place, with_weights
from ._waveform import AbstractTabulatedTerm


class CircuitTerm(AbstractTabulatedTerm):
    """``vf`` is the bound simulator's vector field. The perturbation process (closed-form: its
    whole state is in ``args``) is evaluated for many times in one batch
    (``AbstractPerturbation.grid``) and handed to the vector field at each: along each window's
    grid for the waveform engine (``tabulate``), or along the fixed step's grid of the whole
    presentation, read from ``args.table``, for a stepping solver that evaluates only there.
    A state without the stored weights (``without_weights``) gets them rebuilt for the vector
    field, and its rate leaves them out."""

    bound: BoundSimulator

    def vf(self, t, y: SimState, args: PresentationArgs) -> SimState:
        if args.table is None:
            return self.vf_with(t, y, args, None)
        # A stepping solver whose evaluation times are all on the grid n·dt0 (``Plan.tabulate``).
        index = jnp.rint(t / self.bound.plan.dt0).astype(jnp.int32)
        return self.vf_with(t, y, args, jax.tree.map(lambda a: a[index], args.table))

    def tabulate(self, t0, h, panels: int, offsets, args: PresentationArgs):
        perturbation = self.bound.simulator.perturbation
        if perturbation is None:
            return None
        return perturbation.grid(args.perturbation, t0, h, panels, offsets)

    def vf_with(self, t, y: SimState, args: PresentationArgs, value) -> SimState:
        whole = with_weights(y, args, learns_in_place(self.bound.simulator))
        rate = self.bound.vector_field(t, whole, args, perturbation=value)
        return rate if y.params is not None else dataclasses.replace(rate, params=None)
