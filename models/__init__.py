"""Network architectures built from ``ctlearn.nn``, selectable by name."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ctlearn.nn import Network

from .alexnet import alexnet
from .fdfa_nets import fdfa_cnn, fdfa_fc
from .local_mixer import PRESETS as LOCAL_MIXER_PRESETS
from .local_mixer import local_mixer
from .mlp import mlp

MODELS: dict[str, Callable[..., Network]] = {
    "mlp": mlp,
    "fdfa_fc": fdfa_fc,
    "fdfa_cnn": fdfa_cnn,
    "alexnet": alexnet,
    "local_mixer": local_mixer,
}


def make_model(
    name: str, input_shape: Sequence[int], num_classes: int, *, key, **options
) -> Network:
    """Build the architecture ``name`` for inputs of ``input_shape`` and ``num_classes`` outputs."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(sorted(MODELS))}")
    return MODELS[name](tuple(input_shape), num_classes, key=key, **options)


__all__ = [
    "LOCAL_MIXER_PRESETS",
    "MODELS",
    "alexnet",
    "fdfa_cnn",
    "fdfa_fc",
    "local_mixer",
    "make_model",
    "mlp",
]
