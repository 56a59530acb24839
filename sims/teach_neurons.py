"""Three neurons learning by continuous-time FG-A: every signal the rule uses, over time.

    python -m sims.teach_neurons [--quick] [--out DIR]

A network of three neurons (input x → hidden h = tanh(w₁x + b₁) → output y = w₂h + b₂) is shown
one example at a time: x = −1 with target −0.5, then x = +1 with target +0.5, alternating, each
held for a presentation of T = 4 τ_p (its first 5 % a smooth blend from the previous input).
A small perturbation p(t), a sum of sinusoids of amplitude σ = 0.1 and time scale τ_p, is added
to each neuron's input (its pre-activation). When the perturbation makes the error
smaller, the reward r = −L rises (ṙ > 0); each weight then moves by ẇ = η·x·ṗ·ṙ, its input times
the rate of its neuron's perturbation times the reward rate: "if wiggling this neuron up just
made things better, strengthen the weight that drives it up". Averaged over a presentation this
is gradient descent, ẇ ≈ −η·(σ/τ_p)²·∂L/∂w, so the loss falls although no neuron ever computes a
gradient.

Writes ``teach_neurons.png`` (the traces), ``teach_neurons.gif`` (the same traces unfolding) and
``summary.json`` to ``--out``. ``main`` returns ``figures``, ``explanation``, the ``config``,
the loss on the two examples at the start and the end, ``rule_check``, the largest gap between
the rule's ẇ and η·x·ṗ·ṙ computed from the recorded signals, and the recorded ``t`` and
``traces`` (see ``record_signals``).

The network, its examples and the command line are shared with
``sims.teach_continuous_discrete`` (``sims._teach``); the traces are recorded by
``ctlearn.dynamics.record_run`` and animated by ``ctlearn.plotting.save_gif``.
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

import ctlearn.dynamics as ct
from ctlearn._usererror import run_main
from ctlearn.files import atomic_write_text
from ctlearn.plotting import save_figure, save_gif
from ctlearn.provenance import provenance

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ._teach import GIF_DPI, PARAMETERS, TeachConfig, dataset_loss, flat, parse_config


def record_signals(state, signals, model, rule) -> dict:
    """What ``teach_neurons`` records at every instant: the input and its rate, the target, the
    hidden activity, the output, the perturbation and its rate at both neurons, the loss and the
    reward rate ṙ, the weights and the rule's ẇ."""
    w_dot, _ = rule.rates(model, signals, state.rule)
    return {
        "x": signals.x[0, 0],
        "x_dot": signals.x_dot[0, 0],
        "target": signals.y[0],
        "h": signals.trace.inputs[1][0, 0],
        "y": signals.trace.logits[0, 0],
        "p": jnp.stack([p[0, 0] for p in signals.p]),
        "p_dot": jnp.stack([p[0, 0] for p in signals.p_dot]),
        "loss": signals.losses[-1][0],
        "r_dot": -signals.loss_rates[-1][0],
        "w": flat(state.params),
        "w_dot": flat(eqx.filter(w_dot, eqx.is_inexact_array)),
    }


def rule_terms(eta: float, traces: dict) -> np.ndarray:
    """η·(input)·ṗ·ṙ for every parameter of the 1-1-1 network, from the recorded signals: the
    weights' inputs are x and h, the biases' are 1."""
    inputs = np.stack(
        [traces["x"], np.ones_like(traces["x"]), traces["h"], np.ones_like(traces["x"])]
    )
    p_dot = traces["p_dot"][:, [0, 0, 1, 1]].T
    return (eta * inputs * p_dot * traces["r_dot"]).T


def _panels(config: TeachConfig, traces: dict, data_loss: np.ndarray) -> list:
    """(label, [(values, style)]) per panel of the trace figure."""
    labels = ("hidden", "output")
    return [
        (
            "input x, target",
            [(traces["x"], {"label": "x"}), (traces["target"], {"label": "target", "ls": "--"})],
        ),
        ("ẋ", [(traces["x_dot"], {"label": "ẋ"})]),
        ("p", [(traces["p"][:, i], {"label": f"p ({labels[i]})"}) for i in range(2)]),
        ("ṗ", [(traces["p_dot"][:, i], {"label": f"ṗ ({labels[i]})"}) for i in range(2)]),
        ("ṙ = −dL/dt", [(traces["r_dot"], {"label": "ṙ"})]),
        (
            "ẇ₁",
            [
                (traces["w_dot"][:, 0], {"label": "rule's ẇ₁", "lw": 2.5, "alpha": 0.5}),
                (rule_terms(config.lr, traces)[:, 0], {"label": "η·x·ṗ·ṙ", "lw": 0.8}),
            ],
        ),
        ("weights", [(traces["w"][:, i], {"label": PARAMETERS[i]}) for i in range(4)]),
        (
            "loss",
            [
                (traces["loss"], {"label": "now (perturbed)", "lw": 0.8}),
                (data_loss, {"label": "both examples", "lw": 2}),
            ],
        ),
    ]


def plot_traces(config: TeachConfig, t, traces, data_loss, path) -> Path:
    panels = _panels(config, traces, data_loss)
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(11, 1.6 * len(panels)), sharex=True, constrained_layout=True
    )
    for ax, (label, lines) in zip(axes, panels):
        for values, style in lines:
            ax.plot(t, values, **{"lw": 1, **style})
        _boundaries(ax, config, t[-1])
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.005, 1.0))
    axes[-1].set_yscale("log")
    axes[-1].set_xlabel("time (units of τ_p); dotted lines: a new example is presented")
    axes[0].set_title(
        f"1 → 1 → 1 network learning by continuous FG-A, ẇ = η·x·ṗ·ṙ (η = {config.lr:g}, "
        f"σ = {config.sigma:g}, T = {config.duration:g})"
    )
    return save_figure(fig, path, dpi=110)


def _boundaries(ax, config: TeachConfig, end: float) -> None:
    for k in np.arange(config.duration, end, config.duration):
        ax.axvline(k, color="grey", lw=0.5, ls=":")


def animate_traces(config: TeachConfig, t, traces, data_loss, path) -> Path:
    """The input, ṗ, ṙ, the weights and the loss drawn up to a moving instant."""
    chosen = [0, 3, 4, 6, 7]
    panels = [_panels(config, traces, data_loss)[i] for i in chosen]
    fig, axes = plt.subplots(len(panels), 1, figsize=(6.2, 5.5), dpi=GIF_DPI, sharex=True)
    lines = []
    for ax, (label, series) in zip(axes, panels):
        for values, style in series:
            (line,) = ax.plot([], [], **{"lw": 1, **style})
            lines.append((line, values))
            low, high = float(np.min(values)), float(np.max(values))
            ax.update_datalim([(t[0], low), (t[-1], high)])
        ax.autoscale_view()
        ax.set_ylabel(label, fontsize="small")
        ax.tick_params(labelsize="x-small")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.0, 1.0), handlelength=1)
    axes[-1].set_yscale("log")
    axes[-1].set_xlabel("time (τ_p)")
    title = axes[0].set_title(" ", fontsize="small")
    fig.tight_layout()  # once: a layout engine would redo it for every frame
    ends = np.linspace(1, len(t), config.frames).round().astype(int)

    def draw(i):
        n = ends[i]
        for line, values in lines:
            line.set_data(t[:n], values[:n])
        title.set_text(f"continuous FG-A, t = {t[n - 1]:.1f} τ_p")

    return save_gif(fig, draw, len(ends), path, fps=10, dpi=GIF_DPI)


def explain(config: TeachConfig, result: dict) -> str:
    start, end = result["loss_start"], result["loss_end"]
    return (
        f"Three neurons (input → tanh hidden → linear output) learn to answer −0.5 to x = −1 and "
        f"+0.5 to x = +1, one example at a time, in continuous time, by ẇ = η·x·ẏ·ṙ with ẏ = ṗ "
        f"(η = {config.lr:g}). Top to bottom: the input "
        f"and its target; the input's rate ẋ (non-zero only while one example blends into the "
        f"next); the perturbation p added to each neuron's input and its rate ṗ (wiggles of "
        f"amplitude σ = {config.sigma:g} on a time scale τ_p = {config.tau_p:g}); the reward "
        f"rate ṙ = −dL/dt, which follows ṗ because each wiggle makes the error a little larger "
        f"or smaller; the rule's ẇ₁ drawn over η·x·ṗ·ṙ computed from the recorded signals (the "
        f"same curve: the largest gap over all {len(PARAMETERS)} parameters and "
        f"{result['samples']} instants is {result['rule_check']:.1e}); the four parameters; "
        f"and the loss, now and on both examples. At each switch the target changes at once while "
        f"the input still blends, so for a moment the error is large and ṙ and ẇ spike. ẇ flips "
        f"sign with every wiggle, but on average "
        f"it points downhill: over {config.presentations} presentations (t = "
        f"{config.presentations * config.duration:g} τ_p) the loss on both examples falls from "
        f"{start:.3g} to {end:.3g} ({start / end:.0f} times lower), with no neuron ever "
        f"computing a gradient."
    )


def main(argv=None) -> dict:
    config, out = parse_config(argv, __doc__, "runs/teach-neurons")

    model, sim, stream = config.model(), config.simulator(), config.stream()
    key = jax.random.fold_in(jax.random.key(config.seed), 1)
    t, traces, final = ct.record_run(
        sim, model, stream, key=key, times=config.times, record=record_signals
    )
    data_loss = dataset_loss(config, model, traces["w"])
    w_end = np.asarray(flat(eqx.filter(final, eqx.is_inexact_array)))
    gap = np.abs(traces["w_dot"] - rule_terms(config.lr, traces))
    result = {
        "config": dataclasses.asdict(config),
        "loss_start": float(data_loss[0]),
        "loss_end": float(dataset_loss(config, model, w_end[None])[0]),
        "weights_start": traces["w"][0].tolist(),
        "weights_end": w_end.tolist(),
        "rule_check": float(gap.max()),
        "rule_scale": float(np.abs(traces["w_dot"]).max()),
        "samples": int(len(t)),
        "effective_lr": ct.effective_learning_rate(sim, config.duration),
        "provenance": provenance(argv, module=__spec__.name),
    }
    figures = [
        plot_traces(config, t, traces, data_loss, out / "teach_neurons.png"),
        animate_traces(config, t, traces, data_loss, out / "teach_neurons.gif"),
    ]
    result["explanation"] = explain(config, result)
    atomic_write_text(out / "summary.json", json.dumps(result, indent=2) + "\n")
    result.update(figures=figures, t=t, traces=traces)
    print(result["explanation"])
    print("figures:", ", ".join(str(f) for f in figures))
    return result


if __name__ == "__main__":
    run_main(main)
