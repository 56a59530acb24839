"""Matplotlib figures of training results, written atomically (PNG, or any format by suffix)."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.animation import PillowWriter  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .files import atomic_open  # noqa: E402


def plot_learning_curves(
    curves: Mapping[str, Sequence[Sequence[float]]],
    path: str | os.PathLike,
    *,
    ylabel: str = "test accuracy",
    title: str = "",
) -> Path:
    """One line per entry of ``curves`` (label -> runs, each a per-epoch sequence), the mean over
    runs with a band of ± one standard deviation; saved to ``path``."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
    for label, runs in curves.items():
        length = min(len(r) for r in runs)
        values = np.array([r[:length] for r in runs], dtype=float)
        epochs = np.arange(1, length + 1)
        mean, std = values.mean(axis=0), values.std(axis=0)
        ax.plot(epochs, mean, marker="o" if length < 30 else None, ms=3, label=label)
        if len(runs) > 1:
            ax.fill_between(epochs, mean - std, mean + std, alpha=0.2)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return save_figure(fig, path)


def save_figure(fig, path: str | os.PathLike, *, dpi: int = 150) -> Path:
    """Write ``fig`` to ``path`` atomically (format from the suffix, PNG by default) and close
    it: a reader never sees a half-written figure."""
    buffer = io.BytesIO()
    path = Path(path)
    fig.savefig(buffer, format=path.suffix.lstrip(".") or "png", dpi=dpi)
    plt.close(fig)
    with atomic_open(path, "wb") as f:
        f.write(buffer.getvalue())
    return path


def save_gif(
    fig,
    update: Callable[[int], object],
    frames: int,
    path: str | os.PathLike,
    *,
    fps: int,
    dpi: int,
) -> Path:
    """Write an animation of ``fig`` as a GIF with matplotlib's ``PillowWriter``: ``update(i)``
    moves the artists to frame ``i`` before it is grabbed. Written beside ``path``, then renamed
    (atomic); ``fig`` is closed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".gif")
    os.close(fd)
    try:
        writer = PillowWriter(fps=fps)
        with writer.saving(fig, tmp, dpi=dpi):
            for i in range(frames):
                update(i)
                writer.grab_frame()
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
