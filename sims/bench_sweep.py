"""Benchmark: throughput of an analog-hardware sweep on this machine, and memory per member.

    python -m sims.bench_sweep [--points-side 16] [--ensemble 32] [--presentations 10]

Runs a 16 × 16 = 256-point sweep (activity noise × differentiator time constant, one seed) of
the studies' setup (MNIST-1D, MLP 40-32-10, T = 10 τ_p, Heun with dt0 = 0.05) as vmapped
ensembles of ``--ensemble`` members, and, side by side in the same run, a few of its points one
member at a time. Prints points per minute for both, their ratio, the compile time, and the
compiled memory of one chunk per member (the slope between an ensemble of 1 and of
``--ensemble``). Writes ``bench_sweep.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

import ctlearn.dynamics as ct
from ctlearn._atomic import atomic_write_text
from ctlearn.sweep import AnalogSweep, SweepSpec, run_sweep

from ._analog import mlp_model


def spec(side: int, ensemble: int, presentations: int) -> SweepSpec:
    return SweepSpec.from_dict(
        {
            "name": "bench",
            "base": {
                "widths": [32],
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


def memory_per_member(evaluate: AnalogSweep, members) -> dict[str, float]:
    """Compiled bytes of one chunk for an ensemble of 1 and of len(members), and the slope."""
    out = {}
    for size in (1, len(members)):
        keys = [jax.random.PRNGKey(m.seed) for m in members[:size]]
        out[size] = ct.ensemble_memory(
            [evaluate.base.simulator(m.params) for m in members[:size]],
            [mlp_model(evaluate.base, (40,), 10, k) for k in keys],
            evaluate.stream,
            keys=keys,
            chunk=evaluate.base.chunk,
        )["total"]
    big = len(members)
    return {
        "one_member_bytes": out[1],
        "ensemble_bytes": out[big],
        "bytes_per_member": (out[big] - out[1]) / max(big - 1, 1),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points-side", type=int, default=16)
    parser.add_argument("--ensemble", type=int, default=32)
    parser.add_argument("--presentations", type=int, default=10)
    parser.add_argument("--single", type=int, default=4, help="points run one at a time")
    parser.add_argument("--out", default="runs/bench-sweep")
    args = parser.parse_args(argv)
    full = spec(args.points_side, args.ensemble, args.presentations)
    points = len(full.points())
    evaluate = AnalogSweep(full, mlp_model)
    chunk = full.chunks()[0]

    # Compile once (the first chunk's structure and count), then time the whole sweep.
    start = time.perf_counter()
    evaluate(full, chunk)
    compile_and_first = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_sweep(full, tmp, evaluate, progress=True)
        sweep_s = time.perf_counter() - start
    single = SweepSpec.from_dict({**full.to_json(), "ensemble": 1})
    one = AnalogSweep(single, mlp_model)
    members = single.members()[: args.single]
    one(single, members[:1])  # compile
    start = time.perf_counter()
    for m in members:
        one(single, [m])
    single_s = (time.perf_counter() - start) / len(members)
    memory = memory_per_member(evaluate, chunk)
    result = {
        "points": points,
        "ensemble": args.ensemble,
        "presentations": args.presentations,
        "sweep_seconds": sweep_s,
        "points_per_minute": points / sweep_s * 60,
        "single_member_points_per_minute": 60 / single_s,
        "ensemble_speedup": (points / sweep_s) / (1 / single_s),
        "compile_and_first_chunk_seconds": compile_and_first,
        **memory,
        "device": str(jax.devices()[0]),
    }
    out = Path(args.out)
    atomic_write_text(out / "bench_sweep.json", json.dumps(result, indent=2) + "\n")
    for key, value in result.items():
        print(f"{key:36s} {value:.4g}" if isinstance(value, float) else f"{key:36s} {value}")
    return result


if __name__ == "__main__":
    main()
