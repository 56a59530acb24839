"""An integrated Ornstein–Uhlenbeck process: a C¹ random path (a plain OU path is nowhere
differentiable)."""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, Real

from ._perturbation import AbstractPerturbation, Perturbation, Shapes, check_duration, check_shapes


class IntegratedOUState(eqx.Module):
    """The OU drive ``o`` and the path ``p``, one array per point each."""

    o: tuple[Float[Array, "*shape"], ...]
    p: tuple[Float[Array, "*shape"], ...]


class IntegratedOU(AbstractPerturbation):
    """do = −o/τ_p dt + √(2/τ_p)·s dW and dp/dt = (o − p)/τ_p, with s = √2·σ.

    o is an OU process of stationary variance s² = 2σ² and p its low-pass filter, so p is C¹
    with ṗ = (o − p)/τ_p. In stationarity (the Lyapunov equation of the linear SDE):
    Var(o) = s², Cov(o, p) = Var(p) = s²/2 = σ², E[ṗ²] = s²/(2τ_p²) = (σ/τ_p)², and E[p ṗ] = 0;
    units are independent. ``init`` draws (o, p) from this joint law, so there is no transient;
    the state simply carries over to the next presentation. Only ``o`` is noisy: ``diffusion``
    gives 2σ/√τ_p on the ``o`` leaves and zeros on the ``p`` leaves (wrap it in
    ``lineax.DiagonalLinearOperator`` for a ``diffrax.ControlTerm`` driven by Brownian motion
    shaped like the state). Euler–Maruyama with step dt inflates Var(o) by 1/(1 − dt/(2τ_p)).
    """

    evolves: ClassVar[bool] = True

    sigma: float = eqx.field(static=True, converter=float)
    tau: float = eqx.field(static=True, converter=float)

    def init(self, shapes: Shapes, *, key: PRNGKeyArray) -> IntegratedOUState:
        shapes = check_shapes(shapes)
        o, p = [], []
        for i, shape in enumerate(shapes):
            z = jax.random.normal(jax.random.fold_in(key, i), (2, *shape))
            # p = σ z₀ and o − p = σ z₁ (independent, since E[p ṗ] = 0).
            p.append(self.sigma * z[0])
            o.append(self.sigma * (z[0] + z[1]))
        return IntegratedOUState(tuple(o), tuple(p))

    def __call__(self, state: IntegratedOUState, t: Real[Array, ""] | float) -> Perturbation:
        return state.p, tuple((o - p) / self.tau for o, p in zip(state.o, state.p))

    def drift(self, state: IntegratedOUState, t: Real[Array, ""] | float) -> IntegratedOUState:
        return IntegratedOUState(
            tuple(-o / self.tau for o in state.o),
            tuple((o - p) / self.tau for o, p in zip(state.o, state.p)),
        )

    def diffusion(self, state: IntegratedOUState, t: Real[Array, ""] | float) -> IntegratedOUState:
        scale = 2 * self.sigma / math.sqrt(self.tau)  # √(2/τ_p)·s with s = √2·σ
        return IntegratedOUState(
            tuple(jnp.full_like(o, scale) for o in state.o),
            tuple(jnp.zeros_like(p) for p in state.p),
        )

    def next_presentation(self, state: IntegratedOUState, duration: float) -> IntegratedOUState:
        check_duration(duration)
        return state

    def rate_power(self) -> float:
        """c = s²/(2τ_p²) = (σ/τ_p)²."""
        return (self.sigma / self.tau) ** 2

    def period(self, shapes: Shapes) -> None:
        """``None``: the rates are orthogonal only on average."""
        return None

    def max_frequency(self) -> float:
        """1/τ_p, the corner of both filters (o itself is rough: steps should be ≪ τ_p)."""
        return 1 / self.tau
