"""Multiplexed perturbations built from chips: the time axis is cut into chips of duration τ_c
(``tau``), and in chip n every unit i carries a pulse of sign c_i(n) ∈ {−1, 0, +1}.

Each pulse is a raised cosine that starts and ends at rest: with s ∈ [0, 1) the position within
the chip, p_i = a·c_i(n)·sin²(πs) and ṗ_i = a·c_i(n)·(π/τ_c)·sin(2πs), so p is C¹ across chip
edges (both p and ṗ are zero there) and the rate's spectrum sits at 2π/τ_c. Over one chip
∫ṗ_i ṗ_j dt = c_i(n)·c_j(n)·a²π²/(2τ_c): the rates' correlation over a window of whole chips is
the codes' correlation Σ_n c_i(n)c_j(n), which is what the code families below design (time
slots, random chips, Walsh rows). The families differ only in how they assign c_i(n).
"""

from __future__ import annotations

import abc
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, Real

from ._perturbation import (
    AbstractClosedForm,
    Perturbation,
    Shapes,
    check_duration,
    check_shapes,
)
from ._spline import _from_halves, _to_halves


class ChipsState(eqx.Module):
    """Where the current presentation starts on the chip grid, and each unit's code.

    ``chip``: the index of the chip the presentation starts in (uint32 as exact 16-bit halves, so
    that every leaf is floating point); ``offset``: the time already spent in that chip, in
    [0, τ_c); ``units``: per point, each unit's code label (its time slot or Walsh row, or its
    global unit number for random codes), exact integers held as floats; ``key``: the uint32
    words of the key random chips are drawn from (halves; unused by deterministic codes);
    ``gain``: √(1/duty), where duty is the fraction of chips in which a unit is non-zero.
    """

    chip: Float[Array, " 2"]
    offset: Float[Array, ""]
    units: tuple[Float[Array, "*shape"], ...]
    key: Float[Array, "2 ..."]
    gain: Float[Array, ""]
    impl: Any = eqx.field(static=True)


class AbstractChips(AbstractClosedForm):
    """A chip-multiplexed perturbation (see the module docstring). ``sigma`` scales the pulses
    so that the time-averaged rate power of every unit is (σ/τ_c)², as for the other processes:
    a = (√2/π)·σ·gain, gain² = 1/duty. ``tau`` is the chip duration τ_c."""

    @abc.abstractmethod
    def _labels(self, shapes: tuple[tuple[int, ...], ...], *, key: PRNGKeyArray) -> Array:
        """Each unit's code label, one per unit of every point in order (a flat vector)."""

    @abc.abstractmethod
    def _period_chips(self, units: int) -> int | None:
        """The code's period in chips for ``units`` units (``None``: aperiodic)."""

    @abc.abstractmethod
    def _duty(self, units: int) -> float:
        """The fraction of chips in which a unit is non-zero."""

    @abc.abstractmethod
    def _signs(self, state: ChipsState, chip: Array) -> tuple[Array, ...]:
        """c_i(chip) ∈ {−1, 0, +1} per unit of every point, for the (uint32) global chip index."""

    def init(self, shapes: Shapes, *, key: PRNGKeyArray) -> ChipsState:
        shapes = check_shapes(shapes)
        if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.wrap_key_data(key)
        dtype = jnp.result_type(float)
        labels = jnp.asarray(self._labels(shapes, key=key), dtype)
        duty = self._duty(unit_count(shapes))
        return ChipsState(
            _to_halves(jnp.zeros((), jnp.uint32)),
            jnp.zeros((), dtype),
            split_labels(labels, shapes),
            _to_halves(jax.random.key_data(key)),
            jnp.asarray(1 / math.sqrt(duty), dtype),
            jax.random.key_impl(key),
        )

    def _key(self, state: ChipsState) -> PRNGKeyArray:
        """The key the state's random draws come from."""
        return jax.random.wrap_key_data(_from_halves(state.key), impl=state.impl)

    def __call__(self, state: ChipsState, t: Real[Array, ""] | float) -> Perturbation:
        position = (state.offset + t) / self.tau  # in chips from the presentation's first
        whole = jnp.floor(position)
        s = position - whole
        chip = _from_halves(state.chip) + whole.astype(jnp.uint32)
        a = math.sqrt(2) / math.pi * self.sigma * state.gain
        shape_p = a * jnp.sin(math.pi * s) ** 2
        shape_rate = a * math.pi / self.tau * jnp.sin(2 * math.pi * s)
        signs = self._signs(state, chip)
        return tuple(c * shape_p for c in signs), tuple(c * shape_rate for c in signs)

    def next_presentation(self, state: ChipsState, duration: float) -> ChipsState:
        check_duration(duration)
        elapsed = state.offset + duration
        whole = jnp.floor(elapsed / self.tau)
        chip = _from_halves(state.chip) + whole.astype(jnp.uint32)
        return eqx.tree_at(
            lambda s: (s.chip, s.offset), state, (_to_halves(chip), elapsed - whole * self.tau)
        )

    def rate_power(self) -> float:
        """c = (σ/τ_c)²: a²π²/(2τ_c²) per non-zero chip, times the duty (see the class)."""
        return (self.sigma / self.tau) ** 2

    def value_power(self) -> float:
        """⟨p²⟩ = 3σ²/(4π²): the time-averaged square of every unit's perturbation (a²·⟨sin⁴⟩ =
        3a²/8 per non-zero chip, times the duty), for rules that correlate with p's value."""
        return 3 * self.sigma**2 / (4 * math.pi**2)

    def max_frequency(self) -> float:
        """2π/τ_c, the pulses' rate frequency (chip edges add weaker harmonics)."""
        return 2 * math.pi / self.tau

    def period(self, shapes: Shapes) -> float | None:
        """The time after which every pair of units' rates is exactly orthogonal (the code's
        period, in the time unit), ``None`` for random codes, which are so only on average."""
        chips = self._period_chips(unit_count(check_shapes(shapes)))
        return None if chips is None else chips * self.tau


def unit_count(shapes: tuple[tuple[int, ...], ...]) -> int:
    """The number of perturbed units over every point."""
    return sum(math.prod(shape) for shape in shapes)


def split_labels(flat: Array, shapes: tuple[tuple[int, ...], ...]) -> tuple[Array, ...]:
    """A flat vector of one label per unit, cut into one array per point."""
    out, start = [], 0
    for shape in shapes:
        size = math.prod(shape)
        out.append(flat[start : start + size].reshape(shape))
        start += size
    return tuple(out)


# Code labels are held as floats: exact up to 2**24.
MAX_UNITS = 2**23


def check_units(shapes: tuple[tuple[int, ...], ...], owner: str) -> int:
    """The number of units over every point, refused where it is 0 or too large to label."""
    units = unit_count(shapes)
    if not 1 <= units <= MAX_UNITS:
        raise ValueError(
            f"{owner} multiplexes {units} perturbed units; it needs between 1 and {MAX_UNITS}"
        )
    return units
