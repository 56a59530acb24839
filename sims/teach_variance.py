"""Teaching demo: why perturbing activities beats perturbing weights by a factor of the fan-in.

    python -m sims.teach_variance [--quick] [--out DIR] [--samples T] [--seed S]

A layer with p inputs and q units (the first layer of a p-q-1 tanh network, MSE loss, synthetic
data: Gaussian inputs, targets from a random teacher) learns from forward gradients. Weight
perturbation ("wt perturb", ``fg-w``) nudges all of the layer's (p+1)·q weights and biases at
random; activity perturbation ("act perturb", ``fg-a``) nudges its q units. Both use independent
noise per example (Ren et al. Table 1, right column), so the comparison is like for like. The
figure shows the variance of the layer's gradient estimate, relative to the size of the gradient
itself (variance ÷ the mean squared per-example gradient, where Table 1 reads ≈ (M+1)/N), as the
layer grows in fan-in (q fixed) and as a square layer (p = q) widens, and the ratio of the two
estimators' variances against the fan-in, beside Table 1's prediction.

Writes ``summary.md``, ``teach_variance.json`` and ``teach_variance.png`` to ``--out`` and prints
a plain-language explanation; ``main`` returns ``figures``, ``explanation``, ``points``, ``slopes``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import matplotlib

from ctlearn._usererror import prepare_parser, run_main
from ctlearn.diagnostics import fit_power_law
from ctlearn.files import atomic_write_text
from ctlearn.plotting import save_figure
from ctlearn.provenance import provenance

from ._report import print_report
from ._variance import COLORS, TEACHER_WIDTH, measure_points, relative

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

WEIGHT, ACTIVITY = "ind wt perturb", "act perturb"
NAMES = {WEIGHT: "weight perturbation", ACTIVITY: "activity perturbation"}


@dataclasses.dataclass(frozen=True)
class TeachConfig:
    """``fan_ins`` at ``fan_out`` units, and square layers of ``widths`` (p = q); mini-batches of
    ``batch_size`` from a pool of ``pool`` examples, ``samples`` draws per point."""

    fan_ins: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128)
    fan_out: int = 16
    widths: tuple[int, ...] = (2, 4, 8, 16, 32, 64)
    batch_size: int = 4
    samples: int = 2000
    pool: int = 2048
    fast_compile: bool = False
    seed: int = 0

    def __post_init__(self):
        for name in ("fan_ins", "widths"):
            values = getattr(self, name)
            if len(values) < 2 or any(int(v) != v or v < 1 for v in values):
                raise ValueError(f"{name} needs at least two positive ints, got {values!r}")
        for name in ("fan_out", "batch_size", "samples", "pool"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.samples < 2:  # one draw has no variance: the fits would fail after the work
            raise ValueError(
                f"samples must be >= 2 (a variance needs two draws), got {self.samples}"
            )

    def settings(self, sweep: str) -> list[tuple[int, int, int]]:
        """``(N, p, q)`` of the points of ``sweep`` ("fan-in" or "width")."""
        if sweep == "fan-in":
            return [(self.batch_size, p, self.fan_out) for p in self.fan_ins]
        return [(self.batch_size, w, w) for w in self.widths]


QUICK = TeachConfig(
    fan_ins=(2, 16), fan_out=8, widths=(2, 8), samples=1000, pool=256, fast_compile=True
)


def ratio(pt: dict, kind: str) -> float:
    """Weight-perturbation variance over activity-perturbation variance at one point."""
    return pt[kind][WEIGHT] / pt[kind][ACTIVITY]


def measure(config: TeachConfig) -> dict[str, list[dict]]:
    """Both estimators at every point of both sweeps (one compiled function)."""
    wanted = list(dict.fromkeys(config.settings("fan-in") + config.settings("width")))
    points = measure_points(
        wanted,
        (WEIGHT, ACTIVITY),
        samples=config.samples,
        pool=config.pool,
        seed=config.seed,
        fast_compile=config.fast_compile,
    )
    by_setting = {(pt["N"], pt["p"], pt["q"]): pt for pt in points}
    return {sweep: [by_setting[s] for s in config.settings(sweep)] for sweep in ("fan-in", "width")}


def fit_slopes(sweeps: dict[str, list[dict]]) -> list[dict]:
    """Log-log slope of each estimator's relative variance against the growing size, measured
    and predicted (fan-in sweep: x = p; width sweep: x = w)."""
    rows = []
    for sweep, pts in sweeps.items():
        x = [pt["p"] for pt in pts]
        for label in (WEIGHT, ACTIVITY):
            slope, stderr, _ = fit_power_law(x, [relative(pt, "measured", label) for pt in pts])
            theory, _, _ = fit_power_law(x, [relative(pt, "predicted", label) for pt in pts])
            rows.append(
                {
                    "sweep": sweep,
                    "estimator": label,
                    "slope": slope,
                    "stderr": None if math.isnan(stderr) else stderr,
                    "theory_slope": theory,
                }
            )
    return rows


def plot(sweeps: dict[str, list[dict]], config: TeachConfig, path: Path) -> Path:
    fig, axs = plt.subplots(1, 3, figsize=(15, 4.6), constrained_layout=True)
    titles = {
        "fan-in": f"a layer gains inputs (q = {config.fan_out} units)",
        "width": "a square layer widens (p = q = width)",
    }
    xlabels = {"fan-in": "fan-in p", "width": "width p = q"}
    for ax, (sweep, pts) in zip(axs[:2], sweeps.items()):
        x = [pt["p"] for pt in pts]
        for label in (WEIGHT, ACTIVITY):
            measured = [relative(pt, "measured", label) for pt in pts]
            predicted = [relative(pt, "predicted", label) for pt in pts]
            ax.plot(x, measured, "o-", color=COLORS[label], ms=4, label=NAMES[label])
            ax.plot(x, predicted, "--", color=COLORS[label], alpha=0.7)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(xlabels[sweep])
        ax.set_ylabel("noise relative to the gradient: variance / (V + S)")
        ax.set_title(titles[sweep], fontsize="medium")
        ax.grid(alpha=0.3, which="both")
    axs[0].plot([], [], "k--", alpha=0.7, label="Table 1")
    axs[0].legend(fontsize="small")
    ax = axs[2]
    for sweep, marker, color in (("fan-in", "o", "tab:red"), ("width", "s", "tab:cyan")):
        pts = sweeps[sweep]
        x = [pt["p"] for pt in pts]
        measured = [ratio(pt, "measured") for pt in pts]
        ax.plot(x, measured, marker, color=color, ms=5, label=f"{sweep} sweep")
        ax.plot(x, [ratio(pt, "predicted") for pt in pts], "--", color=color, alpha=0.7)
    every = sorted({pt["p"] for pts in sweeps.values() for pt in pts})
    ax.plot(every, [p + 1 for p in every], "k:", label="p + 1 (fan-in, bias included)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("fan-in p")
    ax.set_ylabel("variance ratio: weight / activity perturbation")
    ax.set_title("how much noisier weight perturbation is", fontsize="medium")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    fig.suptitle(
        f"Weight vs activity perturbation (independent noise, N = {config.batch_size}; "
        "synthetic Gaussian data, random teacher; solid: measured, dashed: Table 1)",
        fontsize="medium",
    )
    return save_figure(fig, path)


def explain(sweeps: dict[str, list[dict]], slopes: list[dict]) -> str:
    """The plain-language reading of the figure, with the measured numbers."""
    s = {(r["sweep"], r["estimator"]): r["slope"] for r in slopes}
    big = sweeps["fan-in"][-1]
    return " ".join(
        [
            "To learn without backpropagation, a layer can wiggle something at random and watch "
            "whether the loss goes up or down. Weight perturbation wiggles every one of its "
            "(p+1)·q weights at once, so the loss change it sees mixes the effects of all of "
            "them: to credit one weight, every other wiggle is noise. Activity perturbation "
            "wiggles only the q units' inputs; the credit of a weight is then its input times "
            "its unit's credit, which serves all p weights into that unit at once, so only q "
            "wiggles add noise.",
            f"Measured: as the layer gains inputs, weight perturbation's relative noise grows "
            f"with slope {s[('fan-in', WEIGHT)]:+.2f} on log-log axes while activity "
            f"perturbation's stays flat ({s[('fan-in', ACTIVITY)]:+.2f}); as a square layer "
            f"widens, they grow with slopes {s[('width', WEIGHT)]:+.2f} and "
            f"{s[('width', ACTIVITY)]:+.2f} (noise ∝ p·q against ∝ q).",
            f"At fan-in p = {big['p']} weight perturbation is {ratio(big, 'measured'):.1f} times "
            f"noisier (Table 1: {ratio(big, 'predicted'):.1f}, about p + 1 = {big['p'] + 1}): "
            "the same learning signal would need that many times more samples or a batch that "
            "many times larger. The price of activity perturbation is memory: each layer's "
            "inputs must be kept until the loss's response arrives.",
        ]
    )


def summary_markdown(sweeps, slopes, config: TeachConfig, explanation: str, wall_s) -> str:
    lines = [
        "# Weight vs activity perturbation as a layer grows",
        "",
        f"First layer of a p-q-1 tanh network, MSE loss; **synthetic** data (standard Gaussian "
        f"inputs, targets from a fixed random p-{TEACHER_WIDTH}-1 tanh teacher, a pool of "
        f"{config.pool}); independent noise per example, N = {config.batch_size}, "
        f"{config.samples} draws per point. Relative variance: variance ÷ (V + S), the mean "
        "squared per-example gradient element; Table 1: ((M+2)V + (M+1)S) / (N (V + S)), M = "
        "(p+1)·q (weights) or q (activities).",
        "",
        "| sweep | p | q | weight pert. (rel.) | activity pert. (rel.) | ratio | Table 1 ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for sweep, pts in sweeps.items():
        for pt in pts:
            lines.append(
                f"| {sweep} | {pt['p']} | {pt['q']} | {relative(pt, 'measured', WEIGHT):.3g} | "
                f"{relative(pt, 'measured', ACTIVITY):.3g} | {ratio(pt, 'measured'):.2f} | "
                f"{ratio(pt, 'predicted'):.2f} |"
            )
    lines += [
        "",
        "Log-log slopes of the relative variance against the growing size:",
        "",
        "| sweep | estimator | fitted slope ± stderr | theory slope |",
        "|---|---|---:|---:|",
    ]
    for r in slopes:
        err = "n/a" if r["stderr"] is None else f"{r['stderr']:.3f}"
        lines.append(
            f"| {r['sweep']} | {NAMES[r['estimator']]} | {r['slope']:+.3f} ± {err} | "
            f"{r['theory_slope']:+.3f} |"
        )
    lines += ["", "## In plain words", "", explanation, "", f"Wall time: {wall_s:.0f} s.", ""]
    return "\n".join(lines)


def run(
    config: TeachConfig, out: str | Path, *, origin: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Measure, fit, and write the summary, JSON and figure to ``out``; ``origin``: the
    provenance recorded in the JSON (``ctlearn.provenance`` of this process when ``None``)."""
    out = Path(out)
    start = time.perf_counter()
    sweeps = measure(config)
    slopes = fit_slopes(sweeps)
    figure = plot(sweeps, config, out / "teach_variance.png")
    explanation = explain(sweeps, slopes)
    wall_s = time.perf_counter() - start
    result = {
        "config": dataclasses.asdict(config),
        "points": sweeps,
        "slopes": slopes,
        "explanation": explanation,
        "wall_s": wall_s,
        "provenance": provenance() if origin is None else origin,
    }
    atomic_write_text(out / "teach_variance.json", json.dumps(result, indent=1) + "\n")
    atomic_write_text(
        out / "summary.md", summary_markdown(sweeps, slopes, config, explanation, wall_s)
    )
    return {**result, "figures": [figure], "summary": out / "summary.md"}


def main(argv=None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    prepare_parser(parser)
    parser.add_argument("--quick", action="store_true", help="a small version (CI, a first look)")
    parser.add_argument("--out", default="runs/teach_variance")
    parser.add_argument("--samples", type=int, default=None, help="draws per point")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = dataclasses.replace(QUICK if args.quick else TeachConfig(), seed=args.seed)
    if args.samples is not None:
        config = dataclasses.replace(config, samples=args.samples)
    result = run(config, args.out, origin=provenance(argv, module=__spec__.name))
    print_report(result)
    return result


if __name__ == "__main__":
    run_main(main)
