"""Analog-hardware sweeps: one continuous-time learning setup, its non-idealities varied.

``AnalogBase`` is a sweep spec's ``base``: the network, data, perturbation, rule, solver and
the non-idealities every point has. A grid names the numbers it varies as ``"<kind>.<field>"``
(a non-ideality's parameter, e.g. ``"noise.sigma"``) or ``"rule.lr"``; a ``None`` value is that
parameter's ideal value. ``AnalogSweep`` validates every point before any work and evaluates
chunks of members as one ``simulate_ensemble``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .. import dynamics as ct
from .._mesh import Devices, resolve_devices, to_host
from ..data import load_dataset
from ..losses import accuracy, get_loss
from ..nn import Network
from ..train._config import check_like_default
from ._spec import Member, SweepSpec

KINDS: dict[str, type[ct.AbstractNonIdeality]] = {
    "noise": ct.ActivityNoise,
    "differentiator": ct.Differentiator,
    "mismatch": ct.Mismatch,
    "precision": ct.Quantisation,
    "drift": ct.WeightDrift,
    "injection": ct.Injection,
    "device": ct.PulsedDevice,
}
"""The grid's names for the non-idealities."""

IDEAL: dict[str, float] = {
    "noise.sigma": 0.0,
    "differentiator.tau": 0.0,
    "differentiator.blank": 0.0,
    "mismatch.gain_spread": 0.0,
    "mismatch.offset_spread": 0.0,
    "mismatch.lr_spread": 0.0,
    "precision.bits": math.inf,
    "precision.w_max": math.inf,
    "drift.tau": math.inf,
    "drift.sigma": 0.0,
    "injection.amplitude": math.inf,
    "injection.crosstalk": 0.0,
    "device.dw_min": 0.0,
    "device.w_min": -math.inf,
    "device.w_max": math.inf,
    "device.up_down": 0.0,
    "device.c2c": 0.0,
    "device.dw_min_d2d": 0.0,
    "device.up_down_d2d": 0.0,
    "device.w_min_d2d": 0.0,
    "device.w_max_d2d": 0.0,
}
"""Each strength parameter's ideal value: what ``None`` in a grid stands for."""

SWEEPABLE = ("rule.lr", *IDEAL, "noise.tau", "drift.rest")
"""The numbers a grid may vary (everything else is structure: set it in ``base``)."""

ModelFactory = Callable[["AnalogBase", tuple[int, ...], int, PRNGKeyArray], Network]
"""``model(base, input_shape, num_classes, key)``: a member's initial network."""


@dataclasses.dataclass(frozen=True)
class AnalogBase:
    """The setup shared by a sweep's points. Times are in the simulator's unit (τ_p = 1 by
    default).

    ``duration`` T and ``transition`` per presentation; ``presentations`` of ``batch_size``
    examples from the training split, in order (cycling through it). The test accuracy is
    measured on the first ``test_size`` test examples, on the circuit as built (mismatch
    applied, without noise or perturbation). ``rule``: "fg-a" or "lg-fg-a" (the exact rule,
    ẏ = ṗ, with the ReLU ``mask``), or "bp" (gradient flow, ẇ = −η∇L: a reference, nothing
    perturbed; at η·c it has the perturbative rules' η_eff); ``lr``: η (1/time);
    ``sigma``/``tau_p``/``components``: the sinusoidal perturbation; ``solver``/``dt0``:
    "default" (the simulator's automatic choice, ``solver=None``: ``ct.plan``, by default
    Heun in PEC mode reading a tabulated perturbation, or Heun with a one-line notice where that
    cannot serve) or a fixed-step Diffrax solver ("euler" or "heun"), at the
    time resolution ``dt0``; ``chunk``: presentations per compiled call; ``hardware``:
    ``{kind: {field: value}}``, the non-idealities every point has.
    """

    dataset: str = "mnist1d"
    widths: tuple[int, ...] = (32,)
    batch_size: int = 20
    presentations: int = 400
    duration: float = 10.0
    transition: float = 1.0
    test_size: int = 1000
    rule: str = "fg-a"
    mask: bool = True
    lr: float = 30.0
    sigma: float = 0.01
    tau_p: float = 1.0
    components: int = 4
    solver: str = "heun"
    dt0: float = 0.05
    chunk: int = 50
    hardware: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        # Types first: the checks of values below compare numbers.
        for f in dataclasses.fields(self):
            if f.name != "hardware":
                check_like_default(f"base: {f.name}", getattr(self, f.name), f.default)
        object.__setattr__(self, "widths", tuple(self.widths))
        for name in ("batch_size", "presentations", "test_size", "components", "chunk"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"base: {name} must be an int >= 1, got {name}={value!r}")
        if not self.widths or any(not isinstance(w, int) or w < 1 for w in self.widths):
            raise ValueError(f"base: widths must be positive ints, got widths={self.widths!r}")
        if self.rule not in RULES:
            raise ValueError(f"base: unknown rule {self.rule!r}; valid: {', '.join(RULES)}")
        if self.solver not in SOLVERS:
            raise ValueError(f"base: unknown solver {self.solver!r}; valid: {', '.join(SOLVERS)}")
        if not isinstance(self.hardware, Mapping):
            raise ValueError(
                f"base: hardware must map kinds ({', '.join(KINDS)}) to their settings, got "
                f"hardware={self.hardware!r}"
            )
        for kind, fields in self.hardware.items():
            _check_hardware(kind, fields)

    @classmethod
    def from_dict(cls, base: Mapping[str, Any]) -> AnalogBase:
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(base) - set(names))
        if unknown:
            raise ValueError(f"base: unknown settings {unknown}; valid: {', '.join(names)}")
        return cls(**base)

    def stream(self, data) -> ct.Presentations:
        if len(data.train) < self.batch_size:
            raise ValueError(
                f"batch_size={self.batch_size} is larger than {data.name}'s training split "
                f"({len(data.train)} examples)"
            )
        # In the stored order, cycling through the training split (epochs) when needed.
        return ct.Presentations.from_split(
            data.train,
            self.batch_size,
            duration=self.duration,
            transition=self.transition,
            count=self.presentations,
        )

    def simulator(self, params: Mapping[str, Any]) -> ct.Simulator:
        """The simulator of one grid point (``params``: grid name → value)."""
        # A float, as the ensemble's other members' η: an int would be a structural leaf
        # (simulate_ensemble turns only floats into arrays), making a grid of η unvmappable.
        lr = float(params.get("rule.lr", self.lr))
        hardware = {kind: dict(fields) for kind, fields in self.hardware.items()}
        for name, value in params.items():
            if name == "rule.lr":
                continue
            kind, field = name.split(".", 1)
            hardware.setdefault(kind, {})[field] = IDEAL[name] if value is None else value
        components = tuple(KINDS[kind](**fields) for kind, fields in hardware.items())
        if self.rule == "bp":  # gradient flow: nothing perturbed, nothing to mask
            rule, perturbation = ct.GradientFlow(lr=lr), None
        else:
            rule = RULES[self.rule](lr=lr, mask=self.mask)
            perturbation = ct.Sinusoids(
                sigma=self.sigma, tau=self.tau_p, components=self.components
            )
        return ct.Simulator(
            rule=rule,
            perturbation=perturbation,
            solver=SOLVERS[self.solver](),
            dt0=self.dt0,
            hardware=components,
        )


RULES = {"fg-a": ct.FGARule, "lg-fg-a": ct.LGFGARule, "bp": ct.GradientFlow}
SOLVERS: dict[str, Callable[[], Any]] = {
    "default": lambda: None,  # the simulator's automatic choice (ctlearn.dynamics._engine.plan)
    "euler": diffrax.Euler,
    "heun": diffrax.Heun,
}


def _check_hardware(kind: Any, fields: Any) -> None:
    """``base.hardware[kind]``: a known kind, its known fields, each of the kind of its default
    (a number where the component has a number), then the component's own checks of values."""
    if kind not in KINDS:
        raise ValueError(f"base: unknown hardware kind {kind!r}; valid: {', '.join(KINDS)}")
    if not isinstance(fields, Mapping):
        raise ValueError(
            f"base: hardware.{kind} must map its fields to values, got {kind}={fields!r}"
        )
    defaults = {f.name: f.default for f in dataclasses.fields(KINDS[kind])}
    unknown = [name for name in fields if name not in defaults]
    if unknown:
        raise ValueError(
            f"base: hardware.{kind} has no field(s) {', '.join(map(repr, unknown))}; valid: "
            f"{', '.join(defaults)}"
        )
    for name, value in fields.items():
        check_like_default(f"base: hardware.{kind}.{name}", value, defaults[name])
    KINDS[kind](**fields)  # a bad value is named here


def check_grid(spec: SweepSpec) -> None:
    """Every grid name is sweepable, its values are numbers (types are checked before any value
    is compared), and ``None`` only stands for strength parameters."""
    for name, values in spec.grid.items():
        if name not in SWEEPABLE:
            raise ValueError(
                f"grid: {name!r} cannot be swept; valid: {', '.join(SWEEPABLE)} (set structure "
                "such as widths, rule or solver in base)"
            )
        for value in values:
            if value is None and name not in IDEAL:
                raise ValueError(f"grid: {name!r} has no ideal value, so None is not valid there")
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, numbers.Real)
            ):
                ideal = ', or None (null; "none" in TOML) for its ideal value'
                raise ValueError(
                    f"grid: {name!r} has value {value!r} (a {type(value).__name__}); valid: a "
                    f"number{ideal if name in IDEAL else ''}"
                )


@functools.lru_cache(maxsize=4)
def dataset(name: str):
    """The dataset ``name`` as the sweeps read it (loaded once per process)."""
    return load_dataset(name)


def initial_network(base: AnalogBase, data, model: ModelFactory, seed: int) -> Network:
    """The network a sweep's member of seed ``seed`` starts from (its key's first fold)."""
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 0)
    return model(base, data.input_shape, data.num_classes, key)


class AnalogSweep:
    """The evaluation function of an analog sweep (``run_sweep(spec, out, AnalogSweep(spec,
    model))``): ``model(base, input_shape, num_classes, key)`` builds a member's initial
    network. ``devices`` (``None``: all of ``jax.devices()``, every host's after
    ``ctlearn.train.initialize_distributed``; a count; or a list) share each chunk's members
    (``simulate_ensemble``). Construction validates the devices (every chunk must split evenly
    over them), the base, the grid and every point's physics against the presentations, before
    any work.

    Each member's row: ``test_accuracy`` and ``test_loss`` of the circuit at the end (first
    ``base.test_size`` test examples), ``train_loss`` (mean over the last tenth of the
    presentations), ``alignment`` (mean over presentations of the cosine between the rule's
    weight change and −∇L), ``weight_mean`` (the mean of every stored parameter at the end),
    ``steps`` (solver steps per presentation), ``failed``, ``diverged`` and ``diverged_at``
    (the presentation where the loss diverged, −1 if it did not)."""

    def __init__(
        self,
        spec: SweepSpec,
        model: ModelFactory,
        *,
        progress: bool = False,
        devices: Devices = None,
    ):
        self.devices = resolve_devices(devices)
        spec.check_devices(len(self.devices), jax.device_count())
        self.base = AnalogBase.from_dict(spec.base)
        check_grid(spec)
        self.model = model
        self.progress = progress
        self.data = dataset(self.base.dataset)
        self.stream = self.base.stream(self.data)
        for point in spec.points():
            try:
                self.base.simulator(point).check(self.stream)
            except ValueError as error:
                raise ValueError(f"grid point {point}: {error}") from None

    def __call__(self, spec: SweepSpec, members: Sequence[Member]) -> list[dict[str, Any]]:
        keys = [jax.random.PRNGKey(m.seed) for m in members]
        ensemble = ct.simulate_ensemble(
            [self.base.simulator(m.params) for m in members],
            [initial_network(self.base, self.data, self.model, m.seed) for m in members],
            self.stream,
            keys=[jax.random.fold_in(k, 1) for k in keys],
            chunk=self.base.chunk,
            progress=self.progress,
            devices=self.devices,
        )
        test_loss, test_acc = to_host(
            evaluate_circuits(ensemble.results.circuit, self.data, self.base)
        )
        weight_mean = to_host(parameter_means(ensemble.results.model))
        r = ensemble.results
        tail = max(1, self.base.presentations // 10)
        rows = []
        for m in range(len(members)):
            rows.append(
                {
                    "test_accuracy": float(test_acc[m]),
                    "test_loss": float(test_loss[m]),
                    "train_loss": float(np.mean(np.asarray(r.loss[m, -tail:]))),
                    "alignment": float(np.mean(np.asarray(r.alignment[m]))),
                    "weight_mean": float(weight_mean[m]),
                    "steps": float(np.mean(np.asarray(r.steps[m]))),
                    "failed": int(np.any(np.asarray(ensemble.failed[m]))),
                    "diverged": int(ensemble.diverged[m] >= 0),
                    "diverged_at": int(ensemble.diverged[m]),
                }
            )
        return rows


def parameter_means(models: Network) -> Float[Array, " members"]:
    """Per member (the leading axis), the mean of every stored trainable number (weights and
    biases alike): where asymmetric devices pull the weights (their symmetry point)."""
    leaves = jax.tree.leaves(eqx.filter(models, eqx.is_inexact_array))
    total = sum(leaf.reshape(leaf.shape[0], -1).sum(axis=1) for leaf in leaves)
    return total / sum(leaf[0].size for leaf in leaves)


def evaluate_circuits(circuits: Network, data, base: AnalogBase):
    x = jnp.asarray(np.asarray(data.test.x[: base.test_size]))
    y = jnp.asarray(np.asarray(data.test.y[: base.test_size]))
    loss = get_loss("cross_entropy")

    @eqx.filter_jit
    @eqx.filter_vmap
    def one(circuit):
        logits = circuit(x).logits
        return jnp.mean(loss(logits, y)), accuracy(logits, y)

    return one(circuits)
