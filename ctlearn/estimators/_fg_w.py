"""FG-W and LG-FG-W: weight-perturbed forward gradients (Ren et al. eq. 2; Baydin et al.).

A direction ``v`` is drawn for every trainable array of the network's layers; one ``jax.jvp`` of
the loss along ``v`` gives the directional derivative ``d = ∇L·v`` and the estimate is ``d v``.
With independent noise every example has its own ``v_n`` and the estimate is ``mean_n d_n v_n``;
examples are processed in chunks so that memory stays a few copies of the weights. With
``greedy`` (LG-FG-W) a stop-gradient separates blocks and each block's ``v`` is scored by that
block's own loss; local heads receive their exact local gradient.
"""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ._base import AbstractEstimator
from ._noise import (
    average_samples,
    check_model,
    check_options,
    draw_many,
    selected,
)
from ._objective import assemble, block_losses, exact_head_grads


def weight_directions(params, key, noise: str, layers=None):
    """A direction for every array of ``params`` (a tuple of the layers' trainable arrays); layers
    not in ``layers`` (``None``: all) get zeros: they are neither perturbed nor trained."""
    leaves = [jax.tree.flatten(layer)[0] for layer in params]
    chosen = [a for i, ls in enumerate(leaves) if selected(i, layers) for a in ls]
    drawn = iter(draw_many(key, [a.shape for a in chosen], noise))
    return tuple(
        jax.tree.map(lambda a, i=i: next(drawn) if selected(i, layers) else jnp.zeros_like(a), p)
        for i, p in enumerate(params)
    )


def _losses_fn(model, static, loss: str, greedy: bool):
    def losses(params, x, y):
        net = eqx.tree_at(lambda m: m.layers, model, eqx.combine(params, static))
        trace = net(x, greedy=greedy)
        per_block = block_losses(loss, model, trace, y)
        return (per_block if greedy else per_block[-1:]), trace

    return losses


def weight_grads(model, v, d_per_block, *, greedy: bool):
    """FG-W's update, d·v, for every layer's trainable arrays: each layer's direction ``v_i``
    (``v`` is per layer, shaped like ``eqx.filter(model.layers, eqx.is_inexact_array)``) times
    the batch-mean directional derivative ``d`` [batch] of the loss that scores it: its block's
    local loss with ``greedy``, else the network's loss (the last of ``d_per_block``). The one
    formula of FG-W and LG-FG-W in both time domains: the continuous weight rules pass the
    perturbation's rate ψ̇ and the losses' rates L̇ as ``v`` and ``d``."""
    scales = [
        jnp.sum(d) / d.shape[0]
        for d in (d_per_block[model.block_of_layer(i) if greedy else -1] for i in range(len(v)))
    ]
    return tuple(jax.tree.map(lambda a, s=s: a * s, v_i) for s, v_i in zip(scales, v))


def weight_forward_gradient(
    model, x, y, key, *, loss, greedy, noise, shared, layers=None, chunk=16
):
    """The FG-W estimate for one draw of directions. Returns ``(grads, diagnostics)``."""
    params, static = eqx.partition(model.layers, eqx.is_inexact_array)
    losses = _losses_fn(model, static, loss, greedy)
    if shared:
        v = weight_directions(params, key, noise, layers)
        ell, d, trace = jax.jvp(lambda p: losses(p, x, y), (params,), (v,), has_aux=True)
        layer_grads = weight_grads(model, v, d, greedy=greedy)
    else:
        n = x.shape[0]
        c = math.gcd(n, chunk)

        def per_example(i, xi, yi):
            v = weight_directions(params, jax.random.fold_in(key, i), noise, layers)
            _, d, _ = jax.jvp(
                lambda p: losses(p, xi[None], yi[None]), (params,), (v,), has_aux=True
            )
            return weight_grads(model, v, d, greedy=greedy)

        def add_chunk(total, inputs):
            g = jax.vmap(per_example)(*inputs)
            return jax.tree.map(lambda t, gi: t + jnp.sum(gi, axis=0), total, g), None

        chunks = (
            jnp.arange(n).reshape(-1, c),
            x.reshape((-1, c) + x.shape[1:]),
            y.reshape((-1, c) + y.shape[1:]),
        )
        zeros = jax.tree.map(jnp.zeros_like, params)
        total, _ = jax.lax.scan(add_chunk, zeros, chunks)
        layer_grads = jax.tree.map(lambda t: t / n, total)
        trace = model(x, greedy=greedy)
        ell = block_losses(loss, model, trace, y)
    layer_grads = eqx.combine(layer_grads, static)
    heads = exact_head_grads(loss, model, trace, y) if greedy else None
    diagnostics = {"loss": jnp.mean(ell[-1]), "logits": trace.logits}
    return assemble(model, layer_grads, heads), diagnostics


class _WeightPerturbed(AbstractEstimator):
    method: ClassVar[str]
    greedy: ClassVar[bool]
    loss: str = "cross_entropy"
    noise: str = "gaussian"
    shared: bool = True
    num_samples: int = 1
    layers: tuple[int, ...] | None = None

    def __check_init__(self):
        check_options(
            noise=self.noise, num_samples=self.num_samples, layers=self.layers, shared=self.shared
        )

    def init(self, model, *, key):
        check_model(self, model)
        return None

    def estimate(self, model, batch, state, *, key):
        greedy = self.greedy
        x, y = batch

        def one_sample(k):
            return weight_forward_gradient(
                model,
                x,
                y,
                k,
                loss=self.loss,
                greedy=greedy,
                noise=self.noise,
                shared=self.shared,
                layers=self.layers,
            )

        grads, diagnostics = average_samples(one_sample, key, self.num_samples)
        return grads, state, diagnostics


class FGW(_WeightPerturbed):
    """FG-W: one direction over all layer weights, scored by the network's loss.

    ``shared`` (default, as in the papers' experiments): one direction for the batch; otherwise one
    per example (costly: the batch cannot share a matmul). ``noise``, ``num_samples``, ``layers``
    as for FG-A.
    """

    method = "fg-w"
    greedy = False


class LGFGW(_WeightPerturbed):
    """LG-FG-W: each block's weight direction scored by its own local loss; heads exact."""

    method = "lg-fg-w"
    greedy = True
