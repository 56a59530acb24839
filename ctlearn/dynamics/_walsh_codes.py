"""Code multiplexing with Walsh (Sylvester–Hadamard) codes."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from ._chips import AbstractChips, ChipsState, check_units


def walsh_order(units: int) -> int:
    """N: the smallest power of two with N − 1 >= ``units`` rows besides the constant one."""
    return 1 << math.ceil(math.log2(units + 1))


class WalshCodes(AbstractChips):
    """Unit i follows row r_i of the Sylvester–Hadamard matrix of order N (the smallest power of
    two above the number of units P): in chip n its sign is H[r_i, n mod N] = (−1)^popcount(r_i
    AND n). The rows are distinct and drawn at random from the key among rows 1 … N − 1; row 0,
    the constant code, is left out so that every unit's p averages to zero over a period.
    ``tau``: the chip duration τ_c. Distinct rows are orthogonal over the N chips of a period,
    so after one period of N·τ_c every pair of units' rates has been exactly orthogonal.
    (Before it, over the first 2^k chips, rows agreeing in their k low bits coincide: the
    estimate aliases like random codes of 2^k chips.)"""

    sigma: float = eqx.field(static=True, converter=float)
    tau: float = eqx.field(static=True, converter=float)

    def _labels(self, shapes, *, key: PRNGKeyArray) -> Array:
        units = check_units(shapes, type(self).__name__)
        rows = 1 + jax.random.permutation(key, walsh_order(units) - 1)
        return rows[:units]

    def _period_chips(self, units: int) -> int:
        return walsh_order(units)

    def _duty(self, units: int) -> float:
        return 1.0

    def _signs(self, state: ChipsState, chip: Array) -> tuple[Array, ...]:
        units = sum(u.size for u in state.units)
        column = chip % jnp.uint32(walsh_order(units))
        signs = []
        for rows in state.units:
            parity = jax.lax.population_count(rows.astype(jnp.uint32) & column) & 1
            signs.append((1 - 2 * parity.astype(jnp.int32)).astype(rows.dtype))
        return tuple(signs)
