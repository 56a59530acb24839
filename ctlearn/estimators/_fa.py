"""FA, L-FA and LG-FA: feedback alignment (Lillicrap et al. 2016) and its local variants.

The error travels down layer by layer as in backpropagation, but through fixed random feedback
weights instead of the transposed forward weights: at layer ``l`` the signal at the output
becomes ``δ_l = ∂y_l/∂z_l ᵀ g_l`` (the layer's own, local derivative), the layer learns
``x_{l-1} ⊗ δ_l`` and passes ``g_{l-1} = ∂z_l/∂x_{l-1} ᵀ δ_l`` computed with a random copy of the
layer. L-FA adds every block's local loss (its head's error sent back through a random copy of
the head); LG-FA keeps only each block's own loss (Ren et al. section 6). With the true weights
as feedback this is exactly BP, L-BP and LG-BP.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from ..losses import get_loss
from ..nn import AbstractLayer, AbstractMixerLayer, Network, Trace
from ._base import AbstractEstimator
from ._direct import mean_loss
from ._objective import assemble, exact_head_grads, head_loss, require_heads


def random_feedback_layer(layer: AbstractLayer, key: PRNGKeyArray) -> AbstractLayer:
    """A copy of ``layer`` whose weights are fixed random values U(±√(6/fan_in)) (fan_in: all axes
    of a weight but the last, its outputs); vectors (biases, normalisation scales) are copied as
    they are (biases carry no error; a normalisation keeps its initial scale)."""
    arrays, static = eqx.partition(layer, eqx.is_inexact_array)
    leaves, treedef = jax.tree.flatten(arrays)
    keys = jax.random.split(key, max(len(leaves), 1))
    drawn = [
        a
        if a.ndim < 2
        else jax.random.uniform(k, a.shape, a.dtype, -1.0, 1.0)
        * math.sqrt(6.0 / math.prod(a.shape[:-1]))
        for k, a in zip(keys, leaves)
    ]
    return eqx.combine(jax.tree.unflatten(treedef, drawn), static)


def _through_feedback(
    layer: AbstractLayer, feedback: AbstractLayer, x: Array, delta: Array
) -> tuple[Array]:
    """The signal at the layer's input: ``delta`` carried back by the feedback weights in place of
    the forward ones. Around a LocalMixer layer's linear map the normalisations keep their true
    derivative, taken at the forward pass's values (the paper assumes they are known)."""
    if isinstance(layer, AbstractMixerLayer):
        _, to_input = jax.vjp(lambda h: layer.pre_activation_via(feedback, h), x)
    else:
        _, to_input = jax.vjp(feedback.pre_activation, x)
    return to_input(delta)


def feedback_alignment_grads(
    model: Network,
    trace: Trace,
    y: Array,
    feedback_layers: Sequence[AbstractLayer],
    feedback_heads: Sequence[AbstractLayer | None],
    *,
    loss: str,
    local: bool,
    greedy: bool,
    scale: float = 1.0,
) -> Network:
    """The model-shaped estimate when errors travel down through ``feedback_layers`` (and, with
    ``local``/``greedy``, the blocks' head errors through ``feedback_heads``), times ``scale``
    (applied to the errors where they start: the estimate is linear in them)."""
    fn = get_loss(loss)
    error = lambda logits: jax.grad(lambda z: scale * jnp.mean(fn(z, y)))(logits)
    grads: list = [None] * len(model.layers)
    g = error(trace.logits)  # the signal at the output of the current layer
    for b in reversed(range(model.num_blocks)):
        start, end = model.block_starts[b], model.block_ends[b]
        head = model.heads[b]
        if (local or greedy) and head is not None:
            _, to_block = jax.vjp(feedback_heads[b].pre_activation, trace.outputs[b])
            head_error = jax.grad(
                lambda z, head=head: scale * jnp.mean(head_loss(loss, head, z, y))
            )
            (from_head,) = to_block(head_error(trace.head_logits[b]))
            g = from_head if greedy else g + from_head
        skip = None  # the signal the residual connection carries to the block's input
        for i in reversed(range(start, end)):
            layer = model.layers[i]
            _, to_pre = jax.vjp(layer.activate, trace.pre[i])
            (delta,) = to_pre(g)
            if i == end - 1 and model.residual and model.residual[b]:
                skip = delta
            grads[i] = layer.local_grad(trace.inputs[i], delta, trace.linear[i])
            if i > 0:
                (g,) = _through_feedback(layer, feedback_layers[i], trace.inputs[i], delta)
        if skip is not None and start > 0:
            g = g + skip.reshape(g.shape)
    heads = None
    if local or greedy:
        heads = jax.tree.map(
            lambda g: scale * g,
            eqx.filter(exact_head_grads(loss, model, trace, y), eqx.is_inexact_array),
        )
    return assemble(model, grads, heads)


class _FeedbackAlignment(AbstractEstimator):
    method: ClassVar[str]
    local: ClassVar[bool]
    greedy: ClassVar[bool]
    loss: str = "cross_entropy"

    def init(self, model, *, key):
        if self.local or self.greedy:
            require_heads(model, self.method)
        layer_key, head_key = jax.random.split(key)
        layers = tuple(
            random_feedback_layer(layer, k)
            for layer, k in zip(model.layers, jax.random.split(layer_key, len(model.layers)))
        )
        heads = tuple(
            None if head is None else random_feedback_layer(head, k)
            for head, k in zip(model.heads, jax.random.split(head_key, len(model.heads)))
        )
        return layers, heads

    def estimate(self, model, batch, state, *, key):
        del key
        x, y = batch
        trace = model(x)
        layers, heads = state
        grads = feedback_alignment_grads(
            model, trace, y, layers, heads, loss=self.loss, local=self.local, greedy=self.greedy
        )
        return grads, state, {"loss": mean_loss(self.loss, trace, y), "logits": trace.logits}


class FA(_FeedbackAlignment):
    """FA: backpropagation through fixed random feedback weights; local heads unused. The state
    is the random copies of the layers (and heads) that carry the error down."""

    method = "fa"
    local = False
    greedy = False


class LocalFA(_FeedbackAlignment):
    """L-FA: FA of the sum of every block's local loss and the network's loss, end to end."""

    method = "l-fa"
    local = True
    greedy = False


class LocalGreedyFA(_FeedbackAlignment):
    """LG-FA: FA of each block's own local loss (no error crosses a block boundary)."""

    method = "lg-fa"
    local = False
    greedy = True
