"""Activity perturbation in continuous time: ẇ_ij = η · x_i · ẏ_j · ṙ (Ren et al. section 3.5)."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax

from ..estimators._fg_a import activity_forward_gradient, activity_grads
from ..estimators._objective import assemble, exact_head_grads
from ._rule import AbstractRule, Signals, head_rate

RATES = ("injected", "measured")


class _ActivityRule(AbstractRule):
    """``ẏ`` is the injected perturbation rate ``ṗ`` (``rate="injected"``: the exact rule; with
    the same tangent, ẇ is exactly −η × the discrete FG-A estimate) or the neuron's total measured
    rate of change ``ż`` (``rate="measured"``: what a differentiator on the neuron would see; it
    also carries upstream perturbations and input changes, a biased descent direction).
    ``mask``: only units whose activation has a non-zero slope learn (the ReLU trick)."""

    lr: float
    rate: str = "injected"
    mask: bool = False
    loss: str = "cross_entropy"
    site: ClassVar[str] = "pre"

    def __check_init__(self):
        if self.rate not in RATES:
            raise ValueError(f"unknown rate {self.rate!r}; valid: {', '.join(RATES)}")

    def full_rate(self, model):
        return head_rate(self, model)

    def discrete(self, model, x, y, tangent, state):
        grads, _ = activity_forward_gradient(
            model, x, y, tuple(tangent), loss=self.loss, greedy=self.greedy, mask=self.mask
        )
        return grads, None

    def scaled_gradient(self, model, signals: Signals, state, scale):
        u = signals.p_dot if self.rate == "injected" else signals.trace_dot.pre
        d = signals.loss_rates if self.greedy else signals.loss_rates[-1:]
        trace = jax.lax.stop_gradient(signals.trace)
        # The scale goes on the loss rates, before each layer's contraction: on the products
        # after it, it would cost an elementwise pass over every weight array per evaluation
        # (measured: 15 % of this function on the main job's 40-64-64-10 net, batch 20).
        scaled = tuple(scale * rate for rate in d)
        layers = activity_grads(model, trace, scaled, u, greedy=self.greedy, mask=self.mask)
        heads = None
        if self.greedy:
            heads = exact_head_grads(self.loss, model, trace, signals.y)
            heads = jax.tree.map(lambda g: scale * g, eqx.filter(heads, eqx.is_inexact_array))
        return assemble(model, layers, heads), None


class FGARule(_ActivityRule):
    """Continuous FG-A: every layer learns from the rate of change of the network's loss."""

    greedy: ClassVar[bool] = False


class LGFGARule(_ActivityRule):
    """Continuous LG-FG-A: each block learns from the rate of change of its own local loss (a
    stop-gradient between blocks); local heads follow their exact local gradient."""

    greedy: ClassVar[bool] = True
