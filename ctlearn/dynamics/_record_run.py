"""Signals recorded through a whole run: ``record_run`` calls a function of the state, the
signals, the network and the rule at evenly spaced instants of every presentation of one
``simulate`` run, so that the traces are continuous across presentations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import numpy as np

from ._record import Recording
from ._rule import AbstractRule
from ._simulate import simulate
from ._simulator import Simulator
from ._stream import Presentations


def record_run(
    simulator: Simulator,
    model,
    stream: Presentations,
    *,
    key,
    times: int,
    record: Callable[..., Any],
) -> tuple[np.ndarray, Any, Any]:
    """``record(state, signals, model, rule)`` at ``times`` evenly spaced instants of every
    presentation of ``stream`` (``model``: the network at that instant; ``rule``: the
    simulator's) during one ``simulate`` run, so the traces are one continuous run. Returns
    ``(t, recorded, model)``: global times [presentations × times], the records stacked along
    the first axis, the final model. A module-level ``record`` is compiled once for every run
    of the same settings.
    """
    static = eqx.partition(model, eqx.is_inexact_array)[1]
    recording = Recording(_WithModel(record, static, simulator.rule), times)
    result = simulate(
        simulator, model, stream, key=key, chunk=stream.num, progress=False, record=recording
    )
    local = np.asarray(recording.local_times(stream.duration))
    t = np.concatenate([k * stream.duration + local for k in range(stream.num)])
    recorded = jax.tree.map(lambda a: np.asarray(a).reshape(-1, *a.shape[2:]), result.recorded)
    return t, recorded, result.model


class _WithModel(eqx.Module):
    """``record(state, signals)`` as ``Recording`` calls it, handing ``record`` the network
    at that instant and the rule as well."""

    record: Callable[..., Any] = eqx.field(static=True)
    static: Any = eqx.field(static=True)
    rule: AbstractRule

    def __call__(self, state, signals):
        model = eqx.combine(state.params, self.static)
        return self.record(state, signals, model, self.rule)
