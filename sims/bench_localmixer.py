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

The profile (``--no-profile`` skips it) splits both steps into their stages, each compiled on its
own and timed side by side with the whole steps: LG-FG-A's noise, forward pass, forward pass with
the tangent (``jax.jvp``), local updates, head gradients and optimizer update; BP's forward pass,
gradient and update; and, alone, every layer's output normalisation (primal and jvp) and every
block's replicated loss (jvp). Each gets the floating-point work of its matrix products as
compiled (``compiled_matmul_flops``); their ratio between the two steps is the floor a
compute-bound machine would reach. Each whole step's time is also split by kind of XLA op from
the profiler's trace (``op_times``): matrix products, layout copies and transposes, reductions,
the rest.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp

from ctlearn._usererror import prepare_parser, run_main
from ctlearn.diagnostics import (
    compiled_matmul_flops,
    compiled_memory,
    op_times,
    time_by_kind,
    time_side_by_side,
)
from ctlearn.estimators import (
    activity_directions,
    activity_grads,
    activity_tangents,
    block_losses,
    exact_head_grads,
    make_estimator,
    parse_method,
)
from ctlearn.files import atomic_write_text
from ctlearn.losses import get_loss, linear_head_loss, naive_replicated_loss, replicated_loss
from ctlearn.nn import ReplicatedHead, local_norm
from ctlearn.provenance import provenance
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
    profile: bool = True
    noise: str = "gaussian"
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
        if self.noise not in ("gaussian", "rademacher"):
            raise ValueError(f"unknown noise {self.noise!r}; valid: gaussian, rademacher")
        for name in ("number", "repeats"):  # before any work, not after the first compile
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {name}={getattr(self, name)}")


def main(config: BenchConfig) -> dict:
    """Times and sizes every (preset, entry) step; returns and prints the table."""
    optimizer = make_optimizer("sgd", 0.01)
    km, kx, ky, kstep = jax.random.split(jax.random.key(config.seed), 4)
    entries = [e for e in ENTRIES if config.naive or e[2]]
    calls, memory, params, flops = {}, {}, {}, {}
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
        if config.profile:
            for label, call, work in _stages(preset, config.batch_size, config.noise, x, y, km):
                calls[preset, label] = call
                flops[preset, label] = work
    # One untimed call before each entry's timed ones: the presets differ in size by 1000x, and a
    # small step timed right after a large one would be charged for refilling the caches.
    seconds = time_side_by_side(calls, number=config.number, repeats=config.repeats, warmup=1)
    kinds = {}
    if config.profile:  # after the timing, one preset's whole steps at a time
        for preset in config.presets:
            for method in ("bp", "lg-fg-a"):
                step = calls[preset, f"{method} step (profiled)"]
                kinds[preset, method] = time_by_kind(op_times(step, runs=config.number))

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
        if config.profile:
            row["profile"] = _profile_rows(preset, seconds, flops, kinds)
        rows.append(row)
    result = {
        "config": dataclasses.asdict(config),
        "provenance": provenance(),
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


# (label, LG-FG-A stage, BP stage): the stages of the two steps, side by side.
STAGES = (
    ("noise", "lg-fg-a noise", None),
    ("forward pass and local losses", "lg-fg-a forward", "bp forward"),
    ("tangent (jvp − forward)", "lg-fg-a jvp", None),
    ("backward pass (grad − forward)", None, "bp grad"),
    ("local updates (x ⊗ δ̂, through the norms)", "lg-fg-a updates", None),
    ("head gradients", "lg-fg-a heads", None),
    ("optimizer update (SGD)", "lg-fg-a sgd", "bp sgd"),
)


def _stages(preset: str, batch_size: int, noise: str, x, y, key):
    """The two steps split into stages, each compiled alone on inputs computed beforehand, as
    ``(label, call, flops)``; also both whole steps ("… step (profiled)")."""
    shape = SHAPES[LOCAL_MIXER_PRESETS[preset].dataset]
    model = local_mixer(shape, 10, preset, key=key)
    params = _params(model)
    optimizer = make_optimizer("sgd", 0.01)
    loss = "cross_entropy"

    def directions(m, x, k):
        return activity_directions(m, x, k, noise=noise, shared=False)

    def forward(m, x, y):
        trace = m(x, greedy=True)
        return block_losses(loss, m, trace, y), trace

    def tangent(m, x, y, u):
        return activity_tangents(m, x, y, u, loss=loss, greedy=True)

    def updates(m, trace, d, u):
        return activity_grads(m, trace, d, u, greedy=True, mask=True)

    def heads(m, trace, y):
        return exact_head_grads(loss, m, trace, y)

    def sgd(grads, opt_state, params):
        deltas, opt_state = optimizer.update(grads, opt_state, params)
        return eqx.apply_updates(params, deltas), opt_state

    def bp_forward(m, x, y):
        return jnp.mean(get_loss(loss)(m(x).logits, y))

    bp_grad = eqx.filter_grad(bp_forward)
    u = eqx.filter_jit(directions)(model, x, key)
    _, d, trace = eqx.filter_jit(tangent)(model, x, y, u)
    grads = bp_grad(model, x, y)
    opt_state = optimizer.init(params)
    linear = [a for a in trace.linear if a is not None]
    heads_and_outputs = [
        (head, out)
        for head, out in zip(model.heads, trace.outputs)
        if isinstance(head, ReplicatedHead)
    ]
    outputs = [out for _, out in heads_and_outputs]

    def norms(linear):
        return [local_norm(a) for a in linear]

    def norms_jvp(linear):
        return jax.jvp(norms, (linear,), (linear,))[1]

    def local_losses_jvp(outputs, y):
        def losses(outputs):
            return [
                head.replicated_losses(loss, out, y)
                for (head, _), out in zip(heads_and_outputs, outputs)
            ]

        return jax.jvp(losses, (outputs,), (outputs,))[1]

    stages = {
        "lg-fg-a noise": (directions, model, x, key),
        "lg-fg-a forward": (forward, model, x, y),
        "lg-fg-a jvp": (tangent, model, x, y, u),
        "lg-fg-a updates": (updates, model, trace, d, u),
        "lg-fg-a heads": (heads, model, trace, y),
        "lg-fg-a sgd": (sgd, grads, opt_state, params),
        "bp forward": (bp_forward, model, x, y),
        "bp grad": (bp_grad, model, x, y),
        "bp sgd": (sgd, grads, opt_state, params),
        "norms alone": (norms, linear),
        "norms jvp alone": (norms_jvp, linear),
        "local losses jvp alone": (local_losses_jvp, outputs, y),
    }
    for method in ("bp", "lg-fg-a"):
        estimator = make_estimator(method, noise=noise) if method != "bp" else make_estimator("bp")
        state = TrainState.start(model, optimizer.init(params), estimator.init(model, key=key))
        stages[f"{method} step (profiled)"] = (
            lambda s, x, y, k, e=estimator: train_step(e, optimizer, s, x, y, k)[0],
            state,
            x,
            y,
            key,
        )
    out = []
    for label, (fn, *args) in stages.items():
        compiled = eqx.filter_jit(fn).lower(*args).compile()
        out.append((label, lambda c=compiled, a=args: c(*a), compiled_matmul_flops(fn, *args)))
    return out


def _profile_rows(preset: str, seconds: dict, flops: dict, kinds: dict) -> dict:
    """The profile of one preset: per stage (ms, GFLOP) of each step, the ops alone, the FLOP
    floor and each whole step's time by kind of op."""
    ms = lambda label: 1e3 * seconds[preset, label]  # noqa: E731
    gf = lambda label: flops[preset, label] / 1e9  # noqa: E731
    differences = {"lg-fg-a jvp": "lg-fg-a forward", "bp grad": "bp forward"}
    stages = []
    for name, fg, bp in STAGES:
        entry = {"stage": name}
        for key, label in (("lg-fg-a", fg), ("bp", bp)):
            if label is None:
                entry[key] = None
                continue
            base = differences.get(label)
            entry[key] = {
                "ms": ms(label) - (ms(base) if base else 0.0),
                "gflop": gf(label) - (gf(base) if base else 0.0),
            }
        stages.append(entry)
    sums = {
        key: sum(e[key]["ms"] for e in stages if e[key] is not None) for key in ("lg-fg-a", "bp")
    }
    # The matrix products of the whole steps: what a compute-bound machine pays.
    compute = {m: gf(f"{m} step (profiled)") for m in ("lg-fg-a", "bp")}
    return {
        "stages": stages,
        "sum of stages ms": sums,
        "whole step ms": {m: ms(f"{m} step (profiled)") for m in ("lg-fg-a", "bp")},
        "whole step gflop": {m: gf(f"{m} step (profiled)") for m in ("lg-fg-a", "bp")},
        "alone": {
            label: {"ms": ms(label), "gflop": gf(label)}
            for label in ("norms alone", "norms jvp alone", "local losses jvp alone")
        },
        "matmul flop ratio (lg-fg-a / bp)": compute["lg-fg-a"] / compute["bp"],
        "time ratio of stage sums (lg-fg-a / bp)": sums["lg-fg-a"] / sums["bp"],
        "time by op kind ms": {
            m: {k: 1e3 * v for k, v in sorted(kinds[preset, m].items(), key=lambda kv: -kv[1])}
            for m in ("lg-fg-a", "bp")
        },
    }


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
    for r in result["rows"]:
        if "profile" in r:
            lines += ["", *_profile_markdown(r["preset"], r["profile"], config)]
    return "\n".join(lines)


def _profile_markdown(preset: str, p: dict, config: BenchConfig) -> list[str]:
    cell = lambda e: "– | –" if e is None else f"{e['ms']:.1f} | {e['gflop']:.3f}"  # noqa: E731
    lines = [
        f"**{preset}: where a step's time goes** (batch {config.batch_size}, LG-FG-A with "
        f"{config.noise} noise; each stage compiled alone on inputs computed beforehand; "
        "GFLOP: the compiled program's matrix products)",
        "",
        "| stage | LG-FG-A ms | GFLOP | BP ms | GFLOP |",
        "|---|---:|---:|---:|---:|",
    ]
    for e in p["stages"]:
        lines.append(f"| {e['stage']} | {cell(e['lg-fg-a'])} | {cell(e['bp'])} |")
    sums, whole, work = p["sum of stages ms"], p["whole step ms"], p["whole step gflop"]
    lines += [
        f"| sum of the stages | {sums['lg-fg-a']:.1f} | | {sums['bp']:.1f} | |",
        f"| whole step, one program | {whole['lg-fg-a']:.1f} | {work['lg-fg-a']:.3f} | "
        f"{whole['bp']:.1f} | {work['bp']:.3f} |",
        "",
        "Alone: "
        + "; ".join(f"{k} {v['ms']:.1f} ms ({v['gflop']:.3f} GFLOP)" for k, v in p["alone"].items())
        + ".",
        "",
        f"Matrix-product FLOPs of the whole steps, LG-FG-A / BP (the floor of a compute-bound "
        f"machine): {p['matmul flop ratio (lg-fg-a / bp)']:.2f}; time ratio of the stage sums: "
        f"{p['time ratio of stage sums (lg-fg-a / bp)']:.2f}; of the whole steps: "
        f"{whole['lg-fg-a'] / whole['bp']:.2f}.",
        "",
        "| whole step, time by kind of XLA op (ms) | LG-FG-A | BP |",
        "|---|---:|---:|",
    ]
    kinds = p["time by op kind ms"]
    for kind in sorted(set(kinds["lg-fg-a"]) | set(kinds["bp"])):
        lines.append(
            f"| {kind} | {kinds['lg-fg-a'].get(kind, 0.0):.1f} | {kinds['bp'].get(kind, 0.0):.1f} |"
        )
    return lines


def _cli() -> BenchConfig:
    defaults = BenchConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    prepare_parser(parser)
    parser.add_argument("--presets", nargs="+", default=list(defaults.presets))
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--no-naive", action="store_true", help="skip the naive replicated losses")
    parser.add_argument("--no-profile", action="store_true", help="skip the per-stage profile")
    parser.add_argument(
        "--noise", default=defaults.noise, help="LG-FG-A's noise in the profile (or rademacher)"
    )
    parser.add_argument("--number", type=int, default=defaults.number, help="steps per timed round")
    parser.add_argument("--repeats", type=int, default=defaults.repeats, help="timed rounds")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", help="folder for bench_localmixer.json and .md")
    args = parser.parse_args()
    return BenchConfig(
        presets=tuple(args.presets),
        batch_size=args.batch_size,
        naive=not args.no_naive,
        profile=not args.no_profile,
        noise=args.noise,
        number=args.number,
        repeats=args.repeats,
        seed=args.seed,
        out=args.out,
    )


if __name__ == "__main__":
    run_main(lambda: main(_cli()))
