"""Weight perturbation in continuous time: ẇ = −η · ψ̇ · L̇ with ψ the weights' own perturbation."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ..estimators import weight_grads
from ..estimators._objective import assemble, block_losses, exact_head_grads
from ._rule import AbstractRule, Signals, head_rate, perturb_weights


def _layer_grads(model, direction, d_per_block, *, greedy: bool):
    """FG-W's d·v (``ctlearn.estimators.weight_grads``) for the direction given as a list of
    arrays in the order of ``weight_leaves``, combined into the layers' structure."""
    params, static = eqx.partition(model.layers, eqx.is_inexact_array)
    v = jax.tree.unflatten(jax.tree.structure(params), list(direction))
    return eqx.combine(weight_grads(model, v, d_per_block, greedy=greedy), static)


class _WeightRule(AbstractRule):
    lr: float
    loss: str = "cross_entropy"
    site: ClassVar[str] = "weights"

    def full_rate(self, model):
        return head_rate(self, model)

    def discrete(self, model, x, y, tangent, state):
        def losses(net):
            trace = net(x, greedy=self.greedy)
            return block_losses(self.loss, net, trace, y), trace

        params, static = eqx.partition(model, eqx.is_inexact_array)
        zeros = jax.tree.map(jnp.zeros_like, params)
        direction = perturb_weights(eqx.combine(zeros, static), tangent)
        direction = eqx.filter(direction, eqx.is_inexact_array)
        _, d, trace = jax.jvp(
            lambda q: losses(eqx.combine(q, static)), (params,), (direction,), has_aux=True
        )
        layers = _layer_grads(model, tangent, d, greedy=self.greedy)
        heads = exact_head_grads(self.loss, model, trace, y) if self.greedy else None
        return assemble(model, layers, heads), None

    def scaled_gradient(self, model, signals: Signals, state, scale):
        d = tuple(None if rate is None else scale * rate for rate in signals.loss_rates)
        layers = _layer_grads(model, signals.p_dot, d, greedy=self.greedy)
        trace = jax.lax.stop_gradient(signals.trace)
        heads = None
        if self.greedy:
            heads = exact_head_grads(self.loss, model, trace, signals.y)
            heads = jax.tree.map(lambda g: scale * g, eqx.filter(heads, eqx.is_inexact_array))
        return assemble(model, layers, heads), None


class FGWRule(_WeightRule):
    """Continuous FG-W: every weight wobbles by its own perturbation ψ(t) (shared by the parallel
    copies of the network) and moves by −η · ψ̇ · L̇ (Baydin et al.'s rule in continuous time)."""

    greedy: ClassVar[bool] = False


class LGFGWRule(_WeightRule):
    """Continuous LG-FG-W: each block's weights scored by the rate of its own local loss."""

    greedy: ClassVar[bool] = True
