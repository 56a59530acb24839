"""Direct feedback in continuous time: DFA's fixed feedback, and FDFA's feedback learned from
the outputs' rate of change (Ḃ = α (ẏ_out ⊗ ṗ − B))."""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp

from ..estimators import make_estimator
from ..estimators._direct import (
    direct_feedback_grads,
    kaiming_feedback,
    output_error,
    zero_feedback,
)
from ..estimators._fdfa import fdfa_directional_derivative, fdfa_feedback_grads
from ._rule import AbstractRule, Signals, require_rate


def _forward_rates(rule, model, signals: Signals, feedback):
    trace = jax.lax.stop_gradient(signals.trace)
    e = output_error(rule.loss, trace, signals.y)
    grads = direct_feedback_grads(model, trace, e, feedback)
    return jax.tree.map(lambda g: -rule.lr * g, grads)


class DFARule(AbstractRule):
    """Continuous DFA: hidden layer l moves along −η · x_{l-1} ⊗ (f′(z_l) ⊙ e B_l), with the output
    error e broadcast through fixed random matrices B_l (drawn as the discrete DFA draws them)."""

    lr: float
    loss: str = "cross_entropy"
    site: ClassVar[str] = "none"
    greedy: ClassVar[bool] = False

    def init(self, model, *, key):
        return kaiming_feedback(model, key)

    def full_rate(self, model):
        return self.lr

    def discrete(self, model, x, y, tangent, state):
        return make_estimator("dfa", loss=self.loss).estimate(model, (x, y), state, key=None)[
            0
        ], None

    def rates(self, model, signals: Signals, state):
        return _forward_rates(self, model, signals, state), jax.tree.map(jnp.zeros_like, state)


class FDFARule(AbstractRule):
    """Continuous FDFA: the hidden layers' outputs carry the perturbation; the feedback follows
    Ḃ_l = α (mean_n ẏ_out,n ⊗ ṗ_l,n − B_l) from zero (Bacho & Chu eq. 8-10 in continuous time:
    with the same tangent, Ḃ is −α × the discrete FDFA feedback gradient), and the weights learn as
    in DFA through the learned B_l. ``feedback_lr`` is α in 1 / time unit (the discrete FDFA
    estimator's ``feedback_lr`` is its step)."""

    lr: float
    feedback_lr: float = 1.0
    loss: str = "cross_entropy"
    site: ClassVar[str] = "post"
    greedy: ClassVar[bool] = False

    def __check_init__(self):
        require_rate("feedback_lr (α)", self.feedback_lr)

    def init(self, model, *, key):
        return zero_feedback(model)

    def full_rate(self, model):
        return max(self.lr, self.feedback_lr)

    def discrete(self, model, x, y, tangent, state):
        trace = model(x)
        e = output_error(self.loss, trace, y)
        d = fdfa_directional_derivative(model, x, tuple(tangent))
        feedback_grads = fdfa_feedback_grads(state, d, tangent)
        return direct_feedback_grads(model, trace, e, state), feedback_grads

    def rates(self, model, signals: Signals, state):
        grads = fdfa_feedback_grads(state, signals.trace_dot.logits, signals.p_dot)
        b_dot = tuple(-self.feedback_lr * g for g in grads)
        return _forward_rates(self, model, signals, state), b_dot
