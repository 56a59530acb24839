"""Reproduce the FDFA paper's Figures 4-7 (Bacho & Chu): variance scaling, loss against variance,
and gradient alignment during training.

    python -m sims.fdfa_figures [--quick] [--out DIR] [--figures 4,5,6,7] [--dataset mnist1d]

The paper used MNIST; this machine has no MNIST offline, so the default dataset is MNIST-1D
(40 inputs, 4000 training examples) and every output says so (``--dataset fashion_mnist`` or
``mnist`` where their files exist). Figures 4 and 5 measure, for single examples x (the
propositions condition on one input) and many draws of the perturbation, the variance of the
estimate of the hidden weights W¹ of a two-layer ReLU net, in units of the mean squared true
gradient element of W¹ (``relative variance``: what the propositions' O(·) counts when every
derivative is O(1); the raw variance also scales with how the initialisation scales derivatives,
∂L/∂w ∝ 1/√n₁ under Kaiming init, and is recorded in the JSON). Beside each measurement the exact
Gaussian prediction of Lemma 4 is drawn: FG-W 1 + P (P = n₁(n₀+1) parameters of W¹ and its bias),
FG-A 1 + n_active, FDFA α²(1 + n_active‖∂L/∂y¹‖²/‖∂L/∂z¹‖²), with the feedback at its converged
value ∂y²/∂y¹ and the feedback step plain SGD (the EMA of eq. 8). Figure 6 trains a two-layer net
for one epoch (Adam, as the paper) with BP plus Gaussian noise of fixed normalised variance
ν = r/(1+r) (noise power r‖∇‖² every step) and with FG-W, FG-A and FDFA, and plots the training
loss after the epoch against ν = E‖g − E g‖²/E‖g‖² measured during the epoch. Figure 7 trains a
deep FC net with DFA, DKP and FDFA and records the angle between each layer's estimate and its BP
gradient on a fixed probe batch (FDFA: the mean of several estimates, its bias).

Settings (``FULL``; ``--quick`` shrinks every size for CI): Figures 4-5 use 10 examples × 256
draws per point, n₁ = 64…1024 and n₀ = 40…640 (MNIST-1D duplicated up to 16×; a 784-input dataset
makes that sweep 20× costlier); Figure 6 a 1000-unit net, 14 noise levels, 3 seeds; Figure 7 a
5-layer net of width 256 for 20 epochs. Adam's rate is 1e-3 (also FDFA's and DKP's feedback rate,
α = λ as the paper; the paper's 1e-4 suits MNIST's 15× longer epochs), × 0.95 per epoch in
Figure 7, batch 64. About 5 minutes on two CPU cores.

Writes ``summary.md``, ``fdfa_figures.json`` and ``figure4.png`` … ``figure7.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from jaxtyping import Array

from ctlearn._usererror import prepare_parser, run_main
from ctlearn.data import Dataset, batches, load_dataset, num_batches
from ctlearn.diagnostics import (
    converged_feedback,
    first_layer_variance_terms,
    fit_power_law,
    layer_angles,
    normalised_variance_of,
    predicted_relative_variance,
    relative_variance,
)
from ctlearn.estimators import AbstractEstimator, NoisyBP, make_estimator
from ctlearn.files import atomic_write_text
from ctlearn.plotting import save_figure
from ctlearn.provenance import provenance
from ctlearn.train import TrainConfig, eval_step, evaluate, initial_state, run_steps
from models import fdfa_fc

from ._report import print_report

matplotlib.use("Agg")  # files only
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

FIGURES = (4, 5, 6, 7)
THEORY = {"fdfa_alpha": 2.0, "fg-w_n1": 1.0, "fg-a_n1": 1.0, "fg-w_n0": 1.0, "fg-a_n0": 0.0}
COLOURS = {"fg-w": "tab:red", "fg-a": "tab:blue", "fdfa": "tab:green", "bp": "black"}


@dataclasses.dataclass(frozen=True)
class FiguresConfig:
    """Every setting of the four figures (``FULL``, ``QUICK``; see the module docstring).

    Figures 4-5: ``examples`` single examples, ``draws`` perturbations each (in scans of
    ``chunk``); hidden width ``width`` (Fig. 4, 5b), ``widths`` (5a), input duplication factors
    ``duplicates`` (5b), feedback rates ``alphas`` (4). Figure 6: width ``loss_width``, noise
    ratios ``ratios`` (noise power / gradient power), Adam ``loss_lr`` (also FDFA's feedback rate),
    ``loss_seeds`` runs per point, ν measured at ``checkpoints`` steps of the epoch with
    ``nu_draws`` draws. Figure 7: ``align_depth`` layers of ``align_width``, ``align_epochs``
    epochs of Adam ``align_lr`` (feedback rate too) × 0.95 per epoch, angles every
    ``align_every`` steps on a probe batch of ``align_probe`` examples (FDFA: mean of
    ``align_draws`` estimates).
    """

    dataset: str = "mnist1d"
    data_dir: str | None = None
    seed: int = 0
    figures: tuple[int, ...] = FIGURES
    examples: int = 10
    draws: int = 256
    chunk: int = 32
    width: int = 256
    widths: tuple[int, ...] = (64, 128, 256, 512, 1024)
    duplicates: tuple[int, ...] = (1, 2, 4, 8, 16)
    alphas: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
    loss_width: int = 1000
    ratios: tuple[float, ...] = tuple(10.0**k for k in range(-7, 7))
    loss_lr: float = 1e-3
    loss_seeds: int = 3
    batch_size: int = 64
    checkpoints: int = 4
    nu_draws: int = 32
    align_depth: int = 5
    align_width: int = 256
    align_epochs: int = 20
    align_lr: float = 1e-3
    align_every: int = 10
    align_probe: int = 512
    align_draws: int = 8

    def __post_init__(self):
        if not set(self.figures) <= set(FIGURES) or not self.figures:
            raise ValueError(f"figures must be among {FIGURES}, got {self.figures}")
        if self.draws % self.chunk or self.draws < 2:
            raise ValueError(f"draws ({self.draws}) must be a multiple of chunk ({self.chunk})")
        if self.align_depth < 3:
            raise ValueError("align_depth must be at least 3 (several hidden layers)")


FULL = FiguresConfig()
QUICK = dict(
    examples=8,
    draws=128,
    chunk=64,
    width=64,
    widths=(16, 64),
    duplicates=(1, 8),
    alphas=(1e-3, 1e-2, 0.1, 1.0),
    loss_width=64,
    ratios=(1e-4, 1e-2, 1.0, 1e2, 1e4),
    loss_seeds=1,
    checkpoints=2,
    nu_draws=8,
    align_depth=3,
    align_width=64,
    align_epochs=1,
    align_every=20,
    align_probe=128,
    align_draws=2,
)


# ---------------------------------------------------------------------------------------------
# Figures 4 and 5: conditional variance of the hidden weights' estimate, measured and predicted


def duplicate_features(x: Array, times: int) -> Array:
    """Inputs [n, ...] flattened and every feature repeated ``times`` times (n₀ → times·n₀), as
    the paper duplicates pixels to grow n₀ without changing what the inputs say."""
    flat = jnp.reshape(x, (x.shape[0], -1))
    return jnp.repeat(flat, times, axis=1)


def two_layer_net(n0: int, n1: int, num_classes: int, key) -> Any:
    """The two-layer net of Figures 4-6: n₀ → n₁ ReLU → linear output (Kaiming uniform)."""
    return fdfa_fc((n0,), num_classes, depth=2, width=n1, local_heads=False, key=key)


def _pm(value: float, stderr: float, digits: int = 2) -> str:
    """``value ± stderr`` with enough digits to show the error; a two-point fit has none."""
    if not math.isfinite(stderr):
        return f"{value:.{digits}f} ± —"
    if stderr > 0:
        digits = max(digits, 1 - math.floor(math.log10(stderr)) - 1)
    error = f"{stderr:.{digits}f}"
    return f"{value:.{digits}f} ± {error}"


def _slope(x, y) -> dict[str, float]:
    slope, stderr, intercept = fit_power_law(np.asarray(x, float), np.asarray(y, float))
    return {"slope": float(slope), "stderr": float(stderr), "intercept": float(intercept)}


def _examples(data: Dataset, n: int) -> tuple[Array, Array]:
    x = np.reshape(data.train.x[:n], (n, -1))
    return jnp.asarray(x), jnp.asarray(data.train.y[:n])


def variance_vs_alpha(config: FiguresConfig, data: Dataset) -> dict:
    """Figure 4: FDFA's relative variance against the feedback rate α (converged feedback)."""
    x, y = _examples(data, config.examples)
    key = jax.random.key(config.seed)
    model = two_layer_net(x.shape[1], config.width, data.num_classes, jax.random.fold_in(key, 0))
    feedback = converged_feedback(model, x)
    # Plain SGD on the feedback (eq. 8's EMA) keeps no values in its state; α enters as an array
    # so that one compiled measurement serves every α.
    base = make_estimator("fdfa", feedback_optimizer="sgd", feedback_lr=1.0)
    _, opt_state = base.init(model, key=key)
    measured, predicted, raw = [], [], []
    for i, alpha in enumerate(config.alphas):
        estimator = eqx.tree_at(lambda e: e.feedback_lr, base, jnp.asarray(alpha, jnp.float32))
        (terms,) = first_layer_variance_terms(
            (estimator,),
            model,
            x,
            y,
            ((feedback, opt_state),),
            draws=config.draws,
            chunk=config.chunk,
            key=jax.random.fold_in(key, 100 + i),
        )
        measured.append(relative_variance(terms))
        predicted.append(predicted_relative_variance("fdfa", terms, alpha))
        raw.append(float(np.mean(terms["var"])))
    return {
        "alphas": list(config.alphas),
        "relative_variance": measured,
        "predicted": predicted,
        "raw_variance": raw,
        "fit": _slope(config.alphas, measured),
        "fit_raw": _slope(config.alphas, raw),
        "prediction_fit": _slope(config.alphas, predicted),
        "width": config.width,
        "n0": int(x.shape[1]),
    }


def variance_vs_size(config: FiguresConfig, data: Dataset) -> dict:
    """Figure 5: FG-W's and FG-A's relative variance against n₁ (5a) and n₀ (5b, duplicated
    inputs), only W¹ perturbed (the propositions' assumption V², u² = 0)."""
    x, y = _examples(data, config.examples)
    key = jax.random.key(config.seed)
    sweeps = {
        "n1": [(x, n1) for n1 in config.widths],
        "n0": [(duplicate_features(x, k), config.width) for k in config.duplicates],
    }
    methods = ("fg-w", "fg-a")
    estimators = tuple(make_estimator(m, layers=(0,)) for m in methods)
    result: dict[str, Any] = {"widths": list(config.widths), "duplicates": list(config.duplicates)}
    for axis, points in sweeps.items():
        sizes = [int(n1) if axis == "n1" else int(xi.shape[1]) for xi, n1 in points]
        result[f"{axis}_values"] = sizes
        curves = {
            m: {"relative_variance": [], "predicted": [], "raw_variance": []} for m in methods
        }
        for j, (xi, n1) in enumerate(points, start=0 if axis == "n1" else 100):
            model = two_layer_net(xi.shape[1], n1, data.num_classes, jax.random.fold_in(key, j))
            measured = first_layer_variance_terms(
                estimators,
                model,
                xi,
                y,
                draws=config.draws,
                chunk=config.chunk,
                key=jax.random.fold_in(key, 1000 + j),
            )
            for method, terms in zip(methods, measured):
                curves[method]["relative_variance"].append(relative_variance(terms))
                curves[method]["predicted"].append(predicted_relative_variance(method, terms))
                curves[method]["raw_variance"].append(float(np.mean(terms["var"])))
        for method, c in curves.items():
            result[f"{method}_{axis}"] = {
                **c,
                "fit": _slope(sizes, c["relative_variance"]),
                "fit_raw": _slope(sizes, c["raw_variance"]),
                "prediction_fit": _slope(sizes, c["predicted"]),
            }
    return result


# ---------------------------------------------------------------------------------------------
# Figure 6: loss after one epoch against normalised variance


def _train_config(config: FiguresConfig, method: str, **changes) -> TrainConfig:
    base = dict(
        dataset=config.dataset,
        model="fdfa_fc",
        method=method,
        epochs=1,
        batch_size=config.batch_size,
        optimizer="adam",
        lr=config.loss_lr,
        schedule="constant",
        seed=config.seed,
        model_options={"depth": 2, "width": config.loss_width, "local_heads": False},
        method_options={},
        data_dir=config.data_dir,
    )
    return TrainConfig(**{**base, **changes})


def _record_any_loss(losses, state) -> None:
    """The figures record a diverged run's loss (NaN) rather than stop the sweep."""


def _train_loss(model, data: Dataset, loss: str) -> float:
    total, n = 0.0, 0
    for x, y in batches(data.train, 1000, shuffle=False, drop_last=False):
        total += float(eval_step(model, loss, x, y)[0])
        n += x.shape[0]
    return total / n


def one_epoch(
    config: FiguresConfig,
    train_config: TrainConfig,
    estimator: AbstractEstimator,
    optimizer,
    data: Dataset,
    *,
    unbiased: bool,
) -> dict[str, float]:
    """One epoch of ``estimator`` with ``optimizer`` on the model and data of ``train_config``;
    ν measured on the training batch at ``config.checkpoints`` evenly spaced steps (before that
    step's update) and averaged. (One optimizer object for every run: ``train_step`` compiles
    once per estimator type, not once per run.)"""
    steps = num_batches(data.train, train_config.batch_size)
    state = initial_state(train_config, data, estimator, optimizer)
    root = jax.random.fold_in(jax.random.key(train_config.seed), 7)
    data_key, step_key, nu_key = jax.random.split(root, 3)
    measure_at = set(np.linspace(0, steps - 1, config.checkpoints).round().astype(int).tolist())
    nus = []

    def measure(i, state, x, y):
        if i in measure_at:
            key = jax.random.fold_in(nu_key, i)
            nu = normalised_variance_of(
                estimator, state.model, state.est_state, x, y, key, config.nu_draws, unbiased
            )
            nus.append(float(nu))

    state = run_steps(
        estimator,
        optimizer,
        state,
        batches(data.train, train_config.batch_size, key=data_key),
        step_key,
        callback=measure,
        check=_record_any_loss,
    ).state
    test_loss, test_acc = evaluate(state.model, data, train_config.loss, 1000)
    return {
        "nu": float(np.mean(nus)),
        "train_loss": _train_loss(state.model, data, train_config.loss),
        "test_loss": test_loss,
        "test_acc": test_acc,
    }


def loss_vs_variance(config: FiguresConfig, data: Dataset) -> dict:
    """Figure 6: training loss after one epoch against ν, noisy BP at every ratio and BP, FG-W,
    FG-A and FDFA (their defaults; FDFA's feedback Adam at the forward rate, α = λ)."""
    # (name, estimator, method of its TrainConfig, its options, unbiased: E g is BP's gradient);
    # BP itself is NoisyBP at ratio 0: the same compiled step serves the whole line.
    specs: list[tuple[str, AbstractEstimator | None, str, dict, bool]] = []
    for r in (0.0,) + tuple(config.ratios):
        noisy = NoisyBP(ratio=jnp.asarray(r, jnp.float32))
        specs.append(("bp" if r == 0 else f"bp+noise:{r:g}", noisy, "bp", {}, True))
    specs += [
        ("fg-w", make_estimator("fg-w"), "fg-w", {}, True),
        ("fg-a", make_estimator("fg-a"), "fg-a", {}, True),
        ("fdfa", None, "fdfa", {"feedback_lr": config.loss_lr}, False),
    ]
    optimizer, _ = _train_config(config, "bp").make_optimizer(
        num_batches(data.train, config.batch_size)
    )
    runs: dict[str, list[dict]] = {}
    for name, estimator, method, options, unbiased in specs:
        runs[name] = []
        for s in range(config.loss_seeds):
            tc = _train_config(config, method, seed=config.seed + s, method_options=options)
            est = estimator if estimator is not None else tc.make_estimator()
            runs[name].append(one_epoch(config, tc, est, optimizer, data, unbiased=unbiased))
    points = {name: _mean_runs(rs) for name, rs in runs.items()}
    noisy = [(r, points[f"bp+noise:{r:g}"]) for r in config.ratios]
    line_nu = np.array([p["nu"] for _, p in noisy])
    line_loss = np.array([p["train_loss"] for _, p in noisy])
    for name in ("fg-w", "fg-a", "fdfa"):
        points[name]["noisy_bp_loss_at_nu"] = _interpolate_logit(
            points[name]["nu"], line_nu, line_loss
        )
    return {
        "ratios": list(config.ratios),
        "nominal_nu": [r / (1 + r) for r in config.ratios],
        "points": points,
        "runs": runs,
        "width": config.loss_width,
        "lr": config.loss_lr,
        "batch_size": config.batch_size,
        "seeds": config.loss_seeds,
        "steps": num_batches(data.train, config.batch_size),
    }


def _mean_runs(runs: list[dict]) -> dict:
    out = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    out["train_loss_std"] = float(np.std([r["train_loss"] for r in runs]))
    return out


def _logit(p):
    p = np.clip(np.asarray(p, float), 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


def _interpolate_logit(nu: float, line_nu, line_loss) -> float | None:
    """The noisy-BP line's loss at ν (linear in logit ν); ``None`` outside the line's range."""
    order = np.argsort(line_nu)
    xs, ys = _logit(np.asarray(line_nu)[order]), np.asarray(line_loss)[order]
    t = float(_logit(nu))
    if not xs[0] <= t <= xs[-1]:
        return None
    return float(np.interp(t, xs, ys))


# ---------------------------------------------------------------------------------------------
# Figure 7: layer-wise alignment with the BP gradient during training


def alignment_during_training(config: FiguresConfig, data: Dataset) -> dict:
    """Figure 7: DFA (zero forward init, fixed Kaiming feedback), DKP and FDFA (feedback from
    zero, Adam at the forward rate), angles between each layer's mean estimate and BP's gradient
    on a fixed probe batch every ``align_every`` steps."""
    probe = _examples(data, min(config.align_probe, len(data.train)))
    probe = (jnp.reshape(probe[0], (probe[0].shape[0],) + data.input_shape), probe[1])
    result: dict[str, Any] = {"depth": config.align_depth, "width": config.align_width}
    for method in ("dfa", "dkp", "fdfa"):
        model_options = {
            "depth": config.align_depth,
            "width": config.align_width,
            "local_heads": False,
        }
        if method == "dfa":
            model_options["init"] = "zeros"  # the paper's DFA (Appendix A)
        method_options = {} if method == "dfa" else {"feedback_lr": config.align_lr}
        tc = _train_config(
            config,
            method,
            epochs=config.align_epochs,
            lr=config.align_lr,
            schedule="exp",
            lr_decay=0.95,
            model_options=model_options,
            method_options=method_options,
        )
        steps = num_batches(data.train, tc.batch_size)
        estimator = tc.make_estimator()
        optimizer, _ = tc.make_optimizer(steps)
        state = initial_state(tc, data, estimator, optimizer)
        root = jax.random.fold_in(jax.random.key(tc.seed), 11)
        draws = config.align_draws if method == "fdfa" else 1
        record: dict[str, list] = {"epoch": [], "layers": [], "total": []}
        for epoch in range(tc.epochs):
            epoch_key = jax.random.fold_in(root, epoch)
            align = _aligner(config, estimator, probe, draws, record, epoch, epoch_key, steps)
            epoch_batches = batches(data.train, tc.batch_size, key=jax.random.fold_in(epoch_key, 1))
            state = run_steps(
                estimator,
                optimizer,
                state,
                epoch_batches,
                epoch_key,
                callback=align,
                check=_record_any_loss,
            ).state
        test_loss, test_acc = evaluate(state.model, data, tc.loss, 1000)
        record.update(test_loss=test_loss, test_acc=test_acc, steps=steps * tc.epochs)
        layers = np.array(record["layers"], float)
        tail = layers[-max(1, len(layers) // 10) :]
        record["final_layers"] = [_nanmean(col) for col in tail.T]
        result[method] = record
    return result


def _aligner(config, estimator, probe, draws, record, epoch, epoch_key, steps):
    """The step callback of Figure 7 for one epoch: every ``align_every`` steps, the angles of
    the mean of ``draws`` estimates on the probe batch, before that step's update."""

    def align(i, state, x, y):
        if i % config.align_every == 0:
            key = jax.random.fold_in(epoch_key, 2 + i)
            angles = layer_angles(estimator, state.model, state.est_state, *probe, key, draws)
            angles = [float(a) for a in angles]
            record["epoch"].append(epoch + i / steps)
            record["layers"].append(angles[:-1])
            record["total"].append(angles[-1])

    return align


def _nanmean(values) -> float | None:
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    return float(np.mean(values)) if values.size else None


# ---------------------------------------------------------------------------------------------
# Plots


def _fit_line(ax, x, y, fit, colour, label):
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    grid = np.linspace(lx.min(), lx.max(), 50)
    label = f"{label} fit: a = {_pm(fit['slope'], fit['stderr'])}"
    line = np.exp(ly.mean() + fit["slope"] * (grid - lx.mean()))
    ax.plot(np.exp(grid), line, "-", c=colour, label=label)


def plot_figure4(result: dict, path: Path, dataset: str) -> Path:
    fig, ax = plt.subplots(figsize=(5.4, 4.2), constrained_layout=True)
    a, m, p = result["alphas"], result["relative_variance"], result["predicted"]
    ax.plot(a, m, "o", c=COLOURS["fdfa"], label="FDFA (measured)")
    _fit_line(ax, a, m, result["fit"], COLOURS["fdfa"], "FDFA")
    ax.plot(a, p, ":", c="grey", label="prediction (Prop. 2, exact), slope 2")
    ax.set(xscale="log", yscale="log", xlabel="feedback learning rate α")
    ax.set_ylabel("variance of the W¹ estimate\n(units of mean squared gradient)")
    ax.set_title(f"Fig. 4: FDFA variance vs α ({dataset}, n₁ = {result['width']})")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return save_figure(fig, path)


def plot_figure5(result: dict, path: Path, dataset: str) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), constrained_layout=True)
    for ax, axis, label in zip(
        axes, ("n1", "n0"), ("hidden neurons n₁ (5a)", "inputs n₀, duplicated (5b)")
    ):
        sizes = result[f"{axis}_values"]
        for method, marker in (("fg-w", "^"), ("fg-a", "s")):
            r = result[f"{method}_{axis}"]
            colour = COLOURS[method]
            ax.plot(sizes, r["relative_variance"], marker, c=colour, label=f"{method} (measured)")
            _fit_line(ax, sizes, r["relative_variance"], r["fit"], colour, method)
            ax.plot(sizes, r["predicted"], ":", c=colour, alpha=0.7)
        ax.plot([], [], ":", c="grey", label="exact prediction (Props. 5, 6)")
        ax.set(xscale="log", yscale="log", xlabel=label)
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel("variance of the W¹ estimate\n(units of mean squared gradient)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small")
    fig.suptitle(f"Fig. 5: forward-gradient variance vs network size ({dataset})")
    return save_figure(fig, path)


def plot_figure6(result: dict, path: Path, dataset: str) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4.4), constrained_layout=True)
    pts = result["points"]
    noisy = [pts[f"bp+noise:{r:g}"] for r in result["ratios"]]
    ax.plot(
        [p["nu"] for p in noisy],
        [p["train_loss"] for p in noisy],
        "o-",
        c="grey",
        label="BP + Gaussian noise",
    )
    ax.axhline(pts["bp"]["train_loss"], ls="--", c="black", lw=1, label="BP (no noise)")
    for name in ("fg-w", "fg-a", "fdfa"):
        ax.plot(pts[name]["nu"], pts[name]["train_loss"], "D", ms=9, c=COLOURS[name], label=name)
    ax.set_xscale("logit")
    ax.set_xlabel("normalised variance ν = E‖g − Eg‖² / E‖g‖²")
    ax.set_ylabel("training loss after one epoch")
    ax.set_title(f"Fig. 6: loss vs variance ({dataset}, n₁ = {result['width']})")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return save_figure(fig, path)


def plot_figure7(result: dict, path: Path, dataset: str) -> Path:
    methods = ("dfa", "dkp", "fdfa")
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True, constrained_layout=True)
    for ax, method, tag in zip(axes, methods, "abc"):
        r = result[method]
        layers = np.array(r["layers"], float)
        for j in range(layers.shape[1]):
            ax.plot(r["epoch"], layers[:, j], label=f"layer {j + 1}")
        ax.set_title(f"7{tag}: {method.upper()}")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("angle to the BP gradient (degrees)")
    axes[-1].legend(fontsize="small")
    fig.suptitle(
        f"Fig. 7: layer-wise alignment ({result['depth']}-layer FC, width {result['width']}, "
        f"{dataset})"
    )
    return save_figure(fig, path)


# ---------------------------------------------------------------------------------------------
# Summary, explanation, command line


def _slopes(results: dict) -> dict[str, dict]:
    slopes = {}
    if "4" in results:
        slopes["fdfa_alpha"] = results["4"]
    if "5" in results:
        for name in ("fg-w_n1", "fg-a_n1", "fg-w_n0", "fg-a_n0"):
            slopes[name] = results["5"][name]
    return {
        name: {
            "slope": r["fit"]["slope"],
            "stderr": r["fit"]["stderr"],
            "theory": THEORY[name],
            "prediction_slope": r["prediction_fit"]["slope"],
            "raw_slope": r["fit_raw"]["slope"],
        }
        for name, r in slopes.items()
    }


_SLOPE_LABELS = {
    "fdfa_alpha": ("4", "FDFA variance vs α"),
    "fg-w_n1": ("5a", "FG-W variance vs n₁"),
    "fg-a_n1": ("5a", "FG-A variance vs n₁"),
    "fg-w_n0": ("5b", "FG-W variance vs n₀"),
    "fg-a_n0": ("5b", "FG-A variance vs n₀"),
}


def _summary(config: FiguresConfig, results: dict, slopes: dict, mode: str) -> str:
    lines = [
        "# FDFA paper, Figures 4-7 (Bacho & Chu)",
        "",
        f"Dataset: **{config.dataset}** (the paper used MNIST). Mode: {mode}. Seed {config.seed}.",
        "",
    ]
    if slopes:
        lines += [
            "## Power-law slopes (log-log OLS, slope ± asymptotic standard error)",
            "",
            f"Variance of the hidden weights' estimate for single examples ({config.examples} "
            f"examples × {config.draws} draws per point), in units of the mean squared true "
            "gradient element; 'prediction' is the slope of the exact Gaussian prediction at the "
            "same points, 'raw' the slope of the unnormalised variance.",
            "",
            "| figure | quantity | fitted slope | theory | prediction | raw |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for name, s in slopes.items():
            fig, label = _SLOPE_LABELS[name]
            lines.append(
                f"| {fig} | {label} | {_pm(s['slope'], s['stderr'], 3)} | {s['theory']:g} | "
                f"{s['prediction_slope']:.3f} | {s['raw_slope']:.3f} |"
            )
        lines.append("")
    if "6" in results:
        r = results["6"]
        lines += [
            "## Figure 6: training loss after one epoch against normalised variance ν",
            "",
            f"Two-layer net, n₁ = {r['width']}, Adam lr {r['lr']:g} (FDFA feedback rate the "
            f"same), batch {r['batch_size']}, {r['steps']} steps, mean of {r['seeds']} seed(s).",
            "",
            "| run | ν (measured) | ν (nominal) | train loss | noisy-BP loss at ν | test acc |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        nominal = dict(zip([f"bp+noise:{x:g}" for x in r["ratios"]], r["nominal_nu"]))
        nominal["bp"] = 0.0
        for name, p in r["points"].items():
            at = p.get("noisy_bp_loss_at_nu")
            lines.append(
                f"| {name} | {_nu(p['nu'])} | "
                f"{'—' if name not in nominal else _nu(nominal[name])} | "
                f"{p['train_loss']:.4f} | {'—' if at is None else format(at, '.4f')} | "
                f"{p['test_acc']:.3f} |"
            )
        lines.append("")
    if "7" in results:
        r = results["7"]
        depth = r["depth"]
        lines += [
            "## Figure 7: angle to the BP gradient (degrees), mean of the last 10% of records",
            "",
            f"{depth}-layer FC net of width {r['width']}, {config.align_epochs} epoch(s), Adam lr "
            f"{config.align_lr:g} × 0.95/epoch (feedback rate the same), probe batch of "
            f"{config.align_probe}.",
            "",
            "| method | " + " | ".join(f"layer {j + 1}" for j in range(depth)) + " | test acc |",
            "|---|" + "---:|" * (depth + 1),
        ]
        for method in ("dfa", "dkp", "fdfa"):
            m = r[method]
            cells = ["—" if v is None else f"{v:.1f}" for v in m["final_layers"]]
            lines.append(f"| {method} | " + " | ".join(cells) + f" | {m['test_acc']:.3f} |")
        lines.append("")
    return "\n".join(lines)


def _nu(nu: float) -> str:
    """ν for reading: near 1 as 1 − (1 − ν), which a plain format would round away."""
    return f"1 − {1 - nu:.2g}" if 0.99 < nu < 1 else f"{nu:.3g}"


def _agreement(s: dict) -> str:
    """How a fitted slope compares with the propositions' asymptotic one, in plain words."""
    gap = abs(s["slope"] - s["theory"])
    return "agrees with" if gap < 0.15 else "is close to" if gap < 0.3 else "departs from"


def _explanation(config: FiguresConfig, results: dict, slopes: dict) -> str:
    source = "MNIST" if config.dataset == "mnist" else f"{config.dataset}; the paper used MNIST"
    parts = [f"(Data: {source}.)"]
    if "fdfa_alpha" in slopes:
        s = slopes["fdfa_alpha"]
        parts.append(
            "Figure 4. With the feedback already at the true derivative ∂y²/∂y¹, FDFA's only "
            "randomness is one feedback step of size α towards a noisy forward-gradient target, "
            "so the noise in its weight estimate is α times a fixed noise and its variance should "
            f"grow as α² (Proposition 2). The measured slope, {_pm(s['slope'], s['stderr'])}, "
            f"{_agreement(s)} 2: a small feedback rate makes FDFA nearly as quiet as BP."
        )
    if "fg-w_n1" in slopes:
        w1, a1, w0, a0 = (slopes[k] for k in ("fg-w_n1", "fg-a_n1", "fg-w_n0", "fg-a_n0"))
        parts.append(
            "Figure 5. A forward gradient multiplies one random direction by one projected "
            "derivative, so its noise grows with the number of things perturbed: every weight "
            "for FG-W (theory: slope 1 in n₁ and in n₀), every hidden neuron for FG-A (slope 1 "
            "in n₁, 0 in n₀: duplicating inputs adds weights, not neurons). Measured: FG-W "
            f"{w1['slope']:.2f} in n₁ and {w0['slope']:.2f} in n₀, FG-A {a1['slope']:.2f} in "
            f"n₁ and {a0['slope']:.2f} in n₀. The variances are in units of the mean squared "
            "gradient, as the propositions count them; unnormalised, Kaiming init's 1/√n₁ "
            f"output weights shrink the n₁ slopes (FG-W {w1['raw_slope']:.2f}, FG-A "
            f"{a1['raw_slope']:.2f})."
        )
    if "6" in results:
        parts.append(_explain_figure6(results["6"]))
    if "7" in results:
        parts.append(_explain_figure7(results["7"]))
    return "\n\n".join(parts)


def _explain_figure6(r: dict) -> str:
    pts = r["points"]
    noisy = [pts[f"bp+noise:{x:g}"]["train_loss"] for x in r["ratios"]]
    trend = "rises" if noisy[-1] > noisy[0] else "does not rise"
    placed = []
    for name in ("fg-w", "fg-a", "fdfa"):
        p, at = pts[name], pts[name].get("noisy_bp_loss_at_nu")
        where = (
            "outside the line's range of ν"
            if at is None
            else f"{p['train_loss'] - at:+.3f} from the line at that ν"
        )
        placed.append(f"{name.upper()} ν = {_nu(p['nu'])}, loss {p['train_loss']:.3f} ({where})")
    return (
        "Figure 6. Training loss after one epoch against the normalised variance of the update. "
        f"Adding ever more Gaussian noise to BP's gradient (grey line) the loss {trend} "
        f"(BP {pts['bp']['train_loss']:.3f}, most noise {noisy[-1]:.3f}). The paper's claim is "
        "that the forward-gradient methods sit on that line, i.e. their variance alone explains "
        f"how fast they learn: {'; '.join(placed)}."
    )


def _explain_figure7(r: dict) -> str:
    hidden = {
        m: _nanmean([v for v in r[m]["final_layers"][:-1] if v is not None])
        for m in ("dfa", "dkp", "fdfa")
    }
    known = {m: v for m, v in hidden.items() if v is not None}
    text = ", ".join(f"{m.upper()} {v:.0f}°" for m, v in known.items())
    best = min(known, key=known.get) if known else None
    verdict = (
        "FDFA aligns closest, as in the paper"
        if best == "fdfa"
        else f"{best.upper() if best else 'none'} aligns closest here, unlike the paper"
    )
    return (
        "Figure 7. The angle between each layer's update and its true (BP) gradient during "
        "training; below 90° the update still descends. At the end (mean over the hidden "
        f"layers: {text}; the output layer is exact in all three) {verdict}. DFA's feedback is "
        "fixed and random; DKP learns it from the output error; FDFA learns the derivatives "
        "themselves from forward gradients, which can make the last hidden layer's update "
        "nearly exact once its feedback has converged."
    )


def run(
    config: FiguresConfig,
    out: str | Path,
    *,
    mode: str = "full",
    origin: dict[str, Any] | None = None,
) -> dict:
    """Computes the figures ``config.figures`` and writes everything to ``out``; ``origin``: the
    provenance recorded in the JSON (``ctlearn.provenance`` of this process when ``None``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_dataset(config.dataset, data_dir=config.data_dir)
    results: dict[str, Any] = {}
    figures: list[Path] = []
    timings: dict[str, float] = {}
    steps = {
        4: (variance_vs_alpha, plot_figure4),
        5: (variance_vs_size, plot_figure5),
        6: (loss_vs_variance, plot_figure6),
        7: (alignment_during_training, plot_figure7),
    }
    for number in sorted(config.figures):
        compute, plot = steps[number]
        started = time.perf_counter()
        results[str(number)] = compute(config, data)
        figures.append(plot(results[str(number)], out / f"figure{number}.png", config.dataset))
        timings[str(number)] = time.perf_counter() - started
        print(f"figure {number}: {timings[str(number)]:.1f} s", file=sys.stderr, flush=True)
    slopes = _slopes(results)
    explanation = _explanation(config, results, slopes)
    summary = _summary(config, results, slopes, mode)
    record = {
        "config": dataclasses.asdict(config),
        "mode": mode,
        "dataset_note": "the paper used MNIST" if config.dataset != "mnist" else "",
        "slopes": slopes,
        "results": results,
        "seconds": timings,
        "provenance": provenance() if origin is None else origin,
    }
    text = json.dumps(_finite(record), indent=1, default=_json, allow_nan=False)
    atomic_write_text(out / "fdfa_figures.json", text + "\n")
    atomic_write_text(out / "summary.md", summary + "\n")
    return {
        "figures": figures,
        "explanation": explanation,
        "slopes": slopes,
        "results": results,
        "summary": out / "summary.md",
        "json": out / "fdfa_figures.json",
    }


def _finite(value):
    """``value`` with every non-finite float (a missing angle, a two-point fit's error) as None:
    strict JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return None
    return value


def _json(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    prepare_parser(parser)
    parser.add_argument("--quick", action="store_true", help="tiny settings (CI, a first look)")
    parser.add_argument("--out", default="runs/fdfa-figures")
    parser.add_argument("--figures", default="4,5,6,7", help="comma-separated subset of 4,5,6,7")
    parser.add_argument("--dataset", default="mnist1d", help="mnist1d (default), fashion_mnist…")
    parser.add_argument("--data-dir")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        figures = tuple(int(f) for f in args.figures.split(",") if f.strip())
    except ValueError:
        parser.error(f"--figures {args.figures!r} is not a comma-separated subset of 4,5,6,7")
    changes = dict(QUICK) if args.quick else {}
    config = dataclasses.replace(
        FULL,
        **changes,
        figures=figures,
        dataset=args.dataset,
        data_dir=args.data_dir,
        seed=args.seed,
    )
    origin = provenance(argv, module=__spec__.name)
    result = run(config, args.out, mode="quick" if args.quick else "full", origin=origin)
    print_report(result)
    return result


if __name__ == "__main__":
    run_main(main)
