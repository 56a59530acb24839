"""The waveform engine against Diffrax's stepping, side by side in one run.

    python -m sims.bench_engine [--quick] [--out results/bench_engine]

(a) **Cost** at the README main job's settings (MNIST-1D, MLP 40-64-64-10, batch 20, T = 10 τ_p
with a transition of τ_p, sum-of-sinusoids perturbation σ = 0.01, dt0 = 0.05, continuous FG-A
with the ReLU mask, η = 30): seconds per presentation with the old default (Heun at dt0) and the
new (``solver=None``: the waveform engine), each presentation inside compiled chunks as
``simulate`` runs them, against one discrete FG-A step of the same network and batch, timed
both as ``ctlearn train`` and the main job take it (one jitted ``train_step`` per batch,
dispatch included) and inside one compiled loop. Target: a presentation ≤ 10 discrete steps.
(b) **Accuracy**: for every rule, perturbation process and non-ideality the engine serves, the
relative error of the weight change Δw over single presentations (each started from the same
state) against Heun at dt0/8; the settings it does not serve are listed with the reason it gives
(they fall back to Heun, whose error is shown). Target: ≤ 5e-3.

Writes ``summary.json`` (with the command, commit and machine) and ``summary.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import warnings
from pathlib import Path

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import ctlearn.dynamics as ct
from ctlearn._atomic import atomic_write_text
from ctlearn.data import load_dataset
from ctlearn.diagnostics import time_side_by_side
from ctlearn.dynamics._engine import plan, waveform_obstacle
from ctlearn.estimators import make_estimator
from ctlearn.provenance import provenance
from ctlearn.train import TrainState, train_step
from models import mlp

COST_TARGET = 10.0
ACCURACY_TARGET = 5e-3
REFINEMENT = 8


@dataclasses.dataclass(frozen=True)
class EngineBenchConfig:
    """``presentations`` per timed chunk; ``accuracy_presentations`` started from the reference's
    own trajectory per accuracy case; timings are the median of ``repeats`` interleaved rounds of
    ``number`` calls; ``inner`` discrete steps per compiled loop."""

    widths: tuple[int, ...] = (64, 64)
    batch_size: int = 20
    eta: float = 30.0
    sigma: float = 0.01
    tau_p: float = 1.0
    duration: float = 10.0
    transition: float = 1.0
    dt0: float = 0.05
    presentations: int = 20
    accuracy_presentations: int = 3
    number: int = 3
    repeats: int = 5
    inner: int = 200
    seed: int = 0
    out: str = "results/bench_engine"

    def __post_init__(self):
        for name in ("presentations", "accuracy_presentations", "number", "repeats", "inner"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {name}={value!r}")


def _stream(data, config: EngineBenchConfig, count: int) -> ct.Presentations:
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(data.train))[: count * config.batch_size]
    x = data.train.x[order].reshape((count, config.batch_size) + data.input_shape)
    y = data.train.y[order].reshape((count, config.batch_size))
    return ct.Presentations(
        jnp.asarray(x), jnp.asarray(y), duration=config.duration, transition=config.transition
    )


def _model(data, config: EngineBenchConfig, local_heads=False):
    return mlp(data.input_shape, data.num_classes, config.widths, local_heads=local_heads,
               key=jax.random.key(config.seed))  # fmt: skip


def main_job_simulator(config: EngineBenchConfig, solver=None) -> ct.Simulator:
    return ct.Simulator(
        ct.FGARule(lr=config.eta, mask=True),
        ct.Sinusoids(config.sigma, config.tau_p, components=4),
        dt0=config.dt0,
        solver=solver,
    )


def cost(config: EngineBenchConfig, data) -> dict:
    """(a): milliseconds per presentation (old and new paths) and per discrete FG-A step."""
    stream = _stream(data, config, config.presentations)
    model = _model(data, config)
    key = jax.random.key(config.seed + 1)
    calls, plans = {}, {}
    for name, solver in (("heun", diffrax.Heun()), ("waveform", None)):
        bound, state = ct.prepare(main_job_simulator(config, solver), model, stream, key=key)
        plans[name] = bound
        calls[name] = (
            lambda b=bound, s=state: ct.run_presentations(b, s, stream, 0, stream.num, key)
        )
    estimator, optimizer = make_estimator("fg-a", mask=True), optax.sgd(1e-3)
    train = TrainState.start(model, optimizer.init(eqx.filter(model, eqx.is_inexact_array)), None)
    x, y = stream.x[0], stream.y[0]

    @eqx.filter_jit
    def step_loop(train):
        def body(s, _):
            return train_step(estimator, optimizer, s, x, y, key)[0], None

        return jax.lax.scan(body, train, None, length=config.inner)[0]

    calls["step"] = lambda: train_step(estimator, optimizer, train, x, y, key)
    calls["step_loop"] = lambda: step_loop(train)
    seconds = time_side_by_side(calls, number=config.number, repeats=config.repeats)
    per = {n: 1e3 * seconds[n] / config.presentations for n in ("heun", "waveform")}
    step_ms = 1e3 * seconds["step"]
    loop_ms = 1e3 * seconds["step_loop"] / config.inner
    return {
        "presentation_ms": per,
        "discrete_step_ms": step_ms,
        "discrete_step_in_loop_ms": loop_ms,
        "steps_per_presentation": {n: v / step_ms for n, v in per.items()},
        "loop_steps_per_presentation": {n: v / loop_ms for n, v in per.items()},
        "speedup": per["heun"] / per["waveform"],
        "met": per["waveform"] / step_ms <= COST_TARGET,
    }


def accuracy_cases(config: EngineBenchConfig) -> dict[str, tuple]:
    """name → (rule, perturbation, neurons, hardware, local heads)."""
    s, tau = config.sigma, config.tau_p
    sinusoids, spline = ct.Sinusoids(s, tau), ct.CubicSpline(s, tau)
    eta = config.eta
    instant = ct.Instantaneous()
    return {
        "FG-A mask, sinusoids": (ct.FGARule(lr=eta, mask=True), sinusoids, instant, (), False),
        "FG-A, cubic spline": (ct.FGARule(lr=eta), spline, instant, (), False),
        "FG-A measured rate": (ct.FGARule(lr=eta, rate="measured"), sinusoids, instant, (), False),
        "LG-FG-A, local heads": (ct.LGFGARule(lr=eta), sinusoids, instant, (), True),
        "FG-W": (ct.FGWRule(lr=eta), sinusoids, instant, (), False),
        "LG-FG-W, local heads": (ct.LGFGWRule(lr=eta), sinusoids, instant, (), True),
        "DFA": (ct.DFARule(lr=0.3), None, instant, (), False),
        "FDFA": (ct.FDFARule(lr=0.3, feedback_rate=1.0), ct.Sinusoids(0.1, tau), instant, (),
                 False),  # fmt: skip
        "gradient flow": (ct.GradientFlow(lr=0.3), None, instant, (), False),
        "FG-A + mismatch": (ct.FGARule(lr=eta, mask=True), sinusoids, instant,
                            (ct.Mismatch(0.3, 0.05, 0.3),), False),  # fmt: skip
        "FG-A + quantisation (10 bits)": (ct.FGARule(lr=eta, mask=True), sinusoids, instant,
                                          (ct.Quantisation(10, 2.0),), False),  # fmt: skip
        "FG-A + injection limits": (ct.FGARule(lr=eta, mask=True), sinusoids, instant,
                                    (ct.Injection(0.02, 0.1),), False),  # fmt: skip
        "FG-A + weight decay (drift, no noise)": (ct.FGARule(lr=eta, mask=True), sinusoids,
                                                  instant, (ct.WeightDrift(tau=20.0),), False),  # fmt: skip
        "FG-A, leaky neurons": (ct.FGARule(lr=eta, mask=True), sinusoids, ct.Leaky(0.2), (),
                                False),  # fmt: skip
        "FG-A + differentiator": (ct.FGARule(lr=eta, mask=True), sinusoids, instant,
                                  (ct.Differentiator(0.05),), False),  # fmt: skip
        "FG-A + activity noise": (ct.FGARule(lr=eta, mask=True), sinusoids, instant,
                                  (ct.ActivityNoise(0.001, 0.1),), False),  # fmt: skip
        "FG-A, integrated OU": (ct.FGARule(lr=eta, mask=True), ct.IntegratedOU(s, tau),
                                instant, (), False),  # fmt: skip
    }


def _relative(a, b) -> float:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    diff = sum(float(jnp.sum((u - v) ** 2)) for u, v in zip(la, lb))
    return (diff / sum(float(jnp.sum(v**2)) for v in lb)) ** 0.5


def accuracy(config: EngineBenchConfig, data) -> list[dict]:
    """(b): per case, the engine that serves it and the relative error of Δw per presentation
    against Heun at dt0/8, each presentation started from the reference's own state."""
    stream = _stream(data, config, config.accuracy_presentations)
    rows = []
    for name, (rule, perturbation, neurons, hardware, heads) in accuracy_cases(config).items():
        model = _model(data, config, local_heads=heads)
        fast = ct.Simulator(rule, perturbation, neurons, dt0=config.dt0, hardware=hardware)
        reference = dataclasses.replace(
            fast, solver=diffrax.Heun(), dt0=config.dt0 / REFINEMENT, max_steps=16384
        )
        key = jax.random.key(config.seed + 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            engine = plan(fast, stream).engine
            bound_fast, state = ct.prepare(fast, model, stream, key=key)
        bound_ref, _ = ct.prepare(reference, model, stream, key=key)
        errors = []
        for k in range(stream.num):
            got, _ = ct.run_presentations(bound_fast, state, stream, k, 1, key)
            want, _ = ct.run_presentations(bound_ref, state, stream, k, 1, key)
            errors.append(_relative(got.delta, want.delta))
            state = dataclasses.replace(want, delta=jax.tree.map(jnp.zeros_like, want.delta))
        rows.append(
            {
                "case": name,
                "engine": engine,
                "reason": waveform_obstacle(fast),
                "max_relative_error": max(errors),
                "mean_relative_error": float(np.mean(errors)),
                "met": max(errors) <= ACCURACY_TARGET,
            }
        )
        print(f"  {name}: {engine}, max rel. error {max(errors):.2e}", flush=True)
    return rows


def markdown(summary: dict) -> str:
    c = summary["cost"]
    lines = [
        "# Waveform engine against Diffrax stepping",
        "",
        f"Command: `{summary['provenance']['command']}`; commit "
        f"`{summary['provenance']['commit']}`; machine: {summary['provenance']['machine']}.",
        "",
        "## Cost at the main job's settings",
        "",
        "| path | ms per presentation | discrete steps (per call) | discrete steps (in loop) |",
        "|---|---:|---:|---:|",
    ]
    for name in ("heun", "waveform"):
        lines.append(
            f"| {name} | {c['presentation_ms'][name]:.2f} | "
            f"{c['steps_per_presentation'][name]:.1f} | "
            f"{c['loop_steps_per_presentation'][name]:.1f} |"
        )
    lines += [
        "",
        f"One discrete FG-A step: {c['discrete_step_ms']:.3f} ms per jitted call, "
        f"{c['discrete_step_in_loop_ms']:.3f} ms inside a compiled loop. Waveform engine "
        f"{c['speedup']:.2f}× faster than Heun; target ≤ {COST_TARGET:g} steps per presentation "
        f"{'met' if c['met'] else 'not met'}.",
        "",
        f"## Δw per presentation against Heun at dt0/{REFINEMENT}",
        "",
        "| case | engine | max rel. error | mean rel. error | ≤ 5e-3 | why not the waveform engine |",
        "|---|---|---:|---:|---|---|",
    ]
    for r in summary["accuracy"]:
        lines.append(
            f"| {r['case']} | {r['engine']} | {r['max_relative_error']:.2e} | "
            f"{r['mean_relative_error']:.2e} | {'yes' if r['met'] else 'no'} | "
            f"{r['reason'] or ''} |"
        )
    return "\n".join(lines) + "\n"


def main(config: EngineBenchConfig) -> dict:
    data = load_dataset("mnist1d")
    print("(a) cost at the main job's settings", flush=True)
    summary = {"config": dataclasses.asdict(config), "cost": cost(config, data)}
    print(json.dumps(summary["cost"], indent=2), flush=True)
    print("(b) accuracy of Δw per presentation", flush=True)
    summary["accuracy"] = accuracy(config, data)
    summary["provenance"] = provenance()
    out = Path(config.out)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out / "summary.md", markdown(summary))
    print(markdown(summary))
    return summary


def _cli() -> EngineBenchConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few presentations and rounds")
    parser.add_argument("--out", default=EngineBenchConfig.out)
    args = parser.parse_args()
    if args.quick:
        return EngineBenchConfig(
            presentations=4, accuracy_presentations=1, number=1, repeats=2, inner=20,
            out=args.out,
        )  # fmt: skip
    return EngineBenchConfig(out=args.out)


if __name__ == "__main__":
    main(_cli())
