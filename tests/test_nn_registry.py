"""Architectures by name (``ctlearn.nn.register_architecture``): the project's models arrive
through the entry point without an import of ``models``, and a user's own builder trains by name."""

import subprocess
import sys

import jax
import pytest

from ctlearn.nn import _registry, architecture, make_network, register_architecture
from ctlearn.train import TrainConfig, train
from models import mlp


def test_the_training_code_finds_the_projects_models_without_importing_them():
    # A fresh interpreter that never imports models: the entry point registers them.
    code = (
        "import sys; from ctlearn.train import TrainConfig; "
        "TrainConfig(model='local_mixer', model_options={'preset': 'S/1/1'}); "
        "print('models' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_a_registered_builder_trains_by_name_and_names_are_guarded(monkeypatch):
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))

    def tiny(input_shape, num_classes, *, key, width: int = 8):
        """A one-hidden-layer MLP (test architecture)."""
        return mlp(input_shape, num_classes, widths=(width,), key=key)

    assert register_architecture("tiny", tiny) is tiny
    register_architecture("tiny", tiny)  # the same builder again: a no-op
    with pytest.raises(ValueError, match="'tiny' is already registered .*replace=True"):
        register_architecture("tiny", mlp)
    config = TrainConfig(model="tiny", model_options={"width": 4}, epochs=1, batch_size=500)
    result = train(config, progress=False)
    assert result.model.layers[0].weight.shape == (40, 4)
    assert make_network("tiny", (40,), 10, key=jax.random.key(0)).layers[0].weight.shape == (40, 8)
    with pytest.raises(ValueError, match="model 'tiny' has no option.*valid options: width"):
        TrainConfig(model="tiny", model_options={"depth": 2})
    with pytest.raises(ValueError, match="unknown model 'resnet'; valid models: alexnet, .*tiny"):
        architecture("resnet")
    with pytest.raises(TypeError, match="must be callable"):
        register_architecture("broken", 3)
