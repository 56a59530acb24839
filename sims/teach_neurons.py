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

``record_run`` (traces through several presentations of one ``ct.simulate`` run) and
``save_gif`` are shared with ``sims.teach_continuous_discrete``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

import ctlearn.dynamics as ct
from ctlearn._usererror import prepare_parser, run_main
from ctlearn.files import atomic_write_text
from ctlearn.losses import get_loss
from ctlearn.plotting import save_figure
from models import mlp

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.animation import PillowWriter  # noqa: E402

LOSS = "mse"
GIF_DPI = 90
PARAMETERS = ("w₁ (x → h)", "b₁ (hidden bias)", "w₂ (h → y)", "b₂ (output bias)")


@dataclasses.dataclass(frozen=True)
class TeachConfig:
    """The toy problem and the circuit. Times are in units of τ_p.

    ``inputs``/``targets``: the examples, presented in turn (one at a time: batch 1);
    ``presentations``: how many; ``duration``: T; ``transition``: the fraction of T spent
    blending from the previous input; ``sigma``, ``tau_p``, ``components``: the sinusoid
    perturbation; ``lr``: the rule's η (1/time); ``dt0``: Heun's fixed step; ``times``: samples
    recorded per presentation; ``frames``: frames of the animation.
    """

    inputs: tuple[float, ...] = (-1.0, 1.0)
    targets: tuple[float, ...] = (-0.5, 0.5)
    presentations: int = 24
    duration: float = 4.0
    transition: float = 0.05
    sigma: float = 0.1
    tau_p: float = 1.0
    components: int = 4
    lr: float = 5.0
    dt0: float = 0.05
    times: int = 100
    frames: int = 60
    seed: int = 0

    def __post_init__(self):
        if len(self.inputs) != len(self.targets) or not self.inputs:
            raise ValueError(
                f"inputs and targets must be equally long and not empty, got {self.inputs} and "
                f"{self.targets}"
            )
        for name in ("presentations", "times", "frames", "components"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {name}={value!r}")
        for name in ("duration", "sigma", "tau_p", "lr", "dt0"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {name}={getattr(self, name)!r}")
        if not 0 <= self.transition < 1:
            raise ValueError(f"transition is a fraction of T in [0, 1), got {self.transition}")

    def simulator(self) -> ct.Simulator:
        """Continuous FG-A with the MSE loss and a sinusoid perturbation, fixed-step Heun."""
        return ct.Simulator(
            ct.FGARule(lr=self.lr, loss=LOSS),
            ct.Sinusoids(self.sigma, self.tau_p, components=self.components),
            loss=LOSS,
            dt0=self.dt0,
        )

    def model(self):
        """The 1 → 1 → 1 network (tanh hidden neuron, linear output)."""
        key = jax.random.fold_in(jax.random.key(self.seed), 0)
        return mlp((1,), 1, (1,), activation="tanh", local_heads=False, key=key)

    def stream(self) -> ct.Presentations:
        """The examples in turn, one per presentation. The targets are real numbers: with one
        output and a batch of one, the MSE loss reads them as the output's target."""
        k = np.arange(self.presentations) % len(self.inputs)
        x = jnp.asarray(np.asarray(self.inputs, np.float32)[k].reshape(-1, 1, 1))
        y = jnp.asarray(np.asarray(self.targets, np.float32)[k].reshape(-1, 1))
        return ct.Presentations(
            x, y, duration=self.duration, transition=self.transition * self.duration
        )

    def dataset(self) -> tuple[jax.Array, jax.Array]:
        """All examples as a batch: x [n, 1], targets [n, 1]."""
        x = jnp.asarray(self.inputs, jnp.float32)[:, None]
        return x, jnp.asarray(self.targets, jnp.float32)[:, None]


QUICK = {"presentations": 8, "times": 50, "frames": 16}


def flat(params) -> jax.Array:
    """A network's trainable arrays as one vector (w₁, b₁, w₂, b₂ for the 1-1-1 network)."""
    return jnp.concatenate([jnp.ravel(a) for a in jax.tree.leaves(params)])


def dataset_loss(config: TeachConfig, model, weights: np.ndarray) -> np.ndarray:
    """The mean MSE over every example, unperturbed, for each row of ``weights`` (flat, in the
    order of ``flat``), with ``model``'s structure."""
    x, t = config.dataset()
    return np.asarray(_dataset_losses(model, jnp.asarray(weights), x, t))


@eqx.filter_jit
def _dataset_losses(model, weights, x, t):
    params, static = eqx.partition(model, eqx.is_inexact_array)
    leaves, treedef = jax.tree.flatten(params)
    sizes = np.cumsum([a.size for a in leaves])[:-1]

    def loss(w):
        parts = jnp.split(w, sizes)
        moved = [p.reshape(a.shape) for p, a in zip(parts, leaves)]
        net = eqx.combine(jax.tree.unflatten(treedef, moved), static)
        return jnp.mean(get_loss(LOSS)(net(x).logits, t))

    return jax.vmap(loss)(weights)


def record_run(
    simulator: ct.Simulator,
    model,
    stream: ct.Presentations,
    *,
    key,
    times: int,
    record: Callable[..., Any],
) -> tuple[np.ndarray, Any, Any]:
    """``record(state, signals, model, rule)`` at ``times`` evenly spaced instants of every
    presentation of ``stream`` (``model``: the network at that instant; ``rule``: the
    simulator's) during one ``ct.simulate`` run, so the traces are one continuous run. Returns
    ``(t, recorded, model)``: global times [presentations × times], the records stacked along
    the first axis, the final model. A module-level ``record`` is compiled once for every run
    of the same settings.
    """
    static = eqx.partition(model, eqx.is_inexact_array)[1]
    recording = ct.Recording(_WithModel(record, static, simulator.rule), times)
    result = ct.simulate(
        simulator, model, stream, key=key, chunk=stream.num, progress=False, record=recording
    )
    local = np.asarray(recording.local_times(stream.duration))
    t = np.concatenate([k * stream.duration + local for k in range(stream.num)])
    recorded = jax.tree.map(lambda a: np.asarray(a).reshape(-1, *a.shape[2:]), result.recorded)
    return t, recorded, result.model


class _WithModel(eqx.Module):
    """``record(state, signals)`` as ``ct.Recording`` calls it, handing ``record`` the network
    at that instant and the rule as well."""

    record: Callable[..., Any] = eqx.field(static=True)
    static: Any = eqx.field(static=True)
    rule: ct.AbstractRule

    def __call__(self, state, signals):
        model = eqx.combine(state.params, self.static)
        return self.record(state, signals, model, self.rule)


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


def record_weights(state, signals, model, rule) -> jax.Array:
    """The weights alone, as one vector."""
    return flat(state.params)


def rule_terms(eta: float, traces: dict) -> np.ndarray:
    """η·(input)·ṗ·ṙ for every parameter of the 1-1-1 network, from the recorded signals: the
    weights' inputs are x and h, the biases' are 1."""
    inputs = np.stack(
        [traces["x"], np.ones_like(traces["x"]), traces["h"], np.ones_like(traces["x"])]
    )
    p_dot = traces["p_dot"][:, [0, 0, 1, 1]].T
    return (eta * inputs * p_dot * traces["r_dot"]).T


def save_gif(
    fig, update: Callable[[int], Any], frames: int, path: str | os.PathLike, *, fps: int, dpi: int
) -> Path:
    """Write an animation of ``fig`` as a GIF with matplotlib's ``PillowWriter``: ``update(i)``
    moves the artists to frame ``i`` before it is grabbed. Written beside ``path``, then renamed
    (atomic); ``fig`` is closed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".gif")
    os.close(fd)
    try:
        writer = PillowWriter(fps=fps)
        with writer.saving(fig, tmp, dpi=dpi):
            for i in range(frames):
                update(i)
                writer.grab_frame()
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


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


def parse_config(argv, doc: str, out: str) -> tuple[TeachConfig, Path]:
    """The command line the teaching demos share: ``--quick``, ``--out``, ``--presentations``,
    ``--lr``, ``--seed``; returns the demo's settings and its output directory."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    prepare_parser(parser)
    parser.add_argument("--quick", action="store_true", help="fewer presentations and samples")
    parser.add_argument("--out", default=out)
    parser.add_argument("--presentations", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None, help="η of the rule (1/time)")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    options = dict(QUICK) if args.quick else {}
    for name in ("presentations", "lr", "seed"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    return TeachConfig(**options), Path(args.out)


def main(argv=None) -> dict:
    config, out = parse_config(argv, __doc__, "runs/teach-neurons")

    model, sim, stream = config.model(), config.simulator(), config.stream()
    key = jax.random.fold_in(jax.random.key(config.seed), 1)
    t, traces, final = record_run(
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
