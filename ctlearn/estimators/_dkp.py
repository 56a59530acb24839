"""DKP: Direct Kolen-Pollack, direct feedback learned from the output error (Webster et al.)."""

from __future__ import annotations

from ._direct import AbstractLearnedFeedback, outer_over_batch


class DKP(AbstractLearnedFeedback):
    """DKP: DFA whose feedback matrices start at zero and learn from the output error.

    ``B_l`` receives the gradient ``Σ_n e_n ⊗ y_{l,n}`` that a direct linear map from ``y_l`` to
    the outputs would receive; the FDFA paper trains it with Adam at 1e-4 (the defaults).
    """

    loss: str = "cross_entropy"
    feedback_optimizer: str = "adam"
    feedback_lr: float = 1e-4
    feedback_decay: float = 0.0

    def feedback_gradients(self, model, x, trace, e, feedback, *, key):
        del model, x, feedback, key
        return tuple(outer_over_batch(e, y_l) for y_l in trace.inputs[1:])
