"""The discrete training loop: one optimizer step per batch, in order, with a per-step callback.

``train`` runs its epochs through it; studies that measure something during training (angles,
variances, learning curves on a presentation stream) pass a callback instead of writing a loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..estimators import AbstractEstimator
from ._state import TrainState
from ._step import train_step

CHECK_EVERY = 25  # steps between finiteness checks (each one waits for the device)

# callback(i, state, x, y), called before step i (0-based) with that step's batch and the state
# after i steps; returning True stops the loop there, before the step.
StepCallback = Callable[[int, TrainState, Array, Array], "bool | None"]
# check(losses, state): the batch losses since the last check and the state after the last one.
LossCheck = Callable[[list[Array], TrainState], None]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; ``step`` (1-based, counted over the whole run, as
    ``TrainState.step``) names the step whose loss was not finite, and ``epoch`` (1-based) its
    epoch where one is known (``None`` otherwise)."""

    def __init__(self, message: str, *, step: int, epoch: int | None = None):
        super().__init__(message)
        self.epoch = epoch
        self.step = step


def first_nonfinite(losses: list[Array], state: TrainState) -> tuple[int, float] | None:
    """The run's step number (1-based) and value of the first non-finite loss among ``losses``,
    the losses of the steps that led to ``state``; ``None`` when all are finite."""
    if not losses:
        return None
    values = np.asarray(jnp.stack(losses))
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size == 0:
        return None
    return int(state.step) - len(values) + int(bad[0]) + 1, float(values[bad[0]])


def check_finite(losses: list[Array], state: TrainState) -> None:
    """Raises ``TrainingDiverged`` naming the first step whose loss is not finite."""
    found = first_nonfinite(losses, state)
    if found is not None:
        step, value = found
        raise TrainingDiverged(
            f"training diverged: the loss is {value} at step {step}. Try a smaller learning rate.",
            step=step,
        )


@dataclasses.dataclass(frozen=True)
class StepsResult:
    """What ``run_steps`` did: the final state, each step's batch loss and accuracy (at the
    weights before its update), and whether the callback stopped the loop early."""

    state: TrainState
    losses: list[Float[Array, ""]]
    accuracies: list[Float[Array, ""]]
    stopped: bool


def run_steps(
    estimator: AbstractEstimator,
    optimizer: optax.GradientTransformation,
    state: TrainState,
    batches: Iterable[tuple[Float[Array, " batch *input"], Int[Array, " batch"]]],
    key: PRNGKeyArray,
    *,
    callback: StepCallback | None = None,
    check: LossCheck = check_finite,
    check_every: int = CHECK_EVERY,
    prepare: Callable[[tuple[Array, Array]], tuple[Array, Array]] | None = None,
    state_sharding: Any = None,
    augmentation: Any = None,
) -> StepsResult:
    """One ``train_step`` of ``estimator`` and ``optimizer`` per batch of ``batches``, in order,
    all with ``key`` (each step folds in its step count, so runs are reproducible and resumable).

    ``callback(i, state, x, y)`` is called before step i (0-based) with the state after i steps
    and step i's batch; returning True stops the loop before that step. ``check(losses, state)``
    receives the losses of every ``check_every`` steps (and of the last ones) and by default
    raises ``TrainingDiverged`` at the first non-finite one. ``prepare`` maps each batch before
    its step (e.g. ``DataParallel.shard_batch``); ``state_sharding`` and ``augmentation`` are
    passed to ``train_step``.
    """
    if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1:
        raise ValueError(f"check_every must be a positive int, got {check_every!r}")
    losses: list[Array] = []
    accuracies: list[Array] = []
    pending: list[Array] = []
    for i, (x, y) in enumerate(batches):
        if callback is not None and callback(i, state, x, y):
            check(pending, state)
            return StepsResult(state, losses, accuracies, stopped=True)
        if prepare is not None:
            x, y = prepare((x, y))
        state, loss, accuracy = train_step(
            estimator,
            optimizer,
            state,
            x,
            y,
            key,
            state_sharding=state_sharding,
            augmentation=augmentation,
        )
        losses.append(loss)
        accuracies.append(accuracy)
        pending.append(loss)
        if len(pending) == check_every:
            check(pending, state)
            pending = []
    check(pending, state)
    return StepsResult(state, losses, accuracies, stopped=False)
