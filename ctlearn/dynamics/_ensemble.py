"""Ensembles: many simulations that differ only in numbers, run as one vmapped computation."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jaxtyping import Array, PRNGKeyArray
from tqdm.auto import tqdm

from .._mesh import (
    Devices,
    check_divisible,
    line_mesh,
    replicate,
    replicated,
    resolve_devices,
    split_leading,
    split_sharding,
    to_host,
)
from ..diagnostics import compiled_memory
from ..nn import Network
from ._engine import common_plan
from ._simulate import SimulationResult, Simulator, prepare, run_presentations
from ._solve import MEMBER_SOLVES, brownian_kind
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


MEMBER_AXIS = "members"


@eqx.filter_jit
def _run_chunk(bound, state, stream, first, keys, count, members):
    """``count`` presentations of every member (compiled once per structure, count and
    sharding). With ``members`` (the member axis split over a mesh; the inputs placed so), the
    compiler partitions the vmapped members over the devices: each device solves its own, and
    only the solver loops' scalar stopping tests are reduced across devices."""
    out = eqx.filter_vmap(
        lambda b, s, k: run_presentations(b, s, stream, first, count, k),
        in_axes=(eqx.if_array(0), 0, 0),
    )(bound, state, keys)
    return out if members is None else eqx.filter_shard(out, members)


def _member_sharding(devices: Devices, members: int) -> NamedSharding | None:
    """How ``members`` ensemble members are split over ``devices`` (see ``simulate_ensemble``):
    along their first axis over a one-axis mesh, or ``None`` for JAX's default device alone
    (nothing sharded, as without devices). Refuses, before any work, a member count that does
    not split evenly over the devices."""
    chosen = resolve_devices(devices)
    check_divisible(members, len(chosen), "ensemble size")
    if chosen == (jax.devices()[0],):
        return None
    return split_sharding(line_mesh(chosen, MEMBER_AXIS))


def _prepared(simulators, models, stream, keys, devices, members, brownian):
    if not (len(simulators) == len(models) == len(keys)) or not simulators:
        raise ValueError(
            f"an ensemble needs as many simulators ({len(simulators)}), models ({len(models)}) "
            f"and keys ({len(keys)}), at least one"
        )
    if members not in MEMBER_SOLVES:
        raise ValueError(f"members={members!r}; valid: {', '.join(MEMBER_SOLVES)}")
    sharding = _member_sharding(devices, len(simulators))
    prepared = [
        prepare(numeric(s), m, stream, key=k, keep_ideal=True)
        for s, m, k in zip(simulators, models, keys)
    ]
    plans = common_plan([b.plan for b, _ in prepared])
    prepared = [
        (dataclasses.replace(b, plan=_plan(p, members, brownian)), state)
        for (b, state), p in zip(prepared, plans)
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
    members = (_stack(bounds), _stack([s for _, s in prepared]), run_keys)
    if sharding is not None:
        members = split_leading(members, sharding)
        stream = _whole(stream, sharding)
    return *members, stream, sharding


def _plan(plan, members: str, brownian: str | None):
    """``plan`` with the ensemble's way of solving its members and its Brownian path (checked
    against the plan: one increment per step needs a fixed step)."""
    if brownian is not None:
        brownian_kind(plan, brownian)
    return dataclasses.replace(plan, members=members, brownian=brownian)


def _whole(tree, members: NamedSharding | None):
    """``tree`` held whole on every device the members are split over."""
    return tree if members is None else replicate(tree, replicated(members.mesh))


def ensemble_memory(
    simulators: Sequence[Simulator],
    models: Sequence[Network],
    stream: Presentations,
    *,
    keys: Sequence[PRNGKeyArray],
    chunk: int = 50,
    devices: Devices = None,
    members: str = "fused",
    brownian: str | None = None,
) -> dict[str, int]:
    """Compiled memory (bytes, ``ctlearn.diagnostics.compiled_memory``) of one call of
    ``chunk`` presentations of this ensemble, as ``simulate_ensemble`` runs it (per device when
    the members are split over several ``devices``)."""
    bound, state, run_keys, stream, sharding = _prepared(
        simulators, models, stream, keys, devices, members, brownian
    )
    first = _whole(jnp.asarray(0), sharding)
    return compiled_memory(_run_chunk, bound, state, stream, first, run_keys, chunk, sharding)


def simulate_ensemble(
    simulators: Sequence[Simulator],
    models: Sequence[Network],
    stream: Presentations,
    *,
    keys: Sequence[PRNGKeyArray],
    chunk: int = 50,
    progress: bool = True,
    devices: Devices = None,
    members: str = "fused",
    brownian: str | None = None,
) -> EnsembleResult:
    """Member ``m`` is ``simulate(simulators[m], models[m], stream, key=keys[m])``, all in one
    ``vmap``: the members must share their structure (network shape, rule, perturbation,
    solver, the kinds of non-ideality) and may differ in numbers (weights, η, non-ideality
    strengths, keys). Non-idealities at their ideal values stay in (at zero strength), so that
    all members share one computation. A failed solve or a non-finite loss is recorded per
    member (``failed``, ``diverged``) instead of raising: a sweep keeps its other members.

    ``devices`` (``None``: all of ``jax.devices()``, every host's after
    ``ctlearn.train.initialize_distributed``; a count; or a list of devices) share the members:
    with more than one, the member axis is split evenly over a one-axis mesh of them and each
    device runs its own members; the results stay split the same way, and only the per
    presentation metrics (``loss``, ``accuracy``, ``steps``, ``alignment``, ``failed``) are
    gathered to the host. A member count that does not divide over the devices is refused
    before any work. On one device nothing is sharded.

    ``members``: at a fixed step the members' presentations are solved as one solve carrying
    the member axis in its state (``"fused"``, one step loop for all) or each member's solve
    vmapped (``"vmap"``, the former path; adaptive steps always take it). ``brownian``: the
    noise's Brownian path (``None``: one increment per step at a fixed step, the
    ``VirtualBrownianTree`` otherwise; or ``"increments"``, ``"tree"``). Both only change how
    the same numbers are computed, and the law of the noise, not a member's noise-free result.
    """
    bound, state, run_keys, stream, sharding = _prepared(
        simulators, models, stream, keys, devices, members, brownian
    )
    metrics = []
    bar = tqdm(total=stream.num, desc="presentations", unit="pres", disable=not progress)
    start = 0
    while start < stream.num:
        count = min(chunk, stream.num - start)
        first = _whole(jnp.asarray(start), sharding)
        state, out = _run_chunk(bound, state, stream, first, run_keys, count, sharding)
        metrics.append(out)
        start += count
        bar.update(count)
    bar.close()
    metrics = tuple(jnp.concatenate(m, axis=1) for m in zip(*metrics))
    if sharding is not None:
        metrics = tuple(jnp.asarray(m) for m in to_host(metrics))
    loss, acc, steps, failed, alignment = metrics

    def parts(b, s):
        return b.model(s), b.circuit(s)

    model, circuit = eqx.filter_vmap(parts, in_axes=(eqx.if_array(0), 0))(bound, state)
    results = SimulationResult(
        model,
        state.rule,
        state.delta,
        state.perturbation,
        state.neurons,
        loss,
        acc,
        steps,
        alignment,
        circuit,
        state.hardware,
    )
    finite = np.isfinite(np.asarray(loss))
    diverged = np.where(finite.all(axis=1), -1, np.argmin(finite, axis=1))
    return EnsembleResult(results, failed, jnp.asarray(diverged))
