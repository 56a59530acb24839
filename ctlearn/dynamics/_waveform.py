"""Many time points of a presentation at once: Gauss–Legendre collocation solved by waveform
relaxation, as a Diffrax solver.

Within a presentation the input is held (after its transition) and the weights move slowly, so
the vector field is dominated by its explicit dependence on time (the perturbation's band). One
step of ``WaveformRelaxation`` covers a window of the presentation: it places ``nodes``
Gauss–Legendre points in each of ``panels`` equal panels, evaluates the vector field at every
point as one batched (vmapped) computation, and corrects for the state's own motion by Picard
sweeps over the window (waveform relaxation, the classic method of parallel circuit simulation).
Converged, it is the ``nodes``-stage Gauss–Legendre collocation method (order 2·nodes on smooth
problems; the kinks of ReLU networks make it second order, like Heun). Each sweep multiplies the
remaining error by about L·W (L the vector field's Lipschitz constant in the state, W the
window), so windows are kept short enough for two or three sweeps.

Terms that can tabulate their explicit time dependence along the window's grid in one go (the
simulator's perturbation, see ``AbstractTabulatedTerm``) are evaluated from that table in every
sweep; any other Diffrax term is evaluated by vmapping its vector field.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PyTree


def gauss_legendre(nodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(c, A, b)`` of the ``nodes``-stage Gauss–Legendre collocation method on [0, 1]: nodes
    ``c``, ``A[i, j] = ∫_0^{c_i} ℓ_j`` and weights ``b[j] = ∫_0^1 ℓ_j`` (ℓ_j the Lagrange basis
    on ``c``), in float64."""
    x, _ = np.polynomial.legendre.leggauss(nodes)
    c = (x + 1) / 2
    a = np.zeros((nodes, nodes))
    b = np.zeros(nodes)
    for j in range(nodes):
        others = np.delete(c, j)
        antiderivative = (np.poly1d(others, r=True) / np.prod(c[j] - others)).integ()
        a[:, j] = antiderivative(c) - antiderivative(0.0)
        b[j] = antiderivative(1.0) - antiderivative(0.0)
    return c, a, b


def _weighted(weights, f, axis: int):
    """``Σ_j weights[j] · f[..., j, ...]`` along ``axis``, written out (``weights`` is a short
    NumPy vector): XLA fuses it elementwise, where an einsum over a length-2 axis of every state
    leaf cost as much as a sweep of the vector field on CPU."""
    parts = [float(w) * jnp.take(f, j, axis=axis) for j, w in enumerate(weights)]
    return sum(parts[1:], parts[0])


def node_states(
    y0: PyTree[Array], rates: PyTree[Float[Array, "panels nodes ..."]], h, a, b
) -> PyTree[Float[Array, "panels nodes ..."]]:
    """The state at every collocation node given the rates there: panel ``m`` starts at ``y0``
    plus the quadrature of all earlier panels, and node ``i`` adds ``h·Σ_j A_ij F_mj``
    (``a``, ``b``: the method's NumPy tables)."""

    def leaf(y, f):
        increments = h * _weighted(b, f, axis=1)  # [panels, ...]
        starts = y + (jnp.cumsum(increments, axis=0) - increments)
        within = jnp.stack([_weighted(row, f, axis=1) for row in a], axis=1)
        return starts[:, None] + h * within

    return jax.tree.map(leaf, y0, rates)


# Below FLOOR of the window's increment, a sweep must shrink the change of the window's result
# at least to CONTRACTION of the last one to go on sweeping; a
# final change above DIVERGED of the window's increment fails the solve (the state moves too fast
# for the window).
FLOOR = 0.05
CONTRACTION = 0.9
DIVERGED = 0.5


class AbstractTabulatedTerm(diffrax.AbstractTerm):
    """An ODE term whose explicit dependence on time can be computed for a whole grid at once:
    ``tabulate`` gives it at ``t0 + h·(m + offsets[j])`` (leaves shaped ``[panels, nodes, ...]``)
    and ``vf_with`` is the vector field at one time given that time's entry of the table."""

    @abc.abstractmethod
    def tabulate(self, t0, h, panels: int, offsets: Any, args: Any) -> PyTree[Array]:
        """The time-dependent inputs of the vector field along the grid."""

    @abc.abstractmethod
    def vf_with(self, t, y, args, value: PyTree[Array]) -> PyTree[Array]:
        """The vector field at time ``t`` and state ``y``, its time-dependent inputs ``value``."""

    def contr(self, t0, t1, **kwargs):
        return t1 - t0

    def prod(self, vf, control):
        return jax.tree.map(lambda v: control * v, vf)


class WaveformRelaxation(diffrax.AbstractSolver):
    """One step is one window ``[t0, t1]``: ``panels`` panels of ``nodes`` Gauss–Legendre points,
    batched evaluations of the vector field at every point, repeated at most ``sweeps`` times.
    The first sweep holds the state at ``y0``; each further sweep re-evaluates along the previous
    sweep's trajectory (at least two sweeps), until the step's result changes by at most ``rtol``
    of its increment or stops contracting (ReLU kinks flipping at a node leave a floor). A
    window whose last change still exceeds half its increment fails the solve (Diffrax's
    ``nonlinear_max_steps_reached``: the state moves too fast for the window). The error
    estimate (every entry) is the norm of the last sweep's change.

    In a ``Simulator`` (``solver=WaveformRelaxation()``, or ``solver=None`` where it can serve),
    each presentation is cut into windows of at most ``window`` (default τ_p/2) with an edge
    where the input transition ends, and ``panels`` defaults to a node spacing of at most
    ``dt0``; the measured Δw error at the README's main-job settings is then a few 1e-3 of a
    Heun reference 8 times finer (``sims.bench_continuous``)."""

    panels: int | None = eqx.field(static=True, default=None)
    nodes: int = eqx.field(static=True, default=2)
    sweeps: int = eqx.field(static=True, default=6)
    rtol: float = eqx.field(static=True, default=1e-3)
    window: float | None = eqx.field(static=True, default=None)

    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar[Callable[..., diffrax.LocalLinearInterpolation]] = (
        diffrax.LocalLinearInterpolation
    )

    def __check_init__(self):
        for name in ("panels", "nodes", "sweeps"):
            value = getattr(self, name)
            if name == "panels" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {name}={value!r}")
        if not (isinstance(self.rtol, (int, float)) and 0 < self.rtol < 1):
            raise ValueError(f"rtol must lie in (0, 1), got rtol={self.rtol!r}")
        if self.window is not None and not (
            isinstance(self.window, (int, float)) and 0 < self.window < float("inf")
        ):
            raise ValueError(f"window must be a finite time > 0, got window={self.window!r}")

    def order(self, terms):
        return 2 * self.nodes

    def init(self, terms, t0, t1, y0, args):
        return None

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del solver_state, made_jump
        if self.panels is None:
            raise ValueError(
                "WaveformRelaxation needs panels per step (a Simulator sets it from dt0)"
            )
        c, a, b = gauss_legendre(self.nodes)
        dtype = jnp.result_type(float)
        h = (t1 - t0) / self.panels
        panel = jnp.arange(self.panels, dtype=dtype)[:, None]
        ts = (t0 + h * (panel + jnp.asarray(c, dtype))).reshape(-1)
        shape = (self.panels, self.nodes)

        def flat(tree):
            return jax.tree.map(lambda v: v.reshape((-1,) + v.shape[2:]), tree)

        def panelled(tree):
            return jax.tree.map(lambda v: v.reshape(shape + v.shape[1:]), tree)

        if isinstance(terms, AbstractTabulatedTerm):
            table = flat(terms.tabulate(t0, h, self.panels, c, args))

            def evaluate(y, y_axis):
                field = lambda t, y, v: terms.vf_with(t, y, args, v)
                return panelled(jax.vmap(field, in_axes=(0, y_axis, 0))(ts, y, table))
        else:

            def evaluate(y, y_axis):
                field = lambda t, y: terms.vf(t, y, args)
                return panelled(jax.vmap(field, in_axes=(0, y_axis))(ts, y))

        def total(f):
            return h * _weighted(b, jnp.sum(f, axis=0), axis=0)

        def norm(tree):
            return jnp.sqrt(sum(jnp.sum(v**2) for v in jax.tree.leaves(tree)))

        def sweep(carry):
            count, rates, change, _ = carry
            new = evaluate(flat(node_states(y0, rates, h, a, b)), 0)
            moved = norm(jax.tree.map(lambda f, g: total(f) - total(g), new, rates))
            return count + 1, new, moved, change

        def going(carry):
            count, rates, change, before = carry
            size = norm(jax.tree.map(total, rates))
            # Near convergence, sweep only while the change still contracts: a unit whose ReLU
            # flips at a node between sweeps leaves a floor that more sweeps cannot remove.
            stalled = (change < FLOOR * size) & (change >= CONTRACTION * before)
            return (count < 2) | ((count < self.sweeps) & (change > self.rtol * size) & ~stalled)

        first = evaluate(y0, None)
        if self.sweeps == 1:  # a single sweep is asked for: no convergence test
            rates, change = first, jnp.zeros(())
        else:
            start = (1, first, jnp.asarray(jnp.inf, dtype), jnp.asarray(jnp.inf, dtype))
            _, rates, change, _ = jax.lax.while_loop(going, sweep, start)
        size = norm(jax.tree.map(total, rates))
        result = diffrax.RESULTS.where(
            change <= DIVERGED * size,
            diffrax.RESULTS.successful,
            diffrax.RESULTS.nonlinear_max_steps_reached,
        )
        error = jax.tree.map(lambda f: jnp.full_like(total(f), change), rates)
        y1 = jax.tree.map(lambda y, f: y + total(f), y0, rates)
        return y1, error, dict(y0=y0, y1=y1), None, result

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)
