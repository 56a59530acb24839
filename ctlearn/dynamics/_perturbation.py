"""The perturbation-process interface: a path p(t), differentiable in time, added at every
perturbation point of a network, whose rate ṗ drives learning (ẇ = η·x_{l-1} ⊗ (ṗ·ṙ)).

A stream of presentations is simulated one at a time, each over its own local time t ∈ [0, T]
(local time keeps float32 phases precise). ``init`` gives the state at the start of presentation
0, ``__call__`` evaluates (p, ṗ) at local time t, ``drift``/``diffusion`` say how the state moves
within a presentation, and ``next_presentation`` gives the state at the start of the following
one so that the path continues C¹ across the boundary. The expected update is unbiased only if
the rates are isotropic: the time average of ṗ_i ṗ_j is ``rate_power()``·δ_ij, with the same
constant for every unit of every point, so the matched discrete learning rate is η·c.
"""

from __future__ import annotations

import abc
import math
import operator
from collections.abc import Sequence
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray, PyTree, Real

Shapes = Sequence[tuple[int, ...]]
"""One shape per perturbation point, e.g. ``[(batch, 256), (batch, 256), (batch, 10)]``; every
element of every point is a unit with its own independent path."""

Perturbation = tuple[tuple[Array, ...], tuple[Array, ...]]
"""``(p, p_dot)``: one array per perturbation point for each, shaped like that point."""


class AbstractPerturbation(eqx.Module):
    """A random path p(t) per unit, C¹ in time, with amplitude ``sigma`` and time scale ``tau``
    (τ_p, in the simulator's time unit); the same key gives the same path.

    Concrete processes hold only static configuration; the randomness lives in the state.
    """

    sigma: eqx.AbstractVar[float]
    tau: eqx.AbstractVar[float]
    evolves: eqx.AbstractClassVar[bool]
    """Whether the state changes within a presentation (then the simulator integrates it, with
    ``drift`` and ``diffusion``); closed-form processes keep it fixed and only read it."""

    def __check_init__(self):
        if not (math.isfinite(self.sigma) and self.sigma >= 0):
            raise ValueError(f"sigma must be finite and >= 0, got sigma={self.sigma!r}")
        if not (math.isfinite(self.tau) and self.tau > 0):
            raise ValueError(f"tau must be finite and > 0, got tau={self.tau!r}")

    @abc.abstractmethod
    def init(self, shapes: Shapes, *, key: PRNGKeyArray) -> PyTree:
        """The state at the start of presentation 0 (stationary: no transient)."""

    @abc.abstractmethod
    def __call__(self, state: PyTree, t: Real[Array, ""] | float) -> Perturbation:
        """``(p, p_dot)`` per point at local time ``t`` of the current presentation."""

    @abc.abstractmethod
    def drift(self, state: PyTree, t: Real[Array, ""] | float) -> PyTree:
        """d(state)/dt within a presentation: zeros for a closed-form process, whose state (all
        floating point) is constant within a presentation. Such a state is best passed to the
        solve as ``args``: carried in the ODE state it costs the solver's arithmetic at every
        stage, more than evaluating the path."""

    @abc.abstractmethod
    def diffusion(self, state: PyTree, t: Real[Array, ""] | float) -> PyTree | None:
        """``None`` for a deterministic process; otherwise the diagonal noise scale of each leaf,
        shaped like the state: d(state) = drift dt + diffusion ⊙ dW."""

    @abc.abstractmethod
    def next_presentation(self, state: PyTree, duration: float) -> PyTree:
        """The state at the start of the presentation that follows one of length ``duration``
        that started in ``state`` (the path continues C¹ across the boundary)."""

    def grid(
        self,
        state: PyTree,
        t0: Real[Array, ""] | float,
        h: Real[Array, ""] | float,
        panels: int,
        offsets: Sequence[float],
    ) -> Perturbation:
        """``(p, ṗ)`` at every time ``t0 + h·(m + offsets[j])`` for ``m < panels``: each array
        shaped ``[panels, len(offsets), *point_shape]``. This evaluates ``__call__`` at every
        time in one batch; processes with cheaper ways along a regular grid override it."""
        m = jnp.arange(panels, dtype=jnp.result_type(float))[:, None]
        ts = t0 + h * (m + jnp.asarray(offsets, dtype=m.dtype))
        return jax.vmap(jax.vmap(lambda t: self(state, t)))(ts)

    @abc.abstractmethod
    def rate_power(self) -> float:
        """c: the stationary time average of ṗ_i ṗ_j is c·δ_ij, the same c for every unit."""

    @abc.abstractmethod
    def period(self, shapes: Shapes) -> float | None:
        """The time after which the rates of every pair of units have been exactly orthogonal
        (a multiplexing code's period), ``None`` where they are so only on average. A
        presentation must last at least this long (``prepare`` refuses shorter ones)."""

    @abc.abstractmethod
    def max_frequency(self) -> float:
        """The highest angular frequency (rad per time unit) the path holds, or a 1/τ_p-like
        bound where its spectrum has no edge: a fixed step should be well below its inverse."""


class AbstractClosedForm(AbstractPerturbation):
    """A process whose path is a closed-form function of local time and a state that stays
    fixed within a presentation (it changes only in ``next_presentation``): no drift, no
    noise."""

    evolves: ClassVar[bool] = False

    def drift(self, state: PyTree, t: Real[Array, ""] | float) -> PyTree:
        return constant_drift(state)

    def diffusion(self, state: PyTree, t: Real[Array, ""] | float) -> None:
        return None


def check_shapes(shapes: Any) -> tuple[tuple[int, ...], ...]:
    """``shapes`` as a tuple of tuples of ints >= 0; raises naming the first bad shape."""
    checked = []
    for shape in shapes:
        try:
            dims = tuple(operator.index(n) for n in shape)
        except TypeError:
            dims = (-1,)
        if any(n < 0 for n in dims):
            raise ValueError(f"each shape must be a tuple of ints >= 0, got {shape!r}")
        checked.append(dims)
    return tuple(checked)


def check_duration(duration: Any) -> None:
    """A presentation lasts a finite, positive time (checked where it is a Python number)."""
    if isinstance(duration, (int, float)) and not (math.isfinite(duration) and duration > 0):
        raise ValueError(f"duration must be finite and > 0, got duration={duration!r}")


def constant_drift(state: PyTree) -> PyTree:
    """The drift of a state that stays put within a presentation: zeros shaped like it."""
    return jax.tree.map(jnp.zeros_like, state)
