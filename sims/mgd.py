"""Multiplexed gradient descent's small benchmarks, run as simulator configurations: XOR and
n-bit parity, time to solution over seeds.

    python -m sims.mgd [--quick] [--out DIR] [--seeds S] [--no-progress]

MGD (McCaughan et al., APL Mach. Learn. 1, 026118, 2023; public code
amccaugh/multiplexed-gradient-descent-paper) trains sigmoid networks by weight perturbation: every
weight and bias carries its own ±1 code (CDMA), the cost change C̃ is correlated with the code's
value, G = C̃·θ̃/‖θ̃‖², and the weights are updated by η·ΣG every τ_θ. Here the same loop is a
``ctlearn.dynamics.Simulator``: ``RandomCodes`` at the weights (chips of one time unit, MGD's
step dt), ``MGDRule`` (C̃ = L(w + θ̃) − L(w), MGD's discrete-mode reading) and
``DiscreteUpdates`` (the weights held and written once per presentation of τ_θ). MGD's analog
mode is the same rule with its cost read through ``HighPass(tau=τ_hp, hold_switch=True)`` (the
sample switch is not passed, as MGD resets its filter there) and its gradient low-passed with
``MGDRule(tau_theta=τ_θ)``, the weights moving continuously.

* **XOR** with the settings of MGD's ``CDMA_xor.jl``: a [2, 2, 1] sigmoid network with MSE cost
  (9 parameters), one sample per step (τ_x = τ_θ = 1), perturbation norm 0.05 (each parameter
  ±0.05/3), η = 0.1, 200,000 steps, initial weights uniform on [0, 1) (biases on (−1, 0]: MGD
  subtracts its biases). Samples in shuffled epochs of the four patterns. Also in the analog
  mode, τ_hp = 1.6 steps (fixed in MGD's code), at τ_θ = 1, 16 and 256 steps.
* **n-bit parity** ([n, n, 1] sigmoid, MSE, all 2ⁿ patterns, initial weights uniform on
  [−0.5, 0.5), MGD's ``test_n_bit_parity`` set-up; its paper's parity hyperparameters were not
  found: the norm is XOR's, η = 1, since at XOR's η = 0.1 3-bit parity stays on the cost's
  plateau far longer): the number of parameters K = (n + 1)² grows with n, and τ_θ is varied.
  Each update integrates G over τ_θ steps with all 2ⁿ patterns presented at once (the
  dataset's mean cost; MGD presents them one per τ_x within τ_θ).

Time to solution t_sol (MGD's ``analyze_final_accuracy_time``): the first time the accuracy
exceeds 0.9 (output and target on the same side of 0.5); for XOR the accuracy of each epoch of
four presentations (every pattern once, each read after its own update), for parity the whole
dataset's after each update. A run that never gets there counts as unsolved.
Writes ``mgd.json``, ``summary.md`` and ``mgd.png`` to ``--out``; finished cells are kept in
``mgd.json`` as they end, so an interrupted run resumes.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import time
from pathlib import Path
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from tqdm.auto import tqdm

import ctlearn.dynamics as ct
from ctlearn._usererror import run_main
from ctlearn.files import atomic_write_text
from ctlearn.plotting import save_figure
from ctlearn.provenance import provenance
from models.mlp import mlp

from ._report import saved_run, seeded_main

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# MGD's cost is the mean squared error (y − t)² per output; ctlearn's "mse" is half of it, so
# the rule's rate is doubled to take the same steps.
MGD_COST_SCALE = 2.0


@dataclasses.dataclass(frozen=True)
class MGDConfig:
    """``seeds`` per benchmark (initial weights and perturbation codes; the sample order is
    shared); XOR for ``xor_steps`` steps; parity with ``parity_bits`` inputs at every τ_θ of
    ``parity_taus`` (in steps) for ``parity_steps`` steps; XOR also in MGD's analog mode (the cost
    through a high-pass of ``tau_hp`` steps, the gradient low-passed with each τ_θ of
    ``analog_taus``, the weights moving every step); MGD's perturbation ``norm`` (each of
    K parameters ±norm/√K) and learning rates ``eta`` (XOR) and ``parity_eta``; solved when
    the accuracy exceeds ``threshold``; ``steps_per_chip`` solver steps per MGD step."""

    seeds: int = 16
    xor_steps: int = 200_000
    analog_taus: tuple[int, ...] = (1, 16, 256)
    tau_hp: float = 1.6
    parity_bits: tuple[int, ...] = (2, 3, 4)
    parity_taus: tuple[int, ...] = (1, 16, 256, 2048)
    parity_steps: int = 500_000
    norm: float = 0.05
    eta: float = 0.1
    parity_eta: float = 1.0
    threshold: float = 0.9
    steps_per_chip: int = 8
    seed: int = 0

    def __post_init__(self):
        for name in ("seeds", "xor_steps", "parity_steps", "steps_per_chip"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {name}={value!r}")
        if self.steps_per_chip < 4:
            raise ValueError(
                f"steps_per_chip must be >= 4 (a chip's rate is sampled too coarsely below), "
                f"got {self.steps_per_chip}"
            )
        if not self.parity_bits or any(b < 2 or b > 8 for b in self.parity_bits):
            raise ValueError(f"parity_bits must be in 2..8, got {self.parity_bits}")
        if any(t < 1 for t in self.analog_taus):
            raise ValueError(f"analog_taus must be >= 1 step each, got {self.analog_taus}")
        if not (math.isfinite(self.tau_hp) and self.tau_hp > 0):
            raise ValueError(f"tau_hp must be finite and > 0 steps, got {self.tau_hp}")
        if not self.parity_taus or any(t < 1 for t in self.parity_taus):
            raise ValueError(f"parity_taus must be >= 1 step each, got {self.parity_taus}")
        too_long = [t for t in self.parity_taus if t > self.parity_steps]
        if too_long:
            raise ValueError(
                f"tau_theta {too_long} exceeds parity_steps={self.parity_steps}: no update would "
                "happen"
            )
        if self.xor_steps % 4:
            raise ValueError(f"xor_steps must be whole epochs of 4 patterns, got {self.xor_steps}")
        if not (self.norm > 0 and self.eta > 0 and self.parity_eta > 0):
            raise ValueError(
                f"norm, eta and parity_eta must be > 0, got norm={self.norm}, eta={self.eta}, "
                f"parity_eta={self.parity_eta}"
            )
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")


QUICK = MGDConfig(
    seeds=2, xor_steps=400, analog_taus=(4,), parity_bits=(2,), parity_taus=(2,), parity_steps=400
)


def parameters(bits: int) -> int:
    """K of the [n, n, 1] network (n = ``bits``; XOR is n = 2): weights and biases."""
    return (bits + 1) * bits + bits + 1


def simulator(
    config: MGDConfig, count: int, eta: float, tau: int = 1, *, analog: bool = False
) -> ct.Simulator:
    """MGD's discrete-mode loop for K = ``count`` parameters at MGD's learning rate ``eta``,
    for presentations of τ_θ = ``tau`` steps; with ``analog``, its analog mode: the cost read
    through a high-pass of τ_hp that holds each sample switch (``HighPass(hold_switch=True)``)
    and the gradient low-passed with time constant τ_θ = ``tau`` (``MGDRule(tau_theta=...)``),
    the weights moving continuously (MGD: every step)."""
    amplitude = config.norm / math.sqrt(count)  # MGD's CDMA: ±norm/√K per parameter
    sigma = amplitude / math.sqrt(ct.RandomCodes(1.0, 1.0).value_power())
    # MGD moves θ by η·C̃·θ̃/norm² per step; MGDRule by lr·∫C̃·θ̃ dt with steps of one time unit.
    lr = MGD_COST_SCALE * eta / config.norm**2
    if analog:
        rule = ct.MGDRule(lr=lr, loss="mse", tau_theta=float(tau))
        hardware = (ct.HighPass(tau=config.tau_hp, hold_switch=True),)
    else:
        rule, hardware = ct.MGDRule(lr=lr, loss="mse"), (ct.DiscreteUpdates(),)
    return ct.Simulator(
        rule,
        ct.RandomCodes(sigma, 1.0),
        loss="mse",
        dt0=1.0 / config.steps_per_chip,
        max_steps=config.steps_per_chip * (1 if analog else tau) + 16,
        hardware=hardware,
        solver=diffrax.Heun() if analog else None,
    )


def patterns(bits: int) -> tuple[jax.Array, jax.Array]:
    """All 2ⁿ inputs of n bits and their parity."""
    x = np.array(list(itertools.product((0.0, 1.0), repeat=bits)), np.float32)
    return jnp.asarray(x), jnp.asarray(x.sum(axis=1) % 2, jnp.float32)


def network(bits: int, seed: int, low: float, high: float, *, subtract_bias: bool) -> Any:
    """The [n, n, 1] sigmoid network with every parameter uniform on [low, high) (biases
    negated with ``subtract_bias``, as MGD subtracts its biases)."""
    key = jax.random.key(seed)
    net = mlp(
        (bits,), 1, (bits,), activation="sigmoid", output_activation="sigmoid",
        local_heads=False, key=key,
    )  # fmt: skip
    params, static = eqx.partition(net, eqx.is_inexact_array)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.fold_in(key, 1), len(leaves))
    drawn = [jax.random.uniform(k, a.shape, a.dtype, low, high) for k, a in zip(keys, leaves)]
    net = eqx.combine(jax.tree.unflatten(treedef, drawn), static)
    if subtract_bias:
        net = eqx.tree_at(
            lambda m: [layer.bias for layer in m.layers],
            net,
            [-layer.bias for layer in net.layers],
        )
    return net


def first_solved(accuracy: np.ndarray, threshold: float, every: float) -> float | None:
    """MGD's t_sol: the time (``every`` per logged point) of the first accuracy above
    ``threshold``; ``None`` if never, or only at the last point."""
    above = np.flatnonzero(accuracy > threshold)
    if above.size == 0 or above[0] == accuracy.size - 1:
        return None
    return float((above[0] + 1) * every)


def run_xor(config: MGDConfig, progress: bool, analog_tau: int | None = None) -> dict[str, Any]:
    """XOR, one sample per step, in the discrete mode (τ_θ = 1) or, with ``analog_tau``, in the
    analog mode at τ_θ = ``analog_tau``."""
    x, y = patterns(2)
    epochs = config.xor_steps // 4
    key = jax.random.key(config.seed)
    epoch_keys = jax.vmap(lambda e: jax.random.fold_in(key, e))(jnp.arange(epochs))
    order = jax.vmap(lambda k: jax.random.permutation(k, 4))(epoch_keys).reshape(-1)
    stream = ct.Presentations(x[order][:, None], y[order][:, None], duration=1.0)
    seeds = range(config.seeds)
    result = ct.simulate_ensemble(
        [
            simulator(config, parameters(2), config.eta)
            if analog_tau is None
            else simulator(config, parameters(2), config.eta, analog_tau, analog=True)
        ]
        * config.seeds,
        [network(2, s, 0.0, 1.0, subtract_bias=True) for s in seeds],
        stream,
        keys=[jax.random.key(1000 + s) for s in seeds],
        chunk=min(config.xor_steps, 20_000),
        progress=progress,
    )
    accuracy = np.asarray(result.results.accuracy).reshape(config.seeds, epochs, 4).mean(-1)
    loss = 2 * np.asarray(result.results.loss).reshape(config.seeds, epochs, 4).mean(-1)
    return {
        "parameters": parameters(2),
        "tau_theta": 1 if analog_tau is None else analog_tau,
        "analog": analog_tau is not None,
        "t_sol": [first_solved(a, config.threshold, 4.0) for a in accuracy],
        "final_cost": loss[:, -max(1, epochs // 100) :].mean(axis=1).tolist(),
        "cost_curve": curve(loss),
    }


def run_parity(config: MGDConfig, bits: int, tau: int, progress: bool) -> dict[str, Any]:
    x, y = patterns(bits)
    updates = config.parity_steps // tau
    stream = ct.Presentations(
        jnp.broadcast_to(x, (updates, *x.shape)), jnp.broadcast_to(y, (updates, *y.shape)),
        duration=float(tau),
    )  # fmt: skip
    seeds = range(config.seeds)
    result = ct.simulate_ensemble(
        [simulator(config, parameters(bits), config.parity_eta, tau)] * config.seeds,
        [network(bits, 100 * bits + s, -0.5, 0.5, subtract_bias=False) for s in seeds],
        stream,
        keys=[jax.random.key(10_000 * bits + 1000 + s) for s in seeds],
        chunk=min(updates, max(1, 20_000 // tau)),
        progress=progress,
    )
    accuracy = np.asarray(result.results.accuracy)
    loss = 2 * np.asarray(result.results.loss)
    return {
        "bits": bits,
        "tau_theta": tau,
        "parameters": parameters(bits),
        "t_sol": [first_solved(a, config.threshold, float(tau)) for a in accuracy],
        "final_cost": loss[:, -max(1, updates // 100) :].mean(axis=1).tolist(),
        "cost_curve": curve(loss, every=float(tau)),
    }


def curve(loss: np.ndarray, every: float = 4.0, points: int = 100) -> dict[str, list]:
    """The median and quartiles over seeds of the cost, averaged in ``points`` windows."""
    n = loss.shape[1] // points * points or loss.shape[1]
    windows = loss[:, :n].reshape(loss.shape[0], -1, n // min(points, n)).mean(-1)
    t = (np.arange(windows.shape[1]) + 1) * every * (n // windows.shape[1])
    q = np.quantile(windows, [0.25, 0.5, 0.75], axis=0)
    return {"t": t.tolist(), "q25": q[0].tolist(), "median": q[1].tolist(), "q75": q[2].tolist()}


def cells(config: MGDConfig) -> list[str]:
    return (
        ["xor"]
        + [f"xor-analog-tau{t}" for t in config.analog_taus]
        + [f"parity{b}-tau{t}" for b in config.parity_bits for t in config.parity_taus]
    )


def run(
    config: MGDConfig, out: str | Path, *, origin: dict | None = None, progress: bool = True
) -> dict[str, Any]:
    """Run every cell not already finished in ``out`` (one of another configuration there is
    refused before any work), saving ``mgd.json`` after each; then the summary and figure."""
    out = Path(out)
    origin = provenance() if origin is None else origin
    result = resumed(out, config) or {
        "config": dataclasses.asdict(config),
        "cells": {},
        "wall_s": {},
        "provenance": origin,
    }
    todo = [c for c in cells(config) if c not in result["cells"]]
    if not todo:
        result["redrawn"] = origin
    for name in tqdm(todo, desc="benchmarks", unit="cell", disable=not progress):
        start = time.perf_counter()
        if name == "xor":
            cell = run_xor(config, progress)
        elif name.startswith("xor-analog-tau"):
            cell = run_xor(config, progress, int(name.removeprefix("xor-analog-tau")))
        else:
            bits, tau = (int(v) for v in name.removeprefix("parity").split("-tau"))
            cell = run_parity(config, bits, tau, progress)
        result["cells"][name] = cell
        result["wall_s"][name] = time.perf_counter() - start
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "mgd.json", json.dumps(result, indent=1) + "\n")
    return write_outputs(result, out)


def resumed(out: Path, config: MGDConfig) -> dict | None:
    """The (possibly unfinished) run of ``config`` in ``out``; another configuration's is
    refused."""
    return saved_run(out / "mgd.json", config)


def stats(t_sol: list) -> dict[str, Any]:
    """Solved fraction and the quartiles of t_sol over the solved seeds."""
    solved = np.array([t for t in t_sol if t is not None], float)
    q = np.quantile(solved, [0.25, 0.5, 0.75]).tolist() if solved.size else [None] * 3
    return {"solved": int(solved.size), "runs": len(t_sol), "q25": q[0], "median": q[1],
            "q75": q[2]}  # fmt: skip


def write_outputs(result: dict, out: Path) -> dict[str, Any]:
    for cell in result["cells"].values():
        cell["stats"] = stats(cell["t_sol"])
    result["explanation"] = explain(result)
    figure = plot(result, out / "mgd.png")
    atomic_write_text(out / "mgd.json", json.dumps(result, indent=1) + "\n")
    atomic_write_text(out / "summary.md", summary_markdown(result))
    return {**result, "figures": [figure], "summary": out / "summary.md"}


def _fmt(v) -> str:
    return "–" if v is None else f"{v:,.0f}"


def parity_cells(result: dict) -> list[dict]:
    return [c for name, c in result["cells"].items() if name.startswith("parity")]


def analog_cells(result: dict) -> list[dict]:
    cells = [c for name, c in result["cells"].items() if name.startswith("xor-analog")]
    return sorted(cells, key=lambda c: c["tau_theta"])


def explain(result: dict) -> str:
    xor = result["cells"]["xor"]["stats"]
    parity = parity_cells(result)
    lines = [
        f"XOR with MGD's settings was solved in {xor['solved']} of {xor['runs']} seeds within "
        f"{result['config']['xor_steps']:,} steps (median t_sol {_fmt(xor['median'])} steps)."
    ]
    analog = analog_cells(result)
    if analog:
        lines.append(
            "In the analog mode (cost through a high-pass of τ_hp = "
            f"{result['config']['tau_hp']:g} steps that holds each sample switch, gradient "
            "low-passed with τ_θ, weights moving every step) at τ_θ = "
            + ", ".join(str(c["tau_theta"]) for c in analog)
            + " steps: solved in "
            + ", ".join(f"{c['stats']['solved']}/{c['stats']['runs']}" for c in analog)
            + " seeds, median t_sol "
            + ", ".join(_fmt(c["stats"]["median"]) for c in analog)
            + " steps."
        )
    for bits in result["config"]["parity_bits"]:
        row = [c for c in parity if c["bits"] == bits]
        if not row:
            continue
        row = sorted(row, key=lambda c: c["tau_theta"])
        medians = ", ".join(_fmt(c["stats"]["median"]) for c in row)
        lines.append(
            f"{bits}-bit parity (K = {row[0]['parameters']}) at τ_θ = "
            + ", ".join(str(c["tau_theta"]) for c in row)
            + " steps: solved in "
            + ", ".join(f"{c['stats']['solved']}/{c['stats']['runs']}" for c in row)
            + f" seeds, median t_sol {medians} steps."
        )
    lines.append(
        "The learning rate is per step, so every τ_θ moves the weights at the same mean rate: a "
        "longer τ_θ averages more chips into each update (less crosstalk between the "
        "parameters' codes) but takes proportionally larger, rarer steps; t_sol grows with the "
        "number of parameters K, whose codes all share one cost."
    )
    return " ".join(lines)


def plot(result: dict, path: Path) -> Path:
    config = result["config"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    xor = result["cells"]["xor"]
    c = xor["cost_curve"]
    axes[0].plot(c["t"], c["median"], color="tab:blue", label="discrete mode: median")
    axes[0].fill_between(c["t"], c["q25"], c["q75"], color="tab:blue", alpha=0.25, label="IQR")
    shades = plt.cm.autumn(np.linspace(0, 0.7, max(1, len(analog_cells(result)))))
    for shade, cell in zip(shades, analog_cells(result)):
        a = cell["cost_curve"]
        axes[0].plot(a["t"], a["median"], color=shade,
                     label=f"analog, τ_θ = {cell['tau_theta']}: median")  # fmt: skip
    axes[0].set(xscale="log", yscale="log", xlabel="steps", ylabel="MSE (MGD's)",
                title=f"XOR [2, 2, 1], {config['seeds']} seeds")  # fmt: skip
    axes[0].legend(fontsize="small")
    parity = parity_cells(result)
    taus = config["parity_taus"]
    limits = (min(taus) / 1.5, max(taus) * 1.5)
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(config["parity_bits"])))
    for color, bits in zip(colors, config["parity_bits"]):
        row = sorted((c for c in parity if c["bits"] == bits), key=lambda c: c["tau_theta"])
        if not row:
            continue
        label = f"{bits}-bit (K = {row[0]['parameters']})"
        for i, cell in enumerate(row):
            solved = [t for t in cell["t_sol"] if t is not None]
            jitter = 1 + 0.08 * (np.arange(len(solved)) / max(1, len(solved)) - 0.5)
            axes[1].scatter(np.full(len(solved), cell["tau_theta"]) * jitter, solved, s=10,
                            color=color, alpha=0.6, label=label if i == 0 else None)  # fmt: skip
        med = [c["stats"]["median"] for c in row]
        axes[1].plot([c["tau_theta"] for c in row], [np.nan if m is None else m for m in med],
                     color=color)  # fmt: skip
        axes[2].plot([c["tau_theta"] for c in row],
                     [c["stats"]["solved"] / c["stats"]["runs"] for c in row], "o-",
                     color=color, label=label)  # fmt: skip
    solved_any = any(t is not None for c in parity for t in c["t_sol"])
    axes[1].set(xscale="log", yscale="log" if solved_any else "linear", xlabel="τ_θ (steps)",
                ylabel="time to solution (steps)", xticks=taus, xlim=limits,
                title="n-bit parity: t_sol per seed (line: median)")  # fmt: skip
    axes[1].set_xticklabels([str(t) for t in taus])
    axes[1].legend(fontsize="small")
    axes[2].set(xscale="log", xlabel="τ_θ (steps)", ylabel="fraction solved", ylim=(-0.05, 1.05),
                title=f"solved within {config['parity_steps']:,} steps", xticks=taus,
                xlim=limits)  # fmt: skip
    axes[2].set_xticklabels([str(t) for t in taus])
    axes[2].legend(fontsize="small")
    fig.suptitle("Multiplexed gradient descent (CDMA weight perturbation) as a ctlearn simulator")
    return save_figure(fig, path)


def summary_markdown(result: dict) -> str:
    config = result["config"]
    xor = result["cells"]["xor"]
    lines = [
        "# MGD's benchmarks: time to solution",
        "",
        f"CDMA weight perturbation (norm {config['norm']:g}), η = {config['eta']:g} (XOR) and "
        f"{config['parity_eta']:g} (parity), discrete updates every τ_θ (XOR analog: the cost "
        f"through a high-pass of τ_hp = {config['tau_hp']:g} steps holding each sample switch, "
        "the gradient low-passed with τ_θ, the weights moving every step); chips of one step, "
        f"{config['steps_per_chip']} solver steps each; "
        f"{config['seeds']} seeds per cell; solved when the accuracy exceeds "
        f"{config['threshold']:g}.",
        "",
        "| benchmark | K | τ_θ (steps) | solved | t_sol quartiles (steps) | final MSE (median) |",
        "|---|---:|---:|---:|---:|---:|",
    ]

    def row(name, cell, tau):
        s = cell["stats"]
        q = f"{_fmt(s['q25'])} / {_fmt(s['median'])} / {_fmt(s['q75'])}"
        final = float(np.median(cell["final_cost"]))
        return (f"| {name} | {cell['parameters']} | {tau} | {s['solved']}/{s['runs']} | {q} | "
                f"{final:.3g} |")  # fmt: skip

    lines.append(row("XOR", xor, 1))
    for cell in analog_cells(result):
        lines.append(row("XOR, analog mode", cell, cell["tau_theta"]))
    for cell in sorted(parity_cells(result), key=lambda c: (c["bits"], c["tau_theta"])):
        lines.append(row(f"{cell['bits']}-bit parity", cell, cell["tau_theta"]))
    wall = sum(result["wall_s"].values())
    lines += [
        "",
        "## In plain words",
        "",
        result["explanation"],
        "",
        f"Wall time: {wall:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> dict[str, Any]:
    return seeded_main(
        argv, __doc__, __spec__.name, full=MGDConfig(), quick=QUICK, run=run,
        seeds_help="seeds per benchmark",
    )  # fmt: skip


if __name__ == "__main__":
    run_main(main)
