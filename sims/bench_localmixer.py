"""LocalMixer costs, measured side by side in one run.

    python -m sims.bench_localmixer [--presets S/1/1 M/1/16 M/8/16] [--batch-size 128] [--out DIR]

For every preset, one jit-compiled ``ctlearn.train.train_step`` (estimate + SGD update) of BP,
LG-BP and LG-FG-A with the fused replicated losses, and of LG-BP and LG-FG-A with the naive
(masked, replicated-features) ones, are timed in interleaved rounds, and so is the replicated
loss operator alone (its gradient and its jvp at one block's feature shape), fused and naive.
Reported: LG-FG-A's step time relative to BP (with Gaussian noise, and with random signs, which
are cheaper to draw), examples per second, and the fused / naive ratios of time and of compiled
memory (the compiler's peak working memory, ``compiled_memory``). Inputs are synthetic (Gaussian
images of the preset's dataset shape, random labels): costs do not depend on the values.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp

from ctlearn._atomic import atomic_write_text
from ctlearn._usererror import prepare_parser, run_main
from ctlearn.diagnostics import compiled_memory, time_side_by_side
from ctlearn.estimators import make_estimator, parse_method
from ctlearn.losses import get_loss, linear_head_loss, naive_replicated_loss, replicated_loss
from ctlearn.train import TrainState, make_optimizer, train_step
from models import LOCAL_MIXER_PRESETS, local_mixer

SHAPES = {"MNIST": (28, 28, 1), "CIFAR-10": (32, 32, 3), "ImageNet": (224, 224, 3)}
# (label, method spec, fused replicated losses?)
ENTRIES = (
    ("bp", "bp", True),
    ("lg-bp", "lg-bp", True),
    ("lg-fg-a", "lg-fg-a", True),
    ("lg-fg-a signs", "lg-fg-a:noise=rademacher", True),
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
        for name in ("number", "repeats"):  # before any work, not after the first compile
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {name}={getattr(self, name)}")


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
            name, options = parse_method(method)
            estimator = make_estimator(name, **options)
            state = TrainState.start(
                model, optimizer.init(_params(model)), estimator.init(model, key=kstep)
            )
            args = (estimator, optimizer, state, x, y, kstep)
            memory[preset, label] = compiled_memory(train_step, *args)["temp"]
            calls[preset, label] = lambda args=args: train_step(*args)
        if config.naive:
            for label, call, mem in _loss_operator(preset, config.batch_size, kx):
                calls[preset, label] = call
                memory[preset, label] = mem
    seconds = time_side_by_side(calls, number=config.number, repeats=config.repeats)

    rows = []
    for preset in config.presets:
        row = {"preset": preset, "parameters": params[preset]}
        for label, _, _ in entries:
            row[f"{label} ms"] = 1e3 * seconds[preset, label]
            row[f"{label} examples/s"] = config.batch_size / seconds[preset, label]
            row[f"{label} temp MB"] = memory[preset, label] / 2**20
        row["lg-fg-a / bp time"] = seconds[preset, "lg-fg-a"] / seconds[preset, "bp"]
        row["lg-fg-a signs / bp time"] = seconds[preset, "lg-fg-a signs"] / seconds[preset, "bp"]
        if config.naive:
            for method in ("lg-bp", "lg-fg-a"):
                row[f"{method} fused/naive time"] = (
                    seconds[preset, method] / seconds[preset, f"{method} naive"]
                )
                row[f"{method} fused/naive memory"] = memory[preset, method] / max(
                    memory[preset, f"{method} naive"], 1
                )
            for mode in ("grad", "jvp"):
                fused, naive = f"loss {mode}", f"loss {mode} naive"
                row[f"loss {mode} fused/naive memory"] = memory[preset, fused] / max(
                    memory[preset, naive], 1
                )
                row[f"loss {mode} fused/naive time"] = (
                    seconds[preset, fused] / seconds[preset, naive]
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


def _loss_operator(preset: str, batch_size: int, key):
    """The replicated local loss alone, at one block's feature shape [N, P, G, C] of the preset:
    its gradient and its jvp, fused and naive, as ``(label, call, compiled temp bytes)``."""
    spec = LOCAL_MIXER_PRESETS[preset]
    patches = spec.patches**2 if len(SHAPES[spec.dataset]) == 3 else spec.patches
    shape = (batch_size, patches, spec.groups, spec.channels // spec.groups)
    kx, kw, kt = jax.random.split(key, 3)
    x = jax.random.normal(kx, shape)
    params = (0.1 * jax.random.normal(kw, (spec.channels, 10)), jnp.zeros((10,)))
    x_dot = jax.random.normal(kt, shape)
    y = jnp.arange(batch_size) % 10
    head = linear_head_loss(get_loss("cross_entropy"))
    out = []
    for suffix, replicate in (("", replicated_loss), (" naive", naive_replicated_loss)):

        def grad(x, params, replicate=replicate):
            return jax.grad(lambda a, q: jnp.sum(replicate(head, a, q, y)), (0, 1))(x, params)

        def jvp(x, params, x_dot, replicate=replicate):
            return jax.jvp(lambda a: replicate(head, a, params, y), (x,), (x_dot,))[1]

        grad_jit, jvp_jit = jax.jit(grad), jax.jit(jvp)
        out.append((f"loss grad{suffix}", lambda f=grad_jit: f(x, params),
                    compiled_memory(grad, x, params)["temp"]))  # fmt: skip
        out.append((f"loss jvp{suffix}", lambda f=jvp_jit: f(x, params, x_dot),
                    compiled_memory(jvp, x, params, x_dot)["temp"]))  # fmt: skip
    return out


def _params(model):
    return eqx.filter(model, eqx.is_inexact_array)


def _markdown(result: dict, config: BenchConfig) -> str:
    lines = [
        f"LocalMixer train steps (SGD), batch {config.batch_size}, {result['device']}; median of "
        f"{config.repeats} interleaved rounds of {config.number} steps. Memory: the compiled "
        "step's peak working memory.",
        "",
        "| preset | params | BP ex/s | LG-FG-A ex/s | LG-FG-A / BP time | same, random signs |"
        + (
            " step fused/naive mem (LG-BP, LG-FG-A) | LG-FG-A fused/naive time |"
            " loss op fused/naive mem (grad, jvp) | loss op fused/naive time (grad, jvp) |"
            if config.naive
            else ""
        ),  # fmt: skip
        "|---|---:|---:|---:|---:|---:|" + ("---:|---:|---:|---:|" if config.naive else ""),
    ]
    for r in result["rows"]:
        line = (
            f"| {r['preset']} | {r['parameters']:,} | {r['bp examples/s']:.0f} | "
            f"{r['lg-fg-a examples/s']:.0f} | {r['lg-fg-a / bp time']:.2f} | "
            f"{r['lg-fg-a signs / bp time']:.2f} |"
        )
        if config.naive:
            line += (
                f" {r['lg-bp fused/naive memory']:.3f}, {r['lg-fg-a fused/naive memory']:.3f} |"
                f" {r['lg-fg-a fused/naive time']:.2f} |"
                f" {r['loss grad fused/naive memory']:.4f},"
                f" {r['loss jvp fused/naive memory']:.4f} |"
                f" {r['loss grad fused/naive time']:.2f}, {r['loss jvp fused/naive time']:.2f} |"
            )
        lines.append(line)
    return "\n".join(lines)


def _cli() -> BenchConfig:
    defaults = BenchConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    prepare_parser(parser)
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
    run_main(lambda: main(_cli()))
