"""Discrete BP on an analog sweep's presentations: the reference a study's circuits are set
beside, trained by the discrete-time library (``ctlearn.train.run_steps`` with the registered BP
estimator and Optax's SGD), not by the simulator."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import optax

from .._mesh import to_host
from ..dynamics._ensemble import _stack as stack_members
from ..estimators import make_estimator
from ..nn import Network
from ..train import TrainState, run_steps
from ._analog import (
    AnalogBase,
    ModelFactory,
    dataset,
    evaluate_circuits,
    initial_network,
    parameter_means,
)


def train_discrete_bp(model: Network, stream, lr: float, *, loss: str = "cross_entropy") -> Network:
    """``model`` after one SGD step of ``lr`` per presentation of ``stream`` (a
    ``ct.Presentations``), in order, each on the presentation's batch with the exact gradient
    of the batch-mean ``loss`` (BP). Raises ``ctlearn.train.TrainingDiverged`` at the first
    non-finite loss."""
    _check_lr(lr)
    estimator = make_estimator("bp", loss=loss)
    optimizer = optax.sgd(lr)
    params = eqx.filter(model, eqx.is_inexact_array)
    state = TrainState.start(model, optimizer.init(params), estimator.init(model, key=None))
    batches = zip(stream.x, stream.y)
    return run_steps(estimator, optimizer, state, batches, jax.random.key(0)).state.model


def discrete_bp(
    base: AnalogBase, model: ModelFactory, seeds: Sequence[int], *, lr: float
) -> list[dict[str, Any]]:
    """Per seed, the network a sweep's member of that seed starts from (``model``, the same key)
    trained by ``train_discrete_bp`` on the sweep's presentations (``base.stream``: the same
    batches in the same order), then measured as ``AnalogSweep`` measures its members: test
    accuracy and loss on the first ``base.test_size`` test examples and the mean of the stored
    parameters. The base's rule, perturbation and hardware play no part: this is the ideal,
    discretely trained network.

    One step of ``lr = η_BP·T`` per presentation of duration T is gradient flow at rate η_BP
    over that presentation to first order in the step (``tests/test_sweep_discrete_bp.py``)."""
    _check_lr(lr)
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of ints, got {seeds!r}")
    data = dataset(base.dataset)
    stream = base.stream(data)
    trained = [train_discrete_bp(initial_network(base, data, model, s), stream, lr) for s in seeds]
    stacked = stack_members(trained)
    test_loss, test_acc = to_host(evaluate_circuits(stacked, data, base))
    means = to_host(parameter_means(stacked))
    return [
        {
            "seed": seed,
            "test_accuracy": float(test_acc[i]),
            "test_loss": float(test_loss[i]),
            "weight_mean": float(means[i]),
        }
        for i, seed in enumerate(seeds)
    ]


def _check_lr(lr) -> None:
    if (
        isinstance(lr, bool)
        or not isinstance(lr, numbers.Real)
        or not (math.isfinite(lr) and lr > 0)
    ):
        raise ValueError(f"the discrete BP reference's lr must be a finite number > 0, got {lr!r}")
