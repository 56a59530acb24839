"""Losses, selectable by name."""

from collections.abc import Callable

from ._classification import accuracy as accuracy
from ._classification import cross_entropy as cross_entropy
from ._classification import mse as mse

LOSSES: dict[str, Callable] = {"cross_entropy": cross_entropy, "mse": mse}


def get_loss(name: str) -> Callable:
    """The per-example loss called ``name``."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid losses: {', '.join(LOSSES)}")
    return LOSSES[name]
