"""What the analog-hardware sims share: the network they study and the command line of a study."""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

from ctlearn.sweep import AnalogBase, SweepSpec, run_study
from models import mlp


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


def study_main(
    argv, doc: str, full: dict, quick: dict, *, x: str, y: str | None = None, **plot: Any
) -> dict[str, Any]:
    """The command line every study shares: ``--out``, ``--quick`` (the CI-sized version),
    ``--seeds N``, ``--max-chunks N`` (run a slice; rerun to resume), ``--no-progress``. Prints
    the summary table and where the figures are."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", default=f"runs/study-{full['name']}")
    parser.add_argument("--quick", action="store_true", help="a small version (CI, a first look)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per point")
    parser.add_argument("--max-chunks", type=int, default=None)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    raw = _merge(full, quick) if args.quick else copy.deepcopy(full)
    if args.seeds is not None:
        raw["seeds"] = args.seeds
    spec = SweepSpec.from_dict(raw)
    result = run_study(
        spec,
        args.out,
        mlp_model,
        x=x,
        y=y,
        progress=not args.no_progress,
        max_chunks=args.max_chunks,
        **plot,
    )
    print((Path(args.out) / "summary.md").read_text())
    print("figures:", ", ".join(str(f) for f in result["figures"]))
    if not result["complete"]:
        print("incomplete: run the same command again to resume")
    print("\n\n".join(doc.strip().split("\n\n")[2:]))
    return result
