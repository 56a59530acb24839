"""How good is a multiplexed perturbation's gradient estimate after a time T? Measured against
first-order theory, for every multiplexing family.

    python -m sims.multiplexing [--quick] [--out DIR] [--seeds S]

One batch is held and the weights are frozen (``Simulator(freeze=True)``): every weight and bias
of a small softplus MLP wobbles by its own perturbation (continuous FG-W, so the P perturbed units
are the P parameters, as in MGD) and the rule's integrated weight change Δw(T) is compared with
the exact gradient: cos(Δw(T), −∇L) as T grows, for time multiplexing (one parameter at a time),
Walsh codes, random ±1 codes and sinusoids with three frequency allocations. Beside each curve:

* the closed-form laws of ``ctlearn.dynamics`` (random codes 1/√(1 + (P − 1)/n) over n chips;
  time multiplexing √(n/P) up to one cycle, then exact; Walsh codes exact after one period;
  sinusoids as random codes of n_eff = 2·Δf·T chips (independent) or Δf·T (stratified));
* the first-order prediction of each drawn code or allocation (Walsh rows read from
  ``scipy.linalg.hadamard``, time slots, the drawn frequencies with phases averaged out),
  computed in NumPy, independently of the simulator.

The full run uses the first 20 training examples of MNIST-1D and a 40-8-10 MLP (418 parameters);
``--quick`` a 3-4-2 MLP (26 parameters) on **synthetic** Gaussian data with random labels.
Writes ``multiplexing.json``, ``summary.md`` and ``multiplexing.png`` to ``--out``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from tqdm.auto import tqdm

import ctlearn.dynamics as ct
from ctlearn._usererror import run_main
from ctlearn.data import load_dataset
from ctlearn.files import atomic_write_text
from ctlearn.losses import get_loss
from ctlearn.plotting import save_figure
from ctlearn.provenance import provenance
from models.mlp import mlp

from ._report import saved_run, seeded_main

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SCHEMES = ("time", "walsh", "random", "stratified", "independent", "grid")
LABELS = {
    "time": "time multiplexing",
    "walsh": "Walsh codes",
    "random": "random ±1 codes",
    "stratified": "sinusoids, stratified",
    "independent": "sinusoids, independent",
    "grid": "sinusoids, shuffled grid",
}
COLORS = dict(
    zip(SCHEMES, ("tab:blue", "tab:green", "tab:red", "tab:purple", "tab:orange", "tab:brown"))
)
# Agreement of the draws' mean measured cosine with their mean prediction, at every recorded T
# from MIN_CHIPS·τ on: deterministic codes are exact to first order (only the solver and O(σ²)
# remain), so they get TOLERANCE["exact"]; random draws get TOLERANCE["statistical"] (the
# ratio-of-expectations approximation, O(1/P)) plus SIGMAS standard errors of the mean.
TOLERANCE = {"exact": 0.01, "statistical": 0.02}
SIGMAS = 4.0
MIN_CHIPS = 2


@dataclasses.dataclass(frozen=True)
class MultiplexConfig:
    """``widths`` of the MLP on ``batch`` examples of ``dataset`` (``"synthetic"``: Gaussian
    inputs of ``features`` values, random labels); perturbation amplitude ``sigma``, chip (or
    sinusoid) time scale ``tau``, fixed step ``tau/steps_per_tau``, a window of ``chips``·τ
    recorded at ``times`` points, ``seeds`` draws of every process."""

    dataset: str = "mnist1d"
    features: int = 40
    classes: int = 10
    widths: tuple[int, ...] = (8,)
    batch: int = 20
    sigma: float = 1e-3
    tau: float = 1.0
    steps_per_tau: int = 8
    chips: int = 512
    times: int = 128
    seeds: int = 8
    components: int = 4
    band: tuple[float, float] = (0.5, 2.0)
    schemes: tuple[str, ...] = SCHEMES
    seed: int = 0

    def __post_init__(self):
        if self.dataset not in ("mnist1d", "synthetic"):
            raise ValueError(f"dataset must be 'mnist1d' or 'synthetic', got {self.dataset!r}")
        for name in ("features", "classes", "batch", "chips", "times", "seeds", "components"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {name}={value!r}")
        if self.steps_per_tau < 4:
            raise ValueError(
                f"steps_per_tau must be >= 4 (a chip's rate is sampled too coarsely below), "
                f"got {self.steps_per_tau}"
            )
        unknown = [s for s in self.schemes if s not in SCHEMES]
        if unknown or not self.schemes:
            raise ValueError(f"unknown schemes {unknown}; valid: {', '.join(SCHEMES)}")
        if not (self.sigma > 0 and self.tau > 0):
            raise ValueError(f"sigma and tau must be > 0, got {self.sigma}, {self.tau}")

    @property
    def duration(self) -> float:
        return self.chips * self.tau

    def process(self, scheme: str) -> ct.AbstractPerturbation:
        if scheme == "time":
            return ct.TimeMultiplexed(self.sigma, self.tau)
        if scheme == "walsh":
            return ct.WalshCodes(self.sigma, self.tau)
        if scheme == "random":
            return ct.RandomCodes(self.sigma, self.tau)
        return ct.Sinusoids(
            self.sigma, self.tau, components=self.components, band=self.band, allocation=scheme
        )


QUICK = MultiplexConfig(
    dataset="synthetic", features=3, classes=2, widths=(4,), batch=8, chips=32, times=32, seeds=32
)


def held_batch(config: MultiplexConfig):
    """The batch every window is measured on: ``(x [1, batch, features], y [1, batch])``."""
    if config.dataset == "synthetic":
        key_x, key_y = jax.random.split(jax.random.key(config.seed + 1))
        x = jax.random.normal(key_x, (config.batch, config.features))
        y = jax.random.randint(key_y, (config.batch,), 0, config.classes)
    else:
        data = load_dataset("mnist1d")
        x, y = data.train.x[: config.batch], data.train.y[: config.batch]
    return jnp.asarray(x)[None], jnp.asarray(y)[None]


def flat_layers(tree) -> jax.Array:
    """The layers' trainable arrays as one vector, in the order of the perturbation's points."""
    return jnp.concatenate(
        [a.ravel() for a in jax.tree.leaves(eqx.filter(tree.layers, eqx.is_inexact_array))]
    )


def record_delta(state, signals) -> jax.Array:
    """What is recorded in the window: the rule's weight change so far, flattened. (A module-level
    function, so every draw reuses one compiled solve.)"""
    return flat_layers(state.delta)


def predictions(config: MultiplexConfig, scheme: str, state, g: np.ndarray, ts: np.ndarray):
    """The first-order prediction of this draw at every T in ``ts`` (``None`` for random codes,
    whose law is an expectation over draws), and the closed-form law."""
    units = g.size
    chips = ts / config.tau
    draw = None
    if scheme in ("time", "walsh"):
        labels = np.concatenate([np.asarray(u).ravel() for u in state.units]).astype(np.int64)
        signs_of = ct.slot_signs if scheme == "time" else ct.walsh_signs
        signs = signs_of(labels, math.ceil(chips[-1] - 1e-9))
        draw = np.array(
            [
                ct.first_order_cosine(signs[:, : len(w)], w, g)
                for w in map(lambda t: ct.chip_weights(t, config.tau), ts)
            ]
        )
    elif scheme != "random":
        omega = np.concatenate(
            [np.asarray(o).reshape(config.components, -1) for o in state.omega], axis=1
        )
        draw = np.array([ct.sinusoid_cosine(omega, g, t) for t in ts])
    if scheme == "time":
        law = [ct.time_multiplexed_cosine(units, n) for n in chips]
    elif scheme == "walsh":
        order = ct.walsh_order(units)
        # The law holds where the window is a power of two chips long (see walsh_cosine).
        law = [
            ct.walsh_cosine(units, round(n), order)
            if abs(n - round(n)) < 1e-6 and round(n) >= 1 and order % round(n) == 0
            else math.nan
            for n in chips
        ]
    elif scheme in ("random",):
        law = [ct.code_cosine(units, n) for n in chips]
    elif scheme in ("stratified", "independent"):
        law = [
            ct.code_cosine(units, ct.bandwidth_chips(config.band, config.tau, t, scheme))
            for t in ts
        ]
    else:
        law = [math.nan] * len(ts)
    return draw, np.asarray(law)


def measure_scheme(
    config: MultiplexConfig, scheme: str, model, stream, g: np.ndarray, bar: tqdm | None = None
) -> dict:
    """cos(Δw(T), −∇L) at the recorded T for every seed, with the predictions (``bar`` counts
    the solves)."""
    sim = ct.Simulator(
        ct.FGWRule(lr=1.0),
        config.process(scheme),
        dt0=config.tau / config.steps_per_tau,
        freeze=True,
    )
    measured, drawn, law = [], [], None
    for s in range(config.seeds):
        key = jax.random.fold_in(jax.random.key(config.seed), s)
        ts, deltas = ct.record_presentation(
            sim, model, stream, key=key, times=config.times + 1, record=record_delta
        )
        ts, deltas = np.asarray(ts)[1:], np.asarray(deltas, np.float64)[1:]
        measured.append(deltas @ -g / (np.linalg.norm(deltas, axis=1) * np.linalg.norm(g)))
        _, state = ct.prepare(sim, model, stream, key=key)
        draw, law = predictions(config, scheme, state.perturbation, g, ts)
        if draw is not None:
            drawn.append(draw)
        if bar is not None:
            bar.update()
    measured = np.asarray(measured)
    mean = measured.mean(axis=0)
    reference = np.mean(drawn, axis=0) if drawn else law
    kind = "exact" if scheme in ("time", "walsh") else "statistical"
    window = ts >= MIN_CHIPS * config.tau
    error = measured.std(axis=0, ddof=1) / math.sqrt(config.seeds) if config.seeds > 1 else 0.0
    allowed = TOLERANCE[kind] + (SIGMAS * error if kind == "statistical" else 0.0)
    excess = (np.abs(mean - reference) - allowed)[window]
    worst = int(np.argmax(excess))
    deviation = float(np.abs(mean - reference)[window][worst])
    return {
        "scheme": scheme,
        "T": ts.tolist(),
        "measured_mean": mean.tolist(),
        "measured_std": measured.std(axis=0).tolist(),
        "prediction": reference.tolist(),
        "prediction_kind": "per draw" if drawn else "law",
        "law": [None if math.isnan(v) else v for v in law],
        "tolerance_kind": kind,
        "max_deviation": float(np.max(np.abs(mean - reference)[window])),
        "worst_deviation": deviation,
        "worst_allowed": float(np.broadcast_to(allowed, mean.shape)[window][worst]),
        "agrees": bool(np.all(excess <= 0)),
        "final": float(mean[-1]),
    }


def run(
    config: MultiplexConfig, out: str | Path, *, origin: dict | None = None, progress: bool = True
) -> dict[str, Any]:
    """Measure every scheme and write the JSON, summary and figure to ``out``; ``origin``: the
    provenance recorded (this process's when ``None``); ``progress``: a bar over the solves.
    A folder that holds a finished run of the same configuration is only redrawn (its
    measurements and their provenance kept, this process's recorded as ``redrawn``); one that
    holds another configuration is refused before any work."""
    out = Path(out)
    origin = provenance() if origin is None else origin
    previous = finished(out, config)
    if previous is not None:
        return write_outputs({**previous, "redrawn": origin}, out)
    start = time.perf_counter()
    x, y = held_batch(config)
    model = mlp(
        (x.shape[-1],),
        config.classes,
        config.widths,
        activation="softplus",
        local_heads=False,
        key=jax.random.key(config.seed),
    )
    stream = ct.Presentations(x, y, duration=config.duration)
    loss = get_loss("cross_entropy")
    g = eqx.filter_grad(lambda m: jnp.mean(loss(m(x[0]).logits, y[0])))(model)
    g = np.asarray(flat_layers(g), np.float64)
    total = len(config.schemes) * config.seeds
    with tqdm(total=total, desc="windows", unit="solve", disable=not progress) as bar:
        rows = [measure_scheme(config, s, model, stream, g, bar) for s in config.schemes]
    wall_s = time.perf_counter() - start
    result = {
        "config": dataclasses.asdict(config),
        "units": int(g.size),
        "walsh_order": ct.walsh_order(g.size),
        "grid_period": ct.grid_period(config.band, config.tau, config.components * g.size),
        "schemes": rows,
        "wall_s": wall_s,
        "provenance": origin,
    }
    return write_outputs(result, out)


def finished(out: Path, config: MultiplexConfig) -> dict | None:
    """The finished run of ``config`` in ``out``, ``None`` where there is none; a run of another
    configuration there is refused."""
    return saved_run(out / "multiplexing.json", config)


def write_outputs(result: dict, out: Path) -> dict[str, Any]:
    """The explanation, figure, JSON and summary of ``result``, written to ``out``."""
    result["explanation"] = explain(result)
    figure = plot(result, out / "multiplexing.png")
    atomic_write_text(out / "multiplexing.json", json.dumps(result, indent=1) + "\n")
    atomic_write_text(out / "summary.md", summary_markdown(result))
    return {**result, "figures": [figure], "summary": out / "summary.md"}


def at(row: dict, chips: float, tau: float) -> int:
    """The index of the recorded T nearest ``chips``·τ."""
    return int(np.argmin(np.abs(np.asarray(row["T"]) - chips * tau)))


def explain(result: dict) -> str:
    """The plain-language reading of the figure, with the measured numbers."""
    config, units, order = result["config"], result["units"], result["walsh_order"]
    rows = {row["scheme"]: row for row in result["schemes"]}
    tau, end = config["tau"], config["chips"]
    parts = [
        f"Every one of the P = {units} parameters wobbles at once, and the loss's rate of change "
        "mixes all their effects: to credit one parameter, the others' wobbles are noise unless "
        "the codes keep them apart."
    ]
    if "time" in rows and units <= end:
        r = rows["time"]
        parts.append(
            f"Time multiplexing keeps them apart trivially, one parameter per chip: after one "
            f"cycle of P chips its estimate points along the gradient (cos "
            f"{r['measured_mean'][at(r, units, tau)]:.3f}), but before that it knows only the "
            "parameters it has visited."
        )
    if "walsh" in rows and order <= end:
        r = rows["walsh"]
        i = at(r, order, tau)
        line = (
            f"Walsh codes perturb every parameter all the time and still cancel the crosstalk "
            f"exactly over their period of N = {order} chips (cos {r['measured_mean'][i]:.3f})"
        )
        if "random" in rows:
            q = rows["random"]
            line += (
                f", where random ±1 codes of the same length reach only "
                f"{q['measured_mean'][at(q, order, tau)]:.3f} (law 1/√(1 + (P − 1)/n): "
                f"{ct.code_cosine(units, order):.3f}): random crosstalk shrinks only as 1/√n"
            )
        parts.append(line + ".")
    sines = [s for s in ("independent", "stratified", "grid") if s in rows]
    if sines:
        cells = ", ".join(
            f"{LABELS[s].split(', ')[1]} {rows[s]['measured_mean'][-1]:.3f}" for s in sines
        )
        line = (
            f"Sinusoids behave like random codes of n_eff = 2·Δf·T chips when every frequency is "
            f"drawn independently over the band; at T = {end}τ they reach: {cells}."
        )
        if "stratified" in rows:
            line += (
                " The stratified allocation puts the k-th components of all units in the same "
                "1/(2K) of the band, which halves n_eff."
            )
        if "grid" in rows:
            line += (
                f" A shuffled linear grid makes all frequencies distinct, so its crosstalk stops "
                f"growing and vanishes after one beat of the grid ({result['grid_period']:.0f}·τ)."
            )
        parts.append(line)
    agree = [LABELS[r["scheme"]] for r in result["schemes"] if r["agrees"]]
    disagree = [LABELS[r["scheme"]] for r in result["schemes"] if not r["agrees"]]
    parts.append(
        "The first-order theory predicts every measured curve within its tolerance."
        if not disagree
        else f"Within tolerance of the theory: {', '.join(agree) or 'none'}; outside it: "
        f"{', '.join(disagree)}."
    )
    return " ".join(parts)


def plot(result: dict, path: Path) -> Path:
    config, units = result["config"], result["units"]
    fig, axs = plt.subplots(1, 2, figsize=(13, 4.8), constrained_layout=True, sharey=True)
    for row in result["schemes"]:
        ax = axs[0] if row["scheme"] in ("time", "walsh", "random") else axs[1]
        t = np.asarray(row["T"]) / config["tau"]
        mean, std = np.asarray(row["measured_mean"]), np.asarray(row["measured_std"])
        color = COLORS[row["scheme"]]
        ax.plot(t, mean, "-", color=color, label=LABELS[row["scheme"]])
        ax.fill_between(t, mean - std, mean + std, color=color, alpha=0.15)
        if row["prediction_kind"] == "per draw":
            ax.plot(t, row["prediction"], ":", color=color, lw=2)
        law = np.asarray([np.nan if v is None else v for v in row["law"]])
        style = "o" if row["scheme"] == "walsh" else "--"  # Walsh's law: powers of two only
        ax.plot(t, law, style, color=color, alpha=0.8, ms=5, mfc="none")
    for ax, title in zip(
        axs,
        (
            "chip codes (τ = chip duration)",
            f"sinusoids ({config['components']} per unit, band "
            f"{config['band'][0]:g}–{config['band'][1]:g} cycles per τ)",
        ),
    ):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("window T / τ")
        ax.set_title(title, fontsize="medium")
        ax.grid(alpha=0.3, which="both")
        ax.axvline(units, color="k", lw=0.6, alpha=0.4)
        ax.plot(
            [],
            [],
            "k--",
            alpha=0.8,
            label="closed-form law (Walsh: o, at 2^k chips)"
            if ax is axs[0]
            else "closed-form law (T ≫ τ)",
        )
        ax.plot([], [], "k:", lw=2, label="first-order prediction of each draw")
        ax.legend(fontsize="small", loc="lower right")
    axs[0].set_ylabel("cos(Δw(T), −∇L)")
    fig.suptitle(
        f"Estimate quality of multiplexed weight perturbation, P = {units} parameters "
        f"({config['dataset']}, batch {config['batch']}, frozen weights; mean ± std over "
        f"{config['seeds']} draws; vertical line: T = P·τ)",
        fontsize="medium",
    )
    return save_figure(fig, path)


def summary_markdown(result: dict) -> str:
    config, units = result["config"], result["units"]
    marks = sorted(
        {units, result["walsh_order"], config["chips"] // 8, config["chips"] // 2, config["chips"]}
    )
    lines = [
        "# Estimate quality of multiplexed perturbations",
        "",
        f"Continuous FG-W with frozen weights on one batch ({config['dataset']}, "
        f"{config['batch']} examples), softplus MLP with hidden widths {config['widths']}: "
        f"P = {units} perturbed parameters, σ = {config['sigma']:g}, τ = {config['tau']:g}, "
        f"dt0 = τ/{config['steps_per_tau']}, {config['seeds']} draws per scheme. "
        f"Walsh order N = {result['walsh_order']}; the shuffled grid is orthogonal after "
        f"{result['grid_period']:.0f}·τ.",
        "",
        "cos(Δw(T), −∇L), mean over draws (prediction in brackets: per draw where the code is "
        "known, else the closed-form law):",
        "",
        "| scheme | "
        + " | ".join(f"T = {m}τ" for m in marks)
        + " | worst deviation (allowed) | agrees |",
        "|---|" + "---:|" * (len(marks) + 2),
    ]
    for row in result["schemes"]:
        cells = []
        for m in marks:
            i = at(row, m, config["tau"])
            cells.append(f"{row['measured_mean'][i]:.3f} ({row['prediction'][i]:.3f})")
        lines.append(
            f"| {LABELS[row['scheme']]} | "
            + " | ".join(cells)
            + f" | {row['worst_deviation']:.3f} ({row['worst_allowed']:.3f}) | "
            + ("yes" if row["agrees"] else "**no**")
            + " |"
        )
    lines += [
        "",
        "## In plain words",
        "",
        result["explanation"],
        "",
        f"Allowed deviation: {TOLERANCE['exact']:g} for time multiplexing and Walsh codes "
        f"(their first-order prediction is exact per draw); {TOLERANCE['statistical']:g} plus "
        f"{SIGMAS:g} standard errors of the mean for random codes and sinusoids, at every "
        f"recorded T >= {MIN_CHIPS}·τ.",
        "",
        f"Wall time: {result['wall_s']:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> dict[str, Any]:
    return seeded_main(
        argv, __doc__, __spec__.name, full=MultiplexConfig(), quick=QUICK, run=run,
        seeds_help="draws of every process",
    )  # fmt: skip


if __name__ == "__main__":
    run_main(main)
