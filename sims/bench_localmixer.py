"""LocalMixer costs, measured side by side in one run.

    python -m sims.bench_localmixer [--presets S/1/1 M/1/16 M/8/16] [--batch-size 128] [--out DIR]

For every preset, one jit-compiled ``ctlearn.train.train_step`` (estimate + SGD update) of BP,
LG-BP and LG-FG-A with the fused replicated losses, and of LG-BP and LG-FG-A with the naive
(masked, replicated-features) ones, are timed in interleaved rounds. Reported: LG-FG-A's step time
relative to BP, examples per second, and the fused / naive ratio of step time and of compiled
memory (the compiler's peak working memory of the step, ``compiled_memory``). Inputs are
synthetic (Gaussian images of the preset's dataset shape, random labels): costs do not depend on
the values.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import equinox as eqx
import jax

from ctlearn._atomic import atomic_write_text
from ctlearn.diagnostics import compiled_memory, time_side_by_side
from ctlearn.estimators import make_estimator
from ctlearn.train import TrainState, make_optimizer, train_step
from models import LOCAL_MIXER_PRESETS, local_mixer

SHAPES = {"MNIST": (28, 28, 1), "CIFAR-10": (32, 32, 3), "ImageNet": (224, 224, 3)}
# (label, method, fused replicated losses?)
ENTRIES = (
    ("bp", "bp", True),
    ("lg-bp", "lg-bp", True),
    ("lg-fg-a", "lg-fg-a", True),
    ("lg-bp naive", "lg-bp", False),
    ("lg-fg-a naive", "lg-fg-a", False),
)


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    presets: tuple[str, ...] = ("S/1/1", "M/1/16", "M/8/16")
    batch_size: int = 128
    naive: bool = True
    number: int = 3
    repeats: int = 5
    seed: int = 0
    out: str | None = None

    def __post_init__(self):
        for preset in self.presets:
            if preset not in LOCAL_MIXER_PRESETS:
                raise ValueError(
                    f"unknown preset {preset!r}; valid: {', '.join(LOCAL_MIXER_PRESETS)}"
                )
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be at least 2, got {self.batch_size}")


def main(config: BenchConfig) -> dict:
    """Times and sizes every (preset, entry) step; returns and prints the table."""
    optimizer = make_optimizer("sgd", 0.01)
    km, kx, ky, kstep = jax.random.split(jax.random.key(config.seed), 4)
    entries = [e for e in ENTRIES if config.naive or e[2]]
    calls, memory, params = {}, {}, {}
    for preset in config.presets:
        shape = SHAPES[LOCAL_MIXER_PRESETS[preset].dataset]
        x = jax.random.normal(kx, (config.batch_size, *shape))
        y = jax.random.randint(ky, (config.batch_size,), 0, 10)
        for label, method, fused in entries:
            model = local_mixer(shape, 10, preset, fused=fused, key=km)
            params[preset] = sum(a.size for a in jax.tree.leaves(_params(model)))
            estimator = make_estimator(method)
            state = TrainState.start(
                model, optimizer.init(_params(model)), estimator.init(model, key=kstep)
            )
            args = (estimator, optimizer, state, x, y, kstep)
            memory[preset, label] = compiled_memory(train_step, *args)["temp"]
            calls[preset, label] = lambda args=args: train_step(*args)
    seconds = time_side_by_side(calls, number=config.number, repeats=config.repeats)

    rows = []
    for preset in config.presets:
        row = {"preset": preset, "parameters": params[preset]}
        for label, _, _ in entries:
            row[f"{label} ms"] = 1e3 * seconds[preset, label]
            row[f"{label} examples/s"] = config.batch_size / seconds[preset, label]
            row[f"{label} temp MB"] = memory[preset, label] / 2**20
        row["lg-fg-a / bp time"] = seconds[preset, "lg-fg-a"] / seconds[preset, "bp"]
        if config.naive:
            for method in ("lg-bp", "lg-fg-a"):
                row[f"{method} fused/naive time"] = (
                    seconds[preset, method] / seconds[preset, f"{method} naive"]
                )
                row[f"{method} fused/naive memory"] = memory[preset, method] / max(
                    memory[preset, f"{method} naive"], 1
                )
        rows.append(row)
    result = {
        "config": dataclasses.asdict(config),
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0]),
        "rows": rows,
    }
    table = _markdown(result, config)
    print(table)
    if config.out is not None:
        out = Path(config.out)
        atomic_write_text(out / "bench_localmixer.json", json.dumps(result, indent=2) + "\n")
        atomic_write_text(out / "bench_localmixer.md", table + "\n")
    return result


def _params(model):
    return eqx.filter(model, eqx.is_inexact_array)


def _markdown(result: dict, config: BenchConfig) -> str:
    lines = [
        f"LocalMixer train steps (SGD), batch {config.batch_size}, {result['device']}; median of "
        f"{config.repeats} interleaved rounds of {config.number} steps. Memory: the compiled "
        "step's peak working memory.",
        "",
        "| preset | params | BP ex/s | LG-FG-A ex/s | LG-FG-A / BP time |"
        + (
            " LG-BP fused/naive mem | LG-FG-A fused/naive mem | LG-FG-A fused/naive time |"
            if config.naive
            else ""
        ),  # fmt: skip
        "|---|---:|---:|---:|---:|" + ("---:|---:|---:|" if config.naive else ""),
    ]
    for r in result["rows"]:
        line = (
            f"| {r['preset']} | {r['parameters']:,} | {r['bp examples/s']:.0f} | "
            f"{r['lg-fg-a examples/s']:.0f} | {r['lg-fg-a / bp time']:.2f} |"
        )
        if config.naive:
            line += (
                f" {r['lg-bp fused/naive memory']:.3f} | {r['lg-fg-a fused/naive memory']:.3f} |"
                f" {r['lg-fg-a fused/naive time']:.2f} |"
            )
        lines.append(line)
    return "\n".join(lines)


def _cli() -> BenchConfig:
    defaults = BenchConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=list(defaults.presets))
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--no-naive", action="store_true", help="skip the naive replicated losses")
    parser.add_argument("--number", type=int, default=defaults.number, help="steps per timed round")
    parser.add_argument("--repeats", type=int, default=defaults.repeats, help="timed rounds")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", help="folder for bench_localmixer.json and .md")
    args = parser.parse_args()
    return BenchConfig(
        presets=tuple(args.presets),
        batch_size=args.batch_size,
        naive=not args.no_naive,
        number=args.number,
        repeats=args.repeats,
        seed=args.seed,
        out=args.out,
    )


if __name__ == "__main__":
    main(_cli())
