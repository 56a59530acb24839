"""Gradient flow: ẇ = −η ∇L, the backpropagation reference in continuous time, and its local
(L-BP) and local-greedy (LG-BP) forms on the sum of the blocks' local losses."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp

from ..estimators import local_objective, make_estimator
from ..estimators._objective import block_losses, require_heads
from ._rule import AbstractRule, Signals


class GradientFlow(AbstractRule):
    """ẇ = −η ∇_w mean_n ℓ_n at the current state (perturbation, if any, held as it is)."""

    lr: float
    loss: str = "cross_entropy"
    site: ClassVar[str] = "none"
    greedy: ClassVar[bool] = False

    def full_rate(self, model):
        return self.lr

    def discrete(self, model, x, y, tangent, state):
        return make_estimator("bp", loss=self.loss).estimate(model, (x, y), None, key=None)[0], None

    def scaled_gradient(self, model, signals: Signals, state, scale):
        def scaled_loss(m):  # the scale on the loss: the gradient carries it
            trace = m(signals.x)
            return scale * jnp.mean(block_losses(self.loss, m, trace, signals.y)[-1])

        return eqx.filter_grad(scaled_loss)(model), None


class _LocalGradientFlow(AbstractRule):
    """ẇ = −η ∇_w Σ_b mean_n ℓ^b_n: every block's local loss (its head's) and the network's.
    The circuit is backpropagation's: the errors travel down the transposed forward conductances
    (a symmetric feedback pathway), and each head's error enters at its block's output."""

    lr: float
    loss: str = "cross_entropy"
    site: ClassVar[str] = "none"
    method: ClassVar[str]

    def init(self, model, *, key):
        del key
        require_heads(model, self.method)
        return None

    def full_rate(self, model):
        return self.lr

    def discrete(self, model, x, y, tangent, state):
        del tangent
        estimator = make_estimator(self.method, loss=self.loss)
        return estimator.estimate(model, (x, y), None, key=None)[0], None

    def scaled_gradient(self, model, signals: Signals, state, scale):
        def objective(m):
            trace = m(signals.x, greedy=self.greedy)
            return scale * local_objective(self.loss, m, trace, signals.y)

        return eqx.filter_grad(objective)(model), None


class LocalGradientFlow(_LocalGradientFlow):
    """Continuous L-BP: the sum of the local losses descended end to end (errors cross blocks)."""

    method: ClassVar[str] = "l-bp"
    greedy: ClassVar[bool] = False


class LocalGreedyGradientFlow(_LocalGradientFlow):
    """Continuous LG-BP: the backward pathway is cut at every block's input, so each block (and
    its head) descends its own local loss only."""

    method: ClassVar[str] = "lg-bp"
    greedy: ClassVar[bool] = True
