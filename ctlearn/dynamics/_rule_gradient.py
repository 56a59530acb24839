"""Gradient flow: ẇ = −η ∇L, the backpropagation reference in continuous time."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ..estimators import make_estimator
from ..estimators._objective import block_losses
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

    def rates(self, model, signals: Signals, state):
        def mean_loss(m):
            trace = m(signals.x)
            return jnp.mean(block_losses(self.loss, m, trace, signals.y)[-1])

        grads = eqx.filter_grad(mean_loss)(model)
        return jax.tree.map(lambda g: -self.lr * g, grads), None
