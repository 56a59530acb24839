"""Cubic Hermite splines through random knots every τ_p, interpolated by Diffrax."""

from __future__ import annotations

import math
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, Real, UInt32

from ._perturbation import (
    AbstractClosedForm,
    Perturbation,
    Shapes,
    check_duration,
    check_shapes,
)


def _to_halves(words: UInt32[Array, "*words"]) -> Float[Array, " 2 *words"]:
    """32-bit words as their high and low 16-bit halves, exact in any float dtype."""
    return jnp.stack([words >> 16, words & 0xFFFF]).astype(jnp.result_type(float))


def _from_halves(halves: Float[Array, " 2 *words"]) -> UInt32[Array, "*words"]:
    words = halves.astype(jnp.uint32)
    return (words[0] << 16) | words[1]


def _segment(y: Float[Array, "3 ..."], tau: float) -> tuple[Float[Array, "1 ..."], ...]:
    """The coefficients (d, c, b, a) that ``diffrax.backward_hermite_coefficients`` gives the
    segment from y[1] to y[2] (spacing τ): slope (y[1] − y[0])/τ at its start and (y[2] − y[1])/τ
    at its end. In closed form: the library routine (scans, nested interpolations) costs about
    four times as much per evaluation."""
    slope = (y[1] - y[0]) / tau
    change = (y[2] - y[1]) / tau - slope
    return (-change / tau**2)[None], (2 * change / tau)[None], slope[None], y[1][None]


class CubicSplineState(eqx.Module):
    """The knots of the current presentation's window and where the presentation starts on the
    global grid: at global time index·τ_p + offset, offset ∈ [0, τ_p).

    Every leaf is floating point, so the state can ride in a Diffrax state with zero drift:
    the uint32 knot index and the key's uint32 words are held as exact 16-bit halves.
    """

    knots: tuple[Float[Array, "knots ..."], ...]
    offset: Float[Array, ""]
    index: Float[Array, " 2"]
    key: Float[Array, "2 ..."]
    impl: Any = eqx.field(static=True)


class CubicSpline(AbstractClosedForm):
    """Knot j sits at global time j·τ_p with values N(0, σ²) per unit drawn from
    ``fold_in(key, j)`` (j as uint32); between knots j and j + 1, p is the Hermite cubic with
    slopes (y_j − y_{j−1})/τ_p and (y_{j+1} − y_j)/τ_p (``diffrax.backward_hermite_coefficients``
    evaluated by ``diffrax.CubicInterpolation``), so p is C¹ and ṗ piecewise quadratic.

    A presentation holds ``knots`` knots, from the one before its start onwards, so it may last up
    to (knots − 3)·τ_p. Any duration works (T/τ_p need not be an integer): the start's position on
    the grid is carried in the state, and both sides of a boundary evaluate the same cubic through
    the same knots.

    Rate power: on a segment, with u = t/τ_p − j ∈ [0, 1), τ_p ṗ = −a(u) y_{j−1} + b(u) y_j +
    c(u) y_{j+1} with a = 3u² − 4u + 1, b = 6u² − 8u + 1, c = −3u² + 4u, so for independent
    N(0, σ²) knots the time average is E[ṗ²] = (σ/τ_p)²·∫₀¹(a² + b² + c²)du = (14/5)(σ/τ_p)²;
    E[ṗ_i ṗ_j] = 0 across units.
    """

    sigma: float = eqx.field(static=True, converter=float)
    tau: float = eqx.field(static=True, converter=float)
    knots: int = eqx.field(static=True, default=16)

    def __check_init__(self):
        if isinstance(self.knots, bool) or not isinstance(self.knots, int) or self.knots < 4:
            raise ValueError(f"knots must be an int >= 4, got knots={self.knots!r}")

    @property
    def max_duration(self) -> float:
        """The longest presentation a window of ``knots`` knots covers: (knots − 3)·τ_p."""
        return (self.knots - 3) * self.tau

    def init(self, shapes: Shapes, *, key: PRNGKeyArray) -> CubicSplineState:
        shapes = check_shapes(shapes)
        if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.wrap_key_data(key)
        index = jnp.zeros((), jnp.uint32)
        knots = self._draw(key, index - 1, self.knots, shapes)
        zero = jnp.zeros((), jnp.result_type(float))
        keydata = _to_halves(jax.random.key_data(key))
        return CubicSplineState(knots, zero, _to_halves(index), keydata, jax.random.key_impl(key))

    def _draw(self, key, first, count: int, shapes) -> tuple[Float[Array, "count ..."], ...]:
        """Knots first, ..., first + count − 1 (uint32, wrapping)."""

        def knot(j):
            key_j = jax.random.fold_in(key, j)
            return tuple(
                self.sigma * jax.random.normal(jax.random.fold_in(key_j, i), shape)
                for i, shape in enumerate(shapes)
            )

        return jax.vmap(knot)(first + jnp.arange(count, dtype=jnp.uint32))

    def __call__(self, state: CubicSplineState, t: Real[Array, ""] | float) -> Perturbation:
        position = (t + state.offset) / self.tau  # in knot spacings from knot `index`
        t = eqx.error_if(
            jnp.asarray(t),
            position > self.knots - 2,
            "CubicSpline evaluated past its window of knots: raise `knots`",
        )
        # Segment from knot index + j (window slot j + 1) to the next, at local times ts.
        j = jnp.clip(jnp.floor(position).astype(jnp.int32), 0, self.knots - 3)
        ts = jnp.stack([j, j + 1]) * self.tau - state.offset
        segments = [_segment(jax.lax.dynamic_slice_in_dim(y, j, 3), self.tau) for y in state.knots]
        path = diffrax.CubicInterpolation(ts, tuple(zip(*segments)))
        return path.evaluate(t), path.derivative(t)

    def next_presentation(self, state: CubicSplineState, duration: float) -> CubicSplineState:
        check_duration(duration)
        if isinstance(duration, (int, float)) and duration > self.max_duration:
            raise ValueError(
                f"duration={duration!r} is longer than the {self.knots} knots of "
                f"CubicSpline(tau={self.tau!r}) cover ({self.max_duration!r}); use "
                f"knots >= {math.ceil(duration / self.tau) + 3}"
            )
        elapsed = state.offset + duration
        steps = jnp.floor(elapsed / self.tau)  # knots passed: at most floor(T/τ_p) + 1
        index = _from_halves(state.index)
        key = jax.random.wrap_key_data(_from_halves(state.key), impl=state.impl)
        # The new window keeps the old one's knots from slot `steps` on; draw only those after it.
        fresh = min(self.knots, math.floor(duration / self.tau) + 2)
        shapes = tuple(y.shape[1:] for y in state.knots)
        drawn = self._draw(key, index - 1 + self.knots, fresh, shapes)
        knots = tuple(
            jax.lax.dynamic_slice_in_dim(
                jnp.concatenate([old, new]), steps.astype(jnp.int32), self.knots
            )
            for old, new in zip(state.knots, drawn)
        )
        index = index + steps.astype(jnp.uint32)
        return CubicSplineState(
            knots, elapsed - steps * self.tau, _to_halves(index), state.key, state.impl
        )

    def rate_power(self) -> float:
        """c = (14/5)·(σ/τ_p)² (see the class docstring)."""
        return 14 / 5 * (self.sigma / self.tau) ** 2

    def period(self, shapes: Shapes) -> None:
        """``None``: the rates are orthogonal only on average."""
        return None

    def max_frequency(self) -> float:
        """π/τ_p, the Nyquist frequency of the knot grid."""
        return math.pi / self.tau
