"""Checkpoints: a ``TrainState`` serialised with Equinox, written atomically."""

from __future__ import annotations

import os

import equinox as eqx

from .._atomic import atomic_open
from ._state import TrainState


def save_checkpoint(path: str | os.PathLike, state: TrainState) -> None:
    """Writes ``state`` to ``path``; a crash mid-write leaves the previous checkpoint intact."""
    with atomic_open(path, "wb") as f:
        eqx.tree_serialise_leaves(f, state)


def load_checkpoint(path: str | os.PathLike, like: TrainState) -> TrainState:
    """Reads a checkpoint into the structure of ``like`` (a freshly initialised state of the same
    run configuration)."""
    with open(path, "rb") as f:
        return eqx.tree_deserialise_leaves(f, like)
