"""The FDFA paper's benchmark networks (Bacho & Chu): fully connected nets of depth 2-4 (Table B.5)
and the shallow CNN 15C5-P2-40C5-P2-128-10 (Table 2), ReLU hidden layers and a linear output;
also that CNN as the paper's public code builds it (batch norm, one pool), to tell the two apart."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import jax
from jaxtyping import PRNGKeyArray

from ctlearn.nn import Conv2d, Dense, FlatDense, Network, identity

from .mlp import mlp


def fdfa_fc(
    input_shape: Sequence[int],
    num_classes: int,
    depth: int = 2,
    *,
    width: int | None = None,
    local_heads: bool = True,
    init: str = "kaiming_uniform",
    key: PRNGKeyArray,
) -> Network:
    """A fully connected net of ``depth`` layers: depth − 1 ReLU layers of ``width`` units and a
    linear output. ``width`` defaults to the paper's: 800 for 784 inputs (MNIST, Fashion-MNIST),
    1000 otherwise (CIFAR10); blocks and local heads as in ``mlp``."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 2:
        raise ValueError(f"fdfa_fc depth (number of layers) must be an integer >= 2, got {depth!r}")
    if width is None:
        width = 800 if math.prod(input_shape) == 784 else 1000
    return mlp(
        input_shape,
        num_classes,
        (width,) * (depth - 1),
        local_heads=local_heads,
        init=init,
        key=key,
    )


def _image_shape(name: str, input_shape: Sequence[int], num_classes: int) -> tuple[int, ...]:
    """``input_shape`` as an (height, width, channels) tuple of positive integers, checked."""
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or not all(
        isinstance(s, numbers.Integral) and s > 0 for s in input_shape
    ):
        raise ValueError(
            f"{name} needs an image input_shape (height, width, channels), got {input_shape}"
        )
    if num_classes < 1:
        raise ValueError(f"num_classes (output units) must be at least 1, got {num_classes}")
    return tuple(int(s) for s in input_shape)


def _shallow_cnn(
    layers: tuple, head_features: tuple[int, int] | None, input_shape, init: str, keys
) -> Network:
    """Two convolutions, a hidden layer and the output as a ``Network``: each convolution its own
    block with a linear local head on its output map (``head_features``: that map's size; None
    for no heads), the hidden layer and the output the final block, as in ``mlp``."""
    heads = (None, None, None)
    if head_features is not None:
        num_classes = layers[-1].out_features
        heads = tuple(
            FlatDense(n, num_classes, identity, init=init, key=k)
            for n, k in zip(head_features, keys)
        ) + (None,)
    return Network(layers, heads, (1, 2, 4), flatten_input=False, input_shape=input_shape)


def fdfa_cnn(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    local_heads: bool = True,
    init: str = "kaiming_uniform",
    key: PRNGKeyArray,
) -> Network:
    """15C5-P2-40C5-P2-128-10 on (H, W, C) images: two unpadded 5×5 ReLU convolutions each
    followed by a 2×2 max-pool, a 128-unit ReLU layer and a linear output (no batch norm).

    Each convolution is its own block with a linear local head on its pooled feature map; the
    128-unit layer and the output form the final block, as in ``mlp``.
    """
    input_shape = _image_shape("fdfa_cnn", input_shape, num_classes)
    height, width, channels = input_shape
    # Each unpadded 5×5 convolution trims 4 rows/columns; each pool halves, rounding down.
    map_sizes = []
    for _ in range(2):
        height, width = (height - 4) // 2, (width - 4) // 2
        if height < 1 or width < 1:
            raise ValueError(f"fdfa_cnn needs images of at least 16×16, got {input_shape}")
        map_sizes.append(height * width)
    keys = jax.random.split(key, 6)
    conv1 = Conv2d(channels, 15, 5, pool=2, init=init, key=keys[0])
    conv2 = Conv2d(15, 40, 5, pool=2, init=init, key=keys[1])
    hidden = FlatDense(40 * map_sizes[1], 128, init=init, key=keys[2])
    output = Dense(128, num_classes, identity, init=init, key=keys[3])
    head_features = (15 * map_sizes[0], 40 * map_sizes[1]) if local_heads else None
    return _shallow_cnn((conv1, conv2, hidden, output), head_features, input_shape, init, keys[4:])


def fdfa_cnn_reference(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    local_heads: bool = True,
    init: str = "kaiming_uniform",
    key: PRNGKeyArray,
) -> Network:
    """The shallow CNN of the FDFA paper's public code, which differs from the paper's
    description (``fdfa_cnn``): batch norm after both convolutions and the 128-unit layer, and
    one 2×2 max-pool, after the second convolution. On (H, W, C) images: 5×5 conv (15) → BN →
    ReLU; 5×5 conv (40) → BN → ReLU → pool; 128 units → BN → ReLU; a linear output. On 28×28
    inputs the 128-unit layer has 4000 inputs (5760 on 32×32), as in that code.

    Blocks and local heads as in ``fdfa_cnn``.
    """
    height, width, channels = _image_shape("fdfa_cnn_reference", input_shape, num_classes)
    # Two unpadded 5×5 convolutions trim 8 rows/columns; the pool halves, rounding down.
    first = (height - 4, width - 4)
    second = ((height - 8) // 2, (width - 8) // 2)
    if min(second) < 1:
        raise ValueError(
            f"fdfa_cnn_reference needs images of at least 10×10, got {tuple(input_shape)}"
        )
    keys = jax.random.split(key, 6)
    conv1 = Conv2d(channels, 15, 5, batch_norm=True, init=init, key=keys[0])
    conv2 = Conv2d(15, 40, 5, pool=2, batch_norm=True, init=init, key=keys[1])
    hidden = FlatDense(40 * math.prod(second), 128, batch_norm=True, init=init, key=keys[2])
    output = Dense(128, num_classes, identity, init=init, key=keys[3])
    head_features = (15 * math.prod(first), 40 * math.prod(second)) if local_heads else None
    return _shallow_cnn(
        (conv1, conv2, hidden, output), head_features, (height, width, channels), init, keys[4:]
    )
