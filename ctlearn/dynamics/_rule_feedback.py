"""Feedback alignment in continuous time: FA, L-FA and LG-FA as circuits with a separate
backward pathway of fixed random conductances (Lillicrap et al. 2016; Ren et al. section 6)."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ..estimators import feedback_alignment_grads, make_estimator
from ..estimators._objective import require_heads
from ..nn import Network
from ._rule import AbstractRule, Signals


def _arrays(module):
    return None if module is None else eqx.filter(module, eqx.is_inexact_array)


def _rebuilt(arrays, like):
    """A feedback copy of ``like`` (a model's layer or head) whose arrays are ``arrays``."""
    if arrays is None:
        return None
    return eqx.combine(arrays, eqx.partition(like, eqx.is_inexact_array)[1])


class _FeedbackAlignmentRule(AbstractRule):
    """The error leaves the output and travels down a second pathway, layer by layer, through a
    fixed random copy of every layer (and, for the local variants, of every local head) instead of
    the transposed forward conductances. Each synapse multiplies its presynaptic activity
    ``x_{l-1}`` by the error arriving at its postsynaptic neuron, ``δ_l = f′(z_l) ⊙ g_l``, so
    ``ẇ_l = −η x_{l-1} ⊗ δ_l``: with the same feedback, −η × the discrete estimator of the same
    name at every instant. Nothing is perturbed (``site = "none"``).

    The state holds the feedback pathway's arrays, drawn as the discrete estimator draws them
    (weights U(±√(6/fan_in)), vectors copied from the layer); they never change (rate zero)."""

    lr: float
    loss: str = "cross_entropy"
    site: ClassVar[str] = "none"
    method: ClassVar[str]
    local: ClassVar[bool]

    def init(self, model: Network, *, key):
        if self.local or self.greedy:
            require_heads(model, self.method)
        layers, heads = make_estimator(self.method, loss=self.loss).init(model, key=key)
        return tuple(map(_arrays, layers)), tuple(map(_arrays, heads))

    def full_rate(self, model):
        return self.lr

    def _pathway(self, model, state):
        layers, heads = state
        return (
            tuple(_rebuilt(a, layer) for a, layer in zip(layers, model.layers)),
            tuple(_rebuilt(a, head) for a, head in zip(heads, model.heads)),
        )

    def discrete(self, model, x, y, tangent, state):
        del tangent
        estimator = make_estimator(self.method, loss=self.loss)
        return estimator.estimate(model, (x, y), self._pathway(model, state), key=None)[0], None

    def scaled_gradient(self, model, signals: Signals, state, scale):
        layers, heads = self._pathway(model, state)
        trace = jax.lax.stop_gradient(signals.trace)
        grads = feedback_alignment_grads(
            model, trace, signals.y, layers, heads,
            loss=self.loss, local=self.local, greedy=self.greedy, scale=scale,
        )  # fmt: skip
        return eqx.filter(grads, eqx.is_inexact_array), jax.tree.map(jnp.zeros_like, state)


class FARule(_FeedbackAlignmentRule):
    """Continuous FA: the network's output error carried down through fixed random feedback."""

    method: ClassVar[str] = "fa"
    local: ClassVar[bool] = False
    greedy: ClassVar[bool] = False


class LFARule(_FeedbackAlignmentRule):
    """Continuous L-FA: every block's head error joins the signal coming down from above (each
    through a random copy of its head), and the sum crosses block boundaries."""

    method: ClassVar[str] = "l-fa"
    local: ClassVar[bool] = True
    greedy: ClassVar[bool] = False


class LGFARule(_FeedbackAlignmentRule):
    """Continuous LG-FA: each block hears only its own head's error; the backward pathway is
    cut at every block boundary. Local heads follow their exact local gradient."""

    method: ClassVar[str] = "lg-fa"
    local: ClassVar[bool] = False
    greedy: ClassVar[bool] = True
