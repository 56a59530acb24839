"""L-BP and LG-BP: backpropagation of the sum of the blocks' local losses."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from ..losses import get_loss
from ._base import AbstractEstimator
from ._objective import local_objective, require_heads


def _local_bp(estimator, model, batch, state, greedy: bool):
    x, y = batch

    def objective(m):
        trace = m(x, greedy=greedy)
        return local_objective(estimator.loss, m, trace, y), trace.logits

    (_, logits), grads = eqx.filter_value_and_grad(objective, has_aux=True)(model)
    value = jnp.mean(get_loss(estimator.loss)(logits, y))
    return grads, state, {"loss": value, "logits": logits}


class LocalBP(AbstractEstimator):
    """L-BP: every block's local loss plus the network's loss, gradients flowing end to end."""

    loss: str = "cross_entropy"

    def init(self, model, *, key):
        require_heads(model, "l-bp")
        return None

    def estimate(self, model, batch, state, *, key):
        del key
        return _local_bp(self, model, batch, state, greedy=False)


class LocalGreedyBP(AbstractEstimator):
    """LG-BP: L-BP with a stop-gradient between blocks: each block learns from its own loss."""

    loss: str = "cross_entropy"

    def init(self, model, *, key):
        require_heads(model, "lg-bp")
        return None

    def estimate(self, model, batch, state, *, key):
        del key
        return _local_bp(self, model, batch, state, greedy=True)
