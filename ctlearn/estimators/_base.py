"""The estimator interface: the discrete-time learning rules behind one contract.

In the spirit of an Optax ``GradientTransformation``: ``init`` builds the rule's state (learned or
fixed feedback, counters; ``None`` when stateless) and ``estimate`` returns, for one batch, a
gradient estimate shaped like the model, the new state and diagnostics. The training loop feeds
the estimate to an Optax optimizer and never branches on the rule's name.
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
from jaxtyping import Array, PRNGKeyArray

from ..losses import LOSSES
from ..nn import Network

Batch = tuple[Array, Array]
"""An ``(x, y)`` pair: inputs [batch, *input_shape] and labels [batch] (or targets)."""

Diagnostics = dict[str, Array]
"""At least ``loss`` (the batch-mean network loss at the unperturbed point) and ``logits``."""


class AbstractEstimator(eqx.Module):
    """A rule that turns a batch into a gradient estimate for every trainable array of a network.

    Concrete estimators hold only static configuration; all randomness comes from ``key``.
    """

    loss: eqx.AbstractVar[str]

    def __check_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; valid losses: {', '.join(LOSSES)}")

    def init(self, model: Network, *, key: PRNGKeyArray) -> Any:
        """The rule's initial state for ``model``; also where a rule checks the model suits it."""
        del model, key
        return None

    @abc.abstractmethod
    def estimate(
        self, model: Network, batch: Batch, state: Any, *, key: PRNGKeyArray
    ) -> tuple[Network, Any, Diagnostics]:
        """Returns ``(grads, new_state, diagnostics)``.

        ``grads`` has the structure of ``eqx.filter(model, eqx.is_inexact_array)``, with zeros for
        the arrays the rule does not train."""
