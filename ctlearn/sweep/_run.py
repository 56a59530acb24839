"""Running a sweep chunk by chunk into a directory, resumable after an interruption."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from tqdm.auto import tqdm

from ..files import atomic_write_text, read_json_object
from ._spec import Member, SweepSpec, canonical, spec_differences
from ._table import (
    RESULTS_CSV,
    RESULTS_JSON,
    SPEC_FILE,
    damaged_hint,
    load_table,
    rows_csv_text,
    rows_json_text,
)

Evaluate = Callable[[SweepSpec, list[Member]], Sequence[Mapping[str, Any]]]


def run_sweep(
    spec: SweepSpec,
    out_dir: str | os.PathLike,
    evaluate: Evaluate,
    *,
    progress: bool = True,
    max_chunks: int | None = None,
) -> list[dict[str, Any]]:
    """Evaluates every chunk of ``spec`` not yet in ``out_dir`` and returns the table: one row
    ``{"point", "seed", **params, **metrics}`` per finished member, sorted by (point, seed), with
    None where a metric was non-finite (as ``load_table`` reads it).

    ``evaluate(spec, members)`` returns one dict of scalar metrics per member, in order. After
    every chunk ``results.json`` and ``results.csv`` are replaced atomically (``spec.json`` is
    written before the first), so a killed sweep leaves complete files and a second call with the
    same spec evaluates only the chunks still missing; a spec that differs from the saved one
    (other than in its name) is refused. ``max_chunks`` caps the chunks evaluated by this call,
    to run a sweep in slices. ``progress`` shows a bar over members; nothing else is printed.

    With several processes (hosts, after ``ctlearn.train.initialize_distributed``) every
    process calls ``run_sweep`` alike and evaluates the chunks missing from process 0's
    ``out_dir``; only process 0 writes. Each process returns the rows it read and evaluated: the
    same table on every process when ``out_dir`` is on a filesystem they share.
    """
    if max_chunks is not None and (
        not isinstance(max_chunks, int) or isinstance(max_chunks, bool) or max_chunks < 0
    ):
        raise ValueError(f"max_chunks must be None or an int >= 0, got {max_chunks!r}")
    out_dir = Path(out_dir)
    canonical = spec.to_json()
    spec_path = out_dir / SPEC_FILE
    saved: dict[str, Any] | None = None
    if spec_path.exists():
        saved = read_json_object(spec_path, "grid", dict, ValueError, damaged_hint(out_dir))
        differences = spec_differences(saved, canonical)
        if differences:
            raise ValueError(
                f"{out_dir} holds a different sweep (differs in: {'; '.join(differences)}); "
                "choose a new directory for the changed spec"
            )
        rows = load_table(out_dir)
    elif (out_dir / RESULTS_JSON).exists():
        raise ValueError(
            f"{out_dir} has {RESULTS_JSON} but no {SPEC_FILE}, so it was not written by "
            "run_sweep; choose a new directory"
        )
    else:
        rows = []

    params = list(spec.grid)
    chunks = spec.chunks()
    wanted = {(m.point, m.seed) for chunk in chunks for m in chunk}
    _check_rows(rows, wanted, spec.points(), out_dir)
    table = {(r["point"], r["seed"]): r for r in rows}
    # A chunk with any member missing is recomputed whole, so its members share one evaluation.
    missing = np.array([any((m.point, m.seed) not in table for m in chunk) for chunk in chunks])
    writes = jax.process_index() == 0
    if jax.process_count() > 1:
        # Several hosts evaluate each chunk together (a sharded ensemble), so they must agree on
        # the chunks: process 0's directory decides, and only process 0 writes to it, once every
        # process has read it.
        missing = np.asarray(multihost_utils.broadcast_one_to_all(missing.astype(np.int32))) > 0
        multihost_utils.sync_global_devices("ctlearn: sweep directory read")
    pending = [chunk for chunk, todo in zip(chunks, missing) if todo]
    done = len(wanted) - sum(len(chunk) for chunk in pending)
    if max_chunks is not None:
        pending = pending[:max_chunks]
    if writes and saved != canonical:  # a new sweep, or only the name changed
        atomic_write_text(spec_path, json.dumps(canonical, indent=2) + "\n")
    if writes and table:
        # A kill between the two writes of the last chunk leaves results.csv one chunk behind
        # results.json (which resumes are read from): bring it up to date.
        _write_results(out_dir, _sorted(table), params)

    with tqdm(
        total=len(wanted), initial=done, disable=not progress, desc=spec.name, unit="member"
    ) as bar:
        for chunk in pending:
            metrics = evaluate(spec, list(chunk))
            for member, row in zip(chunk, _chunk_rows(chunk, metrics, params)):
                table[member.point, member.seed] = row
            if writes:
                _write_results(out_dir, _sorted(table), params)
            bar.update(len(chunk))
    return [dict(row) for row in _sorted(table)]


def _check_rows(
    rows: list[dict[str, Any]], wanted: set[tuple[int, int]], points: list[dict], out_dir: Path
) -> None:
    """Refuses saved rows that are not this sweep's: a member it does not have, or grid values
    other than its point's (a results.json from another sweep, or edited by hand)."""
    for i, row in enumerate(rows):
        member = (row["point"], row["seed"])
        if member not in wanted or any(
            canonical(row.get(name)) != canonical(value)
            for name, value in points[row["point"]].items()
        ):
            raise ValueError(
                f"{out_dir / RESULTS_JSON}: row {i} (point {member[0]}, seed {member[1]}) is not "
                f"a member of the sweep in {SPEC_FILE}: {damaged_hint(out_dir)}"
            )


def _write_results(out_dir: Path, rows: list[dict[str, Any]], params: list[str]) -> None:
    """Replaces results.json and results.csv atomically, each only if its text changes."""
    texts = {RESULTS_JSON: rows_json_text(rows), RESULTS_CSV: rows_csv_text(rows, params)}
    for name, text in texts.items():
        path = out_dir / name
        if not path.exists() or path.read_text() != text:
            atomic_write_text(path, text)


def _sorted(table: dict[tuple[int, int], dict[str, Any]]) -> list[dict[str, Any]]:
    return [table[key] for key in sorted(table)]


def _chunk_rows(chunk: list[Member], metrics: Any, params: Sequence[str]) -> list[dict[str, Any]]:
    """The rows of one evaluated chunk, checking what ``evaluate`` returned."""
    if not isinstance(metrics, Sequence) or isinstance(metrics, (str, bytes)):
        raise ValueError(
            f"evaluate must return a list of metric dicts, one per member, got "
            f"{type(metrics).__name__}"
        )
    if len(metrics) != len(chunk):
        raise ValueError(
            f"evaluate returned {len(metrics)} metric dicts for {len(chunk)} members "
            f"(members {chunk[0].index}..{chunk[-1].index}); it must return one per member"
        )
    reserved = {"point", "seed", *params}
    rows = []
    for member, values in zip(chunk, metrics):
        if not isinstance(values, Mapping):
            raise ValueError(
                f"evaluate returned {type(values).__name__} for member {member.index}; "
                "each entry must be a dict of metric name -> value"
            )
        row: dict[str, Any] = {"point": member.point, "seed": member.seed, **member.params}
        for name, value in values.items():
            if not isinstance(name, str) or name in reserved:
                raise ValueError(
                    f"metric name {name!r} of member {member.index} is not allowed: metric "
                    f"names must be strings other than {', '.join(map(repr, sorted(reserved)))}"
                )
            row[name] = _scalar(value, name, member)
        rows.append(row)
    return rows


def _scalar(value: Any, name: str, member: Member) -> int | float | str | bool | None:
    """A metric as a plain Python scalar, None when it is a non-finite float."""
    if getattr(value, "shape", None) == () and hasattr(value, "item"):
        value = value.item()  # NumPy and JAX scalars (0-d arrays) become Python scalars
    if value is not None and not isinstance(value, (bool, int, float, str)):
        shape = getattr(value, "shape", None)
        raise ValueError(
            f"metric {name!r} of member {member.index} is {type(value).__name__}"
            f"{f' of shape {shape}' if shape is not None else ''}; metrics must be numbers, "
            "strings, bools or None"
        )
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
