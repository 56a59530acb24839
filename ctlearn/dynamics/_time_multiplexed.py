"""Time multiplexing: one unit perturbed at a time, in a shuffled order (MGD's TDMA)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from ._chips import AbstractChips, ChipsState, check_units


class TimeMultiplexed(AbstractChips):
    """Chip n perturbs only the unit whose time slot is n mod P (P units over every point; each
    unit's slot is a random permutation drawn from the key), with one raised-cosine pulse of
    positive sign; every other unit rests. ``tau``: the slot duration τ_c; one cycle over all
    units lasts P·τ_c, after which every pair of units' rates has been exactly orthogonal (they
    never overlap), so the estimate is the gradient itself up to O(σ²).

    A unit is non-zero in 1/P of the chips, so its pulse is √P times that of the code families
    (gain √P) for the same rate power (σ/τ_c)²: the perturbation vector's norm over the network is
    the same for every family, as in MGD's normalisation.
    """

    sigma: float = eqx.field(static=True, converter=float)
    tau: float = eqx.field(static=True, converter=float)

    def _labels(self, shapes, *, key: PRNGKeyArray) -> Array:
        units = check_units(shapes, type(self).__name__)
        return jax.random.permutation(key, units)

    def _period_chips(self, units: int) -> int:
        return units

    def _duty(self, units: int) -> float:
        return 1 / max(units, 1)

    def _signs(self, state: ChipsState, chip: Array) -> tuple[Array, ...]:
        units = sum(u.size for u in state.units)
        slot = (chip % jnp.uint32(max(units, 1))).astype(state.offset.dtype)
        return tuple((u == slot).astype(u.dtype) for u in state.units)
