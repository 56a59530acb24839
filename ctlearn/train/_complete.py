"""Run folders that finish what an earlier call started: the building block of resumable
reproductions and sweeps of ``train`` runs."""

from __future__ import annotations

import os
from pathlib import Path

from ..data import Dataset
from ._config import TrainConfig
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


def run_name(spec: str) -> str:
    """A method spec (``"fg-a:noise=rademacher"``) as a folder name (``fg-a_noise-rademacher``)."""
    return spec.replace(":", "_").replace("=", "-").replace(",", "_")
