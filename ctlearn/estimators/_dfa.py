"""DFA: direct feedback alignment with fixed random feedback (Nøkland 2016; FDFA paper eq. 6)."""

from __future__ import annotations

from ._base import AbstractEstimator
from ._direct import direct_feedback_grads, kaiming_feedback, mean_loss, output_error


class DFA(AbstractEstimator):
    """DFA: every hidden layer receives the output error through a fixed random matrix.

    ``B_l`` is drawn from U(±√(6/n_l)); the output layer learns from its own error. The FDFA paper
    starts DFA's forward weights at zero (``init="zeros"`` for the model; the slope 1 at 0 of
    ``ctlearn.nn.relu`` lets such layers learn). The state is the tuple of feedback matrices.
    """

    loss: str = "cross_entropy"

    def init(self, model, *, key):
        return kaiming_feedback(model, key)

    def estimate(self, model, batch, state, *, key):
        del key
        x, y = batch
        trace = model(x)
        e = output_error(self.loss, trace, y)
        grads = direct_feedback_grads(model, trace, e, state)
        return grads, state, {"loss": mean_loss(self.loss, trace, y), "logits": trace.logits}
