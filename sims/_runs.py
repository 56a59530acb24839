"""Shared by the reproduction scripts: run folders that finish what an earlier call started."""

from __future__ import annotations

from pathlib import Path

from ctlearn.data import Dataset
from ctlearn.train import TrainConfig, read_metrics, train


def complete_run(
    config: TrainConfig, run_dir: Path, *, dataset: Dataset, progress: bool
) -> list[dict]:
    """The metrics of the run ``config`` in ``run_dir``: read if it already finished, resumed
    from its checkpoint if it was interrupted, trained from scratch otherwise."""
    done = read_metrics(run_dir) if (run_dir / "metrics.jsonl").is_file() else []
    if len(done) >= config.epochs:
        return done[: config.epochs]
    resume = (run_dir / "config.json").is_file()
    return train(config, run_dir, resume=resume, dataset=dataset, progress=progress).metrics


def slug(spec: str) -> str:
    """A method spec ("fg-a:noise=rademacher") as a folder name."""
    return spec.replace(":", "_").replace("=", "-").replace(",", "_")
