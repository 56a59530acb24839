"""Discrete-time training: configuration, the training loop, checkpoints and run folders, data
parallelism over devices and hosts."""

from ._checkpoint import CheckpointError as CheckpointError
from ._checkpoint import load_checkpoint as load_checkpoint
from ._checkpoint import save_checkpoint as save_checkpoint
from ._complete import complete_run as complete_run
from ._complete import complete_runs as complete_runs
from ._complete import run_name as run_name
from ._config import TrainConfig as TrainConfig
from ._lock import RunFolderLocked as RunFolderLocked
from ._lock import RunLock as RunLock
from ._loop import RunFolderError as RunFolderError
from ._loop import TrainResult as TrainResult
from ._loop import evaluate as evaluate
from ._loop import initial_state as initial_state
from ._loop import load_run as load_run
from ._loop import read_config as read_config
from ._loop import read_metrics as read_metrics
from ._loop import train as train
from ._optim import OPTIMIZERS as OPTIMIZERS
from ._optim import SCHEDULES as SCHEDULES
from ._optim import make_optimizer as make_optimizer
from ._optim import make_schedule as make_schedule
from ._parallel import DataParallel as DataParallel
from ._parallel import initialize_distributed as initialize_distributed
from ._state import TrainState as TrainState
from ._step import eval_step as eval_step
from ._step import train_step as train_step
from ._steps import StepsResult as StepsResult
from ._steps import TrainingDiverged as TrainingDiverged
from ._steps import check_finite as check_finite
from ._steps import run_steps as run_steps

__all__ = [
    "CheckpointError",
    "load_checkpoint",
    "save_checkpoint",
    "complete_run",
    "complete_runs",
    "run_name",
    "TrainConfig",
    "RunFolderLocked",
    "RunLock",
    "RunFolderError",
    "TrainResult",
    "evaluate",
    "initial_state",
    "load_run",
    "read_config",
    "read_metrics",
    "train",
    "OPTIMIZERS",
    "SCHEDULES",
    "make_optimizer",
    "make_schedule",
    "DataParallel",
    "initialize_distributed",
    "TrainState",
    "eval_step",
    "train_step",
    "StepsResult",
    "TrainingDiverged",
    "check_finite",
    "run_steps",
]
