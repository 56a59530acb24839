"""Ensembles: many simulations that differ only in numbers, run as one vmapped computation."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray
from tqdm.auto import tqdm

from ..diagnostics import compiled_memory
from ..nn import Network
from ._simulate import SimulationResult, Simulator, prepare, run_presentations, split_state
from ._stream import Presentations


class EnsembleResult(eqx.Module):
    """Every member's ``SimulationResult`` stacked on a leading axis (``results``), and per
    member and presentation whether the solve ``failed``; ``diverged[m]`` is the first
    presentation whose loss was not finite (−1 if none). Members go on after another diverges."""

    results: SimulationResult
    failed: Array
    diverged: Array

    def member(self, m: int) -> SimulationResult:
        return jax.tree.map(lambda a: a[m], self.results)


def numeric(simulator: Simulator) -> Simulator:
    """``simulator`` with the numbers of its rule and non-idealities as float32 arrays, so that
    members that differ only in them share one compiled computation."""

    def to_array(v, types):
        return jnp.asarray(v, jnp.float32) if isinstance(v, types) else v

    # Integers of a rule may be counts; a non-ideality's numbers are all physical quantities.
    rule = jax.tree.map(lambda v: to_array(v, float), simulator.rule)
    hardware = tuple(
        jax.tree.map(lambda v: v if isinstance(v, bool) else to_array(v, (int, float)), h)
        for h in simulator.hardware
    )
    return dataclasses.replace(simulator, rule=rule, hardware=hardware)


def _stack(trees):
    return jax.tree.map(lambda *a: jnp.stack(a) if eqx.is_array(a[0]) else a[0], *trees)


def _structure(tree):
    """What members must share: the tree's structure and every leaf that is not an array."""
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, [None if eqx.is_array(v) else v for v in leaves]


@eqx.filter_jit
def _run_chunk(bound, state, stream, first, keys, count):
    """``count`` presentations of every member (compiled once per structure and count)."""
    return eqx.filter_vmap(
        lambda b, s, k: run_presentations(b, s, stream, first, count, k),
        in_axes=(eqx.if_array(0), 0, 0),
    )(bound, state, keys)


def _prepared(simulators, models, stream, keys):
    if not (len(simulators) == len(models) == len(keys)) or not simulators:
        raise ValueError(
            f"an ensemble needs as many simulators ({len(simulators)}), models ({len(models)}) "
            f"and keys ({len(keys)}), at least one"
        )
    prepared = [
        prepare(numeric(s), m, stream, key=k, keep_ideal=True)
        for s, m, k in zip(simulators, models, keys)
    ]
    bounds = [b for b, _ in prepared]
    first = _structure(bounds[0])
    for i, b in enumerate(bounds[1:], 1):
        if _structure(b) != first:
            raise ValueError(
                f"ensemble member {i} differs from member 0 in structure, not only in numbers "
                "(network shape, rule, perturbation, solver or kinds of non-ideality): run it in "
                "a separate ensemble"
            )
    run_keys = jnp.stack([jax.random.fold_in(k, 1) for k in keys])
    return _stack(bounds), _stack([s for _, s in prepared]), run_keys


def ensemble_memory(
    simulators: Sequence[Simulator],
    models: Sequence[Network],
    stream: Presentations,
    *,
    keys: Sequence[PRNGKeyArray],
    chunk: int = 50,
) -> dict[str, int]:
    """Compiled memory (bytes, ``ctlearn.diagnostics.compiled_memory``) of one call of
    ``chunk`` presentations of this ensemble, as ``simulate_ensemble`` runs it."""
    bound, state, run_keys = _prepared(simulators, models, stream, keys)
    return compiled_memory(_run_chunk, bound, state, stream, jnp.asarray(0), run_keys, chunk)


def simulate_ensemble(
    simulators: Sequence[Simulator],
    models: Sequence[Network],
    stream: Presentations,
    *,
    keys: Sequence[PRNGKeyArray],
    chunk: int = 50,
    progress: bool = True,
) -> EnsembleResult:
    """Member ``m`` is ``simulate(simulators[m], models[m], stream, key=keys[m])``, all in one
    ``vmap``: the members must share their structure (network shape, rule, perturbation,
    solver, the kinds of non-ideality) and may differ in numbers (weights, η, non-ideality
    strengths, keys). Non-idealities at their ideal values stay in (at zero strength), so that
    all members share one computation. A failed solve or a non-finite loss is recorded per
    member (``failed``, ``diverged``) instead of raising: a sweep keeps its other members.
    """
    bound, state, run_keys = _prepared(simulators, models, stream, keys)
    metrics = []
    bar = tqdm(total=stream.num, desc="presentations", unit="pres", disable=not progress)
    start = 0
    while start < stream.num:
        count = min(chunk, stream.num - start)
        state, out = _run_chunk(bound, state, stream, jnp.asarray(start), run_keys, count)
        metrics.append(out)
        start += count
        bar.update(count)
    bar.close()
    loss, acc, steps, failed, alignment = (jnp.concatenate(m, axis=1) for m in zip(*metrics))

    def result(b, s, loss, acc, steps, alignment):
        hardware = split_state(b, s)[1][1]
        return SimulationResult(
            b._model(s),
            s.rule,
            s.delta,
            s.perturbation,
            s.neurons,
            loss,
            acc,
            steps,
            alignment,
            b.circuit(s, hardware),
            s.hardware,
        )

    results = eqx.filter_vmap(result, in_axes=(eqx.if_array(0), 0, 0, 0, 0, 0))(
        bound, state, loss, acc, steps, alignment
    )
    finite = np.isfinite(np.asarray(loss))
    diverged = np.where(finite.all(axis=1), -1, np.argmin(finite, axis=1))
    return EnsembleResult(results, failed, jnp.asarray(diverged))
