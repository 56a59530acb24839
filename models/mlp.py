"""Multi-layer perceptron: ReLU (or other) hidden units, a linear (or other) output."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
from jaxtyping import PRNGKeyArray

from ctlearn.nn import Dense, Network, identity, relu

ACTIVATIONS = {
    "relu": relu,
    "tanh": jax.nn.tanh,
    "softplus": jax.nn.softplus,
    "sigmoid": jax.nn.sigmoid,
    "identity": identity,
}


def mlp(
    input_shape: Sequence[int],
    num_classes: int,
    widths: Sequence[int] = (256, 256),
    *,
    activation: str = "relu",
    output_activation: str = "identity",
    local_heads: bool = True,
    init: str = "kaiming_uniform",
    key: PRNGKeyArray,
) -> Network:
    """An MLP ``in → widths[0] → … → widths[-1] → num_classes`` (ReLU hidden, linear output).

    Every hidden layer but the last is its own block with a linear local head (the local losses of
    LG/L methods, placed after each layer l < L−1 as in the FDFA paper); the last hidden layer and
    the output layer form the final block, trained by the network's loss. ``activation`` of the
    hidden layers: "relu" (default), "tanh", "softplus" (smooth, for adaptive ODE solvers) or
    "sigmoid"; ``output_activation`` of the output layer: "identity" (default, logits) or any of
    those (MGD's benchmarks use sigmoid units throughout).
    """
    for name, value in (("activation", activation), ("output_activation", output_activation)):
        if value not in ACTIVATIONS:
            raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(ACTIVATIONS)}")
    widths = tuple(int(w) for w in widths)
    if any(w <= 0 for w in widths):
        raise ValueError(f"MLP widths must be positive integers, got {widths}")
    if num_classes < 1:
        raise ValueError(f"num_classes (output units) must be at least 1, got {num_classes}")
    in_features = math.prod(input_shape)
    sizes = (in_features,) + widths + (num_classes,)
    keys = jax.random.split(key, 2 * len(sizes))
    layers = tuple(
        Dense(
            fan_in,
            fan_out,
            ACTIVATIONS[activation if i < len(widths) else output_activation],
            init=init,
            key=keys[i],
        )
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]))
    )
    # Hidden layers 0..k-2 end their own blocks; the last block holds the last hidden layer (if
    # any) and the output layer.
    block_ends = tuple(range(1, len(widths))) + (len(layers),)
    heads = tuple(
        Dense(widths[b], num_classes, identity, init=init, key=keys[len(sizes) + b])
        if local_heads
        else None
        for b in range(len(block_ends) - 1)
    ) + (None,)
    return Network(layers, heads, block_ends, input_shape=tuple(input_shape))
