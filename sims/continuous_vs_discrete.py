"""Continuous-time FG-A against discrete FG-A: the same network, initial weights and batches.

    python -m sims.continuous_vs_discrete [--epochs 8] [--lr 30] [--out DIR]

The continuous mode presents each minibatch of ``batch_size`` examples (parallel copies of the
network sharing their weights) for a duration T, with smooth transitions between presentations;
the network learns by the FG-A rule ẇ = η·x·ṗ·ṙ from a sum-of-sinusoids perturbation of its
pre-activations (time constant τ_p), integrated by the library's default path (``ct.plan``; the
summary names the solver it chose). The discrete modes take one
SGD step per batch, in the same order, at the matched learning rate η·c·T
(``ct.effective_learning_rate``): FG-A with one Gaussian direction per step (the discrete
algorithm), FG-A with as many directions as one presentation averages over (T/τ_p sets that count,
see ``matched_samples``), and BP (gradient descent: gradient flow in steps of η·c·T).

Writes ``config.json``, ``summary.json``, ``summary.md``, ``learning_curves.png`` and
``traces.png`` to ``--out``. ``main`` returns the summary: ``config``, ``modes`` (per mode: test
accuracy and loss, wall time, learning curve), ``effective_lr``, ``agreement`` (instantaneous
ẇ against −η × discrete FG-A along the same tangent), ``alignment`` (integrated Δw against
−η·c·T·∇L per T), ``direction_cosines`` (discrete FG-A estimates against ∇L on that batch),
``weight_change_cosines``, ``criterion`` and ``wall_s``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
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
from ctlearn.diagnostics import tree_cosine
from ctlearn.estimators import make_estimator
from ctlearn.files import atomic_write_text
from ctlearn.plotting import save_figure
from ctlearn.provenance import provenance
from ctlearn.train import TrainState, evaluate, run_steps
from models import mlp

from ._mainjob import MainJob

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LOSS = "cross_entropy"
CONTINUOUS = "continuous FG-A"
CRITERION_POINTS = 2.0  # the criterion: within 2 points of discrete FG-A


@dataclasses.dataclass(frozen=True)
class CompareConfig(MainJob):
    """Settings of both modes: the main job's circuit (``MainJob``'s fields) and the rest. Times
    are in units of ``tau_p`` (τ_p = 1 by default).

    ``lr``: the continuous rule's η (1/time); the discrete SGD learning rate is η·c·T with
    c = (σ/τ_p)². ``duration``: T per presentation; ``transition``: the time spent blending
    from the previous batch (below T); ``dt0``: the fixed step; ``components``: sinusoids per
    unit. ``mask``: the ReLU trick in both modes. ``input_rate``: the rule's tangent carries the
    input's own rate ẋ (off by default: see ``summary.md``). ``matched_samples``: directions per
    step of the second discrete FG-A run (0: skip it). ``train_size``: use the first N training
    examples (``None``: all). ``eval_every``: presentations between test evaluations.
    ``alignment_durations``: the T values of the integrated alignment check; ``agreement_batches``:
    batches (and tangents) of the instantaneous check; ``trace_units``: units per trace panel.
    """

    dataset: str = "mnist1d"
    epochs: int = 8
    components: int = 4
    mask: bool = True
    input_rate: bool = False
    matched_samples: int = 20
    train_size: int | None = None
    eval_every: int = 50
    alignment_durations: tuple[float, ...] = (1.0, 10.0, 100.0)
    agreement_batches: int = 4
    trace_times: int = 400
    trace_units: int = 3
    out: str = "runs/continuous_vs_discrete"
    progress: bool = True

    def __post_init__(self):
        positive_ints = {
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "eval_every": self.eval_every,
            "agreement_batches": self.agreement_batches,
            "trace_times": self.trace_times,
            "trace_units": self.trace_units,
            "components": self.components,
        }
        for name, value in positive_ints.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {name}={value!r}")
        if not self.widths or any(w < 1 for w in self.widths):
            raise ValueError(f"widths must be positive ints, got widths={self.widths!r}")
        if self.matched_samples < 0:
            raise ValueError(f"matched_samples must be >= 0, got {self.matched_samples}")
        if self.train_size is not None and self.train_size < self.batch_size:
            raise ValueError(
                f"train_size={self.train_size} holds less than one batch "
                f"(batch_size={self.batch_size})"
            )
        for name in ("lr", "sigma", "tau_p", "duration", "dt0"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be finite and > 0, got {name}={value!r}")
        if self.duration < self.tau_p:
            raise ValueError(
                f"duration={self.duration} is shorter than tau_p={self.tau_p}: a presentation "
                "could not average over the perturbation"
            )
        if not 0 <= self.transition < self.duration:
            raise ValueError(
                f"transition is a time in [0, duration={self.duration}), got {self.transition}"
            )
        limits = {"tau_p": self.tau_p}
        if self.transition > 0:
            limits["the transition"] = self.transition
        for name, value in limits.items():
            if self.dt0 > value:
                raise ValueError(f"dt0={self.dt0} exceeds {name} ({value}): choose dt0 <= {value}")
        if not self.alignment_durations or any(
            not self.tau_p <= t <= 4096 * self.dt0 for t in self.alignment_durations
        ):
            raise ValueError(
                f"alignment_durations must lie in [tau_p, 4096·dt0] = [{self.tau_p}, "
                f"{4096 * self.dt0}] (at least τ_p; at most the solver's 4096 steps), got "
                f"{self.alignment_durations}"
            )

    def simulator(self) -> ct.Simulator:
        return ct.Simulator(
            ct.FGARule(lr=self.lr, mask=self.mask),
            ct.Sinusoids(self.sigma, self.tau_p, components=self.components),
            dt0=self.dt0,
            input_rate=self.input_rate,
        )


def main(config: CompareConfig) -> dict:
    """Trains every mode, runs the cross-checks, writes the summary and figures."""
    start = time.perf_counter()
    out = Path(config.out)
    atomic_write_text(out / "config.json", json.dumps(dataclasses.asdict(config), indent=2) + "\n")
    data = load_dataset(config.dataset)
    keys = jax.random.split(jax.random.key(config.seed), 5)
    key_model, key_sim, key_discrete, key_check, key_data = keys
    stream = ct.Presentations.from_split(
        _train_split(config, data),
        config.batch_size,
        duration=config.duration,
        transition=config.transition,
        key=key_data,
        epochs=config.epochs,
    )
    x, y = stream.x, stream.y
    model = mlp(data.input_shape, data.num_classes, config.widths, local_heads=False, key=key_model)
    sim = config.simulator()
    lr = ct.effective_learning_rate(sim, config.duration)

    modes, finals = {}, {}
    modes[CONTINUOUS], finals[CONTINUOUS] = _continuous(config, sim, model, stream, data, key_sim)
    discrete = {"discrete FG-A": make_estimator("fg-a", mask=config.mask)}
    if config.matched_samples:
        name = f"discrete FG-A ×{config.matched_samples}"
        discrete[name] = make_estimator(
            "fg-a", mask=config.mask, num_samples=config.matched_samples
        )
    discrete["discrete BP"] = make_estimator("bp")
    for name, estimator in discrete.items():
        modes[name], finals[name] = _discrete(
            config, name, estimator, lr, model, x, y, data, key_discrete
        )

    if config.progress:
        print("cross-checks: instantaneous agreement, integrated alignment, traces", flush=True)
    checks = _checks(config, sim, model, x, y, key_check)
    w0 = _params(model)
    change = {n: jax.tree.map(jnp.subtract, _params(m), w0) for n, m in finals.items()}
    weight_change_cosines = {
        n: float(tree_cosine(change[CONTINUOUS], change[n])) for n in finals if n != CONTINUOUS
    }
    criterion = _criterion(modes, config)
    ts, traces = _traces(config, sim, finals[CONTINUOUS], stream, key_sim)

    sizes = (math.prod(data.input_shape), *config.widths, data.num_classes)
    chosen = ct.plan(sim, stream, model)
    table = ", perturbation read from a table made once per presentation" if chosen.tabulate else ""
    summary = {
        "config": dataclasses.asdict(config),
        "integration": f"{type(chosen.solver).__name__} at dt0 = {chosen.dt0:g}{table}",
        "architecture": "-".join(str(n) for n in sizes),
        "presentations": int(stream.num),
        "samples": int(stream.num * stream.batch_size),
        "effective_lr": lr,
        "rate_power": sim.perturbation.rate_power(),
        "modes": modes,
        **checks,
        "weight_change_cosines": weight_change_cosines,
        "criterion": criterion,
        "backend": jax.default_backend(),
        "cpu_count": os.cpu_count(),
        "wall_s": time.perf_counter() - start,
        "provenance": provenance(),
    }
    _plot_curves(modes, out / "learning_curves.png", config, summary["architecture"])
    _plot_traces(ts, traces, out / "traces.png", config)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    table = _markdown(summary, config)
    atomic_write_text(out / "summary.md", table + "\n")
    print(table)
    return summary


def _train_split(config: CompareConfig, data):
    """The training examples every mode sees: the first ``train_size`` (all when ``None``)."""
    if config.train_size is None or config.train_size >= len(data.train):
        return data.train
    return ArraySplit(data.train.x[: config.train_size], data.train.y[: config.train_size])


def _params(model):
    return eqx.filter(model, eqx.is_inexact_array)


class _Curve:
    """Test loss and accuracy against samples seen; the time spent evaluating is kept apart."""

    def __init__(self, data):
        self.data = data
        self.samples, self.accuracy, self.loss = [], [], []
        self.eval_s = 0.0

    def __call__(self, samples: int, model) -> None:
        start = time.perf_counter()
        loss, acc = evaluate(model, self.data, LOSS, 1000)
        self.samples.append(samples)
        self.loss.append(loss)
        self.accuracy.append(100.0 * acc)
        self.eval_s += time.perf_counter() - start

    def summary(self, wall_s: float) -> dict:
        return {
            "test_accuracy": self.accuracy[-1],
            "test_loss": self.loss[-1],
            "wall_s": wall_s - self.eval_s,
            "eval_s": self.eval_s,
            "curve": {"samples": self.samples, "accuracy": self.accuracy, "loss": self.loss},
        }


def _continuous(config, sim, model, stream, data, key):
    start = time.perf_counter()
    curve = _Curve(data)
    curve(0, model)

    def callback(presentations, result):  # after every chunk of eval_every presentations
        curve(presentations * stream.batch_size, result.model)

    result = ct.simulate(
        sim,
        model,
        stream,
        key=key,
        chunk=config.eval_every,
        progress=config.progress,
        callback=callback,
    )
    jax.block_until_ready(result.model)
    summary = curve.summary(time.perf_counter() - start)
    summary["solver_steps_per_presentation"] = float(jnp.mean(result.steps))
    return summary, result.model


def _discrete(config, name, estimator, lr, model, x, y, data, key):
    """Plain SGD (no momentum) at ``lr``: one step per batch of ``x``, in order."""
    optimizer = optax.sgd(lr)
    state = TrainState.start(model, optimizer.init(_params(model)), estimator.init(model, key=key))
    start = time.perf_counter()
    curve = _Curve(data)
    curve(0, model)
    n = x.shape[0]

    def evaluate_every(i, state, xi, yi):  # before step i: the curve after i steps
        if i and i % config.eval_every == 0:
            curve(i * config.batch_size, state.model)

    stream = (
        (x[k], y[k]) for k in tqdm(range(n), desc=name, unit="step", disable=not config.progress)
    )
    state = run_steps(estimator, optimizer, state, stream, key, callback=evaluate_every).state
    curve(n * config.batch_size, state.model)
    jax.block_until_ready(state.model)
    return curve.summary(time.perf_counter() - start), state.model


def _checks(config, sim, model, x, y, key) -> dict:
    """The instantaneous agreement on a few batches and tangents, the integrated alignment for
    each of ``alignment_durations`` on batch 0, and discrete FG-A's cosine to ∇L there."""
    keys = jax.random.split(key, config.agreement_batches + 1)
    agreement = []
    for i in range(config.agreement_batches):
        xi, yi = x[i % x.shape[0]], y[i % x.shape[0]]
        tangent = [
            jax.random.normal(jax.random.fold_in(keys[i], j), s.shape, s.dtype)
            for j, s in enumerate(model.perturbation_shapes(xi))
        ]
        agreement.append(ct.instantaneous_agreement(sim.rule, model, xi, yi, tangent))
    points = ct.integrated_alignment(
        sim, model, x[0], y[0], config.alignment_durations, key=keys[-1]
    )
    exact = _params(make_estimator("bp").estimate(model, (x[0], y[0]), None, key=None)[0])
    direction_cosines = {}
    for samples in sorted({1, config.matched_samples} - {0}):
        estimator = make_estimator("fg-a", mask=config.mask, num_samples=samples)
        cosines = [
            float(
                tree_cosine(_params(estimator.estimate(model, (x[0], y[0]), None, key=k)[0]), exact)
            )
            for k in jax.random.split(jax.random.fold_in(keys[-1], 1), 8)
        ]
        direction_cosines[str(samples)] = {"mean": float(np.mean(cosines)), "runs": cosines}
    return {
        "agreement": {
            "cosine_min": min(a["cosine"] for a in agreement),
            "relative_error_max": max(a["relative_error"] for a in agreement),
            "batches": agreement,
        },
        "alignment": [dataclasses.asdict(p) for p in points],
        "direction_cosines": direction_cosines,
    }


def _criterion(modes: dict, config: CompareConfig) -> dict:
    """Continuous FG-A's final test accuracy against each discrete FG-A run's (points)."""
    out = {"threshold_points": CRITERION_POINTS}
    continuous = modes[CONTINUOUS]["test_accuracy"]
    for name, mode in modes.items():
        if name.startswith("discrete FG-A"):
            difference = continuous - mode["test_accuracy"]
            out[name] = {"difference": difference, "met": abs(difference) <= CRITERION_POINTS}
    out["met"] = out["discrete FG-A"]["met"]
    matched = f"discrete FG-A ×{config.matched_samples}"
    if matched in out:
        out["met_with_matched_directions"] = out[matched]["met"]
    return out


def _traces(config, sim, model, stream, key):
    """Signals during presentation 1 (the blend from batch 0 to batch 1) of the trained model:
    example 0's first inputs, layer 0's first units and the weights into its unit 0."""
    n, index = config.trace_units, min(1, stream.num - 1)

    def record(state, signals):
        return {
            "x": signals.x[0].reshape(-1)[:n],
            "x_dot": signals.x_dot[0].reshape(-1)[:n],
            "p": signals.p[0][0, :n],
            "p_dot": signals.p_dot[0][0, :n],
            "r_dot": -signals.loss_rates[-1],
            "w": state.params.layers[0].weight[:n, 0],
            "dw": state.delta.layers[0].weight[:n, 0],
        }

    ts, traces = ct.record_presentation(
        sim, model, stream, key=key, index=index, times=config.trace_times, record=record
    )
    return np.asarray(ts), jax.tree.map(np.asarray, traces)


def _plot_curves(modes: dict, path: Path, config: CompareConfig, architecture: str) -> None:
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for name, mode in modes.items():
        curve = mode["curve"]
        ax_acc.plot(curve["samples"], curve["accuracy"], marker=".", label=name)
        ax_loss.plot(curve["samples"], curve["loss"], marker=".", label=name)
    ax_acc.set_ylabel("test accuracy (%)")
    ax_loss.set_ylabel("test loss")
    for ax in (ax_acc, ax_loss):
        ax.set_xlabel("training samples seen")
        ax.grid(alpha=0.3)
    ax_acc.legend(fontsize="small")
    fig.suptitle(
        f"{config.dataset}, MLP {architecture}, batch {config.batch_size}: continuous FG-A "
        f"(T = {config.duration:g}, τ_p = {config.tau_p:g}) vs discrete SGD at η·c·T"
    )
    save_figure(fig, path, dpi=130)


def _plot_traces(ts, traces: dict, path: Path, config: CompareConfig) -> None:
    panels = [
        ("x", "input x (example 0)"),
        ("x_dot", "ẋ"),
        ("p", "p (layer 0)"),
        ("p_dot", "ṗ (layer 0)"),
        ("r_dot", "ṙ = −dL/dt"),
        ("dw", "Δw = w(t) − w(0)"),
    ]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 12), sharex=True, constrained_layout=True)
    end = config.transition
    for ax, (name, label) in zip(axes, panels):
        values = traces[name]
        if name == "r_dot":
            ax.plot(ts, values[:, 0], lw=1, label="example 0")
            ax.plot(ts, values.mean(axis=1), lw=1, label="batch mean")
            ax.legend(fontsize="x-small", loc="upper right")
        else:
            ax.plot(ts, values, lw=1)
        if end > 0:
            ax.axvline(end, color="grey", lw=0.8, ls=":")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel(f"time in the presentation (τ_p = {config.tau_p:g})")
    axes[0].set_title("one presentation (dotted: end of the input transition)")
    save_figure(fig, path, dpi=130)


def _made_by(stamp: dict) -> str:
    dirty = " (with uncommitted changes)" if stamp.get("dirty") else ""
    m = stamp["machine"]
    machine = (
        f"{m['processor']}, {m['cores']} cores, {m['system']}, Python {m['python']}, "
        f"JAX {m['jax']} on {', '.join(m['devices'])}"
    )
    return (
        f"Made by `{stamp['command']}` at commit `{stamp['commit']}`{dirty} on {machine}, "
        f"{stamp['utc']} (UTC)."
    )


def _markdown(summary: dict, config: CompareConfig) -> str:
    criterion = summary["criterion"]
    lines = [
        f"# Continuous-time vs discrete FG-A on {config.dataset}",
        "",
        _made_by(summary["provenance"]),
        "",
        f"MLP {summary['architecture']} (ReLU), the same initial weights and the same "
        f"{summary['presentations']} "
        f"batches of {config.batch_size} in the same order ({summary['samples']:,} samples, "
        f"{config.epochs} epochs); backend {summary['backend']}, {summary['cpu_count']} CPU "
        "cores.",
        f"Continuous: FG-A rule, η = {config.lr:g}, Sinusoids σ = {config.sigma:g}, "
        f"τ_p = {config.tau_p:g} ({config.components} components), instantaneous neurons, "
        f"{summary['integration']} (`ct.plan`), T = {config.duration:g} (T/τ_p = "
        f"{config.duration / config.tau_p:g}), transition {config.transition:g}, input_rate="
        f"{config.input_rate}, mask={config.mask}. Discrete: plain SGD at the matched learning "
        f"rate η·c·T = {summary['effective_lr']:.4g} (c = (σ/τ_p)² = {summary['rate_power']:.3g}).",
        "",
        "| mode | test accuracy (%) | test loss | wall time (s) |",
        "|---|---:|---:|---:|",
    ]
    for name, mode in summary["modes"].items():
        lines.append(
            f"| {name} | {mode['test_accuracy']:.2f} | {mode['test_loss']:.4f} | "
            f"{mode['wall_s']:.1f} |"
        )
    first = criterion["discrete FG-A"]
    lines += [
        "",
        "Wall times: training only (compilation included, test evaluations excluded); the whole "
        f"job took {summary['wall_s']:.0f} s.",
        "",
        f"**Criterion** (continuous FG-A within {criterion['threshold_points']:g} points of "
        f"discrete FG-A at the matched learning rate, same samples): difference "
        f"{first['difference']:+.2f} points: **{'met' if first['met'] else 'not met'}**.",
    ]
    for name, value in criterion.items():
        if name.startswith("discrete FG-A ×"):
            lines.append(
                f"Against {name} (as many directions per step as a presentation averages over): "
                f"{value['difference']:+.2f} points ({'met' if value['met'] else 'not met'})."
            )
    agreement = summary["agreement"]
    lines += [
        "",
        "## Cross-checks",
        "",
        f"Instantaneous ẇ against −η × discrete FG-A along the same tangent "
        f"({len(agreement['batches'])} batches, Gaussian tangents): cosine ≥ "
        f"{agreement['cosine_min']:.7f}, relative error ≤ {agreement['relative_error_max']:.2e}.",
        "",
        "Integrated Δw over one presentation of batch 0 (weights frozen) against −η·c·T·∇L:",
        "",
        "| T | T/τ_p | cosine | ‖Δw‖ / ‖η c T ∇L‖ |",
        "|---:|---:|---:|---:|",
    ]
    for p in summary["alignment"]:
        lines.append(
            f"| {p['duration']:g} | {p['ratio']:g} | {p['cosine']:.3f} | {p['scale']:.3f} |"
        )
    lines += [
        "",
        "Discrete FG-A's cosine to ∇L on the same batch (mean of 8 draws): "
        + ", ".join(
            f"{k} direction(s): {v['mean']:.3f}" for k, v in summary["direction_cosines"].items()
        )
        + ".",
        "Cosine between the continuous run's total weight change and each discrete run's: "
        + ", ".join(f"{k}: {v:.3f}" for k, v in summary["weight_change_cosines"].items())
        + ".",
        "",
        "Continuous FG-A averages over many directions per presentation (its cosine to ∇L "
        "grows with T/τ_p), discrete FG-A over `num_samples`: matching the learning rate "
        "alone leaves the continuous mode the less noisy one. With `input_rate` the loss's "
        "change from the input transition (ΔL ~ 1 per presentation) enters ṙ and, multiplied "
        "by ṗ, swamps the perturbation's signal (~σ·T·|∂L/∂z|) unless σ is large: it is off "
        "here.",
    ]
    return "\n".join(lines)


def _cli() -> CompareConfig:
    defaults = CompareConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    prepare_parser(parser)
    parser.add_argument("--dataset", default=defaults.dataset)
    parser.add_argument("--widths", type=int, nargs="+", default=list(defaults.widths))
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--lr", type=float, default=defaults.lr, help="η of the rule (1/time)")
    parser.add_argument("--sigma", type=float, default=defaults.sigma)
    parser.add_argument("--tau-p", type=float, default=defaults.tau_p)
    parser.add_argument("--duration", type=float, default=defaults.duration, help="T")
    parser.add_argument(
        "--transition", type=float, default=defaults.transition, help="blend time (< duration)"
    )
    parser.add_argument("--dt0", type=float, default=defaults.dt0)
    parser.add_argument("--components", type=int, default=defaults.components)
    parser.add_argument("--no-mask", action="store_true", help="turn the ReLU trick off")
    parser.add_argument("--input-rate", action="store_true", help="the tangent carries ẋ")
    parser.add_argument("--matched-samples", type=int, default=defaults.matched_samples)
    parser.add_argument("--train-size", type=int)
    parser.add_argument("--eval-every", type=int, default=defaults.eval_every)
    parser.add_argument(
        "--alignment-durations", type=float, nargs="+", default=list(defaults.alignment_durations)
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", default=defaults.out)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    return CompareConfig(
        dataset=args.dataset,
        widths=tuple(args.widths),
        batch_size=args.batch_size,
        epochs=args.epochs,
        lr=args.lr,
        sigma=args.sigma,
        tau_p=args.tau_p,
        duration=args.duration,
        transition=args.transition,
        dt0=args.dt0,
        components=args.components,
        mask=not args.no_mask,
        input_rate=args.input_rate,
        matched_samples=args.matched_samples,
        train_size=args.train_size,
        eval_every=args.eval_every,
        alignment_durations=tuple(args.alignment_durations),
        seed=args.seed,
        out=args.out,
        progress=not args.no_progress,
    )


if __name__ == "__main__":
    run_main(lambda: main(_cli()))
