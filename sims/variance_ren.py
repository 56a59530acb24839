"""Variance of forward-gradient estimators against batch size, fan-in and fan-out (Ren et al.).

    python -m sims.variance_ren [--quick] [--out DIR] [--samples T] [--seed S]

Reproduces Table 1 / Figure 8 of "Scaling Forward Gradient with Local Losses" (Appendix 10): a
p-q-1 tanh network (p = 4 inputs, q = 4 hidden units, 1 output) with the mean-squared-error loss.
For each setting, T mini-batches of N examples are drawn (with replacement) from a fixed pool, each
with fresh perturbation noise, and the element-wise variance of the first layer's gradient
estimate (weights and bias) is measured for weight perturbation with shared noise ("wt perturb"),
weight perturbation with independent noise ("ind wt perturb"), activity perturbation with
independent noise ("act perturb"), activity perturbation with shared noise ("shared act
perturb") and backprop ("BP"). Only the first layer is perturbed. The theory is Table 1 with V
and S measured from the pool's per-example exact gradients: (M+2)/N·V + (M+1)·S (shared) or
(M+2)/N·V + (M+1)/N·S (independent), M = (p+1)·q perturbed weights (the bias counts as one more
input) for weight perturbation and M = q perturbed units for activity perturbation; BP's is V/N.

Data (synthetic: the paper does not specify its data): inputs from a standard Gaussian in p
dimensions, targets from a fixed random p-4-1 tanh teacher network; the student is a random p-q-1
network (weights U(±√(3/fan_in)), biases zero, as ``Dense`` initialises tanh layers). The
networks of a sweep are nested: a larger p adds inputs to the same network and data, a larger q
adds hidden units. Sweeps: N = 1 … 4096 at p = q = 4; p and q = 1 … 256 at N = 4 (the others at
4).

Writes ``summary.md`` (slopes of log-log fits, measured against theory, per setting),
``variance_ren.json`` (every point) and ``variance_ren.png`` to ``--out``; ``main`` returns
``figures``, ``explanation``, ``slopes``, ``points`` and ``config``.
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
from ctlearn.diagnostics import (
    fit_power_law,
)
from ctlearn.files import atomic_write_text
from ctlearn.plotting import save_figure
from ctlearn.provenance import provenance

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ._report import print_report  # noqa: E402
from ._variance import (  # noqa: E402
    COLORS,
    ESTIMATORS,
    TEACHER_WIDTH,
    measure_points,
    relative,
)

AXES = {"N": "batch size N", "p": "fan-in p", "q": "fan-out q"}


@dataclasses.dataclass(frozen=True)
class Config:
    """The sweeps: ``batch_sizes`` at fan-in and fan-out ``base``, ``fan_ins`` and ``fan_outs`` at
    batch size and the other dimension ``base``. ``samples``: draws (mini-batch and noise) per
    point; ``pool``: examples in the fixed dataset the batches are drawn from; ``max_examples``:
    examples per compiled call (bounds memory at large N); ``fast_compile``: compile without
    backend optimisation; ``compile_together``: one compiled function for every point (else one
    per axis). Both save compilation time, which dominates the quick mode."""

    batch_sizes: tuple[int, ...] = (1, 4, 16, 64, 256, 1024, 4096)
    fan_ins: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
    fan_outs: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
    base: int = 4
    samples: int = 5000
    pool: int = 4096
    estimators: tuple[str, ...] = tuple(ESTIMATORS)
    max_examples: int = 2**20
    fast_compile: bool = False
    compile_together: bool = False
    seed: int = 0

    def __post_init__(self):
        for name in ("batch_sizes", "fan_ins", "fan_outs"):
            values = getattr(self, name)
            if len(values) < 2 or any(int(v) != v or v < 1 for v in values):
                raise ValueError(f"{name} needs at least two positive ints, got {values!r}")
        for name in ("base", "samples", "pool", "max_examples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.samples < 2:  # one draw has no variance: the fits would fail after the work
            raise ValueError(
                f"samples must be >= 2 (a variance needs two draws), got {self.samples}"
            )
        unknown = [e for e in self.estimators if e not in ESTIMATORS]
        if unknown or not self.estimators:
            raise ValueError(f"estimators must be among {list(ESTIMATORS)}, got {unknown}")

    def values(self, axis: str) -> tuple[int, ...]:
        return {"N": self.batch_sizes, "p": self.fan_ins, "q": self.fan_outs}[axis]


QUICK = Config(
    batch_sizes=(1, 4, 64),
    fan_ins=(4, 32),
    fan_outs=(4, 32),
    samples=1000,
    pool=256,
    fast_compile=True,
    compile_together=True,
)


def setting(axis: str, value: int, base: int) -> tuple[int, int, int]:
    """``(N, p, q)`` of the point ``value`` on ``axis`` ("N", "p", "q"), the others ``base``."""
    point = {"N": base, "p": base, "q": base, axis: value}
    return point["N"], point["p"], point["q"]


def sweep(config: Config, axes=("N", "p", "q"), *, progress: bool = True) -> list[dict]:
    """Every point of the sweeps along ``axes``, each measured once (the base point is shared):
    one compiled function for all of them with ``config.compile_together``, else one per axis."""
    groups: list[list[tuple[int, int, int]]] = []
    seen: set[tuple[int, int, int]] = set()
    for axis in axes:
        new = [setting(axis, v, config.base) for v in config.values(axis)]
        new = [s for s in dict.fromkeys(new) if s not in seen]
        seen.update(new)
        if new:
            if config.compile_together and groups:
                groups[0] += new
            else:
                groups.append(new)
    points = []
    for group in groups:
        start = time.perf_counter()
        points += measure_points(
            group,
            config.estimators,
            samples=config.samples,
            pool=config.pool,
            seed=config.seed,
            max_examples=config.max_examples,
            fast_compile=config.fast_compile,
        )
        if progress:
            where = ", ".join(f"N={n} p={p} q={q}" for n, p, q in group)
            print(f"measured {where}: {time.perf_counter() - start:.1f} s", flush=True)
    return points


def panel(points: list[dict], axis: str, config: Config) -> list[dict]:
    """The points of the sweep along ``axis``, in the order of its values."""
    by_setting = {(pt["N"], pt["p"], pt["q"]): pt for pt in points}
    return [by_setting[setting(axis, v, config.base)] for v in config.values(axis)]


# Slope settings: (name, axis, relative to V + S?).
SETTINGS = (("N", "N", False), ("p", "p", False), ("q", "q", False))
RELATIVE_SETTINGS = (("p, relative", "p", True), ("q, relative", "q", True))


def fit_slopes(points: list[dict], config: Config, settings=SETTINGS + RELATIVE_SETTINGS):
    """Per setting and estimator: the log-log slope (± standard error) of the measured variance
    (or of the variance relative to V + S) and the slope of Table 1's prediction fitted over the
    same values."""
    rows = []
    for name, axis, rel in settings:
        pts = panel(points, axis, config)
        x = [pt[axis] for pt in pts]

        def y(kind, label, rel=rel, pts=pts):
            return [relative(pt, kind, label) if rel else pt[kind][label] for pt in pts]

        for label in config.estimators:
            slope, stderr, intercept = fit_power_law(x, y("measured", label))
            theory_slope, _, _ = fit_power_law(x, y("predicted", label))
            rows.append(
                {
                    "setting": name,
                    "estimator": label,
                    "slope": slope,
                    "stderr": None if math.isnan(stderr) else stderr,
                    "intercept": intercept,
                    "theory_slope": theory_slope,
                    "range": [min(x), max(x)],
                }
            )
    return rows


def plot(points: list[dict], config: Config, path: Path) -> Path:
    """Top: the measured variance (markers) beside Table 1 (dashed) against N, p and q, log-log.
    Bottom: every point's measurement against its prediction, and the variance relative to
    V + S against p and q (where Table 1 reads ∝ M)."""
    fig, axs = plt.subplots(2, 3, figsize=(15, 9), constrained_layout=True)
    others = {"N": "p = q = {b}", "p": "N = q = {b}", "q": "N = p = {b}"}
    panels = [(axs[0, i], axis, False) for i, axis in enumerate(("N", "p", "q"))]
    panels += [(axs[1, 1], "p", True), (axs[1, 2], "q", True)]
    for ax, axis, rel in panels:
        pts = panel(points, axis, config)
        x = [pt[axis] for pt in pts]
        for label in config.estimators:
            color = COLORS[label]
            for kind, style in (("measured", "o-"), ("predicted", "--")):
                y = [relative(pt, kind, label) if rel else pt[kind][label] for pt in pts]
                ax.plot(
                    x,
                    y,
                    style,
                    color=color,
                    ms=4,
                    alpha=1.0 if kind == "measured" else 0.7,
                    label=label if kind == "measured" else None,
                )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(AXES[axis])
        ax.set_ylabel("variance / (V + S)" if rel else "variance of first-layer estimate")
        what = "relative variance" if rel else "variance"
        where = others[axis].format(b=config.base)
        ax.set_title(f"{what} vs {AXES[axis]} ({where})", fontsize="medium")
        ax.grid(alpha=0.3, which="both")
    axs[0, 0].plot([], [], "k--", alpha=0.7, label="theory (Table 1)")
    axs[0, 0].legend(fontsize="small")
    ax = axs[1, 0]
    for label in config.estimators:
        predicted = [pt["predicted"][label] for pt in points]
        measured = [pt["measured"][label] for pt in points]
        ax.plot(predicted, measured, "o", color=COLORS[label], ms=4, label=label)
    lo = min(min(pt["predicted"].values()) for pt in points)
    hi = max(max(pt["predicted"].values()) for pt in points)
    ax.plot([lo, hi], [lo, hi], "k--", alpha=0.7, label="measured = theory")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Table 1 prediction")
    ax.set_ylabel("measured variance")
    ax.set_title("every point: measurement against theory", fontsize="medium")
    ax.grid(alpha=0.3, which="both")
    fig.suptitle(
        "Ren et al. Table 1 / Fig. 8: p-q-1 tanh net, MSE, synthetic data (Gaussian inputs, "
        f"random teacher); {config.samples} draws per point; solid: measured, dashed: theory",
        fontsize="medium",
    )
    return save_figure(fig, path)


def explain(slopes: list[dict]) -> str:
    """A short plain-language reading of the figure, with the fitted slopes."""
    s = {(r["setting"], r["estimator"]): r for r in slopes}

    def val(setting_, label):
        r = s.get((setting_, label))
        return "n/a" if r is None else f"{r['slope']:+.2f}, theory {r['theory_slope']:+.2f}"

    return " ".join(
        [
            "The figure measures how noisy each estimate of the first layer's gradient is, on a "
            "small tanh network fitted to synthetic data (Gaussian inputs, targets from a random "
            "teacher network), and draws Ren et al.'s Table 1 formula beside each measurement "
            "(dashed); the bottom-left panel puts every measurement against its prediction.",
            "Against batch size, estimators with their own noise per example get quieter as 1/N, "
            f"like backprop (log-log slopes: act perturb {val('N', 'act perturb')}; ind wt "
            f"perturb {val('N', 'ind wt perturb')}; BP {val('N', 'BP')}), while shared noise "
            "levels off: one random direction for the whole batch leaves a floor of (M+1)·S that "
            f"no batch size removes (wt perturb {val('N', 'wt perturb')}).",
            "Against fan-in, weight perturbation gets noisier because it perturbs all (p+1)·q "
            "weights, while activity perturbation perturbs only the q units: relative to the "
            "size of the gradient itself (bottom row) the slopes are wt perturb "
            f"{val('p, relative', 'wt perturb')} and act perturb "
            f"{val('p, relative', 'act perturb')}, the fan-in factor that activity perturbation "
            "saves. Against fan-out, both perturb q times more things "
            f"(relative slopes: wt perturb {val('q, relative', 'wt perturb')}; act perturb "
            f"{val('q, relative', 'act perturb')}), but each first-layer gradient also shrinks "
            "as the network widens (the usual 1/fan-in initialisation of the next layer), so "
            f"the raw variance grows less (wt perturb {val('q', 'wt perturb')}).",
        ]
    )


def _fmt(stderr) -> str:
    return "n/a" if stderr is None else f"{stderr:.3f}"


def summary_markdown(points, slopes, config: Config, explanation: str, wall_s: float) -> str:
    lines = [
        "# Variance of forward-gradient estimators (Ren et al. Table 1 / Figure 8)",
        "",
        "Network: p-q-1 tanh MLP, MSE loss; the first layer (weights and bias) is perturbed and "
        "measured; weights U(±√(3/fan_in)), biases zero; the networks are nested (a larger p adds "
        "inputs to the same network and data, a larger q adds hidden units). Data: **synthetic** "
        "(the paper does not "
        "specify its data): standard Gaussian inputs, targets from a fixed random "
        f"p-{TEACHER_WIDTH}-1 tanh teacher; a pool of "
        f"{config.pool} examples, mini-batches drawn with replacement. {config.samples} draws "
        "(mini-batch and noise) per point. Theory: Table 1 with V and S from the pool's "
        "per-example exact gradients, M = (p+1)·q (weight perturbation, bias included) or q "
        "(activity perturbation); BP: V/N. Estimators: wt perturb = `fg-w` (shared noise), "
        "ind wt perturb = `fg-w:shared=false`, act perturb = `fg-a` (independent noise), shared "
        "act perturb = `fg-a:shared=true`, all with `layers=(0,)`; BP = `bp`.",
        "",
        "## Log-log slopes",
        "",
        "Fitted slope: least squares on log10(value) against log10(variance), ± its standard "
        "error (residual-based; n/a for two points). Theory slope: the same fit applied to Table "
        "1's prediction over the same values (for shared noise the prediction is not a power "
        'law: the slope is its average over the range). "relative": the variance divided by '
        "V + S (the mean squared per-example gradient element), where Table 1 reads ≈ (M+1)/N "
        "for independent noise.",
        "",
        "| setting | range | estimator | fitted slope ± stderr | theory slope | difference |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in slopes:
        lines.append(
            f"| {r['setting']} | {r['range'][0]}–{r['range'][1]} | {r['estimator']} | "
            f"{r['slope']:+.3f} ± {_fmt(r['stderr'])} | {r['theory_slope']:+.3f} | "
            f"{r['slope'] - r['theory_slope']:+.3f} |"
        )
    lines += [
        "",
        "Table 1's scalings at fixed V and S: independent noise ∝ 1/N (slope −1), shared noise "
        "→ (M+1)·S at large N (slope → 0); weight perturbation ∝ M = (p+1)·q, activity "
        "perturbation ∝ q and independent of p. V and S themselves change with p and q (each "
        "setting is a different network), which the theory column includes.",
        "",
        "## Points (measured variance, ratio to theory)",
    ]
    for axis in ("N", "p", "q"):
        pts = panel(points, axis, config)
        lines += [
            "",
            f"Against {AXES[axis]}:",
            "",
            "| " + axis + " | V | S | " + " | ".join(config.estimators) + " |",
            "|---:|---:|---:|" + "---:|" * len(config.estimators),
        ]
        for pt in pts:
            cells = [
                f"{pt['measured'][lab]:.3g} ({pt['measured'][lab] / pt['predicted'][lab]:.2f})"
                for lab in config.estimators
            ]
            lines.append(
                f"| {pt[axis]} | {pt['V']:.3g} | {pt['S']:.3g} | " + " | ".join(cells) + " |"
            )
    lines += ["", "## Reading", "", explanation, "", f"Wall time: {wall_s:.0f} s.", ""]
    return "\n".join(lines)


def run(
    config: Config,
    out: str | Path,
    *,
    progress: bool = True,
    origin: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Measure every point, fit the slopes, write the summary, JSON and figure to ``out``;
    ``origin``: the provenance recorded in the JSON (``ctlearn.provenance`` of this process
    when ``None``)."""
    out = Path(out)
    start = time.perf_counter()
    points = sweep(config, progress=progress)
    slopes = fit_slopes(points, config)
    figure = plot(points, config, out / "variance_ren.png")
    explanation = explain(slopes)
    wall_s = time.perf_counter() - start
    result = {
        "config": dataclasses.asdict(config),
        "data": "synthetic: standard Gaussian inputs, targets from a fixed random "
        f"p-{TEACHER_WIDTH}-1 tanh teacher",
        "points": points,
        "slopes": slopes,
        "explanation": explanation,
        "wall_s": wall_s,
        "provenance": provenance() if origin is None else origin,
    }
    atomic_write_text(out / "variance_ren.json", json.dumps(result, indent=1) + "\n")
    summary = summary_markdown(points, slopes, config, explanation, wall_s)
    atomic_write_text(out / "summary.md", summary)
    return {**result, "figures": [figure], "summary": out / "summary.md"}


def main(argv=None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    prepare_parser(parser)
    parser.add_argument("--quick", action="store_true", help="a small version (CI, a first look)")
    parser.add_argument("--out", default="runs/variance_ren")
    parser.add_argument("--samples", type=int, default=None, help="draws per point")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    config = dataclasses.replace(QUICK if args.quick else Config(), seed=args.seed)
    if args.samples is not None:
        config = dataclasses.replace(config, samples=args.samples)
    origin = provenance(argv, module=__spec__.name)
    result = run(config, args.out, progress=not args.no_progress, origin=origin)
    print_report(result)
    return result


if __name__ == "__main__":
    run_main(main)
