"""The integration paths of a presentation, side by side in one run.

    python -m sims.bench_engine [--quick] [--out results/bench_engine]

(a) **Cost** at the README main job's settings (MNIST-1D, MLP 40-64-64-10, batch 20, T = 10 τ_p
with a transition of τ_p, sum-of-sinusoids perturbation σ = 0.01, dt0 = 0.05, continuous FG-A
with the ReLU mask, η = 30): milliseconds per presentation, each inside compiled chunks as
``simulate`` runs them, for plain Heun at dt0 (``solver=diffrax.Heun()``), the default
(``solver=None``: here Heun in PEC mode, one evaluation per step, reading the perturbation from
a table made once per presentation) and the waveform engine (``solver=WaveformRelaxation()``,
two sweeps per window of τ_p/2, and one window per part of the presentation), against one
discrete FG-A step of the same network and batch, timed both as ``ctlearn train`` and the main
job take it (one jitted ``train_step`` per batch, dispatch included) and inside one compiled
loop. Target: a presentation ≤ 10 discrete steps.
(b) **Accuracy**: for every rule, perturbation process, neuron model and non-ideality, the
relative error of the weight change Δw over single presentations (each started from the
reference's own state) against Heun at a step 8 times finer, for the default path (whose step
is dt0/k where a part of the state is stiff against dt0: ``ct.refinement``) on the main job's
ReLU network and on the same network with softplus, and for the waveform engine where it serves
(the reason where it does not). Target: ≤ 5e-3.
(c) **Convergence** of the default path in the time step, for the main job's ReLU network and
for the same network with a smooth activation (softplus), against Heun at dt0/32.
(d) **The floor** of (a) on this machine: XLA's FLOP count of one evaluation of the vector field
and of one discrete FG-A step, and, timed side by side with the default path and the discrete
step, every evaluation of a presentation (one per time point of its grid) in one batched call,
with no step waiting for the one before: the least any method that samples the presentation at
those time points can cost here.
(e) **Reproducibility of the ReLU reference.** With the ReLU mask, a unit's learning switches on
and off with the sign of its pre-activation, so the vector field is discontinuous; where learning
drives a unit back to its threshold the state slides along it (a unit held at zero). Δw of the
main job's presentations at dt0/s for growing s, each against dt0/REPRODUCE_REFERENCE, in float32
(as every path runs) and in float64: whether the reference converges or jumps between outcomes.

(f) **The cost–accuracy frontier on the ReLU main job.** Heun in PEC mode and Heun at dt0/s for
growing s, each presentation's Δw against Heun at dt0/FRONTIER_REFERENCE (from that reference's
own state), beside the vector-field evaluations each spends per presentation: whether any
fixed-step method meets the accuracy target on every presentation, at what cost, and how far the
issue's own reference (Heun at dt0/8) stands from a finer one.

Writes ``summary.json`` (with the command, commit and machine) and ``summary.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import warnings
from pathlib import Path

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import ctlearn.dynamics as ct
from ctlearn._usererror import prepare_parser, run_main
from ctlearn.data import load_dataset
from ctlearn.diagnostics import time_side_by_side
from ctlearn.dynamics import plan
from ctlearn.files import atomic_write_text, read_json_object
from ctlearn.provenance import provenance
from models import mlp

from ._mainjob import (
    MainJob,
    discrete_step,
    discrete_step_calls,
    main_job_model,
    main_job_simulator,
    main_job_stream,
)

COST_TARGET = 10.0
ACCURACY_TARGET = 5e-3
REFINEMENT = 8
# (c): the steps whose Δw error is measured against a reference CONVERGENCE_REFERENCE times finer
# than dt0, for the ReLU network and for the same network with a smooth activation.
CONVERGENCE_STEPS = (1, 2, 4)
CONVERGENCE_REFERENCE = 32
CONVERGENCE_ACTIVATIONS = ("relu", "softplus")
# (e): the steps dt0/s and the reference dt0/REPRODUCE_REFERENCE, in both precisions.
REPRODUCE_STEPS = (8, 16, 32, 64)
REPRODUCE_REFERENCE = 256
PRECISIONS = ("float32", "float64")
# (f): the steps dt0/s of each fixed-step method and the reference dt0/FRONTIER_REFERENCE.
FRONTIER_STEPS = (1, 2, 4, 8)
FRONTIER_REFERENCE = 32


def paths(config: EngineBenchConfig) -> dict:
    """The integration paths timed in (a): plain Heun, the default, the waveform engine over its
    default windows (τ_p/2) and over one window per presentation part (every time point of the
    presentation in one batched evaluation)."""
    return {
        "heun": diffrax.Heun(),
        "default": None,
        "waveform": ct.WaveformRelaxation(sweeps=2),
        "waveform, whole presentation": ct.WaveformRelaxation(sweeps=2, window=config.duration),
    }


@dataclasses.dataclass(frozen=True)
class EngineBenchConfig(MainJob):
    """The main job's circuit (``MainJob``'s fields) and the bench's own settings:
    ``presentations`` per timed chunk; ``accuracy_presentations`` started from the reference's
    own trajectory per accuracy case; timings are the median of ``repeats`` interleaved rounds of
    ``number`` calls; ``inner`` discrete steps per compiled loop."""

    presentations: int = 20
    accuracy_presentations: int = 3
    number: int = 3
    repeats: int = 5
    inner: int = 200
    out: str = "results/bench_engine"

    def __post_init__(self):
        for name in ("presentations", "accuracy_presentations", "number", "repeats", "inner"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {name}={value!r}")


def cost(config: EngineBenchConfig, data) -> dict:
    """(a): milliseconds per presentation of each path, and its largest Δw error over the first
    three presentations; milliseconds per discrete FG-A step."""
    stream = main_job_stream(data, config, config.presentations)
    model = main_job_model(data, config)
    key = jax.random.key(config.seed + 1)
    calls, errors = {}, {}
    reference = dataclasses.replace(
        main_job_simulator(config, diffrax.Heun()), dt0=config.dt0 / REFINEMENT, max_steps=16384
    )
    for name, solver in paths(config).items():
        simulator = main_job_simulator(config, solver)
        bound, state = ct.prepare(simulator, model, stream, key=key)
        errors[name] = max(_errors(simulator, reference, model, stream, key, count=3))
        calls[name] = lambda b=bound, s=state: ct.run_presentations(
            b, s, stream, 0, stream.num, key
        )
    calls.update(discrete_step_calls(model, stream.x[0], stream.y[0], key, config.inner))
    seconds = time_side_by_side(calls, number=config.number, repeats=config.repeats)
    per = {n: 1e3 * seconds[n] / config.presentations for n in paths(config)}
    step_ms = 1e3 * seconds["step"]
    loop_ms = 1e3 * seconds["step_loop"] / config.inner
    return {
        "presentation_ms": per,
        "max_relative_error": errors,
        "discrete_step_ms": step_ms,
        "discrete_step_in_loop_ms": loop_ms,
        "steps_per_presentation": {n: v / step_ms for n, v in per.items()},
        "loop_steps_per_presentation": {n: v / loop_ms for n, v in per.items()},
        "speedup_over_heun": {n: per["heun"] / v for n, v in per.items()},
        "met": {n: v / step_ms <= COST_TARGET for n, v in per.items()},
    }


def accuracy_cases(config: EngineBenchConfig) -> dict[str, tuple]:
    """name → (rule, perturbation, neurons, hardware, local heads)."""
    s, tau = config.sigma, config.tau_p
    sinusoids, spline = ct.Sinusoids(s, tau), ct.CubicSpline(s, tau)
    eta = config.lr
    instant = ct.Instantaneous()

    def masked(*hardware, neurons=instant, lr=eta):
        """Continuous FG-A with the ReLU mask and the sinusoids, on a circuit with ``hardware``."""
        return ct.FGARule(lr=lr, mask=True), sinusoids, neurons, hardware, False

    return {
        "FG-A mask, sinusoids": masked(),
        "FG-A, cubic spline": (ct.FGARule(lr=eta), spline, instant, (), False),
        "FG-A measured rate": (ct.FGARule(lr=eta, rate="measured"), sinusoids, instant, (), False),
        "LG-FG-A, local heads": (ct.LGFGARule(lr=eta), sinusoids, instant, (), True),
        "FG-W": (ct.FGWRule(lr=eta), sinusoids, instant, (), False),
        "LG-FG-W, local heads": (ct.LGFGWRule(lr=eta), sinusoids, instant, (), True),
        "DFA": (ct.DFARule(lr=0.3), None, instant, (), False),
        "FDFA": (
            ct.FDFARule(lr=0.3, feedback_lr=1.0),
            ct.Sinusoids(0.1, tau),
            instant,
            (),
            False,
        ),  # fmt: skip
        "gradient flow": (ct.GradientFlow(lr=0.3), None, instant, (), False),
        "FG-A + mismatch": masked(ct.Mismatch(0.3, 0.05, 0.3)),
        "FG-A + quantisation (10 bits)": masked(ct.Quantisation(10, 2.0)),
        "FG-A + injection limits": masked(ct.Injection(0.02, 0.1)),
        "FG-A + weight decay (drift, no noise)": masked(ct.WeightDrift(tau=20.0)),
        "FG-A, leaky neurons": masked(neurons=ct.Leaky(0.2)),
        "FG-A + differentiator": masked(ct.Differentiator(0.05)),
        # The two stateful cases above diverge within their first presentation at η = 30 on
        # the default path (their Δw is not finite); the same circuits at a tenth of η:
        "FG-A, leaky neurons (η/10)": masked(neurons=ct.Leaky(0.2), lr=eta / 10),
        "FG-A + differentiator (η/10)": masked(ct.Differentiator(0.05), lr=eta / 10),
        "FG-A + activity noise": masked(ct.ActivityNoise(0.001, 0.1)),
        "FG-A, integrated OU": (
            ct.FGARule(lr=eta, mask=True),
            ct.IntegratedOU(s, tau),
            instant,
            (),
            False,
        ),  # fmt: skip
    }


def _relative(a, b) -> float:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    diff = sum(float(jnp.sum((u - v) ** 2)) for u, v in zip(la, lb))
    return (diff / sum(float(jnp.sum(v**2)) for v in lb)) ** 0.5


def _errors(fast, reference, model, stream, key, count=None, brownian=None) -> list[float]:
    """Δw relative errors of the first ``count`` presentations (all by default), both paths
    started from the reference's state; ``brownian="tree"`` drives both paths' noise by the
    same resolution-independent Brownian path (the default fixed-step path draws one increment
    per step, so two step sizes would see different noise)."""
    bound_fast, state = ct.prepare(fast, model, stream, key=key)
    bound_ref, _ = ct.prepare(reference, model, stream, key=key)
    if brownian is not None:
        bound_fast, bound_ref = (
            dataclasses.replace(b, plan=dataclasses.replace(b.plan, brownian=brownian))
            for b in (bound_fast, bound_ref)
        )
    errors = []
    for k in range(stream.num if count is None else count):
        got, metrics = ct.run_presentations(bound_fast, state, stream, k, 1, key)
        want, _ = ct.run_presentations(bound_ref, state, stream, k, 1, key)
        failed = bool(metrics[3].any())
        errors.append(float("inf") if failed else _relative(got.delta, want.delta))
        state = dataclasses.replace(want, delta=jax.tree.map(jnp.zeros_like, want.delta))
    return errors


def _smooth(rule):
    """``rule`` for the softplus network: the ReLU mask has no meaning there."""
    return dataclasses.replace(rule, mask=False) if getattr(rule, "mask", False) else rule


def accuracy(config: EngineBenchConfig, data, done=None) -> list[dict]:
    """(b): per case, the relative error of Δw per presentation of the default path against
    Heun at a step REFINEMENT times finer than the default's own (which divides dt0 where a
    part of the state is stiff against it: ``ct.refinement``), on the main job's ReLU network
    and on the same network with a smooth activation (softplus, where the ReLU kinks do not
    limit the order); and of the waveform engine at dt0 (or why it cannot serve). ``done(rows)``
    after each case (the summary is written as it grows)."""
    stream = main_job_stream(data, config, config.accuracy_presentations)
    rows = []
    for name, (rule, perturbation, neurons, hardware, heads) in accuracy_cases(config).items():
        row = {"case": name}
        key = jax.random.key(config.seed + 2)
        for activation in CONVERGENCE_ACTIVATIONS:
            smooth = activation != "relu"
            model = mlp(data.input_shape, data.num_classes, config.widths, activation=activation,
                        local_heads=heads, key=jax.random.key(config.seed))  # fmt: skip
            default = ct.Simulator(_smooth(rule) if smooth else rule, perturbation, neurons,
                                   dt0=config.dt0, hardware=hardware)  # fmt: skip
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                chosen = plan(default, stream, model)
                step = min(config.dt0, chosen.dt0)
                reference = dataclasses.replace(
                    default, solver=diffrax.Heun(), dt0=step / REFINEMENT,
                    max_steps=4 * REFINEMENT * round(config.duration / step),
                )  # fmt: skip
                errors = _errors(default, reference, model, stream, key, brownian="tree")
            suffix = "_smooth" if smooth else ""
            row["default_error" + suffix] = max(errors)
            row["default_substeps" + suffix] = round(config.dt0 / step)
            if not smooth:
                row["default_path"] = type(chosen.solver).__name__ + (
                    ", tabulated" if chosen.tabulate else ""
                )
                waveform = dataclasses.replace(default, solver=paths(config)["waveform"])
                reference = dataclasses.replace(
                    default, solver=diffrax.Heun(), dt0=config.dt0 / REFINEMENT, max_steps=16384
                )
                try:
                    errors = _errors(waveform, reference, model, stream, key)
                    row["waveform_error"], row["waveform_obstacle"] = max(errors), None
                except ValueError as error:
                    row["waveform_error"] = None
                    row["waveform_obstacle"] = str(error).split(";")[0]
            jax.clear_caches()  # dozens of compiled cases in one process exhaust compiler memory
        rows.append(row)
        if done is not None:
            done(rows)
        print(f"  {name}: default {row['default_error']:.2e} (dt0/{row['default_substeps']}), "
              f"smooth {row['default_error_smooth']:.2e}, waveform "
              f"{row['waveform_error'] if row['waveform_error'] is not None else '-'}",
              flush=True)  # fmt: skip
    return rows


def convergence(config: EngineBenchConfig, data) -> dict:
    """(c): the default path's Δw error per presentation at dt0/s for s in CONVERGENCE_STEPS
    against Heun at dt0/CONVERGENCE_REFERENCE, for the main job's ReLU network and for the same
    network with a smooth activation (the ReLU kinks, where ẏ and ṙ jump, are what limit the
    order); the observed order is log2 of the ratio of median errors between successive steps."""
    stream = main_job_stream(data, config, config.accuracy_presentations)
    key = jax.random.key(config.seed + 3)
    out = {}
    for activation in CONVERGENCE_ACTIVATIONS:
        model = mlp(data.input_shape, data.num_classes, config.widths, activation=activation,
                    local_heads=False, key=jax.random.key(config.seed))  # fmt: skip
        base = ct.Simulator(
            ct.FGARule(lr=config.lr, mask=activation == "relu"),
            ct.Sinusoids(config.sigma, config.tau_p, components=4),
            dt0=config.dt0,
            max_steps=65536,
        )
        reference = dataclasses.replace(
            base, solver=diffrax.Heun(), dt0=config.dt0 / CONVERGENCE_REFERENCE
        )
        rows = []
        for s in CONVERGENCE_STEPS:
            errors = _errors(dataclasses.replace(base, dt0=config.dt0 / s), reference, model,
                             stream, key)  # fmt: skip
            rows.append({"refinement": s, "median": float(np.median(errors)),
                         "max": max(errors), "errors": errors})  # fmt: skip
        for coarse, fine in zip(rows, rows[1:]):
            ratio = coarse["median"] / fine["median"]
            coarse["order"] = float(
                np.log2(ratio) / np.log2(fine["refinement"] / coarse["refinement"])
            )
        out[activation] = rows
        print(f"  {activation}: " + ", ".join(f"dt0/{r['refinement']} {r['median']:.2e}"
                                             for r in rows), flush=True)  # fmt: skip
        jax.clear_caches()
    return out


def floor(config: EngineBenchConfig, data) -> dict:
    """(d): FLOPs (XLA's count) of one evaluation of the default path's vector field and of one
    discrete FG-A step; milliseconds per call, side by side, of the default path's presentation,
    of one evaluation, of all the presentation's evaluations in one batched call (vmapped over
    its grid's time points, the perturbation read from its table as the default path reads it)
    and of one discrete step."""
    stream = main_job_stream(data, config, config.presentations)
    model = main_job_model(data, config)
    key = jax.random.key(config.seed + 1)
    bound, state = ct.prepare(main_job_simulator(config), model, stream, key=key)
    y, args = ct.split_state(bound.simulator, state, stream, 0)
    step = bound.plan.dt0
    points = round(config.duration / step)
    grid = bound.simulator.perturbation.grid(args.perturbation, 0.0, step, points, (0.0,))
    table = jax.tree.map(lambda a: a[:, 0], grid)
    times = jnp.arange(points) * step

    def evaluation(y, args, value, t):
        return bound.vector_field(t, y, args, perturbation=value)

    one = jax.jit(evaluation)
    every = jax.jit(jax.vmap(evaluation, in_axes=(None, None, 0, 0)))
    first = jax.tree.map(lambda a: a[0], table)
    step, train = discrete_step(model, stream.x[0], stream.y[0], key)
    # Timed as (a) and ``ctlearn train`` call it (its own ``eqx.filter_jit``, dispatch
    # included); counted through ``jax.jit`` (the same computation).
    discrete = jax.jit(step)

    def flops(fn, *a) -> float:
        analysis = fn.lower(*a).compile().cost_analysis()
        analysis = analysis[0] if isinstance(analysis, list) else analysis
        return float(analysis["flops"])

    calls = {
        "presentation": lambda: ct.run_presentations(bound, state, stream, 0, stream.num, key),
        "every evaluation at once": lambda: every(y, args, table, times),
        "one evaluation": lambda: one(y, args, first, 0.0),
        "discrete step": lambda: step(train),
    }
    seconds = time_side_by_side(calls, number=config.number, repeats=config.repeats)
    ms = {n: 1e3 * v for n, v in seconds.items()}
    ms["presentation"] /= stream.num
    evaluation_flops = flops(one, y, args, first, 0.0)
    step_flops = flops(discrete, train)
    return {
        "time_points": points,
        "evaluation_flops": evaluation_flops,
        "discrete_step_flops": step_flops,
        "presentation_flops_in_steps": points * evaluation_flops / step_flops,
        "ms": ms,
        "in_steps": {n: v / ms["discrete step"] for n, v in ms.items()},
        "gflops_per_s": {
            "every evaluation at once": points
            * evaluation_flops
            / ms["every evaluation at once"]
            / 1e6,
            "one evaluation": evaluation_flops / ms["one evaluation"] / 1e6,
            "discrete step": step_flops / ms["discrete step"] / 1e6,
        },  # fmt: skip
    }


def reproducibility(config: EngineBenchConfig, data) -> dict:
    """(e): per precision, the relative error of Δw of each of the main job's first presentations
    (each from that precision's reference's own state) at Heun dt0/s, s in REPRODUCE_STEPS, against
    Heun at dt0/REPRODUCE_REFERENCE in the same precision."""
    stream32 = main_job_stream(data, config, config.accuracy_presentations)
    key = jax.random.key(config.seed + 3)
    out = {}
    for precision in PRECISIONS:
        with jax.enable_x64(precision == "float64"):
            dtype = jnp.dtype(precision)
            stream = dataclasses.replace(stream32, x=stream32.x.astype(dtype))
            model = jax.tree.map(
                lambda a, dtype=dtype: a.astype(dtype) if eqx.is_inexact_array(a) else a,
                main_job_model(data, config),
            )

            def simulator(s):
                return dataclasses.replace(
                    main_job_simulator(config, diffrax.Heun()), dt0=config.dt0 / s,
                    max_steps=2 * s * round(config.duration / config.dt0),
                )  # fmt: skip

            reference, state = ct.prepare(simulator(REPRODUCE_REFERENCE), model, stream, key=key)
            bounds = {s: ct.prepare(simulator(s), model, stream, key=key)[0]
                      for s in REPRODUCE_STEPS}  # fmt: skip
            errors = {s: [] for s in REPRODUCE_STEPS}
            for k in range(stream.num):
                want, _ = ct.run_presentations(reference, state, stream, k, 1, key)
                for s, bound in bounds.items():
                    got, _ = ct.run_presentations(bound, state, stream, k, 1, key)
                    errors[s].append(_relative(got.delta, want.delta))
                state = dataclasses.replace(want, delta=jax.tree.map(jnp.zeros_like, want.delta))
            out[precision] = {str(s): e for s, e in errors.items()}
        print(f"  {precision}: " + ", ".join(f"dt0/{s} {max(e):.2e}" for s, e in errors.items()),
              flush=True)  # fmt: skip
        jax.clear_caches()
    return out


def frontier(config: EngineBenchConfig, data) -> list[dict]:
    """(f): per fixed-step method (Heun in PEC mode, the default path's, and Heun) and step
    dt0/s, s in FRONTIER_STEPS, the relative error of Δw of each of the main job's first
    presentations against Heun at dt0/FRONTIER_REFERENCE (each presentation from the
    reference's own state), and the evaluations of the vector field it spends per presentation
    (counted: one per step in PEC mode, two for Heun)."""
    stream = main_job_stream(data, config, config.accuracy_presentations)
    model = main_job_model(data, config)
    key = jax.random.key(config.seed + 3)
    steps = round(config.duration / config.dt0)

    def at(solver, s):
        return dataclasses.replace(
            main_job_simulator(config, solver), dt0=config.dt0 / s,
            max_steps=4 * FRONTIER_REFERENCE * steps,
        )  # fmt: skip

    reference = at(diffrax.Heun(), FRONTIER_REFERENCE)
    rows = []
    for solver, per_step in ((ct.HeunPEC(), 1), (diffrax.Heun(), 2)):
        for s in FRONTIER_STEPS:
            errors = _errors(at(solver, s), reference, model, stream, key)
            rows.append({"method": type(solver).__name__, "refinement": s,
                         "evaluations": per_step * s * steps, "errors": errors})  # fmt: skip
            print(f"  {rows[-1]['method']} dt0/{s}: " + ", ".join(f"{e:.2e}" for e in errors),
                  flush=True)  # fmt: skip
        jax.clear_caches()
    return rows


def markdown(summary: dict) -> str:
    lines = ["# Integration paths of a presentation, side by side", ""]
    for part, stamp in sorted(summary["provenance_by_part"].items()):
        load = ", ".join(f"{v:.2f}" for v in stamp.get("load", ()))
        after = stamp.get("load_after")
        load += (
            "" if after is None else " before, " + ", ".join(f"{v:.2f}" for v in after) + " after"
        )
        lines.append(
            f"- Part ({part}): `{stamp['command']}`; commit `{stamp['commit']}`; machine: "
            f"{stamp['machine']}; load average (1, 5, 15 min) {load or 'not recorded'}."
        )
    if "cost" in summary:
        c = summary["cost"]
        lines += [
            "",
            "## Cost at the main job's settings",
            "",
            "| path | ms per presentation | × Heun's speed | discrete steps (per call) | "
            f"discrete steps (in loop) | max Δw error (3 presentations, vs dt0/{REFINEMENT}) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name in c["presentation_ms"]:
            lines.append(
                f"| {name} | {c['presentation_ms'][name]:.2f} | "
                f"{c['speedup_over_heun'][name]:.2f} | {c['steps_per_presentation'][name]:.1f} | "
                f"{c['loop_steps_per_presentation'][name]:.1f} | "
                f"{c['max_relative_error'][name]:.2e} |"
            )
        lines += [
            "",
            f"One discrete FG-A step: {c['discrete_step_ms']:.3f} ms per jitted call, "
            f"{c['discrete_step_in_loop_ms']:.3f} ms inside a compiled loop. Target ≤ "
            f"{COST_TARGET:g} discrete steps (per call) per presentation: "
            + ", ".join(f"{n} {'met' if ok else 'not met'}" for n, ok in c["met"].items())
            + ". A jitted call's time is mostly dispatch, which varies with the machine's load "
            "(see the load average above); inside a compiled loop the comparison is of compute.",
            "",
        ]
    if "accuracy" in summary:
        lines += [
            f"## Largest Δw error per presentation against Heun at a step {REFINEMENT} times finer",
            "",
            "The default path's step is dt0/k, k > 1 where a part of the state relaxes or learns "
            "fast against dt0 (`ct.refinement`); its reference steps at dt0/(k·"
            f"{REFINEMENT}), the waveform engine's at dt0/{REFINEMENT}. Each case also runs on the "
            "same network with softplus in place of ReLU (and no ReLU mask): where the two columns "
            "differ, the ReLU kinks (ẏ and ṙ jump when a unit switches) limit the error, not the "
            "method. Noise-driven cases run both paths on the same Brownian path (Diffrax's "
            "VirtualBrownianTree from the same key); the default path itself draws one increment "
            "per step, and that its Δw has the reference's mean and spread over keys is held by "
            "`tests/test_dynamics_noise_path.py`. `nan` marks a case whose Δw is not finite.",
            "",
            ""
            if summary.get("complete", True)
            else f"(Partial: the run stopped after {len(summary['accuracy'])} cases.)\n",
            "| case | default path | k | its error (ReLU) | its error (softplus) | "
            "waveform engine's error (ReLU) | why the engine cannot |",
            "|---|---|---:|---:|---:|---:|---|",
        ]
        for r in summary["accuracy"]:
            wave = "" if r["waveform_error"] is None else f"{r['waveform_error']:.2e}"
            lines.append(
                f"| {r['case']} | {r['default_path']} | {r['default_substeps']} | "
                f"{r['default_error']:.2e} | {r['default_error_smooth']:.2e} | {wave} | "
                f"{r['waveform_obstacle'] or ''} |"
            )
        met = [r for r in summary["accuracy"] if r["default_error_smooth"] <= ACCURACY_TARGET]
        met_relu = [r for r in summary["accuracy"] if r["default_error"] <= ACCURACY_TARGET]
        lines += [
            "",
            f"Target ≤ {ACCURACY_TARGET:g}: met by {len(met_relu)} of {len(summary['accuracy'])} "
            f"cases on the ReLU network, {len(met)} on the softplus network.",
        ]
    if summary.get("convergence"):
        lines += [
            "",
            "## Convergence in the time step (main job, default path, against Heun at "
            f"dt0/{CONVERGENCE_REFERENCE})",
            "",
            "| activation | step | median Δw error | max Δw error | observed order |",
            "|---|---|---:|---:|---:|",
        ]
        for activation, rows in summary["convergence"].items():
            for r in rows:
                order = f"{r['order']:.2f}" if "order" in r else ""
                lines.append(
                    f"| {activation} | dt0/{r['refinement']} | {r['median']:.2e} | "
                    f"{r['max']:.2e} | {order} |"
                )
        first = {a: rows[0]["max"] for a, rows in summary["convergence"].items()}
        lines += [
            "",
            "At dt0, the largest error is "
            + ", ".join(f"{v:.2e} for {a}" for a, v in first.items())
            + f" (target {ACCURACY_TARGET:g}: "
            + ", ".join(
                f"{a} {'met' if v <= ACCURACY_TARGET else 'not met'}" for a, v in first.items()
            )  # fmt: skip
            + ").",
        ]
    if summary.get("floor"):
        f = summary["floor"]
        lines += [
            "",
            "## The floor of the cost on this machine (main job, default path)",
            "",
            f"One evaluation of the vector field: {f['evaluation_flops'] / 1e6:.2f} MFLOP; one "
            f"discrete FG-A step: {f['discrete_step_flops'] / 1e6:.2f} MFLOP (XLA's count). A "
            f"presentation evaluates the field at {f['time_points']} time points: the arithmetic "
            f"of {f['presentation_flops_in_steps']:.1f} discrete steps.",
            "",
            "| call | ms | discrete steps (per call) | GFLOP/s |",
            "|---|---:|---:|---:|",
        ]
        for name, ms in f["ms"].items():
            rate = f["gflops_per_s"].get(name)
            lines.append(
                f"| {name} | {ms:.3f} | {f['in_steps'][name]:.1f} | "
                + ("" if rate is None else f"{rate:.1f}")
                + " |"
            )
        least = f["in_steps"]["every evaluation at once"]
        lines += [
            "",
            f"Every evaluation of a presentation in one batched call, none waiting for another "
            f"(the least a method that evaluates the rates at each of these time points can cost "
            f"here), costs {least:.1f} discrete steps per call; the target of {COST_TARGET:g} is "
            + ("above" if least <= COST_TARGET else "below")
            + " this floor, and the default path costs "
            f"{f['in_steps']['presentation'] / least:.2f}× it.",
        ]
    if summary.get("reproducibility"):
        lines += [
            "",
            "## Reproducibility of the ReLU reference (main job, Heun, against dt0/"
            f"{REPRODUCE_REFERENCE} in the same precision)",
            "",
            "| precision | " + " | ".join(f"dt0/{s}" for s in REPRODUCE_STEPS) + " |",
            "|---|" + "---:|" * len(REPRODUCE_STEPS),
        ]
        for precision, errors in summary["reproducibility"].items():
            lines.append(
                f"| {precision} | "
                + " | ".join(", ".join(f"{e:.1e}" for e in errors[str(s)]) for s in REPRODUCE_STEPS)
                + " |"
            )
        lines += [
            "",
            "Each cell lists the error of every presentation. With the ReLU mask the vector field "
            "is discontinuous, and where learning holds a unit at its threshold the state slides "
            "along it; which way the unit leaves depends on perturbations far smaller than a "
            "step's own error (rounding among them). Where an error stops shrinking as the step "
            "does, that sensitivity, not the step, sets it: no reference in that precision fixes "
            "the presentation's Δw more closely.",
        ]
    if summary.get("frontier"):
        rows = summary["frontier"]
        lines += [
            "",
            "## The cost–accuracy frontier on the ReLU main job (against Heun at "
            f"dt0/{FRONTIER_REFERENCE})",
            "",
            "| method | step | evaluations per presentation | Δw error of each presentation | "
            "largest |",
            "|---|---|---:|---|---:|",
        ]
        for r in rows:
            lines.append(
                f"| {r['method']} | dt0/{r['refinement']} | {r['evaluations']} | "
                + ", ".join(f"{e:.2e}" for e in r["errors"])
                + f" | {max(r['errors']):.2e} |"
            )
        meeting = [r for r in rows if max(r["errors"]) <= ACCURACY_TARGET]
        cheapest = min(rows, key=lambda r: r["evaluations"])
        verdict = (
            "no method here meets it on every presentation"
            if not meeting
            else "the cheapest that meets it on every presentation is "
            + "{method} at dt0/{refinement} ({evaluations} evaluations)".format(
                **min(meeting, key=lambda r: r["evaluations"])
            )
        )
        issue_reference = [r for r in rows if r["method"] == "Heun" and r["refinement"] == 8]
        lines += [
            "",
            f"Target ≤ {ACCURACY_TARGET:g}: {verdict}; the cheapest row spends "
            f"{cheapest['evaluations']} evaluations.",
        ]
        if issue_reference:
            worst = max(issue_reference[0]["errors"])
            lines.append(
                f"Heun at dt0/8, the reference the target is stated against, stands "
                f"{worst:.2e} from Heun at dt0/{FRONTIER_REFERENCE} on its worst presentation "
                f"({'within' if worst <= ACCURACY_TARGET else 'outside'} the target): where a "
                "presentation's error stops shrinking with the step, the sliding of part (e) "
                "sets it, not the method."
            )
    return "\n".join(lines) + "\n"


PARTS = ("a", "b", "c", "d", "e", "f")


def _stamp() -> dict:
    """Where and under what load a part was measured (the load average over 1, 5, 15 minutes:
    other work on the machine slows every path, which is why costs are ratios)."""
    return {**provenance(), "load": list(os.getloadavg())}


def _previous(out: Path, parts: tuple[str, ...]) -> dict:
    """The summary a run of only some ``parts`` adds to (the other parts' results are kept, each
    with the provenance of the run that measured it); empty for a run of every part."""
    path = out / "summary.json"
    if set(parts) == set(PARTS) or not path.exists():
        return {}
    hint = f"delete it or rerun every part (--parts {','.join(PARTS)})"
    summary = read_json_object(path, "config", dict, ValueError, hint)
    if "provenance_by_part" not in summary:
        # Written before parts could be rerun alone: one run measured every part.
        one = summary.pop("provenance", None)
        if not isinstance(one, dict):
            raise ValueError(f"{path} names no provenance for its parts: {hint}")
        summary["provenance_by_part"] = {p: one for p in PARTS if _has_part(summary, p)}
    return summary


def _has_part(summary: dict, part: str) -> bool:
    names = {"a": "cost", "b": "accuracy", "c": "convergence", "d": "floor",
             "e": "reproducibility", "f": "frontier"}  # fmt: skip
    return names[part] in summary


def main(config: EngineBenchConfig, parts: tuple[str, ...] = PARTS) -> dict:
    """Runs ``parts`` of the benchmark (a: cost, b: accuracy, c: convergence, d: floor, e: ReLU
    reproducibility, f: the cost–accuracy frontier) and writes the summary to ``config.out``,
    keeping the other parts of a summary already there."""
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise ValueError(f"--parts {','.join(parts)!r}: valid: a non-empty subset of {PARTS}")
    out = Path(config.out)
    summary = _previous(out, parts)
    summary.setdefault("provenance_by_part", {})
    summary["config"] = dataclasses.asdict(config)
    data = load_dataset("mnist1d")

    def write():
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
        atomic_write_text(out / "summary.md", markdown(summary))

    if "a" in parts:
        print("(a) cost at the main job's settings", flush=True)
        stamp = _stamp()
        summary["cost"] = cost(config, data)
        summary["provenance_by_part"]["a"] = {**stamp, "load_after": list(os.getloadavg())}
        print(json.dumps(summary["cost"], indent=2), flush=True)
        write()
    if "b" in parts:
        print("(b) accuracy of Δw per presentation", flush=True)
        summary["provenance_by_part"]["b"] = _stamp()

        def done(rows):
            # After every case, so that an interrupted run keeps what it measured.
            summary["accuracy"] = list(rows)
            summary["complete"] = len(rows) == len(accuracy_cases(config))
            write()

        done([])
        accuracy(config, data, done=done)
    if "c" in parts:
        print("(c) convergence in the time step", flush=True)
        summary["provenance_by_part"]["c"] = _stamp()
        summary["convergence"] = convergence(config, data)
        write()
    if "d" in parts:
        print("(d) the floor of the cost", flush=True)
        stamp = _stamp()
        summary["floor"] = floor(config, data)
        summary["provenance_by_part"]["d"] = {**stamp, "load_after": list(os.getloadavg())}
        write()
    if "e" in parts:
        print("(e) reproducibility of the ReLU reference", flush=True)
        summary["provenance_by_part"]["e"] = _stamp()
        summary["reproducibility"] = reproducibility(config, data)
        write()
    if "f" in parts:
        print("(f) the cost–accuracy frontier on the ReLU main job", flush=True)
        summary["provenance_by_part"]["f"] = _stamp()
        summary["frontier"] = frontier(config, data)
        write()
    print(markdown(summary))
    return summary


def _cli() -> tuple[EngineBenchConfig, tuple[str, ...]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    prepare_parser(parser)
    parser.add_argument("--quick", action="store_true", help="few presentations and rounds")
    parser.add_argument("--out", default=EngineBenchConfig.out)
    parser.add_argument(
        "--parts", default=",".join(PARTS),
        help="which parts to run, e.g. 'a' to remeasure the cost on a quiet machine; the other "
        "parts of a summary already in --out are kept (default: all)",
    )  # fmt: skip
    args = parser.parse_args()
    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    if args.quick:
        config = EngineBenchConfig(
            presentations=4, accuracy_presentations=1, number=1, repeats=2, inner=20,
            out=args.out,
        )  # fmt: skip
    else:
        config = EngineBenchConfig(out=args.out)
    return config, parts


if __name__ == "__main__":
    run_main(lambda: main(*_cli()))
