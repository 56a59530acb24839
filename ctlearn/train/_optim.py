"""Optimizers and learning-rate schedules by name, built from Optax."""

from __future__ import annotations

from collections.abc import Callable

import jax
import optax

OPTIMIZERS = ("sgd", "adam", "lars")
SCHEDULES = ("constant", "linear", "cosine", "exp")


def make_schedule(
    name: str,
    lr: float,
    *,
    steps_per_epoch: int,
    epochs: int,
    decay: float = 0.95,
    warmup_epochs: int = 0,
) -> optax.Schedule:
    """The learning rate at each step.

    ``constant``: ``lr``; ``linear``: ``lr`` decayed linearly to 0 at the last step; ``cosine``:
    cosine decay from ``lr`` to 0; ``exp``: ``lr · decay**epoch`` (multiplied by ``decay`` after
    every epoch, as in the FDFA paper). ``warmup_epochs`` > 0 prepends a linear ramp from 0 to
    ``lr`` (the decay then spans the remaining epochs).
    """
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; valid schedules: {', '.join(SCHEDULES)}")
    warmup = warmup_epochs * steps_per_epoch
    remaining = max(epochs * steps_per_epoch - warmup, 1)
    builders: dict[str, Callable[[], optax.Schedule]] = {
        "constant": lambda: optax.constant_schedule(lr),
        "linear": lambda: optax.linear_schedule(lr, 0.0, remaining),
        "cosine": lambda: optax.cosine_decay_schedule(lr, remaining),
        "exp": lambda: optax.exponential_decay(
            lr, transition_steps=steps_per_epoch, decay_rate=decay, staircase=True
        ),
    }
    schedule = builders[name]()
    if warmup == 0:
        return schedule
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), schedule], [warmup])


def _weights(params):
    """Weight decay's mask: matrices and kernels (ndim ≥ 2), not biases or normalisation
    vectors."""
    return jax.tree.map(lambda a: a.ndim >= 2, params)


def make_optimizer(
    name: str, schedule: optax.Schedule, *, momentum: float = 0.9, weight_decay: float = 0.0
) -> optax.GradientTransformation:
    """``sgd`` (with ``momentum``; 0 for plain SGD), ``adam`` (β₁ 0.9, β₂ 0.999, ε 1e-8) or
    ``lars`` (layer-wise trust ratios, with ``momentum``; for large-batch contrastive training),
    with decoupled ``weight_decay`` on the weights (not the biases) when it is non-zero."""
    if name == "sgd":
        sgd = optax.sgd(schedule, momentum=momentum or None)
        if weight_decay == 0.0:
            return sgd
        return optax.chain(optax.add_decayed_weights(weight_decay, mask=_weights), sgd)
    if name == "adam":
        if weight_decay == 0.0:
            return optax.adam(schedule)
        return optax.adamw(schedule, weight_decay=weight_decay, mask=_weights)
    if name == "lars":
        return optax.lars(
            schedule,
            weight_decay=weight_decay,
            weight_decay_mask=_weights,
            trust_ratio_mask=_weights,
            momentum=momentum,
        )
    raise ValueError(f"unknown optimizer {name!r}; valid optimizers: {', '.join(OPTIMIZERS)}")
