"""``TrainState``: everything a run carries from one step to the next, as one PyTree."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Int

from ..nn import Network


class TrainState(eqx.Module):
    """The network, the optimizer's and the estimator's states, and how far the run has got.

    ``epoch`` counts completed epochs and ``step`` completed optimisation steps.
    """

    model: Network
    opt_state: Any
    est_state: Any
    epoch: Int[Array, ""]
    step: Int[Array, ""]

    @classmethod
    def start(cls, model: Network, opt_state: Any, est_state: Any) -> TrainState:
        zero = jnp.zeros((), jnp.int32)
        return cls(model, opt_state, est_state, zero, zero)
