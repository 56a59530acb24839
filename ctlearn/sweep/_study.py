"""A study: an analog sweep run to completion, summarised as a table and figures."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._mesh import Devices
from ..files import atomic_write_text, read_json_object
from ._analog import AnalogSweep, ModelFactory
from ._run import run_sweep
from ._spec import SweepSpec
from ._table import aggregate, markdown_table

METRICS = ("test_accuracy", "alignment")
"""What a study reports per point: the circuit's test accuracy after learning, and the mean
cosine between each presentation's weight change and −∇L on its batch."""


def run_study(
    spec: SweepSpec,
    out_dir: str | os.PathLike,
    model: ModelFactory,
    *,
    x: str,
    y: str | None = None,
    metrics: Sequence[str] = METRICS,
    logx: bool = False,
    logy: bool = False,
    threshold: float | None = None,
    series: str | None = None,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
    progress: bool = True,
    max_chunks: int | None = None,
    devices: Devices = None,
    provenance: Mapping[str, Any] | None = None,
    references: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, Any]:
    """Runs (or resumes) the sweep ``spec`` in ``out_dir`` and writes ``summary.md`` (the
    seed mean ± std of ``metrics`` per point) and figures: ``metrics`` against grid name ``x``
    (one line per value of ``series``), or, with ``y``, one phase diagram per metric over
    (``x``, ``y``) with cells whose mean reaches ``threshold`` marked as learning (none while
    no member has finished). Returns the rows, the summary and the figure paths (``complete``
    is False while chunks remain, e.g. after ``max_chunks``). ``devices`` share each chunk's
    members (``AnalogSweep``).

    ``summary.json`` holds the spec, the summary rows, whether the sweep is complete and the
    ``provenance`` of the call that wrote it (``ctlearn.provenance.provenance()`` unless given:
    command, commit, machine); ``runs`` lists the provenance of every call on this directory
    (a sweep run in slices), oldest first. ``summary.md`` names the command and commit.
    ``references``: lines across the line plots' panels, per metric (``plot_sweep``)."""
    # plotting_sweep imports this package (its tables): import it late.
    from ..plotting_sweep import plot_phase_diagram, plot_sweep

    out = Path(out_dir)
    previous = _previous_runs(out)  # before any work: a damaged summary is refused
    evaluate = AnalogSweep(spec, model, progress=False, devices=devices)  # validates first
    rows = run_sweep(spec, out, evaluate, progress=progress, max_chunks=max_chunks)
    by = list(spec.grid)
    summary = aggregate(rows, by, [*metrics, "diverged"])
    complete = len(rows) == len(spec.members())
    origin = dict(provenance) if provenance is not None else _provenance()
    columns = by + [f"{m}_{s}" for m in metrics for s in ("mean", "std")]
    columns += ["diverged_mean", "diverged_n"]  # the fraction of seeds whose loss diverged
    text = (
        f"# {title or spec.name}\n\n"
        f"Command: `{origin.get('command')}` at commit `{origin.get('commit')}`"
        f"{' (with uncommitted changes)' if origin.get('dirty') else ''}; "
        f"{len(rows)} of {len(spec.members())} members"
        f"{'' if complete else ' (incomplete: rerun the command to resume)'}. "
        "Mean ± std over seeds (population std); diverged: the fraction of seeds whose loss "
        "diverged.\n\n" + markdown_table(summary, columns) + "\n"
    )
    runs = previous + [origin]
    record = {
        "name": spec.name,
        "spec": spec.to_json(),
        "complete": complete,
        "members": len(rows),
        "metrics": list(metrics),
        "summary": summary,
        "provenance": origin,
        "runs": runs,
    }
    atomic_write_text(out / "summary.json", json.dumps(record, indent=2, allow_nan=False) + "\n")
    atomic_write_text(out / "summary.md", text)
    figures = []
    # Nothing finished yet (e.g. max_chunks=0): no figure to draw.
    if rows and y is None:
        figures.append(
            plot_sweep(
                rows,
                x,
                list(metrics),
                out / f"{spec.name}.png",
                logx=logx,
                labels=dict(labels or {}),
                title=title,
                series=series,
                references=references,
            )
        )
    elif rows:
        for metric in metrics:
            figures.append(
                plot_phase_diagram(
                    rows,
                    x,
                    y,
                    metric,
                    out / f"{spec.name}_{metric}.png",
                    threshold=threshold,
                    logx=logx,
                    logy=logy,
                    labels=dict(labels or {}),
                    title=title,
                )
            )
    return {"rows": rows, "summary": summary, "figures": figures, "complete": complete}


def _provenance() -> dict[str, Any]:
    from ..provenance import provenance  # imports jax's device list: only when needed

    return provenance()


def _previous_runs(out: Path) -> list[dict[str, Any]]:
    """The provenance of the earlier calls on ``out`` (none before its first summary); a
    damaged ``summary.json`` is refused rather than replaced, which would lose that history."""
    path = out / "summary.json"
    if not path.exists():
        return []
    hint = "restore it, or delete it to start the list of runs again"
    return read_json_object(path, "runs", list, ValueError, hint)["runs"]
