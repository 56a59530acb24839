"""Matplotlib figures of sweep results (rows as ``ctlearn.sweep.load_table`` returns them):
metrics against one parameter, and a two-parameter phase diagram; written atomically."""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

from .plotting import save_figure  # noqa: E402
from .sweep._table import aggregate  # noqa: E402

REFERENCE_STYLES = (("black", ":"), ("dimgray", "-."), ("black", (0, (1, 4))), ("dimgray", "--"))
"""Colour and line style of a panel's reference lines, in order (repeating)."""


def plot_sweep(
    rows: Sequence[dict[str, Any]],
    x: str,
    metrics: Sequence[str],
    path: str | os.PathLike,
    *,
    logx: bool = False,
    xlabel: str | None = None,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
    series: str | None = None,
    references: Mapping[str, Mapping[str, float]] | None = None,
) -> Path:
    """One panel per metric: its mean over seeds against column ``x``, with a band of ± one
    (population) standard deviation; saved to ``path``. ``references``: per metric, lines
    drawn across its panel (label → value, dotted), e.g. another method's result.

    Numeric ``x`` values are placed on a numeric axis (log if ``logx``); string values as sorted
    categories. Rows whose ``x`` is None (e.g. the ideal, noise-free case) are drawn as a dashed
    horizontal reference line. ``series`` names a column giving one line per value. ``labels``
    maps column names to axis and legend text; ``xlabel`` overrides the label of ``x``.
    """
    if not rows:
        raise ValueError("plot_sweep got no rows to plot")
    if not metrics:
        raise ValueError("plot_sweep needs at least one metric to plot")
    labels = dict(labels or {})
    by = [x] if series is None else [series, x]
    summary = aggregate(rows, by, metrics)  # raises naming any missing column
    xs = [s[x] for s in summary if s[x] is not None]
    categorical = any(not _is_number(v) for v in xs)
    if categorical and logx:
        raise ValueError(f"logx needs numeric values of {x!r}, got {sorted(map(str, xs))}")
    if logx and any(v <= 0 for v in xs):
        raise ValueError(f"logx needs positive values of {x!r}, got {min(xs)!r}")
    categories = sorted({str(v) for v in xs}) if categorical else []

    series_values = list(dict.fromkeys(_key(s[series]) for s in summary)) if series else [None]
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(4.4 * len(metrics), 3.6), constrained_layout=True, squeeze=False
    )
    for ax, metric in zip(axes[0], metrics):
        for index, value in enumerate(series_values):
            color = f"C{index}"
            group = [s for s in summary if series is None or _key(s[series]) == value]
            name = None if series is None else f"{labels.get(series, series)}={group[0][series]}"
            points = sorted(
                (
                    (categories.index(str(s[x])) if categorical else s[x], s)
                    for s in group
                    if s[x] is not None and s[f"{metric}_mean"] is not None
                ),
                key=lambda pair: pair[0],
            )
            if points:
                px = np.array([p for p, _ in points], dtype=float)
                mean = np.array([s[f"{metric}_mean"] for _, s in points])
                std = np.array([s[f"{metric}_std"] for _, s in points])
                ax.plot(px, mean, marker="o", ms=3, color=color, label=name)
                ax.fill_between(px, mean - std, mean + std, color=color, alpha=0.2)
            for s in group:
                if s[x] is None and s[f"{metric}_mean"] is not None:
                    mean, std = s[f"{metric}_mean"], s[f"{metric}_std"]
                    ideal = f"ideal ({x}=None)" if name is None else f"{name}, ideal ({x}=None)"
                    ax.axhline(mean, color=color, ls="--", lw=1, label=ideal)
                    ax.axhspan(mean - std, mean + std, color=color, alpha=0.08)
        lines = (references or {}).get(metric, {}).items()
        for (label, value), (color, style) in zip(lines, itertools.cycle(REFERENCE_STYLES)):
            ax.axhline(value, color=color, ls=style, lw=1.2, label=label)
        if logx:
            ax.set_xscale("log")
        if categorical:
            ax.set_xticks(range(len(categories)), categories)
        ax.set_xlabel(xlabel if xlabel is not None else labels.get(x, x))
        ax.set_ylabel(labels.get(metric, metric))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def plot_phase_diagram(
    rows: Sequence[dict[str, Any]],
    x: str,
    y: str,
    metric: str,
    path: str | os.PathLike,
    *,
    threshold: float | None = None,
    logx: bool = False,
    logy: bool = False,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
) -> Path:
    """A heatmap of the seed-mean of ``metric`` over the values of columns ``x`` and ``y``, each
    cell annotated with its value; saved to ``path``.

    The values of ``x`` and ``y`` are categories in sorted order (None first, then numbers, then
    strings), one evenly sized cell each, ticks labelled with the values. ``logx``/``logy`` mark
    log-spaced positive values: their ticks are written as powers of ten. With ``threshold``,
    cells whose mean is >= it are outlined and hatched ("learns"). Cells with no finite value are
    grey.
    """
    if not rows:
        raise ValueError("plot_phase_diagram got no rows to plot")
    if x == y:
        raise ValueError(f"x and y must be different columns, got {x!r} for both")
    labels = dict(labels or {})
    summary = aggregate(rows, [x, y], [metric])  # raises naming any missing column
    x_values = _categories([s[x] for s in summary])
    y_values = _categories([s[y] for s in summary])
    for column, values, log in ((x, x_values, logx), (y, y_values, logy)):
        bad = [v for v in values if v is not None and (not _is_number(v) or v <= 0)]
        if log and bad:
            raise ValueError(f"log ticks need positive numbers in {column!r}, got {bad[0]!r}")
    column_of = {_key(v): j for j, v in enumerate(x_values)}
    row_of = {_key(v): i for i, v in enumerate(y_values)}
    means = np.full((len(y_values), len(x_values)), np.nan)
    for s in summary:
        if s[f"{metric}_mean"] is not None:
            means[row_of[_key(s[y])], column_of[_key(s[x])]] = s[f"{metric}_mean"]

    fig, ax = plt.subplots(
        figsize=(1.0 + 0.9 * len(x_values) + 1.6, 1.2 + 0.6 * len(y_values) + 0.8),
        constrained_layout=True,
    )
    cmap = plt.get_cmap("viridis").with_extremes(bad="lightgrey")
    finite = means[np.isfinite(means)]
    vmin, vmax = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    mesh = ax.pcolormesh(
        np.arange(len(x_values) + 1) - 0.5,
        np.arange(len(y_values) + 1) - 0.5,
        np.ma.masked_invalid(means),
        cmap=cmap,
        vmin=vmin,
        vmax=vmax if vmax > vmin else vmin + 1.0,
    )
    colorbar = fig.colorbar(mesh, ax=ax)
    colorbar.set_label(f"{labels.get(metric, metric)} (mean over seeds)")
    for i in range(len(y_values)):
        for j in range(len(x_values)):
            value = means[i, j]
            learns = threshold is not None and math.isfinite(value) and value >= threshold
            if learns:
                ax.add_patch(
                    Rectangle(
                        (j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", lw=2, hatch="//"
                    )
                )
            shade = mesh.norm(value) if math.isfinite(value) else 1.0
            ax.text(
                j,
                i,
                f"{value:.3g}" if math.isfinite(value) else "n/a",
                ha="center",
                va="center",
                fontsize="small",
                # White on viridis' dark end; on a hatched cell a backing box keeps it legible.
                color="white" if shade < 0.5 and not learns else "black",
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8}
                if learns
                else None,
                zorder=3,
            )
    ax.set_xticks(range(len(x_values)), [_tick(v, logx) for v in x_values])
    ax.set_yticks(range(len(y_values)), [_tick(v, logy) for v in y_values])
    ax.set_xlabel(labels.get(x, x))
    ax.set_ylabel(labels.get(y, y))
    if threshold is not None:
        legend = Patch(
            facecolor="none",
            edgecolor="red",
            hatch="//",
            label=f"learns ({labels.get(metric, metric)} >= {threshold:g})",
        )
        fig.legend(handles=[legend], loc="outside lower center", fontsize="small")
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _key(value: Any) -> tuple[bool, Any]:
    # In Python True == 1: keep a bool series value apart from the number.
    return (isinstance(value, bool), value)


def _categories(values: Sequence[Any]) -> list[Any]:
    """The distinct values, sorted: None, then numbers, then everything else as text."""
    distinct = list({_key(v): v for v in values}.values())

    def order(v: Any) -> tuple[int, Any]:
        if v is None:
            return (0, 0)
        return (1, v) if _is_number(v) else (2, str(v))

    return sorted(distinct, key=order)


def _tick(value: Any, log: bool) -> str:
    if value is None:
        return "None"
    if log and _is_number(value) and float(math.log10(value)).is_integer():
        return f"$10^{{{int(math.log10(value))}}}$"
    return f"{value:.3g}" if isinstance(value, float) else str(value)
