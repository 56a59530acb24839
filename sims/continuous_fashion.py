"""Continuous-time learning on Fashion-MNIST: FG-A, LG-FG-A and FDFA circuits beside discrete SGD.

    python -m sims.continuous_fashion [--quick] [--out DIR] [--budget-minutes 20] [--only MODE ...]
                                      [--mixer]

An MLP 784-256-256-10 with a local head after its first hidden layer learns in continuous time
by three rules (``ct.FGARule``, ``ct.LGFGARule``, ``ct.FDFARule``): every minibatch of
``batch_size`` examples is presented for a duration T while a sum-of-sinusoids perturbation
(time constant τ_p) drives the rule. Beside them, discrete SGD takes one step per batch at the
matched learning rate η·c·T (``ct.effective_learning_rate`` of the FG-A circuit) with BP, with
FG-A along one direction per step and along as many as a presentation averages over
(``matched_samples``). Every mode sees the same batches in the same order; each trains until its
``epochs`` end or its training wall time reaches ``budget_minutes`` (test evaluations excluded).
``--mixer`` adds a LocalMixer (``mixer_preset``, S/1/1 by default) trained by continuous LG-FG-A
beside discrete LG-FG-A at its matched learning rate, for ``mixer_epochs``.

Resumable: every finished mode writes ``DIR/modes/<mode>.json`` (curve, final accuracy, wall
time, settings) and a rerun with the same settings skips it (a mode whose solve failed keeps its
curve so far and is run again). ``DIR/summary.json`` (with the provenance: command, commit,
machine), ``summary.md`` and ``learning_curves.png`` gather the finished modes.

The defaults' full run, with what it measured, is committed in ``results/continuous_fashion``
(its ``summary.md``; settings: 4 epochs of batches of 128, T = 2 τ_p, one sinusoid per unit,
σ = τ_p, the default tabulated-Heun engine at dt0 = τ_p/16). T is short on purpose: these
rules average their perturbation over many presentations anyway (FDFA's feedback over 1/α, the
weights over 1/(η·c)), and a longer presentation costs proportionally more time points.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
from tqdm.auto import tqdm

import ctlearn.dynamics as ct
from ctlearn._usererror import prepare_parser, run_main
from ctlearn.data import ArraySplit, load_dataset
from ctlearn.estimators import make_estimator
from ctlearn.files import atomic_write_text, read_json_object
from ctlearn.plotting import save_figure
from ctlearn.provenance import provenance
from ctlearn.train import TrainState, evaluate, run_steps
from models import LOCAL_MIXER_PRESETS, local_mixer, mlp

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LOSS = "cross_entropy"
TARGET_ACCURACY = 85.0  # the target for the best continuous rule, within 20 minutes
# The batch order every mode sees (recorded in each mode's settings): the seed's data key folded
# with the epoch, as ``ct.Presentations.from_split`` and ``ctlearn.data.batches`` order them.
STREAM = "ctlearn.data.batches"


@dataclasses.dataclass(frozen=True)
class Mode:
    """One training run: ``network`` ("mlp" or "mixer"), ``kind`` ("continuous" or "discrete")
    and ``method`` (the rule's or the estimator's name)."""

    label: str
    network: str
    kind: str
    method: str


MODES: dict[str, Mode] = {
    "ct-fg-a": Mode("continuous FG-A", "mlp", "continuous", "fg-a"),
    "ct-lg-fg-a": Mode("continuous LG-FG-A", "mlp", "continuous", "lg-fg-a"),
    "ct-fdfa": Mode("continuous FDFA", "mlp", "continuous", "fdfa"),
    "bp": Mode("discrete BP", "mlp", "discrete", "bp"),
    "fg-a": Mode("discrete FG-A ×1", "mlp", "discrete", "fg-a"),
    "fg-a-matched": Mode("discrete FG-A ×K", "mlp", "discrete", "fg-a"),
    "mixer-ct-lg-fg-a": Mode("LocalMixer continuous LG-FG-A", "mixer", "continuous", "lg-fg-a"),
    "mixer-lg-fg-a": Mode("LocalMixer discrete LG-FG-A", "mixer", "discrete", "lg-fg-a"),
}
MLP_MODES = tuple(name for name, mode in MODES.items() if mode.network == "mlp")
MIXER_MODES = tuple(name for name, mode in MODES.items() if mode.network == "mixer")


@dataclasses.dataclass(frozen=True)
class FashionConfig:
    """Settings of every mode. Times are in units of τ_p (``tau_p`` = 1 by default).

    ``lr``: η of the FG-A and LG-FG-A circuits (1/time); ``fdfa_lr`` that of the FDFA circuit
    and ``feedback_lr`` its α. ``sigma``: the perturbation's σ, c = (σ/τ_p)² its rate power.
    The perturbation-driven updates move at η·c per unit time, but LG-FG-A's local heads (their
    exact local gradient) and FDFA's output layer (its own error) at η whatever c: σ = τ_p
    (c = 1, the default) keeps every part of a network at η·T per presentation. The discrete
    modes run plain SGD at η·c·T of the FG-A circuit.
    ``duration``: T per presentation; ``transition``: the time spent blending from the previous
    batch (below T); ``dt0``: the solver's step; ``components``/``band``: sinusoids per unit and
    their frequency band (multiples of 2π/τ_p). ``matched_samples``: directions per step of the
    "fg-a-matched" mode. ``train_size``/``test_size``: the first N examples (``None``: all).
    ``epochs``: passes over the training set (each mode stops earlier when its training wall
    time reaches ``budget_minutes``); ``eval_every``: presentations between test evaluations.
    ``modes``: the keys of ``MODES`` to run. The ``mixer_*`` settings are the LocalMixer's.
    """

    dataset: str = "fashion_mnist"
    widths: tuple[int, ...] = (256, 256)
    batch_size: int = 128
    epochs: int = 4
    budget_minutes: float = 20.0
    lr: float = 0.005
    fdfa_lr: float = 0.03
    feedback_lr: float = 0.05
    sigma: float = 1.0
    tau_p: float = 1.0
    duration: float = 2.0
    transition: float = 0.0
    dt0: float = 0.0625
    components: int = 1
    band: tuple[float, float] = (0.5, 2.0)
    matched_samples: int = 4
    train_size: int | None = None
    test_size: int | None = None
    eval_every: int = 50
    modes: tuple[str, ...] = MLP_MODES
    mixer_preset: str = "S/1/1"
    mixer_channels: int | None = None
    mixer_lr: float = 0.005
    mixer_epochs: int = 1
    mixer_budget_minutes: float = 60.0
    seed: int = 0
    out: str = "runs/continuous_fashion"
    progress: bool = True

    def __post_init__(self):
        positive_ints = {
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "eval_every": self.eval_every,
            "components": self.components,
            "matched_samples": self.matched_samples,
            "mixer_epochs": self.mixer_epochs,
            "mixer_channels": 1 if self.mixer_channels is None else self.mixer_channels,
        }
        for name, value in positive_ints.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {name}={value!r}")
        if not self.widths or any(w < 1 for w in self.widths):
            raise ValueError(f"widths must be positive ints, got widths={self.widths!r}")
        for name in (
            "lr",
            "fdfa_lr",
            "feedback_lr",
            "sigma",
            "tau_p",
            "duration",
            "dt0",
            "budget_minutes",
            "mixer_lr",
            "mixer_budget_minutes",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be finite and > 0, got {name}={value!r}")
        for name in ("train_size", "test_size"):
            value = getattr(self, name)
            if value is not None and value < self.batch_size:
                raise ValueError(
                    f"{name}={value} holds less than one batch (batch_size={self.batch_size})"
                )
        if self.duration < self.tau_p:
            raise ValueError(
                f"duration={self.duration} is shorter than tau_p={self.tau_p}: a presentation "
                "could not average over the perturbation"
            )
        if not 0 <= self.transition < self.duration:
            raise ValueError(
                f"transition is a time in [0, duration={self.duration}), got {self.transition}"
            )
        if not self.modes or any(m not in MODES for m in self.modes):
            raise ValueError(f"modes must be among {', '.join(MODES)}; got {self.modes!r}")
        if len(set(self.modes)) != len(self.modes):
            raise ValueError(f"modes must not repeat, got {self.modes!r}")
        if self.mixer_preset not in LOCAL_MIXER_PRESETS:
            raise ValueError(
                f"unknown mixer_preset {self.mixer_preset!r}; valid: "
                f"{', '.join(LOCAL_MIXER_PRESETS)}"
            )
        self.perturbation()  # the band and components are checked by Sinusoids

    def perturbation(self) -> ct.Sinusoids:
        return ct.Sinusoids(self.sigma, self.tau_p, components=self.components, band=self.band)

    def simulator(self, mode: Mode) -> ct.Simulator:
        """The circuit of a continuous ``mode`` (the FG-A circuit for a discrete one: it sets
        the matched learning rate)."""
        if mode.network == "mixer":
            rule = ct.LGFGARule(self.mixer_lr, mask=True)
        elif mode.kind == "discrete" or mode.method == "fg-a":
            rule = ct.FGARule(self.lr, mask=True)
        elif mode.method == "lg-fg-a":
            rule = ct.LGFGARule(self.lr, mask=True)
        else:
            rule = ct.FDFARule(self.fdfa_lr, self.feedback_lr)
        return ct.Simulator(rule, self.perturbation(), dt0=self.dt0)

    def settings(self, mode: Mode) -> dict:
        """What a finished mode's results depend on: a rerun reuses them only if these match."""
        shared = (
            "dataset batch_size sigma tau_p duration transition dt0 components band train_size "
            "test_size eval_every seed"
        ).split()
        names = shared + (
            "mixer_preset mixer_channels mixer_lr mixer_epochs mixer_budget_minutes".split()
            if mode.network == "mixer"
            else "widths lr epochs budget_minutes".split()
        )
        if mode.method == "fdfa":
            names += ["fdfa_lr", "feedback_lr"]
        if mode.label.endswith("×K"):
            names.append("matched_samples")
        settings = {n: getattr(self, n) for n in names}
        settings["stream"] = STREAM  # modes saved with another batch order are run again
        return json.loads(json.dumps(settings))  # tuples as lists, as read back from JSON


QUICK = dict(
    widths=(16, 16),
    batch_size=16,
    epochs=1,
    lr=0.05,
    fdfa_lr=0.05,
    mixer_lr=0.05,
    duration=2.0,
    dt0=0.05,
    train_size=64,
    test_size=256,
    eval_every=2,
    matched_samples=2,
    mixer_channels=16,
)


def main(config: FashionConfig, *, argv: list[str] | None = None) -> dict:
    """Runs every mode of ``config.modes`` not finished yet in ``config.out``; writes and
    returns the summary of all finished modes there."""
    start = time.perf_counter()
    out = Path(config.out)
    saved_modes = {name: _saved_mode(out, name) for name in MODES}  # damaged: refused here
    data = _data(config)
    names = ("model", "sim", "discrete", "data")
    keys = dict(zip(names, jax.random.split(jax.random.key(config.seed), len(names))))
    x, y = _batches(config, data, max(config.epochs, config.mixer_epochs), keys["data"])
    for name in config.modes:
        mode = MODES[name]
        path = out / "modes" / f"{name}.json"
        saved = saved_modes[name]
        if saved and saved["settings"] == config.settings(mode) and not saved.get("failed"):
            if config.progress:
                print(f"{name}: finished earlier, skipped ({path})", flush=True)
            continue
        epochs = config.mixer_epochs if mode.network == "mixer" else config.epochs
        per_epoch = x.shape[0] // max(config.epochs, config.mixer_epochs)
        count = epochs * per_epoch
        model = _model(config, mode, data, keys["model"])
        run = _continuous if mode.kind == "continuous" else _discrete
        result = run(config, name, mode, model, x[:count], y[:count], data, keys)
        result.update(
            mode=name,
            label=_label(config, mode),
            network=mode.network,
            kind=mode.kind,
            method=mode.method,
            settings=config.settings(mode),
            per_epoch=per_epoch,
            provenance=provenance(argv),
        )
        atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    summary = _summary(config, out, argv)
    summary["wall_s"] = time.perf_counter() - start
    _plot(summary, out / "learning_curves.png")
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    table = _markdown(summary)
    atomic_write_text(out / "summary.md", table + "\n")
    if config.progress:
        print(table)
    return summary


def _saved_mode(out: Path, name: str) -> dict | None:
    """The result of mode ``name`` saved in ``out`` by an earlier call (None if there is none);
    a damaged file is refused, naming it, rather than run again silently."""
    path = out / "modes" / f"{name}.json"
    if not path.exists():
        return None
    hint = f"restore it, or delete it to run mode {name} again"
    return read_json_object(path, "settings", dict, ValueError, hint)


def _label(config: FashionConfig, mode: Mode) -> str:
    return mode.label.replace("×K", f"×{config.matched_samples}")


def _data(config: FashionConfig):
    data = load_dataset(config.dataset)
    if config.test_size is not None and config.test_size < len(data.test):
        test = ArraySplit(data.test.x[: config.test_size], data.test.y[: config.test_size])
        data = dataclasses.replace(data, test=test)
    return data


def _batches(config: FashionConfig, data, epochs: int, key) -> tuple[jax.Array, jax.Array]:
    """``epochs`` shuffled passes over the training examples (the first ``train_size``) as
    [presentations, batch, ...], in ``ctlearn.data.batches``'s order (a last partial batch of
    each pass is dropped); every mode takes a prefix of these."""
    train = data.train
    if config.train_size is not None and config.train_size < len(train):
        train = ArraySplit(train.x[: config.train_size], train.y[: config.train_size])
    stream = ct.Presentations.from_split(
        train, config.batch_size, duration=config.duration, key=key, epochs=epochs
    )
    return stream.x, stream.y


def _model(config: FashionConfig, mode: Mode, data, key):
    if mode.network == "mlp":
        return mlp(data.input_shape, data.num_classes, config.widths, local_heads=True, key=key)
    return local_mixer(
        data.input_shape,
        data.num_classes,
        config.mixer_preset,
        channels=config.mixer_channels,
        key=key,
    )


def _labels_digest(y: jax.Array, presentations: int) -> str:
    """The SHA-256 of the labels of the first ``presentations`` batches: modes that saw the same
    samples in the same order share it."""
    return hashlib.sha256(np.asarray(y[:presentations]).tobytes()).hexdigest()


class _Curve:
    """Test loss and accuracy against samples seen and training wall time (evaluations
    excluded), with a budget on that training time."""

    def __init__(self, data, budget_s: float):
        self.data, self.budget_s = data, budget_s
        self.start = time.perf_counter()
        self.eval_s = 0.0
        self.points = {"samples": [], "train_s": [], "accuracy": [], "loss": []}

    def train_s(self) -> float:
        return time.perf_counter() - self.start - self.eval_s

    def spent(self) -> bool:
        return self.train_s() >= self.budget_s

    def __call__(self, samples: int, model) -> None:
        jax.block_until_ready(model)
        train_s = self.train_s()
        begin = time.perf_counter()
        loss, acc = evaluate(model, self.data, LOSS, 1000)
        for name, value in zip(self.points, (samples, train_s, 100.0 * acc, loss)):
            self.points[name].append(value)
        self.eval_s += time.perf_counter() - begin

    def summary(self, presentations: int, y: jax.Array, stopped: str) -> dict:
        return {
            "test_accuracy": self.points["accuracy"][-1],
            "test_loss": self.points["loss"][-1],
            "wall_s": self.points["train_s"][-1],
            "eval_s": self.eval_s,
            "presentations": presentations,
            "samples": self.points["samples"][-1],
            "stopped": stopped,
            "labels_sha256": _labels_digest(y, presentations),
            "curve": self.points,
        }


class _BudgetSpent(Exception):
    """Raised by the simulation's callback to end a continuous mode at its wall-time budget."""


def _budget_s(config: FashionConfig, mode: Mode) -> float:
    minutes = config.mixer_budget_minutes if mode.network == "mixer" else config.budget_minutes
    return 60.0 * minutes


def _continuous(config, name, mode, model, x, y, data, keys) -> dict:
    sim = config.simulator(mode)
    stream = ct.Presentations(x, y, duration=config.duration, transition=config.transition)
    curve = _Curve(data, _budget_s(config, mode))
    curve(0, model)
    last = {}

    def callback(presentations, result):  # after every chunk of eval_every presentations
        curve(presentations * stream.batch_size, result.circuit)
        last.update(presentations=presentations, result=result)
        if curve.spent() and presentations < stream.num:
            raise _BudgetSpent

    stopped = "epochs"
    if config.progress:
        print(f"{name}: {_label(config, mode)}", flush=True)
    try:
        ct.simulate(
            sim,
            model,
            stream,
            key=jax.random.fold_in(keys["sim"], list(MODES).index(name)),
            chunk=config.eval_every,
            progress=config.progress,
            callback=callback,
        )
    except _BudgetSpent:
        stopped = "budget"
    except ct.SimulationDiverged as e:
        stopped = f"diverged at presentation {e.presentation}"
    except RuntimeError as e:  # a solve failed: keep the curve so far, rerun the mode next time
        stopped = f"solver failed: {e}"
    result = last.get("result")
    summary = curve.summary(last.get("presentations", 0), y, stopped)
    summary["failed"] = stopped.startswith("solver failed")
    summary["lr"] = float(sim.rule.lr)
    summary["effective_lr"] = ct.effective_learning_rate(sim, config.duration)
    summary["solver"] = "automatic" if sim.solver is None else type(sim.solver).__name__
    if result is not None:
        summary["solver_steps_per_presentation"] = float(jnp.mean(result.steps))
        summary["train_accuracy_last_chunk"] = 100.0 * float(
            jnp.mean(result.accuracy[-config.eval_every :])
        )
    return summary


def _keep_going(losses, state) -> None:
    """A loss check that lets training go on (the curve reports a divergence)."""


def _discrete(config, name, mode, model, x, y, data, keys) -> dict:
    """Plain SGD (no momentum) at the matched learning rate: one step per batch, in order."""
    lr = ct.effective_learning_rate(config.simulator(mode), config.duration)
    samples = config.matched_samples if mode.label.endswith("×K") else 1
    options = {} if mode.method == "bp" else {"mask": True, "num_samples": samples}
    estimator = make_estimator(mode.method, **options)
    optimizer = optax.sgd(lr)
    params = eqx.filter(model, eqx.is_inexact_array)
    key = keys["discrete"]
    state = TrainState.start(model, optimizer.init(params), estimator.init(model, key=key))
    curve = _Curve(data, _budget_s(config, mode))
    curve(0, model)
    n = x.shape[0]
    end = {"stopped": "epochs", "steps": n}

    def evaluate_every(i, state, xi, yi):
        """Before step i: the curve after i steps; stops on a non-finite loss or the budget."""
        if i == 0 or i % config.eval_every:
            return False
        curve(i * config.batch_size, state.model)
        if not math.isfinite(curve.points["loss"][-1]):
            end.update(stopped=f"diverged by step {i - 1}", steps=i)
        elif curve.spent():
            end.update(stopped="budget", steps=i)
        return end["steps"] == i

    label = _label(config, mode)
    stream = (
        (x[k], y[k]) for k in tqdm(range(n), desc=label, unit="step", disable=not config.progress)
    )
    # Divergence is judged on the curve's loss, not stopped on: the summary reports it.
    result = run_steps(
        estimator, optimizer, state, stream, key, callback=evaluate_every, check=_keep_going
    )
    if not result.stopped:
        curve(n * config.batch_size, result.state.model)
        if not math.isfinite(curve.points["loss"][-1]):
            end["stopped"] = f"diverged by step {n - 1}"
    summary = curve.summary(end["steps"], y, end["stopped"])
    summary["lr"] = lr
    summary["num_samples"] = samples if mode.method != "bp" else None
    return summary


def _summary(config: FashionConfig, out: Path, argv) -> dict:
    """The finished modes in ``out`` (in ``MODES`` order) and how the best continuous MLP rule
    fares against the target."""
    modes = {name: _saved_mode(out, name) for name in MODES}
    modes = {name: mode for name, mode in modes.items() if mode is not None}
    continuous = {
        n: m for n, m in modes.items() if m["kind"] == "continuous" and m["network"] == "mlp"
    }
    target = None
    if continuous:
        best = max(continuous, key=lambda n: continuous[n]["test_accuracy"])
        within = [
            (s, a)
            for s, a in zip(
                continuous[best]["curve"]["train_s"], continuous[best]["curve"]["accuracy"]
            )
            if s <= 20 * 60
        ]
        target = {
            "threshold_accuracy": TARGET_ACCURACY,
            "best_mode": best,
            "best_accuracy": continuous[best]["test_accuracy"],
            "best_within_20_minutes": max(a for _, a in within),
            "met": max(a for _, a in within) >= TARGET_ACCURACY,
        }
    return {
        "config": dataclasses.asdict(config),
        "provenance": provenance(argv),
        "modes": modes,
        "target": target,
    }


def _plot(summary: dict, path: Path) -> None:
    networks = [
        n for n in ("mlp", "mixer") if any(m["network"] == n for m in summary["modes"].values())
    ]
    fig, axes = plt.subplots(
        len(networks), 2, figsize=(11, 4 * len(networks)), squeeze=False, constrained_layout=True
    )
    for row, network in zip(axes, networks):
        for mode in summary["modes"].values():
            if mode["network"] != network:
                continue
            curve = mode["curve"]
            style = "-" if mode["kind"] == "continuous" else "--"
            row[0].plot(curve["samples"], curve["accuracy"], style, marker=".", label=mode["label"])
            row[1].plot(
                np.asarray(curve["train_s"]) / 60,
                curve["accuracy"],
                style,
                marker=".",
                label=mode["label"],
            )
        row[0].set_xlabel("training samples seen")
        row[1].set_xlabel("training wall time (min, evaluations excluded)")
        title = "MLP" if network == "mlp" else "LocalMixer"
        for ax in row:
            ax.set_ylabel(f"{title}: test accuracy (%)")
            ax.axhline(TARGET_ACCURACY, color="grey", lw=0.8, ls=":")
            ax.grid(alpha=0.3)
        row[0].legend(fontsize="small")
    fig.suptitle(
        "Fashion-MNIST: continuous-time circuits (solid) vs discrete SGD at η·c·T (dashed), "
        "same batches in the same order"
    )
    save_figure(fig, path, dpi=120)


def _markdown(summary: dict) -> str:
    config = summary["config"]
    lines = [
        f"# Continuous-time learning on {config['dataset']}",
        "",
        f"Command: `{summary['provenance']['command']}` at commit "
        f"`{summary['provenance']['commit']}`.",
        "",
        f"MLP {'-'.join(str(w) for w in (784, *config['widths'], 10))} (ReLU, a local head after "
        f"the first hidden layer) and LocalMixer {config['mixer_preset']}; batch "
        f"{config['batch_size']}, the same batches in the same order for every mode. Continuous: "
        f"instantaneous neurons, Sinusoids τ_p = {config['tau_p']:g}, {config['components']} "
        f"component(s) per unit in band {tuple(config['band'])} (× 2π/τ_p), σ = "
        f"{config['sigma']:g} (c = (σ/τ_p)² = {(config['sigma'] / config['tau_p']) ** 2:g}; "
        f"FDFA: α = {config['feedback_lr']:g}), T = {config['duration']:g}, transition "
        f"{config['transition']:g}, dt0 = {config['dt0']:g}, the default (automatic) solver. "
        "Discrete: plain SGD at the matched learning rate η·c·T of the FG-A circuit (of the "
        "LocalMixer's LG-FG-A circuit for its pair). Wall times: training only (compilation "
        "included, test evaluations excluded).",
        "",
        f"| mode | η | SGD lr (η·c·T) | test accuracy (%) | best (%) | first ≥ "
        f"{TARGET_ACCURACY:g} % at (s) | epochs | wall time (s) | stopped by |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for mode in summary["modes"].values():
        curve = mode["curve"]
        reached = [s for s, a in zip(curve["train_s"], curve["accuracy"]) if a >= TARGET_ACCURACY]
        eta = f"{mode['lr']:.4g}" if mode["kind"] == "continuous" else "—"
        sgd = mode.get("effective_lr", mode["lr"])
        lines.append(
            f"| {mode['label']} | {eta} | {sgd:.4g} | {mode['test_accuracy']:.2f} | "
            f"{max(curve['accuracy']):.2f} | {f'{reached[0]:.0f}' if reached else '—'} | "
            f"{mode['presentations'] / mode['per_epoch']:.2f} | {mode['wall_s']:.0f} | "
            f"{mode['stopped']} |"
        )
    target = summary["target"]
    if target is not None:
        lines += [
            "",
            f"**Target** (the best continuous MLP rule ≥ {target['threshold_accuracy']:g} % test "
            f"accuracy within 20 minutes of training): best {MODES[target['best_mode']].label}, "
            f"{target['best_within_20_minutes']:.2f} % within 20 minutes: "
            f"**{'met' if target['met'] else 'not met'}**.",
        ]
    return "\n".join(lines)


def _cli(argv: list[str]) -> FashionConfig:
    defaults = FashionConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    prepare_parser(parser)
    parser.add_argument("--quick", action="store_true", help="tiny network and data (a smoke run)")
    parser.add_argument("--out", default=defaults.out)
    parser.add_argument("--budget-minutes", type=float, default=defaults.budget_minutes)
    parser.add_argument("--only", nargs="+", choices=list(MODES), help="run these modes only")
    parser.add_argument("--mixer", action="store_true", help="add the LocalMixer modes")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--fdfa-lr", type=float)
    parser.add_argument("--feedback-rate", type=float)
    parser.add_argument("--sigma", type=float)
    parser.add_argument("--duration", type=float, help="T")
    parser.add_argument("--dt0", type=float)
    parser.add_argument("--components", type=int)
    parser.add_argument("--band", type=float, nargs=2)
    parser.add_argument("--matched-samples", type=int)
    parser.add_argument("--train-size", type=int)
    parser.add_argument("--eval-every", type=int)
    parser.add_argument("--mixer-lr", type=float)
    parser.add_argument("--mixer-channels", type=int, help="override the preset's width")
    parser.add_argument("--mixer-budget-minutes", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    options = dict(QUICK) if args.quick else {}
    modes = tuple(args.only) if args.only else MLP_MODES + (MIXER_MODES if args.mixer else ())
    for field in dataclasses.fields(FashionConfig):
        value = getattr(args, field.name, None)
        if value is not None and field.name not in ("out", "budget_minutes"):
            options[field.name] = tuple(value) if isinstance(value, list) else value
    try:
        return FashionConfig(
            **options,
            modes=modes,
            out=args.out,
            budget_minutes=args.budget_minutes,
            progress=not args.no_progress,
        )
    except ValueError as e:  # one line naming the value, before any work
        parser.error(str(e))


if __name__ == "__main__":
    run_main(lambda: main(_cli(sys.argv[1:])))
