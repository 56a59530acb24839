"""A sweep of analog-hardware parameters × seeds, from a grid file.

    python -m sims.analog_sweep --grid FILE --out DIR [--max-chunks N] [--devices N]
                                [--distributed] [--no-progress] [--debug]

FILE (JSON or TOML) holds ``base`` (the setup every point shares: ``ctlearn.sweep.AnalogBase``,
including the non-idealities every point has, as ``hardware = {kind = {field = value}}``),
``grid`` (``"<kind>.<field>"`` or ``"rule.lr"`` → list of values; ``None``/``null``, or
``"none"`` in TOML, is the ideal value), ``seeds`` (a count or a list) and ``ensemble`` (members
simulated together in one vmapped call). Every point's physics is validated before any work.
DIR receives ``spec.json``, ``results.json`` and ``results.csv`` (one row per point and seed,
rewritten atomically after every chunk) and ``summary.md``; running the same command again
resumes where it stopped without recomputing finished points.

A user error is one line naming the file, grid key or option, the value and what is valid (exit
status 2; ``--debug`` shows the traceback): a value of the wrong type in the grid or ``base``, a
grid file that is not valid TOML/JSON (with the line where the decoder stopped), or a damaged or
missing ``spec.json``/``results.json`` in DIR, which is never repaired silently.

Each chunk's members are split over ``--devices`` (default: every visible device; with
``--distributed``, every host's, joined as ``ctlearn train --distributed`` joins them): the
``ensemble`` size and the number of members (points × seeds) must be multiples of the device
count, which is checked before any work. ``--devices 1`` runs unsharded.

Example grid (TOML)::

    name = "noise-lr"
    seeds = 3
    ensemble = 16
    [base]
    presentations = 200
    hardware = { noise = { tau = 0.1 } }
    [grid]
    "noise.sigma" = ["none", 0.003, 0.01]
    "rule.lr" = [10.0, 30.0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax

from ctlearn._usererror import prepare_parser, run_main
from ctlearn.files import atomic_write_text
from ctlearn.sweep import AnalogSweep, aggregate, load_spec, markdown_table, run_sweep
from ctlearn.train import initialize_distributed

from ._analog import mlp_model

METRICS = ["test_accuracy", "test_loss", "alignment", "train_loss"]


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description="A sweep of analog-hardware parameters × seeds.")
    prepare_parser(parser)
    parser.add_argument("--grid", required=True, help="the sweep's JSON or TOML file")
    parser.add_argument("--out", required=True, help="the sweep directory (resumed if it exists)")
    parser.add_argument("--max-chunks", type=int, default=None, help="stop after N chunks")
    parser.add_argument(
        "--devices", type=int, default=None, help="devices sharing each chunk (default: all)"
    )
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="join a multi-host run first (jax.distributed; see ctlearn train --distributed)",
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.distributed:
        initialize_distributed()
    spec = load_spec(args.grid)
    # Validates the devices and every point before any work.
    evaluate = AnalogSweep(spec, mlp_model, devices=args.devices)
    rows = run_sweep(
        spec, args.out, evaluate, progress=not args.no_progress, max_chunks=args.max_chunks
    )
    summary = aggregate(rows, list(spec.grid), METRICS)
    columns = list(spec.grid) + [f"{m}_mean" for m in METRICS] + ["test_accuracy_std"]
    text = markdown_table(summary, columns)
    if jax.process_index() == 0:
        atomic_write_text(Path(args.out) / "summary.md", f"# {spec.name}\n\n{text}\n")
    print(text)
    done, total = len(rows), len(spec.members())
    status = "" if done == total else ": run the same command again to resume"
    print(f"{done} of {total} members in {Path(args.out) / 'results.csv'}{status}")
    return rows


if __name__ == "__main__":
    run_main(main)
