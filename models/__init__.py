"""Network architectures built from ``ctlearn.nn``, selectable by name."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ctlearn.nn import Network, make_network, register_architecture

from .alexnet import alexnet
from .fdfa_nets import fdfa_cnn, fdfa_cnn_reference, fdfa_fc
from .local_mixer import PRESETS as LOCAL_MIXER_PRESETS
from .local_mixer import local_mixer
from .mlp import mlp

MODELS: dict[str, Callable[..., Network]] = {
    "mlp": mlp,
    "fdfa_fc": fdfa_fc,
    "fdfa_cnn": fdfa_cnn,
    "fdfa_cnn_reference": fdfa_cnn_reference,
    "alexnet": alexnet,
    "local_mixer": local_mixer,
}
for _name, _builder in MODELS.items():  # what ctlearn's training code builds by name
    register_architecture(_name, _builder)


def make_model(
    name: str, input_shape: Sequence[int], num_classes: int, *, key, **options
) -> Network:
    """Build the architecture ``name`` for inputs of ``input_shape`` and ``num_classes`` outputs
    (any registered architecture: ``ctlearn.nn.make_network``)."""
    return make_network(name, input_shape, num_classes, key=key, **options)


__all__ = [
    "LOCAL_MIXER_PRESETS",
    "MODELS",
    "alexnet",
    "fdfa_cnn",
    "fdfa_cnn_reference",
    "fdfa_fc",
    "local_mixer",
    "make_model",
    "mlp",
]
