"""LocalMixer (Ren et al. 2023, section 5, Table 2): an MLP-Mixer of residual blocks trained by
local losses, one replicated head per block and a final readout.

Block 0 cuts the input into patches and mixes channels (linear, then grouped linear); every later
block mixes tokens, then channels, then channels within groups, and adds its input before the last
ReLU. A local head after every block feeds the block's replicated loss; the final readout averages
the tokens of the last block and classifies them (with a stop-gradient before it in local modes).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import jax
from jaxtyping import PRNGKeyArray

from ctlearn.nn import (
    OBJECTIVES,
    GroupedLinear,
    Network,
    Readout,
    ReplicatedHead,
    TokenMixing,
    TokenwiseLinear,
)


@dataclasses.dataclass(frozen=True)
class MixerPreset:
    """One row of Table 2: ``patches`` per side, ``channels`` D (= hidden width), ``groups`` G."""

    blocks: int
    patches: int
    channels: int
    groups: int
    dataset: str
    params: str


PRESETS: dict[str, MixerPreset] = {
    "S/1/1": MixerPreset(1, 1, 256, 1, "MNIST", "272K"),
    "M/1/16": MixerPreset(1, 1, 512, 16, "MNIST", "429K"),
    "M/8/16": MixerPreset(4, 8, 512, 16, "CIFAR-10", "919K"),
    "L/8/64": MixerPreset(4, 8, 2048, 64, "CIFAR-10", "13.1M"),
    "L/32/64": MixerPreset(4, 32, 2048, 64, "ImageNet", "17.3M"),
}


def _grid(input_shape: tuple[int, ...], patches: int) -> tuple[int, ...]:
    """The patch grid for inputs of ``input_shape``: ``patches`` per side of an image [H, W, C],
    ``patches`` segments of a signal [L] or [L, C]."""
    if len(input_shape) == 3:
        return (patches, patches)
    if len(input_shape) in (1, 2):
        return (patches,)
    raise ValueError(
        f"LocalMixer takes images [H, W, C] or signals [L] / [L, C], got input shape {input_shape}"
    )


def local_mixer(
    input_shape: Sequence[int],
    num_classes: int,
    preset: str = "M/1/16",
    *,
    blocks: int | None = None,
    patches: int | None = None,
    channels: int | None = None,
    groups: int | None = None,
    objective: str = "supervised",
    projection: int = 128,
    temperature: float = 0.5,
    norm_input: bool = True,
    norm_grad: bool = True,
    replicated: bool = True,
    fused: bool = True,
    key: PRNGKeyArray,
) -> Network:
    """A LocalMixer: ``preset`` names a row of Table 2 (``PRESETS``); ``blocks``, ``patches`` (per
    side), ``channels`` and ``groups`` override its values.

    ``objective``: "supervised" (each block's head classifies) or "contrastive" (each head
    projects to ``projection`` dims scored by InfoNCE at ``temperature``; the batch then holds two
    views, see ``ctlearn.augment.two_views``); the readout always classifies. ``norm_input``:
    normalise before every linear map as well as after (Table 6); ``norm_grad``: local updates
    pull their signal back through the normalisation after the linear map (False: the "NG"
    variant of Table 5); ``replicated``/``fused``: see ``ReplicatedHead``.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown LocalMixer preset {preset!r}; valid: {', '.join(PRESETS)}")
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}")
    base = PRESETS[preset]
    blocks = base.blocks if blocks is None else blocks
    patches = base.patches if patches is None else patches
    channels = base.channels if channels is None else channels
    groups = base.groups if groups is None else groups
    for name, value in (
        ("blocks", blocks),
        ("patches", patches),
        ("channels", channels),
        ("groups", groups),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"LocalMixer {name} must be a positive integer, got {value!r}")
    if channels % groups:
        raise ValueError(f"groups ({groups}) must divide channels ({channels})")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    input_shape = tuple(int(s) for s in input_shape)
    grid = _grid(input_shape, patches)
    spatial = input_shape[: len(grid)]
    if any(s % g for s, g in zip(spatial, grid)):
        raise ValueError(
            f"LocalMixer with {patches} patches per side needs an input size divisible by it; "
            f"got {spatial}: choose patches among the divisors of the input size"
        )
    num_patches = math.prod(grid)
    patch_features = math.prod(input_shape) // num_patches

    keys = iter(jax.random.split(key, 4 * blocks + 1))
    stage = dict(norm_input=norm_input, norm_grad=norm_grad)
    layers, block_ends = [], []
    for b in range(blocks):
        if b == 0:
            layers.append(
                TokenwiseLinear(patch_features, channels, grid=grid, key=next(keys), **stage)
            )
        else:
            layers.append(TokenMixing(num_patches, key=next(keys), **stage))
            layers.append(TokenwiseLinear(channels, channels, key=next(keys), **stage))
        layers.append(GroupedLinear(groups, channels, channels, key=next(keys), **stage))
        block_ends.append(len(layers))
    layers.append(Readout(channels, num_classes, norm_input=norm_input))
    block_ends.append(len(layers))
    head_outputs = projection if objective == "contrastive" else num_classes
    heads = tuple(
        ReplicatedHead(
            groups,
            channels,
            head_outputs,
            norm_input=norm_input,
            objective=objective,
            temperature=temperature,
            replicated=replicated,
            fused=fused,
            key=next(keys),
        )
        for _ in range(blocks)
    ) + (None,)
    residual = (False,) + (True,) * (blocks - 1) + (False,)
    return Network(
        tuple(layers),
        heads,
        tuple(block_ends),
        flatten_input=False,
        input_shape=input_shape,
        residual=residual,
    )
