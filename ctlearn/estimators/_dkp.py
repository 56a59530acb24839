"""DKP: Direct Kolen-Pollack, direct feedback learned from the output error (Webster et al.)."""

from __future__ import annotations

from jaxtyping import Array

from ..nn import Trace
from ._direct import AbstractLearnedFeedback, kaiming_feedback, outer_over_batch

FEEDBACK_INITS = ("zeros", "kaiming")


def dkp_feedback_grads(trace: Trace, e: Array) -> tuple[Array, ...]:
    """DKP's feedback gradients: ``Σ_n e_n ⊗ y_{l,n}`` [n_out, *y_l.shape[1:]] for each hidden
    layer's output activity ``y_l`` (``trace.inputs[l + 1]``), the gradient a direct linear map
    from ``y_l`` to the outputs would receive from the output error ``e`` (which carries 1/batch).
    The discrete DKP hands it to its optimizer; the continuous rule descends it."""
    return tuple(outer_over_batch(e, y_l) for y_l in trace.inputs[1:])


class DKP(AbstractLearnedFeedback):
    """DKP: DFA whose feedback matrices learn from the output error.

    ``B_l`` receives the gradient ``Σ_n e_n ⊗ y_{l,n}`` that a direct linear map from ``y_l`` to
    the outputs would receive; the FDFA paper trains it with Adam at 1e-4 (the defaults). The
    output layer's weights receive the transposed gradient, so with the same optimizer on both
    sides the last hidden layer's feedback follows the *change* of the output weights (the
    Kolen-Pollack identity); only decay on both sides (``feedback_decay`` and the forward
    optimizer's) pulls the two together. ``feedback_init``: ``"zeros"`` (the FDFA paper's
    reference code) or ``"kaiming"`` (DFA's fixed random matrices, as Webster et al.'s code starts).
    """

    loss: str = "cross_entropy"
    feedback_optimizer: str = "adam"
    feedback_lr: float = 1e-4
    feedback_decay: float = 0.0
    feedback_init: str = "zeros"

    def __check_init__(self):
        if self.feedback_init not in FEEDBACK_INITS:
            raise ValueError(
                f"unknown feedback_init {self.feedback_init!r}; valid: {', '.join(FEEDBACK_INITS)}"
            )

    def initial_feedback(self, model, key):
        if self.feedback_init == "zeros":
            return super().initial_feedback(model, key)
        return kaiming_feedback(model, key)

    def feedback_gradients(self, model, x, trace, e, feedback, *, key):
        del model, x, feedback, key
        return dkp_feedback_grads(trace, e)
