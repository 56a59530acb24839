"""Run folders that finish what an earlier call started: the building block of resumable
reproductions and sweeps of ``train`` runs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..data import Dataset
from ._config import TrainConfig
from ._lock import RunFolderLocked
from ._loop import read_config, read_metrics, train


def complete_run(
    config: TrainConfig,
    run_dir: str | os.PathLike,
    *,
    dataset: Dataset | None = None,
    progress: bool = True,
) -> list[dict]:
    """The per-epoch metrics of the run ``config`` in ``run_dir``: read if it already finished,
    resumed from its checkpoint if it was interrupted, trained from scratch otherwise. A folder
    holding a different run is refused, finished or not: its saved config must be one that
    ``config`` could resume (``TrainConfig.resumable_as``)."""
    run_dir = Path(run_dir)
    done = read_metrics(run_dir) if (run_dir / "metrics.jsonl").is_file() else []
    if len(done) >= config.epochs:
        try:
            config.resumable_as(read_config(run_dir))
        except ValueError as error:
            raise ValueError(f"{run_dir}: {error}") from None
        return done[: config.epochs]
    resume = (run_dir / "config.json").is_file()
    return train(config, run_dir, resume=resume, dataset=dataset, progress=progress).metrics


def complete_runs(
    runs: Sequence[tuple[TrainConfig, str | os.PathLike]],
    *,
    dataset: Dataset | None = None,
    progress: bool = True,
) -> list[list[dict] | None]:
    """``complete_run`` for each (config, run folder) in turn, sharing the runs out with other
    processes: a run whose folder another process holds (it is training it) is skipped, tried
    once more after the others, and comes back as ``None`` if it is still held then.

    So the same reproduction started in several processes (one per core, or on machines that
    share the folders) splits its runs between them: each trains the runs nobody holds, and the
    process that ends last finds every run finished. The other exceptions of ``complete_run``
    propagate; nothing is trained twice, since a run is only ever trained under its folder's lock.
    """
    runs = [(config, Path(run_dir)) for config, run_dir in runs]
    seen: dict[Path, TrainConfig] = {}
    for config, run_dir in runs:
        if run_dir in seen and seen[run_dir] != config:
            raise ValueError(f"{run_dir} is given twice, for two different runs")
        seen[run_dir] = config
    results: list[list[dict] | None] = [None] * len(runs)
    for _ in range(2):
        for i, (config, run_dir) in enumerate(runs):
            if results[i] is not None:
                continue
            try:
                results[i] = complete_run(config, run_dir, dataset=dataset, progress=progress)
            except RunFolderLocked:
                continue
    return results


def run_name(spec: str) -> str:
    """A method spec (``"fg-a:noise=rademacher"``) as a folder name (``fg-a_noise-rademacher``)."""
    return spec.replace(":", "_").replace("=", "-").replace(",", "_")
