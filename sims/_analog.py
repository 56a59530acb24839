"""What the analog-hardware sims share: the network they study, the Fashion-MNIST preset every
study builds its own from, and the command line of a study."""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ctlearn._usererror import prepare_parser, run_main
from ctlearn.dynamics import Sinusoids
from ctlearn.files import atomic_write_text
from ctlearn.provenance import provenance
from ctlearn.sweep import AnalogBase, SweepSpec, discrete_bp, run_study
from models import mlp

FASHION_BASE: dict[str, Any] = {
    "dataset": "fashion_mnist",
    "widths": [32],
    "batch_size": 50,
    "presentations": 800,
    "duration": 5.0,
    "test_size": 2000,
    "lr": 40.0,
    "solver": "default",
    "chunk": 100,
}
"""The studies' Fashion-MNIST setup (``--preset fashion``): an MLP 784-32-10 learning by
continuous FG-A with the ReLU mask from batches of 50 presented for T = 5 τ_p each, long enough
for the ideal circuit to be trained (its accuracy: ``results/study_*_fashion/summary.md``, the
points without a non-ideality). Chosen from a few measured trials (batches of 20 or 50, T = 10
or 5 τ_p, η = 40 or 80, 300 to 800 presentations) as the cheapest that trained the ideal circuit
past 80 % on 2000 test images: a narrow net has few perturbed units, so little estimator
variance. The solver is the simulator's automatic choice (``solver=None``:
``ctlearn.dynamics.plan``, which falls back to Heun with a one-line notice where its fast path
cannot serve, e.g. with noise or differentiators; its accuracy against Heun:
``results/bench_engine``). That choice has changed between commits: each result names the
commit that made it."""

PERTURBATION_SCALE = 32
"""How many times larger the perturbation's σ_p is in the Fashion-MNIST presets that read the
reward rate through a differentiator (``differentiator_base``), with η that factor squared
smaller."""

RING_DOWN = 3.0
"""How many τ_d after the input transition the blanking window lasts: the switch's ring in the
reward differentiator (a decay e^(−t/τ_d) from the loss's change over the transition) has fallen
to e^−3 of its start."""

STEPS_PER_TAU = 4
"""The fixed step is at most τ_d / STEPS_PER_TAU for the fastest differentiator."""


def differentiator_base(taus: list[float | None]) -> dict[str, Any]:
    """The base settings (on top of ``FASHION_BASE``) of a Fashion-MNIST study whose circuits read
    the reward rate through first-order differentiators with time constants ``taus`` (``None``:
    the exact derivative): Heun at a step that resolves the fastest τ_d, a blanking window that
    covers the slowest one's ring after each input switch (``RING_DOWN``), and a perturbation
    ``PERTURBATION_SCALE`` times larger with η that factor squared smaller.

    Why: a physical reward differentiator sees every change of the loss, not only the
    perturbation's effect. The learning's own change of the loss is fed back through it
    (ṙ → ẇ → L → ṙ), a loop whose gain grows with η·σ_p and with the input's Gram matrix (large
    on Fashion-MNIST's non-negative, correlated pixels); past a gain of about one the loop runs
    away within a presentation, and it does at ``FASHION_BASE``'s η for every finite τ_d
    (``results/study_differentiator_fashion`` at commit ``cded932``). The exact derivative
    (``None``) leaves that loop out (its tangent excludes ẇ). The switch's ring is, likewise,
    large against the perturbation's effect. The rule's mean update per presentation (∝ η·σ_p²)
    and its estimator's relative variance are unchanged by the scaling, while the loop's gain and
    the ring relative to the perturbation's signal shrink ``PERTURBATION_SCALE``-fold."""
    finite = [tau for tau in taus if tau]
    if not finite:
        raise ValueError(f"differentiator_base needs a finite tau_d among taus={taus!r}")
    return {
        "sigma": PERTURBATION_SCALE * AnalogBase.sigma,
        "lr": FASHION_BASE["lr"] / PERTURBATION_SCALE**2,
        "solver": "heun",
        "dt0": min(AnalogBase.dt0, min(finite) / STEPS_PER_TAU),
        "hardware": {"differentiator": {"blank": AnalogBase.transition + RING_DOWN * max(finite)}},
    }


FASHION_QUICK: dict[str, Any] = {
    "base": {"widths": [8], "batch_size": 10, "presentations": 3, "chunk": 3, "test_size": 200}
}
"""What ``--quick`` changes in a Fashion-MNIST preset after the study's own quick settings: a
network and a run of a few seconds (CI reads the local IDX files)."""


def fashion_preset(
    name: str,
    grid: Mapping[str, list],
    *,
    seeds: int = 3,
    ensemble: int,
    base: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A study's Fashion-MNIST spec: ``FASHION_BASE`` with the study's own ``base`` settings
    (its non-idealities, a blanking window) on top, its ``grid`` and ``seeds``; named
    ``<name>_fashion`` (its figures and default output directory carry that name)."""
    merged = copy.deepcopy(FASHION_BASE)
    for key, value in (base or {}).items():
        merged[key] = copy.deepcopy(value)
    return {
        "name": f"{name}_fashion",
        "base": merged,
        "grid": {key: list(values) for key, values in grid.items()},
        "seeds": seeds,
        "ensemble": ensemble,
    }


def mlp_model(base: AnalogBase, input_shape, num_classes: int, key):
    """The studies' network: an MLP of ``base.widths`` without local heads (global FG-A)."""
    return mlp(input_shape, num_classes, base.widths, local_heads=False, key=key)


def _merge(full: dict, quick: dict) -> dict:
    spec = copy.deepcopy(full)
    for key, value in quick.items():
        if key == "base":
            spec["base"] = {**spec.get("base", {}), **value}
        else:
            spec[key] = value
    return spec


def quick_spec(presets: Mapping[str, dict], quick: dict, preset: str) -> dict:
    """The ``--quick`` version of ``presets[preset]``: the study's ``quick`` settings on top,
    and for Fashion-MNIST ``FASHION_QUICK`` on top of those."""
    spec = _merge(presets[preset], quick)
    return _merge(spec, FASHION_QUICK) if preset == "fashion" else spec


def study_main(
    argv,
    doc: str,
    presets: Mapping[str, dict],
    quick: dict,
    *,
    x: str,
    y: str | None = None,
    references: Callable[[dict, Path, bool], Mapping[str, Mapping[str, float]]] | None = None,
    **plot: Any,
) -> dict[str, Any]:
    """``references(raw spec, out, progress)``, where given, runs what the figure's reference
    lines come from (e.g. ``bp_reference``) before the study and returns them per metric.

    The command line every study shares: ``--preset`` (one of ``presets``, the first by
    default), ``--out``, ``--quick`` (the CI-sized version), ``--seeds N``, ``--max-chunks N``
    (run a slice; rerun to resume), ``--no-progress``. Writes the summary with the command,
    commit and machine (``ctlearn.provenance``); prints the summary table and where the
    figures are. From the command line (``argv`` None) a user error is one line (status 2;
    ``--debug`` shows the traceback: ``ctlearn._usererror``)."""
    if argv is None:
        given = (sys.argv[1:], doc, presets, quick)
        return run_main(lambda: study_main(*given, x=x, y=y, references=references, **plot))
    argv = list(argv)
    names = list(presets)
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    prepare_parser(parser)
    parser.add_argument(
        "--preset",
        default=names[0],
        choices=names,
        help=f"the setup and grid to run (default {names[0]})",
    )
    parser.add_argument("--out", default=None, help="default: runs/study-<spec name>")
    parser.add_argument("--quick", action="store_true", help="a small version (CI, a first look)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per point")
    parser.add_argument("--max-chunks", type=int, default=None)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    raw = (
        quick_spec(presets, quick, args.preset)
        if args.quick
        else copy.deepcopy(presets[args.preset])
    )
    if args.seeds is not None:
        raw["seeds"] = args.seeds
    spec = SweepSpec.from_dict(raw)
    out = Path(args.out or f"runs/study-{spec.name}")
    origin = provenance()
    module = sys.modules.get("__main__")
    module = getattr(getattr(module, "__spec__", None), "name", None)
    if module is None or not module.startswith("sims.study_"):  # called from Python (tests)
        module = f"sims.study_{presets[names[0]]['name']}"
    origin["command"] = shlex.join(["python", "-m", module, *argv])
    if references is not None:
        plot["references"] = references(raw, out, not args.no_progress)
    result = run_study(
        spec,
        out,
        mlp_model,
        x=x,
        y=y,
        progress=not args.no_progress,
        max_chunks=args.max_chunks,
        provenance=origin,
        **plot,
    )
    print((out / "summary.md").read_text())
    print("figures:", ", ".join(str(f) for f in result["figures"]))
    if not result["complete"]:
        print("incomplete: run the same command again to resume")
    print("\n\n".join(doc.strip().split("\n\n")[2:]))
    return result


def bp_reference(raw: Mapping[str, Any], out: Path, progress: bool) -> dict[str, dict[str, float]]:
    """The two BP reference lines of the study ``raw``, both on the ideal circuit from the
    study's initial networks and presentations, over its seeds, as test accuracy means:

    * gradient flow (continuous BP, ẇ = −η_BP·∇L) at η_BP = η·c (c the perturbation's rate
      power), so that it has the perturbative rule's η_eff = η·c·T, in ``out/bp`` (resumed like
      the study);
    * discrete BP (``ctlearn.sweep.discrete_bp``: one SGD step of η_BP·T per presentation, on
      its batch, by the discrete-time training loop), its rows in ``out/bp/discrete.json``."""
    base = AnalogBase.from_dict(raw["base"])
    c = Sinusoids(base.sigma, base.tau_p, components=base.components).rate_power()
    lr = float(base.lr * c)
    seeds = raw["seeds"]
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    reference = {
        "name": f"{raw['name']}_bp",
        "base": {**copy.deepcopy(raw["base"]), "rule": "bp", "lr": lr, "hardware": {}},
        "grid": {"rule.lr": [lr]},
        "seeds": raw["seeds"],
        "ensemble": len(seeds),
    }
    spec = SweepSpec.from_dict(reference)
    result = run_study(spec, out / "bp", mlp_model, x="rule.lr", progress=progress,
                       title="BP reference (gradient flow)")  # fmt: skip
    (row,) = result["summary"]
    step = lr * base.duration
    rows = discrete_bp(AnalogBase.from_dict(reference["base"]), mlp_model, seeds, lr=step)
    discrete = sum(r["test_accuracy"] for r in rows) / len(rows)
    record = {"lr": step, "eta_bp": lr, "duration": base.duration, "rows": rows,
              "test_accuracy_mean": discrete, "provenance": provenance()}  # fmt: skip
    atomic_write_text(out / "bp" / "discrete.json", json.dumps(record, indent=2) + "\n")
    return {
        "test_accuracy": {
            "BP (gradient flow, same η_eff)": row["test_accuracy_mean"],
            "BP (discrete SGD, lr = η·c·T)": discrete,
        }
    }
