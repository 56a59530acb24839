"""Per-unit sums of sinusoids at distinct random frequencies, each component's amplitude ∝ 1/ω so
that every component's rate has the same power."""

from __future__ import annotations

import math

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

# Cephes' sinf/cosf: π/2 in three parts (Cody–Waite) and minimax polynomials on [−π/4, π/4].
_PIO2 = (1.5703125, 4.837512969970703125e-4, 7.54978995489188216e-8)
_SIN = (-1.6666654611e-1, 8.3321608736e-3, -1.9515295891e-4)
_COS = (4.166664568298827e-2, -1.388731625493765e-3, 2.443315711809948e-5)


def _sincos(x: Float[Array, "*n"]) -> tuple[Float[Array, "*n"], Float[Array, "*n"]]:
    """(sin x, cos x) sharing one range reduction. In float32 XLA's CPU sin and cos are scalar
    library calls; these vectorised polynomials run several times faster, within 1e-7 of them
    for |x| < 8192. Other dtypes use ``jnp.sin``/``jnp.cos``."""
    if x.dtype != jnp.float32:
        return jnp.sin(x), jnp.cos(x)
    n = jnp.round(x * (2 / math.pi))
    r = ((x - n * _PIO2[0]) - n * _PIO2[1]) - n * _PIO2[2]
    z = r * r
    sin = r + r * z * (_SIN[0] + z * (_SIN[1] + z * _SIN[2]))
    cos = 1 - 0.5 * z + z * z * (_COS[0] + z * (_COS[1] + z * _COS[2]))
    quadrant = n.astype(jnp.int32) & 3  # x = quadrant·π/2 + r (mod 2π)
    odd, sign = (quadrant & 1) == 1, jnp.where(quadrant >= 2, -1.0, 1.0).astype(x.dtype)
    return sign * jnp.where(odd, cos, sin), sign * jnp.where(odd, -sin, cos)


def _wrap(x: Float[Array, "*n"]) -> Float[Array, "*n"]:
    """x mod 2π, reduced with the same three-part constant as ``_sincos`` (so that sin and cos of
    the result match those of x to rounding, where a float32 2π would drift by 1.7e-7 a turn)."""
    turns = jnp.floor(x / (2 * math.pi))
    return ((x - turns * (4 * _PIO2[0])) - turns * (4 * _PIO2[1])) - turns * (4 * _PIO2[2])


ALLOCATIONS = ("stratified", "independent", "grid")
"""How ``Sinusoids`` places its frequencies in the band (see the class)."""


def _as_tuple(band):
    return tuple(band) if isinstance(band, list) else band


class SinusoidsState(eqx.Module):
    """Angular frequencies ω and phases φ ∈ [0, 2π) at the start of the presentation, per point
    shaped [components, *point_shape]."""

    omega: tuple[Float[Array, "components ..."], ...]
    phase: tuple[Float[Array, "components ..."], ...]


class Sinusoids(AbstractClosedForm):
    """p_i(t) = Σ_k (A/ω_ik) sin(ω_ik t + φ_ik), so ṗ_i(t) = Σ_k A cos(ω_ik t + φ_ik).

    ``components`` sinusoids per unit, with frequencies in ``band`` (in multiples of 2π/τ_p)
    allocated by ``allocation``:

    * ``"stratified"`` (default): component k of every unit is drawn from the middle half of the
      k-th of ``components`` equal slices of the band, so within a unit frequencies differ by at
      least (band[1] − band[0])/(2·components)·2π/τ_p and the cross terms of ṗ_i² average out
      within a few τ_p; across units, though, the k-th components share 1/(2·components) of the
      band, which doubles the crosstalk between units against ``"independent"``;
    * ``"independent"``: every frequency uniform over the whole band, independently;
    * ``"grid"``: the components of all units (over every point) take the points of one linear
      grid spanning the band, in an order shuffled from the key (MGD's FDMA): all frequencies are
      distinct, δ = (band[1] − band[0])/(M − 1)·2π/τ_p apart for M of them, so every pair of
      rates is orthogonal over 2π/δ (up to the sum-frequency terms).

    ``ctlearn.dynamics.sinusoid_cosine`` predicts the estimate's quality of a drawn allocation.
    Phases are uniform. A = (σ/τ_p)·√(2/components) makes RMS(ṗ_i) = σ/τ_p for every unit.
    The phases advance by ω·T (mod 2π) from one presentation to the next, so t stays local.
    """

    sigma: float = eqx.field(static=True, converter=float)
    tau: float = eqx.field(static=True, converter=float)
    components: int = eqx.field(static=True, default=4)
    band: tuple[float, float] = eqx.field(static=True, default=(0.5, 2.0), converter=_as_tuple)
    allocation: str = eqx.field(static=True, default="stratified")

    def __check_init__(self):
        c = self.components
        if isinstance(c, bool) or not isinstance(c, int) or c < 1:
            raise ValueError(f"components must be an int >= 1, got components={self.components!r}")
        if not (
            isinstance(self.band, tuple)
            and len(self.band) == 2
            and all(isinstance(b, (int, float)) and math.isfinite(b) for b in self.band)
            and 0 < self.band[0] < self.band[1]
        ):
            raise ValueError(
                f"band must be (low, high) with 0 < low < high (multiples of 2π/τ_p), "
                f"got band={self.band!r}"
            )
        if self.allocation not in ALLOCATIONS:
            raise ValueError(
                f"unknown allocation {self.allocation!r}; valid: {', '.join(ALLOCATIONS)}"
            )

    @property
    def _amplitude(self) -> float:
        return self.sigma / self.tau * math.sqrt(2 / self.components)

    def init(self, shapes: Shapes, *, key: PRNGKeyArray) -> SinusoidsState:
        shapes = check_shapes(shapes)
        low, high = self.band
        width = (high - low) / self.components
        k = jnp.arange(self.components, dtype=jnp.result_type(float))
        grid = self._grid(shapes, key) if self.allocation == "grid" else None
        omega, phase = [], []
        for i, shape in enumerate(shapes):
            key_u, key_phi = jax.random.split(jax.random.fold_in(key, i))
            full = (self.components, *shape)
            if self.allocation == "stratified":
                u = jax.random.uniform(key_u, full, minval=0.25, maxval=0.75)
                f = low + (k.reshape((-1,) + (1,) * len(shape)) + u) * width
            elif self.allocation == "independent":
                f = jax.random.uniform(key_u, full, minval=low, maxval=high)
            else:
                f = grid[i]
            omega.append(2 * math.pi / self.tau * f)
            phase.append(jax.random.uniform(key_phi, full, maxval=2 * math.pi))
        return SinusoidsState(tuple(omega), tuple(phase))

    def _grid(self, shapes, key) -> list[Float[Array, "components ..."]]:
        """The ``"grid"`` allocation: one shuffled linear grid over the band for all points'
        components (in multiples of 2π/τ_p), cut into one array per point."""
        low, high = self.band
        sizes = [self.components * math.prod(shape) for shape in shapes]
        total = sum(sizes)
        order = jax.random.permutation(jax.random.fold_in(key, len(shapes)), total)
        f = low + (high - low) * order.astype(jnp.result_type(float)) / max(total - 1, 1)
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        return [
            f[start : start + size].reshape((self.components, *shape))
            for start, size, shape in zip(starts, sizes, shapes)
        ]

    def __call__(self, state: SinusoidsState, t: Real[Array, ""] | float) -> Perturbation:
        p, p_dot = [], []
        for omega, phase in zip(state.omega, state.phase):
            # A sum over components written out: XLA fuses it into the sines' loop, where a
            # reduction over the leading axis ran ~3x slower on CPU (more so under vmap).
            value = rate = 0.0
            for k in range(self.components):
                sin, cos = _sincos(omega[k] * t + phase[k])
                value, rate = value + sin / omega[k], rate + cos
            p.append(self._amplitude * value)
            p_dot.append(self._amplitude * rate)
        return tuple(p), tuple(p_dot)

    def next_presentation(self, state: SinusoidsState, duration: float) -> SinusoidsState:
        check_duration(duration)
        phase = tuple(
            _wrap(omega * duration + phase) for omega, phase in zip(state.omega, state.phase)
        )
        return SinusoidsState(state.omega, phase)

    def rate_power(self) -> float:
        """c = components·A²/2 = (σ/τ_p)²."""
        return (self.sigma / self.tau) ** 2

    def period(self, shapes: Shapes) -> None:
        """``None``: the rates are orthogonal only on average."""
        return None

    def max_frequency(self) -> float:
        """2π·band[1]/τ_p, the top of the band."""
        return 2 * math.pi * self.band[1] / self.tau
