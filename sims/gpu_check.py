"""GPU readiness: what one accelerator does with ctlearn's main workloads, in one short run.

    python -m sims.gpu_check [--quick] [--data auto|synthetic] [--out results/gpu_check]

Records, on whatever devices JAX sees (the summary says which; nothing here needs a GPU):

1. the devices: ``jax.devices()``, their platform and device kind, JAX's default backend;
2. the step time of BP and of LG-FG-A (one jit-compiled ``ctlearn.train.train_step``: estimate
   + SGD update, fused replicated losses) on the LocalMixer ``--preset`` (M/8/16 by default) at
   ``--batch-size`` on CIFAR-10-shaped data, timed side by side: the first batch of the real
   CIFAR-10 train split (``ctlearn.data.load_dataset("cifar10")``) where it loads, otherwise
   random data of its shape, labelled "synthetic (CIFAR-10-shaped random data)" (step costs do
   not depend on the values; ``--data synthetic`` skips the attempt to load);
3. the README's continuous main job (``sims.bench_engine``'s: MNIST-1D, MLP 40-64-64-10, batch
   20, continuous FG-A with the ReLU mask, the default integration path): milliseconds per
   presentation inside ``ctlearn.dynamics.run_presentations``, beside one discrete FG-A step of
   the same network and batch, per jitted call and inside one compiled loop, as
   ``sims.bench_engine`` part (a) times them;
4. the scaling of an ensemble: ``ctlearn.dynamics.simulate_ensemble`` of ``--members`` members
   (64 by default; each its own initial weights and perturbation) of the 40-32-10 network on one
   device, against the same call with one member: the time ratio.

The full form fits in a few minutes on one GPU; ``--quick`` (LocalMixer S/1/1 at batch 16, two
presentations, four members, one timed round) runs in seconds on a CPU, for the tests. Writes
``summary.json`` (with the command, commit and machine) and ``summary.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

import equinox as eqx
import jax

import ctlearn.dynamics as ct
from ctlearn._usererror import prepare_parser, run_main
from ctlearn.data import DatasetNotAvailableError, batches, load_dataset
from ctlearn.diagnostics import time_side_by_side
from ctlearn.estimators import make_estimator, parse_method
from ctlearn.files import atomic_write_text
from ctlearn.provenance import provenance
from ctlearn.train import TrainState, make_optimizer, train_step
from models import LOCAL_MIXER_PRESETS, local_mixer, mlp

from ._mainjob import (
    MainJob,
    discrete_step_calls,
    main_job_model,
    main_job_simulator,
    main_job_stream,
)

CIFAR10_SHAPE = (32, 32, 3)
CIFAR10_CLASSES = 10
SYNTHETIC_LABEL = "synthetic (CIFAR-10-shaped random data)"
DATA_CHOICES = ("auto", "synthetic")
# (label, method spec) of the LocalMixer steps.
METHODS = (("bp", "bp"), ("lg-fg-a", "lg-fg-a"))


@dataclasses.dataclass(frozen=True)
class GpuCheckConfig:
    """``preset``/``batch_size``: the LocalMixer steps of item 2; ``data``: ``"auto"`` tries the
    real CIFAR-10 first, ``"synthetic"`` does not. ``presentations`` of the main job per timed
    call and ``inner`` discrete steps per compiled loop (item 3). ``members`` of the ensemble of
    ``ensemble_widths`` (hidden layers of the 40-…-10 network) on batches of ``ensemble_batch``
    over ``ensemble_presentations`` presentations of ``ensemble_duration`` (item 4). Timings:
    the median of ``repeats`` interleaved rounds of ``number`` calls."""

    preset: str = "M/8/16"
    batch_size: int = 128
    data: str = "auto"
    presentations: int = 20
    inner: int = 200
    members: int = 64
    ensemble_widths: tuple[int, ...] = (32,)
    ensemble_batch: int = 8
    ensemble_duration: float = 2.0
    ensemble_presentations: int = 2
    number: int = 3
    repeats: int = 5
    seed: int = 0
    out: str = "results/gpu_check"

    def __post_init__(self):
        if self.preset not in LOCAL_MIXER_PRESETS:
            raise ValueError(
                f"unknown preset {self.preset!r}; valid: {', '.join(LOCAL_MIXER_PRESETS)}"
            )
        if self.data not in DATA_CHOICES:
            raise ValueError(f"data must be one of {', '.join(DATA_CHOICES)}, got {self.data!r}")
        least = {"batch_size": 2, "members": 2}  # a batch statistic; a ratio to one member
        for name in ("batch_size", "presentations", "inner", "members", "ensemble_batch",
                     "ensemble_presentations", "number", "repeats"):  # fmt: skip
            value, low = getattr(self, name), least.get(name, 1)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {name}={value!r}")
        if not self.ensemble_widths or any(
            isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in self.ensemble_widths
        ):
            raise ValueError(f"ensemble_widths must be positive ints, got {self.ensemble_widths!r}")
        tau_p = MainJob.tau_p
        if not (self.ensemble_duration >= tau_p):  # also refuses nan
            raise ValueError(
                f"ensemble_duration must be at least the perturbation's tau_p={tau_p}, got "
                f"{self.ensemble_duration!r}"
            )


QUICK = dict(
    preset="S/1/1", batch_size=16, presentations=2, inner=10, members=4,
    ensemble_presentations=1, number=1, repeats=1,
)  # fmt: skip


def device_report() -> dict:
    """JAX's default backend and, per device, its name, platform, kind and (where the backend
    reports it) the memory it offers."""

    def memory(device):
        try:
            stats = device.memory_stats()
        except Exception:  # backends without memory statistics raise or return None
            return None
        return None if not stats else stats.get("bytes_limit")

    devices = jax.devices()
    return {
        "backend": jax.default_backend(),
        "gpu": jax.default_backend() == "gpu",
        "count": len(devices),
        "devices": [
            {
                "name": str(d),
                "platform": d.platform,
                "device_kind": d.device_kind,
                "memory_bytes": memory(d),
            }
            for d in devices
        ],
    }


def cifar10_batch(config: GpuCheckConfig, load=load_dataset) -> tuple[jax.Array, jax.Array, dict]:
    """The first ``batch_size`` examples of CIFAR-10's train split where ``load("cifar10")``
    gives them (``data="auto"``), otherwise Gaussian images of CIFAR-10's shape with random
    labels; with a record of which (``source``, ``label``, and the loader's reason where the
    real data was not there)."""
    reason = "--data synthetic"
    if config.data == "auto":
        try:
            data = load("cifar10")
        except DatasetNotAvailableError as error:
            reason = " ".join(str(error).split())
        else:
            if tuple(data.input_shape) != CIFAR10_SHAPE or len(data.train) < config.batch_size:
                raise ValueError(
                    f"cifar10 loaded with inputs {data.input_shape} and {len(data.train)} train "
                    f"examples; expected {CIFAR10_SHAPE} and at least {config.batch_size}"
                )
            x, y = next(batches(data.train, config.batch_size, shuffle=False))
            label = f"CIFAR-10 (real: the first {config.batch_size} train examples, {data.source})"
            return x, y, {"source": "cifar10", "label": label, "reason": None}
    kx, ky = jax.random.split(jax.random.key(config.seed + 7))
    x = jax.random.normal(kx, (config.batch_size, *CIFAR10_SHAPE))
    y = jax.random.randint(ky, (config.batch_size,), 0, CIFAR10_CLASSES)
    return x, y, {"source": "synthetic", "label": SYNTHETIC_LABEL, "reason": reason}


def localmixer_steps(config: GpuCheckConfig, x, y) -> dict:
    """Item 2: milliseconds per ``train_step`` of BP and LG-FG-A, side by side."""
    optimizer = make_optimizer("sgd", 0.01)
    km, kstep = jax.random.split(jax.random.key(config.seed))
    model = local_mixer(CIFAR10_SHAPE, CIFAR10_CLASSES, config.preset, fused=True, key=km)
    params = eqx.filter(model, eqx.is_inexact_array)
    calls = {}
    for label, spec in METHODS:
        name, options = parse_method(spec)
        estimator = make_estimator(name, **options)
        state = TrainState.start(model, optimizer.init(params), estimator.init(model, key=kstep))
        args = (estimator, optimizer, state, x, y, kstep)
        calls[label] = lambda args=args: train_step(*args)
    seconds = time_side_by_side(calls, number=config.number, repeats=config.repeats)
    return {
        "preset": config.preset,
        "parameters": sum(a.size for a in jax.tree.leaves(params)),
        "batch": config.batch_size,
        "step_ms": {label: 1e3 * s for label, s in seconds.items()},
        "examples_per_s": {label: config.batch_size / s for label, s in seconds.items()},
        "lg-fg-a / bp time": seconds["lg-fg-a"] / seconds["bp"],
    }


def main_job(config: GpuCheckConfig, data) -> dict:
    """Item 3: milliseconds per presentation of the main job on the default integration path,
    beside one discrete FG-A step of the same network and batch (per jitted call, and inside a
    compiled loop of ``inner`` steps), timed side by side."""
    engine = MainJob(seed=config.seed)
    stream = main_job_stream(data, engine, config.presentations)
    model = main_job_model(data, engine)
    key = jax.random.key(engine.seed + 1)
    bound, state = ct.prepare(main_job_simulator(engine), model, stream, key=key)
    calls = {
        "presentations": lambda: ct.run_presentations(bound, state, stream, 0, stream.num, key),
        **discrete_step_calls(model, stream.x[0], stream.y[0], key, config.inner),
    }
    seconds = time_side_by_side(calls, number=config.number, repeats=config.repeats)
    presentation_ms = 1e3 * seconds["presentations"] / stream.num
    step_ms, loop_ms = 1e3 * seconds["step"], 1e3 * seconds["step_loop"] / config.inner
    return {
        "network": "-".join(map(str, (*data.input_shape, *engine.widths, data.num_classes))),
        "batch": engine.batch_size,
        "presentations": stream.num,
        "duration": engine.duration,
        "dt0": engine.dt0,
        "path": type(bound.plan.solver).__name__ + (", tabulated" if bound.plan.tabulate else ""),
        "presentation_ms": presentation_ms,
        "discrete_step_ms": step_ms,
        "discrete_step_in_loop_ms": loop_ms,
        "steps_per_presentation": presentation_ms / step_ms,
        "loop_steps_per_presentation": presentation_ms / loop_ms,
    }


def ensemble(config: GpuCheckConfig, data) -> dict:
    """Item 4: seconds of one ``simulate_ensemble`` call with ``members`` members on one device,
    against the same call with one member (each member its own initial weights and keys)."""
    engine = MainJob(
        batch_size=config.ensemble_batch,
        duration=config.ensemble_duration,
        transition=0.1 * config.ensemble_duration,
        seed=config.seed,
    )
    stream = main_job_stream(data, engine, config.ensemble_presentations)
    simulator = main_job_simulator(engine)
    keys = jax.random.split(jax.random.key(config.seed + 2), config.members)
    widths = config.ensemble_widths
    models = [
        mlp(
            data.input_shape,
            data.num_classes,
            widths,
            local_heads=False,
            key=jax.random.fold_in(k, 0),
        )
        for k in keys
    ]
    run_keys = [jax.random.fold_in(k, 1) for k in keys]

    def run(count):
        return ct.simulate_ensemble(
            [simulator] * count, models[:count], stream, keys=run_keys[:count],
            chunk=stream.num, progress=False, devices=1,
        ).results.loss  # fmt: skip

    calls = {"one": lambda: run(1), "members": lambda: run(config.members)}
    seconds = time_side_by_side(calls, number=1, repeats=config.repeats)
    return {
        "network": "-".join(map(str, (*data.input_shape, *widths, data.num_classes))),
        "batch": config.ensemble_batch,
        "members": config.members,
        "presentations": stream.num,
        "duration": config.ensemble_duration,
        "one_member_ms": 1e3 * seconds["one"],
        "ensemble_ms": 1e3 * seconds["members"],
        "ratio": seconds["members"] / seconds["one"],
        "ms_per_member": 1e3 * seconds["members"] / config.members,
    }


def main(config: GpuCheckConfig, load=load_dataset) -> dict:
    """Runs items 1 to 4; writes ``summary.json`` and ``summary.md`` to ``config.out`` and returns
    the summary. ``load``: the dataset loader (``ctlearn.data.load_dataset``)."""
    summary = {"config": dataclasses.asdict(config), "devices": device_report(),
               "load": {"before": list(os.getloadavg())}}  # fmt: skip
    print(f"devices: {summary['devices']['devices']}", flush=True)
    x, y, summary["data"] = cifar10_batch(config, load)
    print(f"LocalMixer {config.preset} on {summary['data']['label']}", flush=True)
    summary["localmixer"] = localmixer_steps(config, x, y)
    mnist1d = load("mnist1d")
    print("the continuous main job", flush=True)
    summary["main_job"] = main_job(config, mnist1d)
    print(f"an ensemble of {config.members}", flush=True)
    summary["ensemble"] = ensemble(config, mnist1d)
    summary["load"]["after"] = list(os.getloadavg())
    summary["provenance"] = provenance()
    text = markdown(summary)
    out = Path(config.out)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out / "summary.md", text)
    print(text)
    return summary


def markdown(summary: dict) -> str:
    """``summary.md``: the summary's tables, with the devices and the data named."""
    d, data, p = summary["devices"], summary["data"], summary["provenance"]
    kinds = ", ".join(f"{x['name']} ({x['platform']}, {x['device_kind']}"
                      + (f", {x['memory_bytes'] / 2**30:.1f} GiB" if x["memory_bytes"] else "")
                      + ")" for x in d["devices"])  # fmt: skip
    lm, job, ens = summary["localmixer"], summary["main_job"], summary["ensemble"]
    load = summary["load"]
    lines = [
        "# GPU readiness check (`python -m sims.gpu_check`)",
        "",
        f"Ran on JAX's **{d['backend']}** backend"
        + ("" if d["gpu"] else " (not a GPU: these are not GPU results)")
        + f"; {d['count']} device(s): {kinds}.",
        f"Command `{p['command']}`; commit `{p['commit']}`"
        + (" (with uncommitted changes)" if p.get("dirty") else "")
        + f"; {p['utc']}; load average (1, 5, 15 min) "
        + ", ".join(f"{v:.2f}" for v in load["before"])
        + " before, "
        + ", ".join(f"{v:.2f}" for v in load["after"])
        + " after. Times: the median of "
        + f"{summary['config']['repeats']} interleaved rounds.",
        "",
        f"## LocalMixer {lm['preset']} train steps (SGD), batch {lm['batch']}",
        "",
        f"Data: {data['label']}"
        + (f" (the real data did not load: {data['reason']})" if data["reason"] else "")
        + f". {lm['parameters']:,} parameters.",
        "",
        "| method | ms per step | examples/s |",
        "|---|---:|---:|",
    ]
    for label in lm["step_ms"]:
        lines.append(
            f"| {label} | {lm['step_ms'][label]:.3f} | {lm['examples_per_s'][label]:.0f} |"
        )
    lines += [
        "",
        f"LG-FG-A / BP step time: {lm['lg-fg-a / bp time']:.2f}.",
        "",
        f"## The continuous main job (MNIST-1D, MLP {job['network']}, batch {job['batch']})",
        "",
        f"{job['presentations']} presentations of T = {job['duration']:g} at dt0 = {job['dt0']:g} "
        f"on the default path ({job['path']}): {job['presentation_ms']:.2f} ms per presentation. "
        f"One discrete FG-A step: {job['discrete_step_ms']:.3f} ms per jitted call "
        f"({job['steps_per_presentation']:.1f} steps per presentation), "
        f"{job['discrete_step_in_loop_ms']:.4f} ms inside a compiled loop "
        f"({job['loop_steps_per_presentation']:.1f} steps per presentation).",
        "",
        f"## Ensemble scaling (`simulate_ensemble`, MLP {ens['network']}, batch {ens['batch']})",
        "",
        f"{ens['presentations']} presentation(s) of T = {ens['duration']:g} on one device: one "
        f"member {ens['one_member_ms']:.1f} ms, {ens['members']} members "
        f"{ens['ensemble_ms']:.1f} ms, ratio {ens['ratio']:.2f} "
        f"({ens['ms_per_member']:.2f} ms per member).",
    ]
    return "\n".join(lines) + "\n"


def _cli(argv: list[str] | None = None) -> GpuCheckConfig:
    defaults = GpuCheckConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    prepare_parser(parser)
    parser.add_argument(
        "--quick", action="store_true", help="a tiny form (LocalMixer S/1/1, 4 members)"
    )
    parser.add_argument("--preset", help=f"LocalMixer preset (default {defaults.preset})")
    parser.add_argument("--batch-size", type=int, help=f"default {defaults.batch_size}")
    parser.add_argument("--data", choices=DATA_CHOICES, default=defaults.data,
                        help="auto: the real CIFAR-10 where it loads, else synthetic")  # fmt: skip
    parser.add_argument("--members", type=int, help=f"ensemble size (default {defaults.members})")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", default=defaults.out)
    args = parser.parse_args(argv)
    base = QUICK if args.quick else {}
    given = {"preset": args.preset, "batch_size": args.batch_size, "members": args.members}
    return GpuCheckConfig(
        **{**base, **{k: v for k, v in given.items() if v is not None}},
        data=args.data,
        seed=args.seed,
        out=args.out,
    )


if __name__ == "__main__":
    run_main(lambda: main(_cli()))
