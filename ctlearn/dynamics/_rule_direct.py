"""Direct feedback in continuous time: DFA's fixed feedback, DKP's feedback learned from the
output error (Ḃ = −α (e ⊗ y + λ B)), and FDFA's feedback learned from the outputs' rate of change
(Ḃ = α (ẏ_out ⊗ ṗ − B))."""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp

from ..estimators import dkp_feedback_grads, make_estimator
from ..estimators._direct import (
    direct_feedback_grads,
    kaiming_feedback,
    output_error,
    zero_feedback,
)
from ..estimators._dkp import FEEDBACK_INITS
from ..estimators._fdfa import fdfa_directional_derivative, fdfa_feedback_grads
from ._rule import AbstractRule, Signals, require_rate


def _forward_rates(rule, model, signals: Signals, feedback, scale):
    """DFA's update through ``feedback`` times ``scale``, applied to the output error (the
    update is linear in it) before any contraction."""
    trace = jax.lax.stop_gradient(signals.trace)
    e = output_error(rule.loss, trace, signals.y)
    return direct_feedback_grads(model, trace, scale * e, feedback)


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

    def scaled_gradient(self, model, signals: Signals, state, scale):
        return _forward_rates(self, model, signals, state, scale), jax.tree.map(
            jnp.zeros_like, state
        )


class DKPRule(AbstractRule):
    """Continuous DKP (Webster et al.'s Direct Kolen-Pollack): DFA whose feedback conductances
    learn. The feedback synapse from output k to hidden unit j sees what the output layer's
    synapse from j to k sees, the output error e_k and the activity y_j, and follows
    Ḃ_l = −α (Σ_n e_n ⊗ y_{l,n} + λ B_l): gradient flow on the loss of a direct linear map from
    y_l to the outputs, with leak λ (``feedback_decay``). The output layer's weights receive the
    transposed product, so the last hidden layer's B follows W_out's change (the Kolen-Pollack
    identity) and the leak on both sides pulls them together.

    The weights learn as in DFA through the current B_l. ``feedback_lr`` is α in 1 / time unit,
    ``feedback_decay`` λ in the same unit as the gradient's scale. The twin of the discrete DKP
    with ``feedback_optimizer="sgd"`` in the limit of small steps (the discrete default, Adam,
    rescales each entry's step and has no continuous-time twin of this form). ``feedback_init``:
    ``"zeros"`` (the FDFA paper's code) or ``"kaiming"`` (DFA's random matrices), as the discrete
    DKP draws them."""

    lr: float
    feedback_lr: float = 1.0
    feedback_decay: float = 0.0
    feedback_init: str = "zeros"
    loss: str = "cross_entropy"
    site: ClassVar[str] = "none"
    greedy: ClassVar[bool] = False

    def __check_init__(self):
        require_rate("feedback_lr (α)", self.feedback_lr)
        require_rate("feedback_decay (λ)", self.feedback_decay)
        if self.feedback_init not in FEEDBACK_INITS:
            raise ValueError(
                f"unknown feedback_init {self.feedback_init!r}; valid: {', '.join(FEEDBACK_INITS)}"
            )

    def init(self, model, *, key):
        return make_estimator("dkp", feedback_init=self.feedback_init).initial_feedback(model, key)

    def full_rate(self, model):
        return max(self.lr, self.feedback_lr)

    def _feedback_grads(self, trace, e, state):
        grads = dkp_feedback_grads(trace, e)
        if self.feedback_decay == 0.0:
            return grads
        return tuple(g + self.feedback_decay * b for g, b in zip(grads, state))

    def discrete(self, model, x, y, tangent, state):
        del tangent
        trace = model(x)
        e = output_error(self.loss, trace, y)
        return direct_feedback_grads(model, trace, e, state), self._feedback_grads(trace, e, state)

    def scaled_gradient(self, model, signals: Signals, state, scale):
        trace = jax.lax.stop_gradient(signals.trace)
        e = output_error(self.loss, trace, signals.y)
        b_dot = tuple(-self.feedback_lr * g for g in self._feedback_grads(trace, e, state))
        return _forward_rates(self, model, signals, state, scale), b_dot


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

    def scaled_gradient(self, model, signals: Signals, state, scale):
        grads = fdfa_feedback_grads(state, signals.trace_dot.logits, signals.p_dot)
        b_dot = tuple(-self.feedback_lr * g for g in grads)
        return _forward_rates(self, model, signals, state, scale), b_dot
