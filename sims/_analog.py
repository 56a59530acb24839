"""What the analog-hardware sims share: the network they study, the Fashion-MNIST preset every
study builds its own from, and the command line of a study."""

from __future__ import annotations

import argparse
import copy
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ctlearn.provenance import provenance
from ctlearn.sweep import AnalogBase, SweepSpec, run_study
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
    **plot: Any,
) -> dict[str, Any]:
    """The command line every study shares: ``--preset`` (one of ``presets``, the first by
    default), ``--out``, ``--quick`` (the CI-sized version), ``--seeds N``, ``--max-chunks N``
    (run a slice; rerun to resume), ``--no-progress``. Writes the summary with the command,
    commit and machine (``ctlearn.provenance``); prints the summary table and where the
    figures are."""
    argv = list(sys.argv[1:] if argv is None else argv)
    names = list(presets)
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
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
