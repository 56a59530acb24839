"""AlexNet as the FDFA paper trains it: batch normalisation after every convolution, no dropout."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from ctlearn.nn import Conv2d, Dense, FlatDense, Network, identity

# (out channels, kernel, stride, padding, max-pool (window, stride) or None), as in Krizhevsky et
# al. with 64/192/384/256/256 channels (the reference code's torchvision layout).
_CONVS = (
    (64, 11, 4, 2, (3, 2)),
    (192, 5, 1, 2, (3, 2)),
    (384, 3, 1, 1, None),
    (256, 3, 1, 1, None),
    (256, 3, 1, 1, (3, 2)),
)
_HIDDEN = (4096, 4096)


def alexnet(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    local_heads: bool = True,
    init: str = "kaiming_uniform",
    key: PRNGKeyArray,
) -> Network:
    """AlexNet on (H, W, C) images: five convolutions (each batch-normalised, ReLU; max-pool 3/2
    after the 1st, 2nd and 5th), two 4096-unit ReLU layers and a linear output.

    At 224×224 the last feature map is 6×6×256 (9216 features), as in the paper (CIFAR-100 images
    are resized to 224 by the reference code). Every layer but the last two is its own block
    with a linear local head on its output; the last hidden layer and the output form the final
    block, as in ``mlp``.
    """
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != 3:
        raise ValueError(
            f"alexnet needs an image input_shape (height, width, channels), got {input_shape}"
        )
    if num_classes < 1:
        raise ValueError(f"num_classes (output units) must be at least 1, got {num_classes}")
    keys = iter(jax.random.split(key, 2 * (len(_CONVS) + len(_HIDDEN) + 1)))
    layers, channels = [], input_shape[-1]
    for out, kernel, stride, padding, pool in _CONVS:
        conv = Conv2d(
            channels,
            out,
            kernel,
            stride=stride,
            padding=padding,
            pool=pool,
            batch_norm=True,
            init=init,
            key=next(keys),
        )
        layers.append(conv)
        channels = out
    shapes = _output_shapes(layers, input_shape)
    if min(shapes[-1][:2]) < 1:
        raise ValueError(f"alexnet needs images of at least 63×63, got {input_shape}")
    features = math.prod(shapes[-1])
    for width in _HIDDEN:
        layer_cls = FlatDense if len(layers) == len(_CONVS) else Dense
        layers.append(layer_cls(features, width, init=init, key=next(keys)))
        features = width
    layers.append(Dense(features, num_classes, identity, init=init, key=next(keys)))
    block_ends = tuple(range(1, len(layers) - 1)) + (len(layers),)
    outputs = shapes + [(w,) for w in _HIDDEN]
    heads = tuple(
        FlatDense(math.prod(outputs[b]), num_classes, identity, init=init, key=next(keys))
        if local_heads
        else None
        for b in range(len(block_ends) - 1)
    ) + (None,)
    return Network(tuple(layers), heads, block_ends, flatten_input=False, input_shape=input_shape)


def _output_shapes(layers, input_shape) -> list[tuple[int, ...]]:
    """Each layer's output shape for one image (shape evaluation only, no computation)."""

    def run(x):
        outputs = []
        for layer in layers:
            x = layer(x)[0]
            outputs.append(x)
        return outputs

    probe = jax.ShapeDtypeStruct((2,) + input_shape, jnp.float32)
    return [tuple(s.shape[1:]) for s in jax.eval_shape(run, probe)]
