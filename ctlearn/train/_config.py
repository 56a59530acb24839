"""``TrainConfig``: everything that defines a discrete-time training run, checked on creation."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import numbers
from typing import Any

import optax

from ..augment import Augmentation
from ..data import SCALINGS, check_dataset
from ..estimators import make_estimator
from ..losses import LOSSES
from ..nn import architecture
from ._optim import OPTIMIZERS, SCHEDULES, make_optimizer, make_schedule

# Options whose meaning depends on the total length of the run: changing ``epochs`` on resume
# would change the steps already taken, so a run with these can only be resumed as it was.
_LENGTH_DEPENDENT_SCHEDULES = ("linear", "cosine")
# Options a resumed run may change.
_MAY_CHANGE = ("epochs", "devices")
AUGMENTATIONS = ("none", "crop_flip", "byol")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A training run: data, network, learning rule, optimizer and schedule, seed.

    ``model_options`` are keyword arguments of the model builder (e.g. ``{"widths": [256, 256]}``)
    and ``method_options`` those of the estimator (e.g. ``{"noise": "rademacher"}``). ``lr_decay``
    is the per-epoch factor of the ``exp`` schedule; ``momentum`` is used by ``sgd`` and ``lars``.
    ``devices`` is how many devices share each batch (data parallelism, see ``DataParallel``):
    ``None`` takes every device JAX sees, 1 runs on one device without sharding; ``batch_size``
    must be a multiple of it. ``input_scaling`` (``ctlearn.data.SCALINGS``): images standardised
    per channel, or mapped from [0, 255] onto [-1, 1] ("symmetric"). ``image_size`` resizes the
    dataset's images to that square side (bilinear; e.g. 64 for AlexNet on Fashion-MNIST).
    ``augment`` transforms
    every training batch (``AUGMENTATIONS``: "none", "crop_flip", or "byol", BYOL's two
    pipelines, whose crops keep at least ``crop_area`` of the input); ``views=2`` trains on two
    augmented views of every example, stacked on the batch axis (contrastive objectives need
    it). Every value is checked when the config is created, before any data is read or model
    built (whether that many devices exist is checked when training starts).
    """

    dataset: str = "mnist1d"
    model: str = "mlp"
    method: str = "bp"
    epochs: int = 5
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    schedule: str = "constant"
    lr_decay: float = 0.95
    warmup_epochs: int = 0
    momentum: float = 0.9
    weight_decay: float = 0.0
    loss: str = "cross_entropy"
    seed: int = 0
    model_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    method_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    data_dir: str | None = None
    data_source: str = "auto"
    input_scaling: str = "standardise"
    image_size: int | None = None
    eval_batch_size: int = 1000
    devices: int | None = None
    augment: str = "none"
    crop_area: float = 0.08
    views: int = 1

    def __post_init__(self):
        for name in ("epochs", "batch_size", "eval_batch_size"):
            _check_int(name, getattr(self, name), minimum=1)
        if self.devices is not None:
            _check_int("devices", self.devices, minimum=1)
            if self.batch_size % self.devices:
                raise ValueError(
                    f"batch_size {self.batch_size} is not divisible by devices={self.devices}: "
                    f"each device takes an equal share of the batch"
                )
        _check_choice("augment", self.augment, AUGMENTATIONS)
        _check_real("crop_area", self.crop_area, low=0.0, high=1.0, low_open=True)
        _check_choice("views", self.views, (1, 2))
        if self.views == 2 and self.augment == "none":
            raise ValueError("views=2 needs an augmentation (augment='crop_flip' or 'byol')")
        contrastive = self.model_options.get("objective") == "contrastive"
        if contrastive != (self.views == 2):
            raise ValueError(
                "a contrastive model (model_options objective='contrastive') trains on two "
                f"views and only it does: got objective "
                f"{self.model_options.get('objective', 'supervised')!r} with views={self.views}"
            )
        _check_int("seed", self.seed, minimum=0)
        _check_int("warmup_epochs", self.warmup_epochs, minimum=0)
        if self.warmup_epochs >= self.epochs:
            raise ValueError(
                f"warmup_epochs ({self.warmup_epochs}) must be fewer than epochs ({self.epochs})"
            )
        _check_real("lr", self.lr, low=0.0, low_open=True)
        _check_real("lr_decay", self.lr_decay, low=0.0, high=1.0, low_open=True)
        _check_real("momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        _check_real("weight_decay", self.weight_decay, low=0.0)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("loss", self.loss, tuple(LOSSES))
        for name in ("model_options", "method_options"):
            value = getattr(self, name)
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise TypeError(f"{name} must be a dict with str keys, got {value!r}")
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            raise TypeError(f"data_dir must be a str path or None, got {self.data_dir!r}")
        check_dataset(self.dataset, self.data_source)
        _check_choice("input_scaling", self.input_scaling, SCALINGS)
        if self.input_scaling != "standardise" and self.dataset == "mnist1d":
            raise ValueError(
                f"input_scaling {self.input_scaling!r} applies to [0, 255] images; mnist1d's "
                "real-valued sequences are standardised (input_scaling='standardise')"
            )
        if self.image_size is not None:
            _check_int("image_size", self.image_size, minimum=1)
            if self.dataset == "mnist1d":
                raise ValueError(
                    f"image_size {self.image_size} resizes images; mnist1d holds sequences "
                    "(leave image_size=None)"
                )
        _check_model(self.model, self.model_options)
        self.make_estimator()  # raises for an unknown method or option, or an invalid value

    def make_estimator(self):
        """The estimator this config names, with its options."""
        return make_estimator(self.method, loss=self.loss, **_tuples(self.method_options))

    def make_augmentation(self) -> Augmentation | tuple[Augmentation, Augmentation] | None:
        """What ``train_step`` applies to every training batch (a pair: two views)."""
        if self.augment == "none":
            return None
        if self.augment == "byol":
            views = tuple(Augmentation.byol(v, crop_area_min=self.crop_area) for v in (1, 2))
        else:
            views = (Augmentation.crop_flip(self.crop_area),) * 2
        return views if self.views == 2 else views[0]

    def make_optimizer(
        self, steps_per_epoch: int
    ) -> tuple[optax.GradientTransformation, optax.Schedule]:
        """The optimizer this config names and its learning-rate schedule (per step)."""
        schedule = make_schedule(
            self.schedule,
            self.lr,
            steps_per_epoch=steps_per_epoch,
            epochs=self.epochs,
            decay=self.lr_decay,
            warmup_epochs=self.warmup_epochs,
        )
        optimizer = make_optimizer(
            self.optimizer, schedule, momentum=self.momentum, weight_decay=self.weight_decay
        )
        return optimizer, schedule

    def model_kwargs(self) -> dict[str, Any]:
        """``model_options`` as keyword arguments (JSON lists become tuples)."""
        return _tuples(self.model_options)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        values = json.loads(text)
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {', '.join(unknown)}")
        return cls(**values)

    def resumable_as(self, saved: TrainConfig) -> None:
        """Raises unless a run saved with ``saved`` may be continued under this config.

        Only ``epochs`` may change, and only with a schedule that does not depend on the run's
        length (otherwise the steps already taken would differ from an uninterrupted run); and
        ``devices``, which changes the order of floating-point sums only (a run resumed on other
        devices matches an uninterrupted one to rounding, not bit for bit).
        """
        mine, theirs = _comparable(self), _comparable(saved)
        changed = sorted(k for k in mine if mine[k] != theirs[k] and k not in _MAY_CHANGE)
        if changed:
            details = "; ".join(f"{k}: saved {theirs[k]!r}, given {mine[k]!r}" for k in changed)
            raise ValueError(
                f"cannot resume: the configuration differs from the saved run ({details})"
            )
        if self.epochs != saved.epochs and saved.schedule in _LENGTH_DEPENDENT_SCHEDULES:
            raise ValueError(
                f"cannot resume with epochs={self.epochs}: the saved run has epochs="
                f"{saved.epochs} and a {saved.schedule!r} schedule, which depends on the run's "
                "length"
            )


def _tuples(options: dict[str, Any]) -> dict[str, Any]:
    # JSON has no tuples: options read back from config.json hold lists where tuples were given.
    return {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}


def _comparable(config: TrainConfig) -> dict[str, Any]:
    # Round-trip through JSON so that tuples and lists compare equal.
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _check_model(name: str, options: dict[str, Any]) -> None:
    parameters = inspect.signature(architecture(name)).parameters
    valid = [p for p in parameters if p not in ("input_shape", "num_classes", "key")]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"model {name!r} has no option(s) {', '.join(unknown)}; valid options: "
            f"{', '.join(valid)}"
        )
    for key, value in options.items():
        check_like_default(f"model option {key}", value, parameters[key].default)


def check_like_default(name: str, value, default) -> None:
    """Refuses ``value`` when it is not of the kind of the option's ``default`` (a bool, an
    integer, a real number, a string, or a sequence of integers); options without a default of
    these kinds are left to the builder."""
    integer = lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool)
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif integer(default):
        ok, kind = integer(value), "an integer"
    elif isinstance(default, float):
        ok, kind = isinstance(value, numbers.Real) and not isinstance(value, bool), "a number"
    elif isinstance(default, str):
        ok, kind = isinstance(value, str), "a string"
    elif isinstance(default, (tuple, list)) and default and all(map(integer, default)):
        ok = isinstance(value, (tuple, list)) and all(map(integer, value))
        kind = "a list of integers, e.g. [256, 256]"
    else:
        return
    if not ok:
        raise ValueError(f"{name}={value!r} is not valid: it must be {kind}")


def _check_int(name: str, value, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_real(name, value, *, low, high=math.inf, low_open=False, high_open=False) -> None:
    ok = (
        not isinstance(value, bool)
        and isinstance(value, numbers.Real)
        and math.isfinite(value)
        and (value > low if low_open else value >= low)
        and (value < high if high_open else value <= high)
    )
    if not ok:
        lower = f"{'>' if low_open else '>='} {low:g}"
        upper = "" if math.isinf(high) else f" and {'<' if high_open else '<='} {high:g}"
        raise ValueError(f"{name} must be a finite real number {lower}{upper}, got {value!r}")


def _check_choice(name: str, value, valid: tuple) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(map(str, valid))}")
