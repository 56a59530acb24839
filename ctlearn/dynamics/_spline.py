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
    AbstractPerturbation,
    Perturbation,
    Shapes,
    check_duration,
    check_shapes,
    constant_drift,
)


def _to_halves(words: UInt32[Array, "*n"]) -> Float[Array, "2 *n"]:
    """32-bit words as their high and low 16-bit halves, exact in any float dtype."""
    return jnp.stack([words >> 16, words & 0xFFFF]).astype(jnp.result_type(float))


def _from_halves(halves: Float[Array, "2 *n"]) -> UInt32[Array, "*n"]:
    words = halves.astype(jnp.uint32)
    return (words[0] << 16) | words[1]


class CubicSplineState(eqx.Module):
    """The knots of the current presentation's window and where the presentation starts on the
    global grid: at global time index·τ_p + offset, offset ∈ [0, τ_p).

    Every leaf is floating point, so the state can ride in a Diffrax state with zero drift:
    the uint32 knot index and the key's uint32 words are held as exact 16-bit halves.
    """

    knots: tuple[Float[Array, "knots ..."], ...]
    offset: Float[Array, ""]
    index: Float[Array, "2"]
    key: Float[Array, "2 ..."]
    impl: Any = eqx.field(static=True)


class CubicSpline(AbstractPerturbation):
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
        knots = self._draw(key, index, shapes)
        zero = jnp.zeros((), jnp.result_type(float))
        keydata = _to_halves(jax.random.key_data(key))
        return CubicSplineState(knots, zero, _to_halves(index), keydata, jax.random.key_impl(key))

    def _draw(self, key, index, shapes) -> tuple[Float[Array, "knots ..."], ...]:
        """Knots index − 1, ..., index + knots − 2 (wrapping in uint32)."""

        def knot(j):
            key_j = jax.random.fold_in(key, j)
            return tuple(
                self.sigma * jax.random.normal(jax.random.fold_in(key_j, i), shape)
                for i, shape in enumerate(shapes)
            )

        return jax.vmap(knot)(index - 1 + jnp.arange(self.knots, dtype=jnp.uint32))

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
        windows = [jax.lax.dynamic_slice_in_dim(y, j, 3) for y in state.knots]
        deriv0 = tuple((w[1] - w[0]) / self.tau for w in windows)
        ys = tuple(w[1:] for w in windows)
        coeffs = diffrax.backward_hermite_coefficients(ts, ys, deriv0=deriv0)
        path = diffrax.CubicInterpolation(ts, coeffs)
        return path.evaluate(t), path.derivative(t)

    def drift(self, state: CubicSplineState, t: Real[Array, ""] | float) -> CubicSplineState:
        return constant_drift(state)

    def diffusion(self, state: CubicSplineState, t: Real[Array, ""] | float) -> None:
        return None

    def next_presentation(self, state: CubicSplineState, duration: float) -> CubicSplineState:
        check_duration(duration)
        if isinstance(duration, (int, float)) and duration > self.max_duration:
            raise ValueError(
                f"duration={duration!r} is longer than the {self.knots} knots of "
                f"CubicSpline(tau={self.tau!r}) cover ({self.max_duration!r}); use "
                f"knots >= {math.ceil(duration / self.tau) + 3}"
            )
        elapsed = state.offset + duration
        steps = jnp.floor(elapsed / self.tau)
        index = _from_halves(state.index) + steps.astype(jnp.uint32)
        key = jax.random.wrap_key_data(_from_halves(state.key), impl=state.impl)
        knots = self._draw(key, index, tuple(y.shape[1:] for y in state.knots))
        offset = elapsed - steps * self.tau
        return CubicSplineState(knots, offset, _to_halves(index), state.key, state.impl)

    def rate_power(self) -> float:
        """c = (14/5)·(σ/τ_p)² (see the class docstring)."""
        return 14 / 5 * (self.sigma / self.tau) ** 2

    def max_frequency(self) -> float:
        """π/τ_p, the Nyquist frequency of the knot grid."""
        return math.pi / self.tau
