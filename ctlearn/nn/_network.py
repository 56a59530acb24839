"""A network as a sequence of blocks of perturbable layers, with optional local heads.

This is the one contract that both time domains and every estimator rely on:

* the forward pass takes the activity perturbation as an argument (one array per layer, added at
  the layer's pre-activation), so forward-mode quantities are a single ``jax.jvp``;
* it reports what local rules need: every layer's input ``x_{l-1}`` and pre-activation ``z_l``,
  and every block's local-head logits;
* blocks are the unit of local losses: with ``greedy=True`` a stop-gradient separates blocks, which
  also stops forward-mode tangents, so each block's perturbation reaches only its own loss.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from ._layer import AbstractLayer
from ._norm import BatchNorm, BatchStats


class Trace(eqx.Module):
    """What one forward pass reports.

    ``inputs[l]`` is the input that reached layer ``l``'s weights, ``pre[l]`` its pre-activation
    (perturbation included), ``outputs[b]`` block ``b``'s output activity and ``head_logits[b]``
    its local head's logits (``None`` for the last block, whose loss is the network's loss).
    ``linear[l]`` is layer ``l``'s linear output before its normalisation (``None`` for layers
    without one), which its ``local_grad`` reuses instead of recomputing the linear map.
    """

    logits: Array
    inputs: tuple[Array, ...]
    pre: tuple[Array, ...]
    outputs: tuple[Array, ...]
    head_logits: tuple[Array | None, ...]
    linear: tuple[Array | None, ...] = ()


class Network(eqx.Module):
    """Blocks of perturbable layers; block ``b`` is ``layers[starts[b]:ends[b]]``.

    ``heads[b]`` is block ``b``'s local linear readout (``None`` where there is none; the last
    block never has one: its last layer is the network's output). ``residual[b]`` (default: no
    residual anywhere) adds block ``b``'s input to its last layer's activation input, after the
    perturbation point (LocalMixer's residual blocks). With ``flatten_input`` the input
    [batch, *input_shape] is reshaped to [batch, features] first. ``input_shape`` (one example's
    shape, when the builder states it) lets rules size per-layer state before seeing data.
    """

    layers: tuple[AbstractLayer, ...]
    heads: tuple[AbstractLayer | None, ...]
    block_ends: tuple[int, ...] = eqx.field(static=True)
    flatten_input: bool = eqx.field(static=True, default=True)
    input_shape: tuple[int, ...] | None = eqx.field(static=True, default=None)
    residual: tuple[bool, ...] = eqx.field(static=True, default=())

    def __check_init__(self):
        ends = self.block_ends
        if (
            not ends
            or ends[-1] != len(self.layers)
            or any(b <= a for a, b in zip((0,) + ends, ends))
        ):
            raise ValueError(
                f"block_ends must increase strictly and end at len(layers)={len(self.layers)}, "
                f"got {ends}"
            )
        if len(self.heads) != len(ends):
            raise ValueError(f"need one head entry per block ({len(ends)}), got {len(self.heads)}")
        if self.residual and len(self.residual) != len(ends):
            raise ValueError(
                f"residual needs one flag per block ({len(ends)}), got {len(self.residual)}"
            )
        if self.heads[-1] is not None:
            raise ValueError("the last block's loss is the network's loss: its head must be None")

    @property
    def num_blocks(self) -> int:
        return len(self.block_ends)

    @property
    def block_starts(self) -> tuple[int, ...]:
        return (0,) + self.block_ends[:-1]

    def block_of_layer(self, layer: int) -> int:
        return next(b for b, end in enumerate(self.block_ends) if layer < end)

    def __call__(
        self,
        x: Array,
        perturbation: Sequence[Array | None] | None = None,
        *,
        greedy: bool = False,
        post: Sequence[Array | None] | None = None,
        activity: Sequence[Array] | None = None,
    ) -> Trace:
        """Forward pass on a batch ``x`` [batch, *input_shape].

        ``perturbation``: one array (or ``None``) per layer, added at its pre-activation.
        ``greedy``: stop gradients (and tangents) between blocks, for local-greedy learning.
        ``post``: one array (or ``None``) per layer, added to its output activity ``y_l`` (where
        FDFA perturbs, Bacho & Chu eq. 7).
        ``activity``: one array per layer, the layers' current output activities when they are
        neuron states of their own (leaky neurons in continuous time): each layer then reads the
        previous layer's state instead of its instantaneous output, blocks output (and heads read)
        their last layer's state, and the logits are the last state. ``pre`` still reports every
        layer's activation input, from which the states relax.
        """
        perturbation = self._per_layer("perturbation", perturbation)
        post = self._per_layer("post", post)
        if activity is not None:
            activity = self._per_layer("activity", activity)
        h = x.reshape(x.shape[0], -1) if self.flatten_input else x
        inputs, pre, outputs, head_logits, linear = [], [], [], [], []
        for b, (start, end) in enumerate(zip(self.block_starts, self.block_ends)):
            if greedy and b > 0:
                h = jax.lax.stop_gradient(h)
            block_input = h if self.residual and self.residual[b] else None
            for i in range(start, end):
                inputs.append(h)
                skip = block_input if i == end - 1 else None
                h, z, out = self.layers[i].forward(h, perturbation[i], skip)
                linear.append(out)
                if activity is not None:
                    h = activity[i]
                if post[i] is not None:
                    h = h + post[i]
                pre.append(z)
            outputs.append(h)
            head = self.heads[b]
            head_logits.append(None if head is None else head(h)[0])
        return Trace(
            h, tuple(inputs), tuple(pre), tuple(outputs), tuple(head_logits), tuple(linear)
        )

    @property
    def has_batch_norm(self) -> bool:
        return any(isinstance(getattr(layer, "norm", None), BatchNorm) for layer in self.layers)

    def inference(self) -> Network:
        """This network with every batch normalisation using its running statistics (for
        evaluation); a network without batch normalisation is returned as it is."""
        if not self.has_batch_norm:
            return self
        return jax.tree.map(
            lambda m: dataclasses.replace(m, inference=True) if isinstance(m, BatchNorm) else m,
            self,
            is_leaf=lambda m: isinstance(m, BatchNorm),
        )

    def updated_batch_stats(self, x: Array) -> tuple[BatchStats | None, ...]:
        """Per layer, the running statistics of its batch normalisation after the batch ``x``
        (``None`` for layers without one)."""
        h = x.reshape(x.shape[0], -1) if self.flatten_input else x
        stats = []
        for layer in self.layers:
            norm = getattr(layer, "norm", None)
            linear = None if norm is None else layer.pre_activation_and_linear(h)[1]
            stats.append(None if norm is None else norm.updated_stats(linear))
            h = layer(h)[0]
        return tuple(stats)

    def with_batch_stats(self, stats: Sequence[BatchStats | None]) -> Network:
        """This network with the given running statistics (from ``updated_batch_stats``)."""
        index = [i for i, s in enumerate(stats) if s is not None]
        return eqx.tree_at(
            lambda net: [net.layers[i].norm.stats for i in index], self, [stats[i] for i in index]
        )

    def _per_layer(self, name: str, values):
        if values is None:
            return (None,) * len(self.layers)
        if len(values) != len(self.layers):
            raise ValueError(
                f"{name} needs one entry per layer ({len(self.layers)}), got {len(values)}"
            )
        return tuple(values)

    def activity_shapes(self, x: Array | None = None) -> tuple[jax.ShapeDtypeStruct, ...]:
        """Shape and dtype of each layer's output activity ``y_l`` for the batch ``x`` (the points
        where ``post`` is added and where direct feedback arrives); without ``x``, for a batch of
        one example of ``input_shape``."""
        if x is None:
            if self.input_shape is None:
                raise ValueError(
                    "this network does not state its input_shape: pass an example batch x"
                )
            x = jax.ShapeDtypeStruct((1,) + self.input_shape, jnp.float32)

        def outputs(net, x):
            trace = net(x)
            return trace.inputs[1:] + (trace.logits,)

        return jax.eval_shape(outputs, self, x)

    def perturbation_shapes(self, x: Array) -> tuple[jax.ShapeDtypeStruct, ...]:
        """Shape and dtype of each layer's perturbation for the batch ``x`` (no computation)."""
        return jax.eval_shape(lambda net, x: net(x).pre, self, x)

    def zeros_perturbation(self, x: Array) -> tuple[Array, ...]:
        return tuple(jnp.zeros(s.shape, s.dtype) for s in self.perturbation_shapes(x))
