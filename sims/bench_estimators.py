"""Step time of every estimator relative to BP, measured side by side in one run.

    python -m sims.bench_estimators [--widths 1024 1024 1024] [--batch-size 128] [--out DIR]

The network is an MLP on 784-dimensional inputs (MNIST-sized) with 10 outputs; the batch is
synthetic (Gaussian inputs, random labels): a step's cost does not depend on the values. Each
method runs one jit-compiled ``ctlearn.train.train_step`` (estimate + optimizer update), with SGD
and with Adam, all interleaved in one process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import equinox as eqx
import jax

from ctlearn._usererror import prepare_parser, run_main
from ctlearn.diagnostics import time_side_by_side
from ctlearn.estimators import make_estimator, parse_method
from ctlearn.files import atomic_write_text
from ctlearn.provenance import provenance
from ctlearn.train import TrainState, make_optimizer, train_step
from models import mlp

DEFAULT_METHODS = (
    "bp",
    "l-bp",
    "lg-bp",
    "fg-w",
    "fg-w:noise=rademacher",
    "lg-fg-w",
    "fg-a",
    "fg-a:shared=true",
    "fg-a:shared=true,mask=false",
    "lg-fg-a",
    "fa",
    "lg-fa",
    "dfa",
    "dkp",
    "fdfa",
    "fdfa:noise=rademacher",
)


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """``methods``: specs ``NAME[:KEY=VALUE,...]`` (the first must be ``bp``, the reference)."""

    methods: tuple[str, ...] = DEFAULT_METHODS
    widths: tuple[int, ...] = (1024, 1024, 1024)
    batch_size: int = 128
    optimizers: tuple[str, ...] = ("sgd", "adam")
    number: int = 5
    repeats: int = 7
    seed: int = 0
    out: str | None = None

    def __post_init__(self):
        if not self.methods or self.methods[0] != "bp":
            raise ValueError(f"the first method must be 'bp' (the reference), got {self.methods}")
        for spec in self.methods:
            parse_method(spec)
        for name in self.optimizers:
            make_optimizer(name, 1e-3)
        for name in ("number", "repeats"):  # before any work, not after the first compile
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {name}={getattr(self, name)}")


def main(config: BenchConfig) -> dict:
    """Times every (method, optimizer) pair; returns and prints seconds per step and ratios."""
    origin = provenance()  # the code as it stands when the timing starts
    km, kx, ky, kstep = jax.random.split(jax.random.key(config.seed), 4)
    model = mlp((784,), 10, config.widths, key=km)
    x = jax.random.normal(kx, (config.batch_size, 784))
    y = jax.random.randint(ky, (config.batch_size,), 0, 10)

    calls = {}
    for optimizer_name in config.optimizers:
        optimizer = make_optimizer(optimizer_name, 1e-3)
        opt_state = optimizer.init(_params(model))
        for spec in config.methods:
            name, options = parse_method(spec)
            estimator = make_estimator(name, **options)
            state = TrainState.start(model, opt_state, estimator.init(model, key=kstep))
            calls[spec, optimizer_name] = _step(estimator, optimizer, state, x, y, kstep)
    seconds = time_side_by_side(calls, number=config.number, repeats=config.repeats)

    rows = []
    for spec in config.methods:
        row = {"method": spec}
        for opt in config.optimizers:
            row[f"{opt}_ms"] = 1e3 * seconds[spec, opt]
            row[f"{opt}_ratio"] = seconds[spec, opt] / seconds["bp", opt]
        rows.append(row)
    result = {
        "config": dataclasses.asdict(config),
        "parameters": sum(a.size for a in jax.tree.leaves(_params(model))),
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0]),
        "rows": rows,
        "provenance": origin,
    }
    table = _markdown(result, config)
    print(table)
    if config.out is not None:
        out = Path(config.out)
        atomic_write_text(out / "bench_estimators.json", json.dumps(result, indent=2) + "\n")
        atomic_write_text(out / "bench_estimators.md", table + "\n")
    return result


def _step(estimator, optimizer, state, x, y, key):
    return lambda: train_step(estimator, optimizer, state, x, y, key)


def _params(model):
    return eqx.filter(model, eqx.is_inexact_array)


def _markdown(result: dict, config: BenchConfig) -> str:
    widths = "-".join(str(w) for w in (784, *config.widths, 10))
    lines = [
        f"Step time relative to BP: MLP {widths} ({result['parameters']:,} parameters), batch "
        f"{config.batch_size}, {result['device']}; median of {config.repeats} interleaved "
        f"rounds of {config.number} steps.",
        "",
        "| method | " + " | ".join(f"{o} ms | {o} / BP" for o in config.optimizers) + " |",
        "|---|" + "---:|---:|" * len(config.optimizers),
    ]
    for row in result["rows"]:
        cells = " | ".join(
            f"{row[f'{o}_ms']:.2f} | {row[f'{o}_ratio']:.2f}x" for o in config.optimizers
        )
        lines.append(f"| {row['method']} | {cells} |")
    return "\n".join(lines)


def _cli() -> BenchConfig:
    defaults = BenchConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    prepare_parser(parser)
    parser.add_argument(
        "--methods",
        nargs="+",
        default=list(defaults.methods),
        help="method specs NAME[:KEY=VALUE,...]; the first must be bp",
    )
    parser.add_argument("--widths", type=int, nargs="+", default=list(defaults.widths))
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--optimizers", nargs="+", default=list(defaults.optimizers))
    parser.add_argument("--number", type=int, default=defaults.number, help="steps per timed round")
    parser.add_argument("--repeats", type=int, default=defaults.repeats, help="timed rounds")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", help="folder for bench_estimators.json and .md")
    args = parser.parse_args()
    return BenchConfig(
        methods=tuple(args.methods),
        widths=tuple(args.widths),
        batch_size=args.batch_size,
        optimizers=tuple(args.optimizers),
        number=args.number,
        repeats=args.repeats,
        seed=args.seed,
        out=args.out,
    )


if __name__ == "__main__":
    run_main(lambda: main(_cli()))
