"""Losses, selectable by name."""

from collections.abc import Callable

from ._classification import accuracy as accuracy
from ._classification import cross_entropy as cross_entropy
from ._classification import mse as mse
from ._contrastive import contrastive_head_loss as contrastive_head_loss
from ._contrastive import info_nce as info_nce
from ._replicated import linear_head_loss as linear_head_loss
from ._replicated import naive_replicated_loss as naive_replicated_loss
from ._replicated import replicated_loss as replicated_loss

LOSSES: dict[str, Callable] = {"cross_entropy": cross_entropy, "mse": mse}


def get_loss(name: str) -> Callable:
    """The per-example loss called ``name``."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid losses: {', '.join(LOSSES)}")
    return LOSSES[name]


__all__ = [
    "accuracy",
    "cross_entropy",
    "mse",
    "contrastive_head_loss",
    "info_nce",
    "linear_head_loss",
    "naive_replicated_loss",
    "replicated_loss",
    "LOSSES",
    "get_loss",
]
