"""FG-A and LG-FG-A: activity-perturbed forward gradients (Ren et al. eq. 3; FDFA paper eq. 4-5).

A perturbation ``u`` is added at every layer's pre-activation. One ``jax.jvp`` of the per-example
losses along ``u`` gives each example's directional derivative ``d_n = Σ_j ∂ℓ_n/∂z_nj u_nj``; the
estimate of ``∂L/∂z`` is ``δ̂_n = d_n u_n / N`` (times the ReLU mask), and each layer turns it into
its weight gradient with its local ``x_{l-1} ⊗ δ̂`` contraction. With ``greedy`` (LG-FG-A) a
stop-gradient separates blocks, so the one jvp yields every block's own ``d`` from its own loss.
"""

from __future__ import annotations

import math
from typing import ClassVar

import jax
import jax.numpy as jnp
from jaxtyping import Array

from ..nn import AbstractMixerLayer
from ._base import AbstractEstimator
from ._noise import (
    average_samples,
    check_model,
    check_options,
    draw_many,
    selected,
)
from ._objective import assemble, block_losses, exact_head_grads


def activity_directions(model, x, key, *, noise: str, shared: bool, layers=None) -> tuple:
    """One direction per layer, shaped like its pre-activation; ``shared`` draws one per unit and
    repeats it across the batch, otherwise every example has its own. Layers not in ``layers``
    (``None``: all) get zeros: they are neither perturbed nor trained."""
    shapes = model.perturbation_shapes(x)
    chosen = [i for i in range(len(shapes)) if selected(i, layers)]
    drawn = dict(zip(chosen, draw_many(key, [shapes[i].shape[shared:] for i in chosen], noise)))
    return tuple(
        jnp.broadcast_to(drawn[i], s.shape) if i in drawn else jnp.zeros(s.shape, s.dtype)
        for i, s in enumerate(shapes)
    )


def spread(d: Array, u: Array) -> Array:
    """``d ⊙ u``: each unit's direction scaled by the directional derivative of the loss that
    scores it. ``d`` is per example [N] or per replica [N, P, G] (a replicated local loss); the
    unit (n, p, ...) of a [N, P, G·k]-ordered activity belongs to replica (n, p, its group)."""
    if d.ndim == 1:
        return d.reshape((d.shape[0],) + (1,) * (u.ndim - 1)) * u
    if u.shape[: d.ndim - 1] != d.shape[:-1] or math.prod(u.shape[d.ndim - 1 :]) % d.shape[-1]:
        raise ValueError(
            f"a perturbation of shape {u.shape} cannot be scored by replicated losses of shape "
            f"{d.shape}: it must be [batch, patches, groups × units]"
        )
    return (d[..., None] * u.reshape(d.shape + (-1,))).reshape(u.shape)


def activity_grads(model, trace, d, u, *, greedy: bool, mask: bool) -> list:
    """Every layer's update ``x_{l-1} ⊗ (d u / N)`` for directions ``u`` (one per layer) scored by
    the directional derivatives ``d`` (one per block with ``greedy``, else the network's alone,
    each [N] or per replica). The discrete FG-A estimate and the continuous FG-A rule (``u`` = the
    perturbation's rate, ``d`` = the loss's rate) both call this."""
    n = trace.logits.shape[0]
    layer_grads = []
    for i, layer in enumerate(model.layers):
        d_n = d[model.block_of_layer(i)] if greedy else d[0]
        if d_n.ndim > 1 and isinstance(layer, AbstractMixerLayer) and layer.mixes_groups:
            d_n = jnp.sum(d_n, axis=-1, keepdims=True)  # its units reach all of the token's groups
        delta = spread(d_n / n, u[i])
        if mask:
            delta = jnp.where(layer.active(trace.pre[i]), delta, 0.0)
        layer_grads.append(layer.local_grad(trace.inputs[i], delta, trace.linear[i]))
    return layer_grads


def activity_tangents(model, x, y, u, *, loss: str, greedy: bool):
    """One ``jax.jvp`` of the losses along directions ``u`` (one per layer, added at the
    pre-activations): ``(losses, d, trace)`` with every block's losses (``greedy``) or the
    network's alone, their directional derivatives ``d`` and the unperturbed forward trace."""

    def losses(p):
        trace = model(x, p, greedy=greedy)
        per_block = block_losses(loss, model, trace, y)
        return (per_block if greedy else per_block[-1:]), trace

    zeros = tuple(jnp.zeros_like(t) for t in u)
    return jax.jvp(losses, (zeros,), (u,), has_aux=True)


def activity_forward_gradient(model, x, y, u, *, loss: str, greedy: bool, mask: bool):
    """The FG-A estimate for directions ``u`` (one per layer). Returns ``(grads, diagnostics)``."""
    ell, d, trace = activity_tangents(model, x, y, u, loss=loss, greedy=greedy)
    layer_grads = activity_grads(model, trace, d, u, greedy=greedy, mask=mask)
    heads = exact_head_grads(loss, model, trace, y) if greedy else None
    diagnostics = {"loss": jnp.mean(ell[-1]), "logits": trace.logits}
    return assemble(model, layer_grads, heads), diagnostics


class _ActivityPerturbed(AbstractEstimator):
    method: ClassVar[str]
    greedy: ClassVar[bool]
    loss: str = "cross_entropy"
    noise: str = "gaussian"
    shared: bool = False
    mask: bool = True
    num_samples: int = 1
    layers: tuple[int, ...] | None = None

    def __check_init__(self):
        check_options(
            noise=self.noise,
            num_samples=self.num_samples,
            layers=self.layers,
            shared=self.shared,
            mask=self.mask,
        )

    def init(self, model, *, key):
        check_model(self, model)
        return None

    def estimate(self, model, batch, state, *, key):
        greedy = self.greedy
        x, y = batch

        def one_sample(k):
            u = activity_directions(
                model, x, k, noise=self.noise, shared=self.shared, layers=self.layers
            )
            return activity_forward_gradient(
                model, x, y, u, loss=self.loss, greedy=greedy, mask=self.mask
            )

        grads, diagnostics = average_samples(one_sample, key, self.num_samples)
        return grads, state, diagnostics


class FGA(_ActivityPerturbed):
    """FG-A: activity perturbation at every layer, all scored by the network's loss.

    ``noise``: "gaussian" or "rademacher"; ``shared``: one direction for the whole batch instead of
    one per example; ``mask``: zero the estimate where the ReLU is inactive (unbiased, lower
    variance); ``num_samples``: directions averaged per step; ``layers``: indices of the layers to
    perturb and train (default all; a subset is for variance studies). Local heads are unused.
    """

    method = "fg-a"
    greedy = False


class LGFGA(_ActivityPerturbed):
    """LG-FG-A: each block's perturbation scored by its own local loss (stop-gradient between
    blocks); local heads receive their exact local gradient. Options as for FG-A."""

    method = "lg-fg-a"
    greedy = True
