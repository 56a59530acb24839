"""The same three neurons learning in continuous time and in discrete steps, side by side.

    python -m sims.teach_continuous_discrete [--quick] [--out DIR]

The network and examples of ``sims.teach_neurons`` (x → tanh hidden → linear output; x = −1 →
−0.5, x = +1 → +0.5, one example per presentation of T = 4 τ_p) learn four ways from the same
initial weights. Continuous FG-A: ẇ = η·x·ṗ·ṙ, integrated through every presentation.
Gradient flow: ẇ = −η·c·∇L with c = (σ/τ_p)², what continuous FG-A does on average. Discrete
SGD: one step of the exact gradient per presentation, at the matched learning rate η·c·T
(``ct.effective_learning_rate``), so that a step moves the weights as far as a presentation of
continuous learning does on average. Discrete FG-A: the same step along one random direction's
forward gradient. The four weights and the loss are drawn against time (in presentations).

Writes ``teach_continuous_discrete.png``, ``teach_continuous_discrete.gif`` (the weights moving
in the (w₁, w₂) plane) and ``summary.json`` to ``--out``. ``main`` returns ``figures``,
``explanation``, ``config``, ``effective_lr`` and, per mode, the loss at the end and the
distance of the final weights from gradient flow's.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax

import ctlearn.dynamics as ct
from ctlearn._usererror import run_main
from ctlearn.estimators import make_estimator
from ctlearn.files import atomic_write_text
from ctlearn.plotting import save_figure, save_gif
from ctlearn.provenance import provenance
from ctlearn.train import TrainState, run_steps

from ._teach import (
    GIF_DPI,
    LOSS,
    PARAMETERS,
    TeachConfig,
    dataset_loss,
    flat,
    parse_config,
    record_weights,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CONTINUOUS = "continuous FG-A"
FLOW = "gradient flow"
SGD = "discrete SGD (exact gradient)"
LINE_ONLY = ("drawstyle", "marker", "ms")  # what the animated paths leave out
SEEDS = 3  # runs of discrete FG-A, each with its own random directions
DISCRETE = f"discrete FG-A (1 direction, {SEEDS} runs)"
STYLES = {
    CONTINUOUS: {"color": "C0", "lw": 1.2},
    FLOW: {"color": "k", "lw": 1.0, "ls": "--"},
    SGD: {"color": "C1", "lw": 1.2, "marker": "o", "ms": 3, "drawstyle": "steps-post"},
    DISCRETE: {"color": "C2", "lw": 1.2, "marker": "s", "ms": 3, "drawstyle": "steps-post"},
}


def _params(model):
    return eqx.filter(model, eqx.is_inexact_array)


def continuous(config: TeachConfig, simulator, model, stream, key) -> tuple[np.ndarray, np.ndarray]:
    """Times (in presentations) and the flat weights along a continuous run, the end included."""
    t, w, final = ct.record_run(
        simulator,
        model,
        stream,
        key=key,
        times=config.times,
        record=record_weights,
    )
    w = np.concatenate([w, np.asarray(flat(_params(final)))[None]])
    return np.append(t, stream.num * stream.duration) / stream.duration, w


def discrete(estimator, optimizer, model, stream, key) -> tuple[np.ndarray, np.ndarray]:
    """One ``optimizer`` step of ``estimator``'s gradient per presentation, in order: the flat
    weights before the first step and after each, at times 0, 1, …, presentations."""
    state = TrainState.start(model, optimizer.init(_params(model)), estimator.init(model, key=key))
    weights = []

    def record(i, state, x, y):  # before step i: the weights after i steps
        weights.append(flat(_params(state.model)))

    presentations = ((stream.x[k], stream.y[k]) for k in range(stream.num))
    state = run_steps(estimator, optimizer, state, presentations, key, callback=record).state
    weights.append(flat(_params(state.model)))
    return np.arange(stream.num + 1, dtype=float), np.asarray(jnp.stack(weights))


def run_modes(config: TeachConfig, seeds: int = SEEDS) -> tuple[dict, float]:
    """Every mode's runs, each (times, weights, loss on both examples), from the same initial
    weights (discrete FG-A: ``seeds`` runs with different directions; the others are one run),
    and the matched discrete learning rate."""
    model, sim, stream = config.model(), config.simulator(), config.stream()
    lr = ct.effective_learning_rate(sim, config.duration)
    flow = ct.Simulator(
        ct.GradientFlow(lr=config.lr * sim.perturbation.rate_power(), loss=LOSS),
        None,
        loss=LOSS,
        dt0=config.dt0,
    )
    key = jax.random.fold_in(jax.random.key(config.seed), 1)
    fg_a = make_estimator("fg-a", loss=LOSS, mask=False)
    sgd = optax.sgd(lr)  # plain SGD, no momentum
    modes = {
        CONTINUOUS: [continuous(config, sim, model, stream, key)],
        FLOW: [continuous(config, flow, model, stream, key)],
        SGD: [discrete(make_estimator("bp", loss=LOSS), sgd, model, stream, key)],
        DISCRETE: [
            discrete(fg_a, sgd, model, stream, jax.random.fold_in(key, 2 + s)) for s in range(seeds)
        ],
    }
    return {
        name: [(t, w, dataset_loss(config, model, w)) for t, w in runs]
        for name, runs in modes.items()
    }, lr


def plot(config: TeachConfig, modes: dict, lr: float, path) -> Path:
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), constrained_layout=True)
    panels = list(axes.flat)
    for name, runs in modes.items():
        for j, (t, w, loss) in enumerate(runs):
            style = {**STYLES[name], "label": name if j == 0 else None}
            if len(runs) > 1:
                style.update(lw=0.8, ms=2, alpha=0.8)
            for i in range(4):
                panels[i].plot(t, w[:, i], **style)
            panels[4].plot(t, loss, **style)
            plane = {k: v for k, v in style.items() if k != "drawstyle"}
            panels[5].plot(w[:, 0], w[:, 2], **plane)
    for i, ax in enumerate(panels[:5]):
        ax.set_xlabel(f"time (presentations of T = {config.duration:g} τ_p)")
        ax.set_ylabel(PARAMETERS[i] if i < 4 else "loss on both examples")
        ax.grid(alpha=0.3)
    panels[4].set_yscale("log")
    start = modes[FLOW][0][1][0]
    panels[5].plot(start[0], start[2], "k*", ms=10, label="start")
    panels[5].set_xlabel(PARAMETERS[0])
    panels[5].set_ylabel(PARAMETERS[2])
    panels[5].grid(alpha=0.3)
    panels[0].legend(fontsize="small")
    fig.suptitle(
        f"The same 1 → 1 → 1 network: continuous FG-A (η = {config.lr:g}, σ = {config.sigma:g}) "
        f"against discrete steps at the matched learning rate η·c·T = {lr:.3g}"
    )
    return save_figure(fig, path, dpi=110)


def animate(config: TeachConfig, modes: dict, path) -> Path:
    """The weights in the (w₁, w₂) plane and the loss, drawn up to a moving time."""
    fig, (plane, curve) = plt.subplots(1, 2, figsize=(7.5, 4), dpi=GIF_DPI)
    artists = []
    for name, runs in modes.items():
        for j, (t, w, loss) in enumerate(runs):
            style = {
                k: v for k, v in STYLES[name].items() if k not in ("drawstyle", "marker", "ms")
            }
            (path_line,) = plane.plot([], [], **style, label=name if j == 0 else None)
            (head,) = plane.plot([], [], "o", color=style["color"], ms=4)
            (loss_line,) = curve.plot([], [], **{**STYLES[name], "ms": 2})
            artists.append((t, w, loss, path_line, head, loss_line))
            plane.update_datalim(np.stack([w[:, 0], w[:, 2]], axis=1))
            curve.update_datalim(np.stack([t, loss], axis=1))
    plane.autoscale_view()
    curve.set_yscale("log")
    curve.autoscale_view()
    plane.set_xlabel("w₁", fontsize="small")
    plane.set_ylabel("w₂", fontsize="small")
    curve.set_xlabel("presentations", fontsize="small")
    curve.set_ylabel("loss", fontsize="small")
    for ax in (plane, curve):
        ax.tick_params(labelsize="x-small")
        ax.grid(alpha=0.3)
    fig.legend(fontsize="x-small", loc="upper center", ncols=2)
    title = curve.set_title(" ", fontsize="small")
    fig.tight_layout(rect=(0, 0, 1, 0.8))  # once: a layout engine would redo it every frame
    end = max(t[-1] for t, *_ in artists)
    moments = np.linspace(0.0, end, config.frames)

    def draw(i):
        now = moments[i]
        for t, w, loss, path_line, head, loss_line in artists:
            n = int(np.searchsorted(t, now, side="right"))
            path_line.set_data(w[:n, 0], w[:n, 2])
            head.set_data(w[n - 1 : n, 0], w[n - 1 : n, 2])
            loss_line.set_data(t[:n], loss[:n])
        title.set_text(f"after {now:.1f} presentations")

    return save_gif(fig, draw, config.frames, path, fps=8, dpi=GIF_DPI)


def explain(config: TeachConfig, result: dict) -> str:
    m = result["modes"]

    def one(name, key):
        return m[name][key][0]

    def spread(values):
        return f"{min(values):.3g} to {max(values):.3g}" if len(values) > 1 else f"{values[0]:.3g}"

    runs = len(m[DISCRETE]["loss_end"])
    return (
        f"The three-neuron network of teach_neurons learns its two examples in four ways from "
        f"the same start. Continuous FG-A (blue) changes its weights all the time, each instant "
        f"by η·x·ṗ·ṙ; averaged over a presentation that is a step of −η·c·T·∇L (c = (σ/τ_p)² = "
        f"{result['rate_power']:.3g}), so it wobbles around gradient flow (dashed), the smooth "
        f"path down the loss. Discrete SGD (orange) takes one exact-gradient step per "
        f"presentation at the matched learning rate η·c·T = {result['effective_lr']:.3g}: a "
        f"staircase that follows gradient flow. Discrete FG-A (green, {runs} runs with different "
        f"random directions) takes the same step along one random direction's forward gradient: "
        f"right on average, but every step is a gamble, where a continuous presentation of "
        f"T/τ_p = {config.duration / config.tau_p:g} averages over many directions. After "
        f"{config.presentations} presentations the loss on both examples (from "
        f"{result['loss_start']:.3g}) is {one(CONTINUOUS, 'loss_end'):.3g} for continuous FG-A, "
        f"{one(FLOW, 'loss_end'):.3g} for gradient flow, {one(SGD, 'loss_end'):.3g} for "
        f"discrete SGD and {spread(m[DISCRETE]['loss_end'])} for discrete FG-A; the final "
        f"weights lie {one(CONTINUOUS, 'distance_to_flow'):.3f} (continuous FG-A), "
        f"{one(SGD, 'distance_to_flow'):.3f} (SGD) and {spread(m[DISCRETE]['distance_to_flow'])} "
        f"(discrete FG-A) from gradient flow's (Euclidean distance over the four parameters)."
    )


def main(argv=None) -> dict:
    config, out = parse_config(argv, __doc__, "runs/teach-continuous-discrete")

    modes, lr = run_modes(config)
    w_flow = modes[FLOW][0][1][-1]
    result = {
        "config": dataclasses.asdict(config),
        "effective_lr": lr,
        "rate_power": config.simulator().perturbation.rate_power(),
        "loss_start": float(modes[FLOW][0][2][0]),
        "modes": {
            name: {
                "loss_end": [float(loss[-1]) for _, _, loss in runs],
                "weights_end": [w[-1].tolist() for _, w, _ in runs],
                "distance_to_flow": [float(np.linalg.norm(w[-1] - w_flow)) for _, w, _ in runs],
            }
            for name, runs in modes.items()
        },
        "provenance": provenance(argv, module=__spec__.name),
    }
    figures = [
        plot(config, modes, lr, out / "teach_continuous_discrete.png"),
        animate(config, modes, out / "teach_continuous_discrete.gif"),
    ]
    result["explanation"] = explain(config, result)
    atomic_write_text(out / "summary.json", json.dumps(result, indent=2) + "\n")
    result["figures"] = figures
    print(result["explanation"])
    print("figures:", ", ".join(str(f) for f in figures))
    return result


if __name__ == "__main__":
    run_main(main)
