"""Heun's predictor–corrector in PEC mode: one vector-field evaluation per step.

Heun (``diffrax.Heun``) evaluates the vector field twice per step: at the start ``(t0, y0)`` and
at the Euler-predicted end ``(t1, y0 + h·f0)``. In PEC mode (Predict, Evaluate, Correct) the
corrected end state is not evaluated again: the next step starts from the rate at the predicted
end. The two states differ by O(h²·ẏ'), so the reused rate is off by ∂f/∂y times that: where the
state's own influence on its rate is weak (a presentation's weights move by η·c·T ≪ 1 and the
vector field is dominated by its explicit time dependence, the perturbation), the result is
Heun's to far below its truncation error, at half the evaluations.

The scheme is a two-step method in disguise. For ``y' = λy`` it is stable for ``h·λ`` in
(−1, 0] (half of Heun's interval (−2, 0]), so ``plan`` uses it only where every rate the state
relaxes at (neurons, filters, weight decay, parts that learn at their full rate) keeps
``h·λ ≤ MAX_STIFF_STEP``; see ``sims.bench_engine`` for its measured cost and accuracy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import diffrax
import jax
import jax.numpy as jnp

# |h·λ| below which PEC mode is used by ``plan``: half of its stability limit of 1.
MAX_STIFF_STEP = 0.5


class HeunPEC(diffrax.AbstractSolver):
    """Heun's method in PEC mode for ODEs: ``y1 = y0 + h/2·(f0 + f(t1, y0 + h·f0))``, where
    ``f0`` is the rate carried over from the previous step (evaluated at its predicted end),
    or evaluated afresh at the first step and after a jump. Order 2 on smooth problems; the
    error estimate is Heun's, ``h/2·(f1 − f0)``."""

    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar[Callable[..., diffrax.LocalLinearInterpolation]] = (
        diffrax.LocalLinearInterpolation
    )

    def order(self, terms):
        return 2

    def init(self, terms, t0, t1, y0, args):
        return terms.vf(t0, y0, args)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        f0 = jax.lax.cond(made_jump, lambda: terms.vf(t0, y0, args), lambda: solver_state)
        control = terms.contr(t0, t1)
        k0 = terms.prod(f0, control)
        predicted = jax.tree.map(jnp.add, y0, k0)
        f1 = terms.vf(t1, predicted, args)
        k1 = terms.prod(f1, control)
        y1 = jax.tree.map(lambda y, a, b: y + 0.5 * (a + b), y0, k0, k1)
        error = jax.tree.map(lambda a, b: 0.5 * (b - a), k0, k1)
        return y1, error, dict(y0=y0, y1=y1), f1, diffrax.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)
