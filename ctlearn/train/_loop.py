"""``train``: the discrete-time training loop, with metrics, checkpoints and resumption."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.experimental import multihost_utils
from tqdm.auto import tqdm

from .. import __version__
from ..data import Dataset, batches, load_dataset, num_batches
from ..files import atomic_write_text, read_json_object, temporary_files
from ..nn import Network, make_network
from ._checkpoint import (
    checksum_path,
    load_checkpoint,
    remove_leftovers,
    save_checkpoint,
    verify_checkpoint,
)
from ._config import TrainConfig
from ._lock import RunLock
from ._parallel import DataParallel, data_parallel
from ._state import TrainState
from ._step import eval_step
from ._steps import TrainingDiverged, first_nonfinite, run_steps

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.eqx"


class RunFolderError(ValueError):
    """A run folder whose files disagree or are damaged; the message says which file and what to
    do. Nothing is repaired silently."""


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a run produced: the trained network, its full state, one metrics dict per epoch."""

    config: TrainConfig
    model: Network
    state: TrainState
    metrics: list[dict[str, Any]]
    out: Path | None


def train(
    config: TrainConfig,
    out: str | os.PathLike | None = None,
    *,
    resume: bool = False,
    dataset: Dataset | None = None,
    progress: bool = True,
    stop_after_epochs: int | None = None,
) -> TrainResult:
    """Trains ``config.model`` on ``config.dataset`` with the learning rule ``config.method``.

    With ``out``, the folder receives ``config.json``, ``metrics.jsonl`` (one JSON object per
    epoch) and ``checkpoint.eqx`` (the state after the last completed epoch), each written
    atomically. ``resume=True`` continues the run saved in ``out`` and ends with the same weights
    as an uninterrupted run; without it, a folder that already holds a run is an error (nothing
    is overwritten). ``dataset`` replaces loading ``config.dataset`` (to share loaded data between
    runs). ``stop_after_epochs`` ends this call after that many epochs (the run stays resumable,
    e.g. for jobs with a time limit). A NaN or infinite loss raises ``TrainingDiverged``, leaving
    the last checkpoint as it was.

    With ``config.devices`` (default: every device) above one, each batch is split over the
    devices and the state replicated on all of them (``DataParallel``); the results agree with a
    single-device run to floating-point rounding. With several processes
    (``initialize_distributed``), every process calls ``train`` alike and process 0 writes ``out``.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if stop_after_epochs is not None and (
        not isinstance(stop_after_epochs, int) or stop_after_epochs < 1
    ):
        raise ValueError(f"stop_after_epochs must be a positive int, got {stop_after_epochs!r}")
    if out is not None and not os.fspath(out).strip():
        raise ValueError(f"the output folder is empty ({os.fspath(out)!r}): name a folder")
    if dataset is not None and config.image_size is not None:
        side = config.image_size
        if tuple(dataset.input_shape[:2]) != (side, side):
            raise ValueError(
                f"config.image_size is {side}, but the given dataset's inputs have shape "
                f"{dataset.input_shape}: load it with load_dataset(..., image_size={side})"
            )
    parallel = data_parallel(config.devices)
    if parallel is not None:
        parallel.check_batch_size(config.batch_size)
    run_dir = _RunDir(Path(out)) if out is not None else None
    if resume and run_dir is None:
        raise ValueError("resume=True needs the folder of the run to resume: pass out=...")
    with run_dir.lock() if run_dir is not None else contextlib.nullcontext():
        return _train(config, run_dir, resume, dataset, parallel, progress, stop_after_epochs)


def _train(config, run_dir, resume, dataset, parallel, progress, stop_after_epochs):
    """``train`` once the arguments are checked and the run folder (if any) is locked."""
    completed = 0
    if run_dir is not None:
        completed = run_dir.check(config, resume=resume)
        if jax.process_count() > 1:  # no process may see a folder another has begun to write
            multihost_utils.sync_global_devices("ctlearn: run folder checked")

    data = dataset if dataset is not None else _load(config)
    steps_per_epoch = num_batches(data.train, config.batch_size)
    estimator = config.make_estimator()
    augmentation = config.make_augmentation()
    optimizer, schedule = config.make_optimizer(steps_per_epoch)
    state = initial_state(config, data, estimator, optimizer)
    metrics: list[dict[str, Any]] = []
    if run_dir is not None:
        if completed:
            state = load_checkpoint(run_dir.checkpoint, state)
            if int(state.epoch) != completed:
                raise RunFolderError(
                    f"{run_dir.checkpoint} holds epoch {int(state.epoch)} but its checksum file "
                    f"and {run_dir.metrics} say {completed}: restore the run's files together, "
                    "or start again in a new folder"
                )
            metrics = run_dir.read_metrics(upto_epoch=completed)
        run_dir.write_config(config, data, devices=parallel.num_devices if parallel else 1)
        run_dir.write_metrics(metrics)
    if parallel is not None:
        state = parallel.replicate(state)
    state_sharding = parallel.replicated if parallel is not None else None

    data_root, step_root = jax.random.split(jax.random.fold_in(jax.random.key(config.seed), 1))
    first = int(state.epoch)
    last = (
        config.epochs
        if stop_after_epochs is None
        else min(config.epochs, first + stop_after_epochs)
    )
    bar = tqdm(
        total=config.epochs * steps_per_epoch,
        initial=first * steps_per_epoch,
        desc=f"{config.method} on {config.dataset}",
        unit="step",
        disable=not progress,
        dynamic_ncols=True,
    )
    with bar:
        for epoch in range(first, last):
            started = time.perf_counter()
            epoch_key = jax.random.fold_in(step_root, epoch)

            def check(pending, state, epoch=epoch):
                _check_finite(pending, state, epoch, run_dir)
                if pending:
                    bar.set_postfix(loss=f"{float(pending[-1]):.4f}", refresh=False)
                    bar.update(len(pending))

            steps = run_steps(
                estimator,
                optimizer,
                state,
                batches(data.train, config.batch_size, key=jax.random.fold_in(data_root, epoch)),
                epoch_key,
                check=check,
                prepare=parallel.shard_batch if parallel is not None else None,
                state_sharding=state_sharding,
                augmentation=augmentation,
            )
            state, losses, accs = steps.state, steps.losses, steps.accuracies
            state = TrainState(
                state.model, state.opt_state, state.est_state, state.epoch + 1, state.step
            )
            train_seconds = time.perf_counter() - started
            test_loss, test_acc = evaluate(
                state.model, data, config.loss, config.eval_batch_size, parallel=parallel
            )
            record = {
                "epoch": epoch + 1,
                "step": int(state.step),
                "train_loss": float(jnp.mean(jnp.stack(losses))),
                "train_acc": float(jnp.mean(jnp.stack(accs))),
                "test_loss": test_loss,
                "test_acc": test_acc,
                "lr": float(schedule(int(state.step) - 1)),
                "seconds": train_seconds,
                "eval_seconds": time.perf_counter() - started - train_seconds,
            }
            metrics.append(record)
            if run_dir is not None:  # checkpoint first: metrics never run ahead of it
                run_dir.save_checkpoint(state, record)
                run_dir.write_metrics(metrics)
            bar.set_postfix(
                loss=f"{record['train_loss']:.4f}", test_acc=f"{test_acc:.4f}", refresh=True
            )
    if run_dir is not None and jax.process_count() > 1:
        # Process 0 writes the run's files: no process returns (and, say, resumes and checks
        # them) before they are complete.
        multihost_utils.sync_global_devices("ctlearn: run folder written")
    return TrainResult(config, state.model, state, metrics, run_dir.path if run_dir else None)


def initial_state(config: TrainConfig, data: Dataset, estimator, optimizer) -> TrainState:
    """The state before the first step: a pure function of the config (and the data's shapes)."""
    model_key, est_key = jax.random.split(jax.random.fold_in(jax.random.key(config.seed), 0))
    model = make_network(
        config.model, data.input_shape, data.num_classes, key=model_key, **config.model_kwargs()
    )
    est_state = estimator.init(model, key=est_key)
    opt_state = optimizer.init(_params(model))
    return TrainState.start(model, opt_state, est_state)


def evaluate(
    model: Network,
    data: Dataset,
    loss: str,
    batch_size: int,
    *,
    parallel: DataParallel | None = None,
) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` on the test split; with ``parallel``, each batch is
    split over its devices (a batch that does not split evenly is padded, the padding masked)."""
    if parallel is not None:
        model = parallel.replicate(model)
    total_loss, correct = 0.0, 0
    for x, y in batches(data.test, batch_size, shuffle=False, drop_last=False):
        if parallel is None:
            batch_loss, batch_correct = eval_step(model, loss, x, y)
        else:
            x, y, mask = parallel.shard_batch(parallel.pad_batch(x, y))
            batch_loss, batch_correct = eval_step(model, loss, x, y, mask)
        total_loss += float(batch_loss)
        correct += int(batch_correct)
    n = len(data.test)
    return total_loss / n, correct / n


def _params(model):
    return eqx.filter(model, eqx.is_inexact_array)


def _load(config: TrainConfig) -> Dataset:
    return load_dataset(
        config.dataset,
        data_dir=config.data_dir,
        source=config.data_source,
        scaling=config.input_scaling,
        image_size=config.image_size,
    )


def _check_finite(pending, state: TrainState, epoch: int, run_dir: _RunDir | None) -> None:
    found = first_nonfinite(pending, state)
    if found is None:
        return
    step, value = found
    kept = (
        f"; the last good checkpoint ({run_dir.checkpoint}, after epoch {epoch}) is kept"
        if run_dir is not None and run_dir.checkpoint.is_file()
        else ("; no epoch had completed, so there is no checkpoint" if run_dir else "")
    )
    raise TrainingDiverged(
        f"training diverged: the loss is {value} at epoch {epoch + 1}, step {step}"
        f"{kept}. Try a smaller learning rate.",
        epoch=epoch + 1,
        step=step,
    )


class _RunDir:
    """The folder of one run and the files in it; with several processes, process 0 writes them."""

    def __init__(self, path: Path):
        self.path = path
        self.config = path / CONFIG_FILE
        self.metrics = path / METRICS_FILE
        self.checkpoint = path / CHECKPOINT_FILE

    @property
    def writes(self) -> bool:
        return jax.process_index() == 0

    def lock(self):
        """The folder's lock (process 0 writes, so it alone takes it)."""
        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(f"--out {self.path} exists and is not a folder")
        return RunLock(self.path) if self.writes else contextlib.nullcontext()

    def check(self, config: TrainConfig, *, resume: bool) -> int:
        """Checks that ``config`` may start or continue the run in this folder; returns the
        epochs it completed (0 for a new run). With ``resume``, the checkpoint must match its
        checksum and agree with ``metrics.jsonl``; this run's leftover temporary files go."""
        if not resume:
            if self.config.exists() or self.checkpoint.exists():
                raise FileExistsError(
                    f"{self.path} already holds a run; pass resume=True (--resume) to continue "
                    "it, or choose another output folder"
                )
            return 0
        if not self.config.is_file():
            raise FileNotFoundError(f"nothing to resume: {self.config} does not exist")
        config.resumable_as(read_config(self.path))
        if self.writes:  # the lock is held: temporary files here are this run's leftovers
            for leftover in temporary_files(self.config) + temporary_files(self.metrics):
                leftover.unlink(missing_ok=True)
            remove_leftovers(self.checkpoint)
        completed = self.completed_epochs()
        if config.epochs < completed:
            raise ValueError(
                f"epochs={config.epochs} (--epochs) is below the {completed} epochs the run in "
                f"{self.path} has completed: give epochs >= {completed}"
            )
        return completed

    def completed_epochs(self) -> int:
        """The epochs completed, once the checkpoint (verified by its checksum) and
        ``metrics.jsonl`` agree. A save interrupted after the checkpoint but before the metrics
        is completed from the record stored with the checkpoint's checksum; every other
        disagreement is refused with what to do."""
        records = self.read_metrics(upto_epoch=math.inf) if self.metrics.is_file() else None
        if not self.checkpoint.is_file():
            if records or checksum_path(self.checkpoint).is_file():
                raise RunFolderError(
                    f"{self.checkpoint} is missing but the run recorded "
                    f"{len(records or [])} completed epochs in {self.metrics}: restore the "
                    "checkpoint, or start the run again in a new folder"
                )
            return 0
        saved = verify_checkpoint(self.checkpoint)
        epoch = saved.get("epoch")
        if not isinstance(epoch, int):
            raise RunFolderError(
                f"{checksum_path(self.checkpoint)} does not say which epoch {self.checkpoint} "
                "holds: restore it, or start the run again in a new folder"
            )
        if records is None:
            raise RunFolderError(
                f"{self.metrics} is missing but {self.checkpoint} holds epoch {epoch}: the "
                "history of the finished epochs is lost; restore the file, or start the run "
                "again in a new folder"
            )
        if len(records) == epoch - 1 and saved.get("record", {}).get("epoch") == epoch:
            self.write_metrics([*records, saved["record"]])  # the interrupted save, completed
            return epoch
        if len(records) != epoch:
            raise RunFolderError(
                f"{self.metrics} records {len(records)} completed epochs but {self.checkpoint} "
                f"holds epoch {epoch}: restore the run's files together, or start the run again "
                "in a new folder"
            )
        return epoch

    def write_config(self, config: TrainConfig, data: Dataset, *, devices: int) -> None:
        if not self.writes:
            return
        content = {
            "config": json.loads(config.to_json()),
            "data": {
                "name": data.name,
                "source": data.source,
                "input_shape": list(data.input_shape),
                "num_classes": data.num_classes,
                "train_examples": len(data.train),
                "test_examples": len(data.test),
            },
            "ctlearn_version": __version__,
            "jax_version": jax.__version__,
            "backend": jax.default_backend(),
            "devices": devices,
            "processes": jax.process_count(),
        }
        atomic_write_text(self.config, json.dumps(content, indent=2) + "\n")

    def read_metrics(self, *, upto_epoch: int | float) -> list[dict[str, Any]]:
        """The records of epochs 1, 2, ... up to ``upto_epoch``; a line that is not a JSON
        record of the next epoch raises naming the file and the line."""
        if not self.metrics.is_file():
            return []
        records = []
        for number, line in enumerate(self.metrics.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise RunFolderError(
                    f"{self.metrics} line {number} is not JSON ({e.msg}): restore the file, or "
                    "start the run again in a new folder"
                ) from None
            if not isinstance(record, dict) or record.get("epoch") != len(records) + 1:
                got = record.get("epoch") if isinstance(record, dict) else record
                raise RunFolderError(
                    f"{self.metrics} line {number} should record epoch {len(records) + 1}, got "
                    f"epoch={got!r}: restore the file, or start the run again in a new folder"
                )
            records.append(record)
        return [r for r in records if r["epoch"] <= upto_epoch]

    def write_metrics(self, metrics: list[dict[str, Any]]) -> None:
        if self.writes:
            atomic_write_text(self.metrics, "".join(json.dumps(r) + "\n" for r in metrics))

    def save_checkpoint(self, state: TrainState, record: dict[str, Any]) -> None:
        """The checkpoint, with the epoch it holds and that epoch's metrics in its checksum file
        (so a crash before ``metrics.jsonl`` is written loses nothing)."""
        if self.writes:
            save_checkpoint(
                self.checkpoint, state, extra={"epoch": record["epoch"], "record": record}
            )


def read_config(out: str | os.PathLike) -> TrainConfig:
    """The ``TrainConfig`` of the run saved in folder ``out``."""
    path = Path(out) / CONFIG_FILE
    content = read_json_object(path, "config", dict, RunFolderError, "restore the file")
    try:
        return TrainConfig(**content["config"])
    except (TypeError, ValueError) as e:  # an unknown field, or a value TrainConfig refuses
        raise RunFolderError(f"{path}: its 'config' is not valid ({e}); restore the file") from None


def read_metrics(out: str | os.PathLike) -> list[dict[str, Any]]:
    """The per-epoch metrics of the run saved in folder ``out``."""
    return _RunDir(Path(out)).read_metrics(upto_epoch=math.inf)


def load_run(out: str | os.PathLike, *, dataset: Dataset | None = None) -> TrainResult:
    """The run saved in folder ``out``: its config, its state at the last checkpoint and metrics.

    Loads the run's dataset unless ``dataset`` is given (its shapes are needed to rebuild the
    network before reading the weights into it).
    """
    run_dir = _RunDir(Path(out))
    if not run_dir.checkpoint.is_file():
        raise FileNotFoundError(f"{run_dir.checkpoint} does not exist: no epoch of {out} completed")
    config = read_config(out)
    data = dataset if dataset is not None else _load(config)
    optimizer, _ = config.make_optimizer(num_batches(data.train, config.batch_size))
    like = initial_state(config, data, config.make_estimator(), optimizer)
    state = load_checkpoint(run_dir.checkpoint, like)
    run_dir.read_metrics(upto_epoch=math.inf)  # damaged metrics fail here, naming the file
    return TrainResult(config, state.model, state, read_metrics(out), run_dir.path)
