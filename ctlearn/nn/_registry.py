"""Architectures by name: a registry that network packages add their builders to, so that the
training code needs no import of any particular package of architectures.

A package registers its builders when it is imported (``register_architecture``) and announces
itself to ctlearn through the ``ctlearn.architectures`` entry-point group, which is loaded the
first time a name is looked up; this project's ``models`` package is registered that way.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Sequence

from jaxtyping import PRNGKeyArray

from ._network import Network

ENTRY_POINT_GROUP = "ctlearn.architectures"
Builder = Callable[..., Network]  # builder(input_shape, num_classes, *, key, **options)

_REGISTRY: dict[str, Builder] = {}
_LOADED: set[str] = set()  # entry points already imported


def register_architecture(name: str, builder: Builder, *, replace: bool = False) -> Builder:
    """Makes ``builder`` (``builder(input_shape, num_classes, *, key, **options) -> Network``)
    available as ``name``. Registering another builder under a taken name is refused unless
    ``replace``; registering the same one again is a no-op. Returns ``builder``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"an architecture name must be a non-empty str, got {name!r}")
    if not callable(builder):
        raise TypeError(f"the builder of architecture {name!r} must be callable, got {builder!r}")
    taken = _REGISTRY.get(name)
    if taken is not None and taken is not builder and not replace:
        raise ValueError(
            f"architecture {name!r} is already registered (by {taken.__module__}."
            f"{taken.__qualname__}); pass replace=True to replace it"
        )
    _REGISTRY[name] = builder
    return builder


def architectures() -> dict[str, Builder]:
    """Every registered architecture, name -> builder (after loading the packages announced in
    the ``ctlearn.architectures`` entry-point group)."""
    _load_entry_points()
    return dict(_REGISTRY)


def architecture(name: str) -> Builder:
    """The builder registered as ``name``; an unknown name is refused with the valid ones."""
    registry = architectures()
    if name not in registry:
        valid = ", ".join(sorted(registry)) or "none registered"
        raise ValueError(
            f"unknown model {name!r}; valid models: {valid} (this project's architectures "
            "register when its models package is imported; register your own with "
            "ctlearn.nn.register_architecture)"
        )
    return registry[name]


def make_network(
    name: str, input_shape: Sequence[int], num_classes: int, *, key: PRNGKeyArray, **options
) -> Network:
    """The architecture ``name`` built for inputs of ``input_shape`` and ``num_classes``
    outputs, with its ``options``."""
    return architecture(name)(tuple(input_shape), num_classes, key=key, **options)


def _load_entry_points() -> None:
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.value not in _LOADED:
            _LOADED.add(entry.value)
            entry.load()  # importing the package registers its builders
