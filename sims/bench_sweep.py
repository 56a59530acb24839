"""Benchmark: throughput of an analog-hardware sweep on this machine, old and new paths side by
side, and memory per member.

    python -m sims.bench_sweep [--points-side 16] [--ensemble 32] [--presentations 10]
        [--devices 1] [--out results/bench_sweep]

The sweep: 16 × 16 = 256 points (activity noise × differentiator time constant, one seed) of
the studies' setup (MNIST-1D, MLP 40-32-10, T = 10 τ_p, Heun with dt0 = 0.05; the activity
noise makes it an SDE), as ensembles of ``--ensemble`` members.

Measured in one run:
- old and new ensembles side by side: the first ``--compare-chunks`` chunks of the sweep timed in
  interleaved rounds (compilation excluded) with the members' solves vmapped and the noise on a
  ``VirtualBrownianTree`` (old: ``members="vmap"``, ``brownian="tree"``) and with the default
  path (new: one fixed-step solve for all members, one Brownian increment per step);
- the whole sweep with the new path through ``run_sweep`` (test accuracy and files included),
  and its compile time (the first chunk's call, run first);
- a few of its points one member at a time;
- the compiled memory of one chunk per member (the slope between an ensemble of 1 and of
  ``--ensemble``).
Target: the whole sweep at ≥ ``TARGET_FACTOR`` × the ``OLD_POINTS_PER_MINUTE`` measured before
this path existed (issue 14). Writes ``summary.json`` (command, commit, machine, load) and
``summary.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

import ctlearn.dynamics as ct
from ctlearn._usererror import prepare_parser, run_main
from ctlearn.diagnostics import time_side_by_side
from ctlearn.files import atomic_write_text
from ctlearn.provenance import provenance
from ctlearn.sweep import AnalogSweep, SweepSpec, run_sweep

from ._analog import mlp_model

OLD_POINTS_PER_MINUTE = 34.0
"""The whole sweep's throughput at these settings before the fused ensembles and the fixed-step
noise path (issue 14: vmapped solves on a VirtualBrownianTree)."""
TARGET_FACTOR = 10.0
PATHS = {"old": {"members": "vmap", "brownian": "tree"}, "new": {}}
"""How each side of the comparison runs its ensembles (``simulate_ensemble`` options)."""


def spec(side: int, ensemble: int, presentations: int, solver: str = "heun") -> SweepSpec:
    return SweepSpec.from_dict(
        {
            "name": "bench",
            "base": {
                "widths": [32],
                "solver": solver,
                "presentations": presentations,
                "test_size": 500,
                "chunk": presentations,
                "hardware": {"noise": {"tau": 0.1}, "differentiator": {"blank": 2.0}},
            },
            "grid": {
                "noise.sigma": [float(v) for v in np.round(np.geomspace(1e-4, 0.1, side), 6)],
                "differentiator.tau": [
                    float(v) for v in np.round(np.geomspace(0.05, 1.0, side), 4)
                ],
            },
            "seeds": 1,
            "ensemble": ensemble,
        }
    )


def ensemble_inputs(evaluate: AnalogSweep, members) -> dict:
    """``simulate_ensemble``'s simulators, models, stream and keys for ``members`` of the sweep
    (each member's network and noise from its seed, as the sweep draws them)."""
    keys = [jax.random.PRNGKey(m.seed) for m in members]
    return {
        "simulators": [evaluate.base.simulator(m.params) for m in members],
        "models": [mlp_model(evaluate.base, (40,), 10, jax.random.fold_in(k, 0)) for k in keys],
        "stream": evaluate.stream,
        "keys": [jax.random.fold_in(k, 1) for k in keys],
    }


def memory_per_member(evaluate: AnalogSweep, members) -> dict[str, float]:
    """Compiled bytes of one chunk for an ensemble of 1 and of len(members), and the slope."""
    out = {}
    for size in (1, len(members)):
        out[size] = ct.ensemble_memory(
            **ensemble_inputs(evaluate, members[:size]),
            chunk=evaluate.base.chunk,
            devices=evaluate.devices,
        )["total"]
    big = len(members)
    return {
        "one_member_bytes": out[1],
        "ensemble_bytes": out[big],
        "bytes_per_member": (out[big] - out[1]) / max(big - 1, 1),
    }


def side_by_side(evaluate: AnalogSweep, chunks, repeats: int) -> dict[str, dict]:
    """Seconds per chunk of ``chunks`` with the old and the new path (interleaved rounds,
    compilation excluded), their points per minute, and the largest difference between the two
    paths' losses (their noises are different draws of the same law, so this is not zero)."""
    inputs = [ensemble_inputs(evaluate, chunk) for chunk in chunks]

    def run(options):
        return [
            ct.simulate_ensemble(
                **i,
                chunk=evaluate.base.chunk,
                progress=False,
                devices=evaluate.devices,
                **options,
            ).results.loss
            for i in inputs
        ]

    seconds = time_side_by_side(
        {name: lambda o=options: run(o) for name, options in PATHS.items()},
        number=1,
        repeats=repeats,
    )
    points = sum(len(chunk) for chunk in chunks)
    return {
        name: {"seconds_per_chunk": s / len(chunks), "points_per_minute": points / s * 60}
        for name, s in seconds.items()
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    prepare_parser(parser)
    parser.add_argument("--points-side", type=int, default=16)
    parser.add_argument("--ensemble", type=int, default=32)
    parser.add_argument("--presentations", type=int, default=10)
    parser.add_argument("--single", type=int, default=4, help="points run one at a time")
    parser.add_argument(
        "--compare-chunks", type=int, default=1, help="chunks timed with both old and new paths"
    )
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (old, new)")
    parser.add_argument(
        "--devices", type=int, default=None, help="devices to shard members over (default: all)"
    )
    parser.add_argument(
        "--solver",
        default="heun",
        help="the sweep base's solver: heun (the settings of the old figure) or default",
    )
    parser.add_argument("--out", default="runs/bench-sweep")
    args = parser.parse_args(argv)
    for name in ("points_side", "ensemble", "presentations", "single", "compare_chunks", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    load_before = os.getloadavg()
    full = spec(args.points_side, args.ensemble, args.presentations, args.solver)
    points = len(full.points())
    evaluate = AnalogSweep(full, mlp_model, devices=args.devices)
    chunks = full.chunks()
    if args.compare_chunks > len(chunks):
        parser.error(f"--compare-chunks {args.compare_chunks} > the sweep's {len(chunks)} chunks")

    compared = side_by_side(evaluate, chunks[: args.compare_chunks], args.repeats)
    # Compile once (the first chunk's structure and count), then time the whole sweep.
    start = time.perf_counter()
    evaluate(full, chunks[0])
    compile_and_first = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_sweep(full, tmp, evaluate, progress=True)
        sweep_s = time.perf_counter() - start
    single = SweepSpec.from_dict({**full.to_json(), "ensemble": 1})
    one = AnalogSweep(single, mlp_model, devices=1)
    members = single.members()[: args.single]
    one(single, members[:1])  # compile
    start = time.perf_counter()
    for m in members:
        one(single, [m])
    single_s = (time.perf_counter() - start) / len(members)
    memory = memory_per_member(evaluate, chunks[0])
    points_per_minute = points / sweep_s * 60
    result = {
        "points": points,
        "ensemble": args.ensemble,
        "presentations": args.presentations,
        "solver": args.solver,
        "devices": len(evaluate.devices),
        "sweep_seconds": sweep_s,
        "points_per_minute": points_per_minute,
        "old_points_per_minute": OLD_POINTS_PER_MINUTE,
        "speedup_over_old": points_per_minute / OLD_POINTS_PER_MINUTE,
        "target_factor": TARGET_FACTOR,
        "met": points_per_minute >= TARGET_FACTOR * OLD_POINTS_PER_MINUTE,
        "side_by_side": {
            "chunks": args.compare_chunks,
            **compared,
            "new_over_old": compared["new"]["points_per_minute"]
            / compared["old"]["points_per_minute"],
        },
        "single_member_points_per_minute": 60 / single_s,
        "ensemble_speedup": (points / sweep_s) / (1 / single_s),
        "compile_and_first_chunk_seconds": compile_and_first,
        **memory,
        "device": str(jax.devices()[0]),
        "load": {"before": load_before, "after": os.getloadavg()},
        "provenance": provenance(),
    }
    out = Path(args.out)
    atomic_write_text(out / "summary.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(out / "summary.md", markdown(result))
    print(markdown(result))
    return result


def markdown(r: dict) -> str:
    origin, s = r["provenance"], r["side_by_side"]
    load = ", ".join(f"{v:.2f}" for v in r["load"]["before"])
    after = ", ".join(f"{v:.2f}" for v in r["load"]["after"])
    verdict = "met" if r["met"] else "**not met**"
    return "\n".join(
        [
            "# Analog sweep throughput",
            "",
            f"Command: `{origin['command']}`; commit `{origin['commit']}`"
            f"{' (with uncommitted changes)' if origin['dirty'] else ''}; machine: "
            f"{origin['machine']}; {origin['utc']}. Load average (1, 5, 15 min) before "
            f"{load}, after {after} (other work on the machine slows every entry).",
            "",
            f"{r['points']} points × {r['presentations']} presentations of MLP 40-32-10 "
            f"(activity noise × differentiator τ; solver {r['solver']}), ensembles of "
            f"{r['ensemble']} on "
            f"{r['devices']} device(s).",
            "",
            f"Old and new side by side ({s['chunks']} chunk(s), interleaved rounds):",
            "",
            "| path | s per chunk | points per minute |",
            "|---|---:|---:|",
            f"| old: vmapped solves, VirtualBrownianTree | {s['old']['seconds_per_chunk']:.2f} | "
            f"{s['old']['points_per_minute']:.1f} |",
            f"| new: one fixed-step solve for all members, increments per step | "
            f"{s['new']['seconds_per_chunk']:.2f} | {s['new']['points_per_minute']:.1f} |",
            "",
            f"New / old, measured side by side: {s['new_over_old']:.2f}×.",
            "",
            f"The whole sweep with the new path (run_sweep, test accuracy and files included): "
            f"{r['sweep_seconds']:.1f} s, {r['points_per_minute']:.1f} points per minute = "
            f"{r['speedup_over_old']:.2f}× the {r['old_points_per_minute']:g} points per minute "
            f"measured before (target ≥ {r['target_factor']:g}×: {verdict}).",
            "",
            f"One member at a time: {r['single_member_points_per_minute']:.1f} points per minute "
            f"(the whole sweep is {r['ensemble_speedup']:.1f}× that). Compile and first chunk: "
            f"{r['compile_and_first_chunk_seconds']:.1f} s. Compiled memory of one chunk: "
            f"{r['one_member_bytes'] / 1e6:.1f} MB for 1 member, "
            f"{r['ensemble_bytes'] / 1e6:.1f} MB for {r['ensemble']} "
            f"({r['bytes_per_member'] / 1e6:.2f} MB per member).",
            "",
        ]
    )


if __name__ == "__main__":
    run_main(main)
