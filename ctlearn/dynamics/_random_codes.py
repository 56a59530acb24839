"""Code multiplexing with random ±1 chips (MGD's CDMA)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from ._chips import AbstractChips, ChipsState, check_units


class RandomCodes(AbstractChips):
    """In every chip each unit's sign is an independent fair ±1, drawn from
    ``fold_in(key, n)`` for chip n, so the code never repeats. ``tau``: the chip duration τ_c.
    Over n chips two units' rates correlate by Σ_n c_i(n)c_j(n), a sum of n random signs: the
    estimate's crosstalk shrinks only as 1/√n, and cos(Δw, −∇L) ≈ 1/√(1 + (P − 1)/n) for P units
    (``ctlearn.dynamics.code_cosine``)."""

    sigma: float = eqx.field(static=True, converter=float)
    tau: float = eqx.field(static=True, converter=float)

    def _labels(self, shapes, *, key: PRNGKeyArray) -> Array:
        return jnp.arange(check_units(shapes, type(self).__name__))

    def _period_chips(self, units: int) -> None:
        return None

    def _duty(self, units: int) -> float:
        return 1.0

    def _signs(self, state: ChipsState, chip: Array) -> tuple[Array, ...]:
        units = sum(u.size for u in state.units)
        bits = jax.random.bits(jax.random.fold_in(self._key(state), chip), (units,))
        sign = (1 - 2 * (bits & 1).astype(jnp.int32)).astype(state.offset.dtype)
        return tuple(sign[u.astype(jnp.int32)] for u in state.units)
