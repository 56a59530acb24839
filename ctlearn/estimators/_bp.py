"""BP: the exact gradient of the network's loss (reverse mode), the reference every rule is
compared with."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from ..losses import get_loss
from ._base import AbstractEstimator


class BP(AbstractEstimator):
    """Backpropagation of the batch-mean loss of the network's output. Local heads are unused."""

    loss: str = "cross_entropy"

    def estimate(self, model, batch, state, *, key):
        del key
        x, y = batch

        def objective(m):
            trace = m(x)
            return jnp.mean(get_loss(self.loss)(trace.logits, y)), trace.logits

        (value, logits), grads = eqx.filter_value_and_grad(objective, has_aux=True)(model)
        return grads, state, {"loss": value, "logits": logits}
