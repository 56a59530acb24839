"""The cost of continuous-time learning, measured side by side in one run.

    python -m sims.bench_continuous [--widths 64 64] [--batch-size 20] [--out DIR]

(a) One evaluation of the simulator's vector field (continuous FG-A, sum-of-sinusoids
perturbation, instantaneous neurons) against one discrete FG-A ``train_step`` (estimate + SGD
update) of the same network and batch: each called on its own (dispatch included) and ``inner``
times inside one compiled loop (what a solve pays). Target: ≤ 1.5.
(b) Vector-field evaluations per presentation (``solver steps × evaluations per step``) for Euler
and Heun at a fixed step and Tsit5 with a PID controller at each pair of tolerances (the smooth
softplus network, and ReLU beside it to show what a kink costs an adaptive solver), with the
seconds per presentation and the relative error of the weight change Δw learned over the
presentations against Heun at a step 8 times finer.
(c) An ensemble of ``ensemble`` members in one vmapped call against one member, with the
simulator's default integration (``solver=None``): over seeds (different initial weights and
perturbations) and over the rule's η (shared weights at the start and shared perturbation
paths), for each network of ``ensemble_widths`` with its batch of ``ensemble_batches``. Old and
new side by side in one run: ``vmap`` (every member's solve vmapped, ``Plan.members="vmap"``)
and ``fused`` (one solve carrying the member axis, the default), with the largest difference
between their results; and the stored weights within a solve rebuilt from the learned change
(the default) against stepped beside it (``Plan.weights="stepped"``, the state before), one
member and the fused ensemble each way, and one member alone each way on the network, batch
and presentations of (a) and (b). Targets on CPU (``ensemble_targets``): ≤ 8 × one member
for 40-32-10, ≤ 32 × for 40-256-256-10. Beside them, timed in the same rounds, the floor: a
presentation's
vector-field evaluations for one member and for all members at once (vmapped as the fused solve
does), and its network work (the rule's discrete forward + JVP + weight rates) for one batch,
for all members' batches through one network (the fastest layout of the same FLOPs) and with
every member's own weights, and the perturbation's table of a presentation for one member and
for all (made once per presentation; not in the floor). The floor ratio, the folded network
work over one member's whole presentation, is the least any layout of the members can reach
here: above the target, the target cannot be met on this machine ("target feasible here").

``--parts`` chooses which of (a), (b), (c) to run. Writes ``summary.json`` (with the command,
commit, machine and the load average around the run) and ``summary.md`` to ``--out``.

Inputs are MNIST-1D batches (40 values, 10 classes).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
from pathlib import Path

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import optax

import ctlearn.dynamics as ct
from ctlearn._usererror import prepare_parser, run_main
from ctlearn.data import load_dataset
from ctlearn.diagnostics import time_side_by_side
from ctlearn.estimators import make_estimator
from ctlearn.files import atomic_write_text
from ctlearn.provenance import provenance
from ctlearn.train import TrainState, train_step
from models import mlp

VF_TARGET = 1.5
PARTS = ("a", "b", "c")
# Vector-field evaluations per solver step (Tsit5: 7 stages, the first shared with the last).
EVALUATIONS = {"Euler": 1, "Heun": 2, "HeunPEC": 1, "Tsit5": 6}
REFERENCE_REFINEMENT = 8


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """``widths``/``batch_size``: the network of (a) and (b); ``lr``: the rule's η. Perturbation
    ``sigma``, ``tau_p``, ``components``; presentations of ``duration`` T; fixed step ``dt0``
    (also Tsit5's first guess); Tsit5's ``(rtol, atol)`` pairs ``tolerances``; ``presentations``
    per solver in (b); ``inner`` calls per compiled loop in (a); ``ensemble`` members, on
    networks ``ensemble_widths`` with batches ``ensemble_batches`` (paired), each timed over
    ``ensemble_presentations`` presentations of ``ensemble_duration``. Timings: the median of
    ``repeats`` interleaved rounds of ``number`` calls."""

    widths: tuple[int, ...] = (64, 64)
    batch_size: int = 20
    lr: float = 30.0
    sigma: float = 0.01
    tau_p: float = 1.0
    components: int = 4
    duration: float = 10.0
    dt0: float = 0.05
    tolerances: tuple[tuple[float, float], ...] = ((1e-3, 1e-6), (1e-5, 1e-8))
    presentations: int = 3
    inner: int = 100
    ensemble: int = 64
    ensemble_widths: tuple[tuple[int, ...], ...] = ((32,), (256, 256))
    ensemble_batches: tuple[int, ...] = (8, 32)
    ensemble_targets: tuple[float, ...] = (8.0, 32.0)
    ensemble_duration: float = 2.0
    ensemble_presentations: int = 1
    number: int = 3
    repeats: int = 5
    seed: int = 0
    parts: tuple[str, ...] = PARTS
    out: str | None = None

    def __post_init__(self):
        ints = {
            "batch_size": self.batch_size,
            "components": self.components,
            "presentations": self.presentations,
            "inner": self.inner,
            "ensemble": self.ensemble,
            "ensemble_presentations": self.ensemble_presentations,
            "number": self.number,
            "repeats": self.repeats,
        }
        for name, value in ints.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {name}={value!r}")
        for widths in (self.widths, *self.ensemble_widths):
            if not widths or any(w < 1 for w in widths):
                raise ValueError(f"widths must be positive ints, got {widths!r}")
        if (
            len({len(self.ensemble_widths), len(self.ensemble_batches), len(self.ensemble_targets)})
            != 1
            or any(b < 1 for b in self.ensemble_batches)
            or not all(math.isfinite(t) and t > 0 for t in self.ensemble_targets)
        ):
            raise ValueError(
                f"ensemble_widths, ensemble_batches and ensemble_targets pair up (positive "
                f"batches and targets), got {self.ensemble_widths}, {self.ensemble_batches} and "
                f"{self.ensemble_targets}"
            )
        if not self.parts or any(part not in PARTS for part in self.parts):
            raise ValueError(f"parts must be some of {', '.join(PARTS)}, got {self.parts!r}")
        positive = ("lr", "sigma", "tau_p", "duration", "dt0", "ensemble_duration")
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be finite and > 0, got {name}={value!r}")
        if not self.tolerances or any(
            len(pair) != 2 or not all(math.isfinite(v) and v > 0 for v in pair)
            for pair in self.tolerances
        ):
            raise ValueError(
                f"tolerances must be (rtol, atol) pairs of positive numbers, got {self.tolerances}"
            )
        if self.dt0 > self.tau_p:
            raise ValueError(f"dt0={self.dt0} exceeds tau_p={self.tau_p}: choose dt0 <= tau_p")
        for name in ("duration", "ensemble_duration"):
            if getattr(self, name) < self.tau_p:
                raise ValueError(f"{name}={getattr(self, name)} is shorter than tau_p={self.tau_p}")

    def simulator(self, solver=None, controller=None) -> ct.Simulator:
        return ct.Simulator(
            ct.FGARule(lr=self.lr, mask=True),
            ct.Sinusoids(self.sigma, self.tau_p, components=self.components),
            solver=diffrax.Heun() if solver is None else solver,
            dt0=self.dt0,
            controller=controller,
        )


def main(config: BenchConfig) -> dict:
    """Runs the chosen parts of (a), (b) and (c); returns and prints the tables (keys
    ``vector_field``, ``solvers``, ``ensembles`` for the parts run, and the ``config``,
    ``backend``, ``device``, ``load`` and ``provenance``); writes them under ``out``."""
    data = load_dataset("mnist1d")
    key = jax.random.key(config.seed)
    result = {
        "config": dataclasses.asdict(config),
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0]),
        "load": {"before": os.getloadavg()},
    }
    if "a" in config.parts:
        result["vector_field"] = _vector_field(config, data, key)
    if "b" in config.parts:
        result["solvers"] = _solvers(config, data, key)
    if "c" in config.parts:
        result["ensembles"] = [
            row
            for widths, batch, target in zip(
                config.ensemble_widths, config.ensemble_batches, config.ensemble_targets
            )
            for row in _ensemble(config, data, widths, batch, target, key)
        ]
        result["lone_weights"] = _lone_weights(config, data, key)
    result["load"]["after"] = os.getloadavg()
    result["provenance"] = provenance()
    table = _markdown(result, config)
    print(table)
    if config.out is not None:
        out = Path(config.out)
        atomic_write_text(out / "summary.json", json.dumps(result, indent=2) + "\n")
        atomic_write_text(out / "summary.md", table + "\n")
    return result


def _stream(data, batch: int, presentations: int, duration: float) -> ct.Presentations:
    return ct.Presentations.from_split(
        data.train, batch, duration=duration, transition=0.1 * duration, count=presentations + 1
    )


def _vector_field(config: BenchConfig, data, key) -> dict:
    """(a): seconds per vector-field evaluation and per FG-A step, called alone and in a loop."""
    model = mlp((40,), 10, config.widths, local_heads=False, key=key)
    stream = _stream(data, config.batch_size, 1, config.duration)
    bound, state = ct.prepare(config.simulator(), model, stream, key=key)
    state, args = ct.split_state(bound.simulator, state, stream, 1)
    t = jnp.asarray(0.37 * config.duration)
    field = jax.jit(bound.vector_field)

    estimator, optimizer = make_estimator("fg-a"), optax.sgd(1e-3)
    train = TrainState.start(model, optimizer.init(eqx.filter(model, eqx.is_inexact_array)), None)
    x, y = stream.x[1], stream.y[1]
    ts = jnp.linspace(0.0, config.duration, config.inner)

    @jax.jit
    def field_loop(state):
        # A solver-like loop: each evaluation feeds the next state, so none can be hoisted.
        def body(s, t):
            rate = bound.vector_field(t, s, args)
            return jax.tree.map(lambda a, r: a + 1e-6 * r, s, rate), None

        return jax.lax.scan(body, state, ts)[0]

    @eqx.filter_jit
    def step_loop(train):
        def body(s, _):
            return train_step(estimator, optimizer, s, x, y, key)[0], None

        return jax.lax.scan(body, train, None, length=config.inner)[0]

    seconds = time_side_by_side(
        {
            "field": lambda: field(t, state, args),
            "step": lambda: train_step(estimator, optimizer, train, x, y, key),
            "field_loop": lambda: field_loop(state),
            "step_loop": lambda: step_loop(train),
        },
        number=config.number,
        repeats=config.repeats,
    )
    field_s, step_s = seconds["field"], seconds["step"]
    loop_field_s = seconds["field_loop"] / config.inner
    loop_step_s = seconds["step_loop"] / config.inner
    return {
        "network": _name(config.widths),
        "batch": config.batch_size,
        "field_ms": 1e3 * field_s,
        "step_ms": 1e3 * step_s,
        "ratio": field_s / step_s,
        "loop_field_ms": 1e3 * loop_field_s,
        "loop_step_ms": 1e3 * loop_step_s,
        "loop_ratio": loop_field_s / loop_step_s,
        "met": field_s / step_s <= VF_TARGET,
    }


def _solvers(config: BenchConfig, data, key) -> list[dict]:
    """(b): solver steps and vector-field evaluations per presentation, seconds per presentation
    (whole ``simulate`` calls timed side by side, compilation excluded), and the relative error
    of the weight change Δw over the stream against Heun at a step ``REFERENCE_REFINEMENT`` times
    finer."""
    cases = [("Euler", diffrax.Euler(), None, "relu"), ("Heun", diffrax.Heun(), None, "relu")]
    for rtol, atol in config.tolerances:
        pid = diffrax.PIDController(rtol=rtol, atol=atol)
        cases += [
            ("Tsit5", diffrax.Tsit5(), pid, "softplus"),
            ("Tsit5", diffrax.Tsit5(), pid, "relu"),
        ]
    stream = _stream(data, config.batch_size, config.presentations, config.duration)
    references, rows, calls = {}, [], {}
    for i, (name, solver, controller, activation) in enumerate(cases):
        model = mlp((40,), 10, config.widths, activation=activation, local_heads=False, key=key)
        if activation not in references:
            fine = dataclasses.replace(
                config.simulator(),
                dt0=config.dt0 / REFERENCE_REFINEMENT,
                max_steps=int(REFERENCE_REFINEMENT * config.duration / config.dt0) + 16,
            )
            references[activation] = _learned(_simulate(fine, model, stream, key))
        sim = config.simulator(solver, controller)
        row = {
            "solver": name,
            "controller": "fixed" if controller is None else "PID",
            "rtol": None if controller is None else controller.rtol,
            "atol": None if controller is None else controller.atol,
            "activation": activation,
        }
        try:
            run = _simulate(sim, model, stream, key)
        except RuntimeError as error:  # more than max_steps steps
            failed = {"steps": None, "evaluations": None, "seconds": None, "error": str(error)}
            rows.append(row | failed)
            continue
        steps = float(jnp.mean(run.steps))
        reference = references[activation]
        error = _norm(jax.tree.map(jnp.subtract, _learned(run), reference)) / _norm(reference)
        rows.append(
            row | {"steps": steps, "evaluations": steps * EVALUATIONS[name], "delta_error": error}
        )
        calls[i] = lambda sim=sim, model=model: _simulate(sim, model, stream, key).model
    seconds = time_side_by_side(calls, number=1, repeats=config.repeats)
    for i, row in enumerate(rows):
        if i in seconds:
            row["seconds"] = seconds[i] / stream.num
            row["ms_per_evaluation"] = 1e3 * row["seconds"] / row["evaluations"]
    return rows


def _simulate(sim: ct.Simulator, model, stream: ct.Presentations, key) -> ct.SimulationResult:
    return ct.simulate(sim, model, stream, key=key, chunk=stream.num, progress=False)


def _learned(result: ct.SimulationResult):
    """Δw accumulated while learning."""
    return eqx.filter(result.delta, eqx.is_inexact_array)


def _norm(tree) -> float:
    return float(jnp.sqrt(sum(jnp.sum(a**2) for a in jax.tree.leaves(tree))))


def _ensemble(config: BenchConfig, data, widths, batch, target, key) -> list[dict]:
    """(c): one member's presentations against ``ensemble`` members' in one vmapped call, the
    members solved ``fused`` (new) and ``vmap``-ped (old), for an ensemble over seeds (each
    member its own initial weights and perturbation paths) and over the rule's η (the same
    initial weights and paths, η spread over [η/2, 3η/2]). The simulator's default integration.

    Timed in the same rounds, what no solver layout can beat (see ``_floors``): a presentation's
    vector-field evaluations for one member and for every member at once (vmapped, as the fused
    solve evaluates them), and its network work (the rule's discrete forward + JVP + weight
    rates) for one batch and for ``ensemble`` batches through one network."""
    sim = dataclasses.replace(config.simulator(), solver=None)
    stream = _stream(data, batch, config.ensemble_presentations, config.ensemble_duration)
    keys = jax.random.split(key, config.ensemble)
    prepared = [
        ct.prepare(sim, mlp((40,), 10, widths, local_heads=False, key=k), stream, key=k)
        for k in keys
    ]
    fused, state = prepared[0]
    old = dataclasses.replace(fused, plan=dataclasses.replace(fused.plan, members="vmap"))
    stepped = dataclasses.replace(fused, plan=dataclasses.replace(fused.plan, weights="stepped"))
    states = jax.tree.map(lambda *a: jnp.stack(a), *[s for _, s in prepared])
    etas = jnp.linspace(0.5, 1.5, config.ensemble) * config.lr

    def run(bound, eta, state, k):
        member = eqx.tree_at(lambda b: b.simulator.rule.lr, bound, eta)
        return ct.run_presentations(member, state, stream, 1, config.ensemble_presentations, k)

    eta = jnp.asarray(config.lr)
    one = eqx.filter_jit(lambda *a: run(*a)[0])
    seeds = eqx.filter_jit(eqx.filter_vmap(lambda *a: run(*a)[0], in_axes=(None, None, 0, 0)))
    sweep = eqx.filter_jit(eqx.filter_vmap(lambda *a: run(*a)[0], in_axes=(None, 0, None, None)))
    solver = type(fused.plan.solver).__name__
    steps = int(jnp.sum(run(fused, eta, state, keys[0])[1][2]))
    evaluations = steps * EVALUATIONS[solver]
    calls = {
        "one": lambda: one(fused, eta, state, keys[0]),
        "one stepped": lambda: one(stepped, eta, state, keys[0]),
    }
    for name, bound in (("fused", fused), ("vmap", old), ("stepped", stepped)):
        calls[f"seeds {name}"] = lambda b=bound: seeds(b, eta, states, keys)
        calls[f"η {name}"] = lambda b=bound: sweep(b, etas, state, keys[0])
    differences = {
        (over, other): _largest_difference(calls[f"{over} fused"](), calls[f"{over} {other}"]())
        for over in ("seeds", "η")
        for other in ("vmap", "stepped")
    }
    calls |= _floors(config, fused, state, states, etas, stream, evaluations)
    seconds = time_side_by_side(calls, number=1, repeats=config.repeats)
    one_s = seconds["one"]
    network_floor = seconds["network wide"] / one_s
    rows = []
    for over in ("seeds", "η"):
        row = {
            "network": _name(widths),
            "batch": batch,
            "over": over,
            "members": config.ensemble,
            "target": target,
            "solver": solver,
            "tabulated": fused.plan.tabulate,
            "evaluations": evaluations,
            "one_ms": 1e3 * one_s,
            "largest_difference": differences[over, "vmap"],
            "one_stepped_ms": 1e3 * seconds["one stepped"],
            "stepped_ms": 1e3 * seconds[f"{over} stepped"],
            "stepped_ratio": seconds[f"{over} stepped"] / seconds["one stepped"],
            "rebuilt_speedup": seconds[f"{over} stepped"] / seconds[f"{over} fused"],
            "rebuilt_difference": differences[over, "stepped"],
            "field_one_ms": 1e3 * seconds["field one"],
            "field_members_ms": 1e3 * seconds[f"field {over}"],
            "field_ratio": seconds[f"field {over}"] / seconds["field one"],
            "field_floor": seconds[f"field {over}"] / one_s,
            "network_one_ms": 1e3 * seconds["network one"],
            "network_wide_ms": 1e3 * seconds["network wide"],
            "network_ratio": seconds["network wide"] / seconds["network one"],
            "network_members_ms": 1e3 * seconds["network members"],
            "layout_ratio": seconds["network members"] / seconds["network wide"],
            "table_one_ms": 1e3 * seconds["table one"],
            "table_members_ms": 1e3 * seconds["table seeds" if over == "seeds" else "table one"],
            "floor_ratio": network_floor,
            "feasible": network_floor <= target,
        }
        for name in ("vmap", "fused"):
            ratio = seconds[f"{over} {name}"] / one_s
            row[f"{name}_ms"] = 1e3 * seconds[f"{over} {name}"]
            row[f"{name}_ratio"] = ratio
            row[f"{name}_met"] = ratio <= target
        row["speedup"] = row["vmap_ms"] / row["fused_ms"]
        rows.append(row)
    return rows


def _lone_weights(config: BenchConfig, data, key) -> dict:
    """One member alone on the network and batch of (a) and (b), ``presentations``
    presentations of ``duration`` in one compiled call, with the stored weights rebuilt from
    the learned change (the default) and stepped beside it (``Plan.weights="stepped"``), side
    by side, with the largest difference between their results."""
    sim = dataclasses.replace(config.simulator(), solver=None)
    stream = _stream(data, config.batch_size, config.presentations, config.duration)
    model = mlp((40,), 10, config.widths, local_heads=False, key=key)
    rebuilt, state = ct.prepare(sim, model, stream, key=key)
    stepped = dataclasses.replace(
        rebuilt, plan=dataclasses.replace(rebuilt.plan, weights="stepped")
    )
    run = eqx.filter_jit(
        lambda bound: ct.run_presentations(bound, state, stream, 1, config.presentations, key)[0]
    )
    calls = {"rebuilt": lambda: run(rebuilt), "stepped": lambda: run(stepped)}
    difference = _largest_difference(calls["rebuilt"](), calls["stepped"]())
    seconds = time_side_by_side(calls, number=config.number, repeats=config.repeats)
    return {
        "network": _name(config.widths),
        "batch": config.batch_size,
        "presentations": config.presentations,
        "solver": type(rebuilt.plan.solver).__name__,
        "rebuilt_ms": 1e3 * seconds["rebuilt"] / config.presentations,
        "stepped_ms": 1e3 * seconds["stepped"] / config.presentations,
        "speedup": seconds["stepped"] / seconds["rebuilt"],
        "largest_difference": difference,
    }


def _floors(config: BenchConfig, bound, state, states, etas, stream, evaluations: int) -> dict:
    """Calls that each do ``evaluations`` (a presentation's) evaluations in one compiled loop,
    each feeding the next state as a solver's steps do (so none can be hoisted):

    - ``field one``, ``field seeds``, ``field η``: the vector field (reading the perturbation
      from its table, as the default integration does) of one member, and of every member of
      the ensemble over seeds and over η, vmapped as the fused solve vmaps it;
    - ``network one``, ``network wide``: the network work inside an evaluation, the rule's
      discrete estimate (forward, JVP along a direction, weight rates) for one batch, and for
      ``ensemble`` batches in one batch through one network: the FLOPs of every member's
      network in the layout that runs them fastest (one matrix product per layer), which no
      member layout can beat. Divided by one member's whole presentation it is the floor of
      the ensemble's ratio on this machine;
    - ``network members``: the same network work with every member's own weights (the members
      over seeds), vmapped as the fused solve vmaps it: what the member layout costs beyond
      the folded one;
    - ``table one``, ``table seeds``: the perturbation's table of a presentation (its ``(p, ṗ)``
      at every step time, as the default integration makes it once per presentation) of one
      member and of every member over seeds (members over η share one)."""
    sim, dt = bound.simulator, bound.plan.dt0
    ts = dt * jnp.arange(evaluations, dtype=jnp.float32)

    def field(eta, state):
        member = eqx.tree_at(lambda b: b.simulator.rule.lr, bound, eta)
        s, args = ct.split_state(member.simulator, state, stream, 1)
        table = sim.perturbation.grid(args.perturbation, 0.0, dt, evaluations, (0.0,))
        table = jax.tree.map(lambda v: v[:, 0], table)

        def body(s, point):
            t, value = point
            rate = member.vector_field(t, s, args, perturbation=value)
            return jax.tree.map(lambda a, r: a + 1e-6 * r, s, rate), None

        return jax.lax.scan(body, s, (ts, table))[0]

    x, y = stream.x[1], stream.y[1]
    model = bound.model(state)
    wide = (jnp.tile(x, (config.ensemble, 1)), jnp.tile(y, config.ensemble))

    def network(model, x, y):
        shapes = sim.rule.perturbation_shapes(model, x)
        directions = [jnp.ones(s) for s in shapes]

        def body(model, t):
            tangent = [jnp.cos(t) * u for u in directions]
            grads = sim.rule.discrete(model, x, y, tangent, None)[0]
            return eqx.apply_updates(model, jax.tree.map(lambda g: 1e-6 * g, grads)), None

        return jax.lax.scan(body, model, ts)[0]

    eta = jnp.asarray(config.lr)
    field_one = eqx.filter_jit(field)
    field_seeds = eqx.filter_jit(eqx.filter_vmap(field, in_axes=(None, 0)))
    field_etas = eqx.filter_jit(eqx.filter_vmap(field, in_axes=(0, None)))
    network_jit = eqx.filter_jit(network)
    network_members = eqx.filter_jit(
        eqx.filter_vmap(network, in_axes=(eqx.if_array(0), None, None))
    )
    models = eqx.filter_vmap(bound.model)(states)

    def table(state):
        args = ct.split_state(sim, state, stream, 1)[1]
        return sim.perturbation.grid(args.perturbation, 0.0, dt, evaluations + 1, (0.0,))

    table_one = eqx.filter_jit(table)
    table_seeds = eqx.filter_jit(eqx.filter_vmap(table))
    return {
        "table one": lambda: table_one(state),
        "table seeds": lambda: table_seeds(states),
        "field one": lambda: field_one(eta, state),
        "field seeds": lambda: field_seeds(eta, states),
        "field η": lambda: field_etas(etas, state),
        "network one": lambda: network_jit(model, x, y),
        "network wide": lambda: network_jit(model, *wide),
        "network members": lambda: network_members(models, x, y),
    }


def _largest_difference(a, b) -> float:
    return max(
        float(jnp.max(jnp.abs(x - y)))
        for x, y in zip(
            jax.tree.leaves(eqx.filter(a, eqx.is_inexact_array)),
            jax.tree.leaves(eqx.filter(b, eqx.is_inexact_array)),
        )
    )


def _name(widths) -> str:
    return "-".join(str(n) for n in (40, *widths, 10))


def _markdown(result: dict, config: BenchConfig) -> str:
    origin = result["provenance"]
    load = result["load"]
    lines = [
        f"# Continuous-time costs, side by side ({', '.join(config.parts)})",
        "",
        f"Command: `{origin['command']}`; commit `{origin['commit']}`"
        f"{' (with uncommitted changes)' if origin['dirty'] else ''}; machine: "
        f"{origin['machine']}; {origin['utc']}. Load average (1, 5, 15 min) before "
        f"{_load(load['before'])}, after {_load(load['after'])}: other work on the machine "
        "slows every entry, which is why each table compares entries timed side by side.",
        "",
        f"Median of {config.repeats} interleaved rounds. Continuous FG-A, Sinusoids σ = "
        f"{config.sigma:g}, τ_p = {config.tau_p:g} ({config.components} components).",
    ]
    if "vector_field" in result:
        lines += _markdown_vector_field(result["vector_field"], config)
    if "solvers" in result:
        lines += _markdown_solvers(result["solvers"], config)
    if "ensembles" in result:
        lines += _markdown_ensembles(result["ensembles"], config)
    if "lone_weights" in result:
        lines += _markdown_lone_weights(result["lone_weights"], config)
    return "\n".join(lines)


def _markdown_lone_weights(r: dict, config: BenchConfig) -> list[str]:
    return [
        "",
        f"One member alone, the stored weights rebuilt (new, the default) against stepped, "
        f"MLP {r['network']}, batch {r['batch']}, {r['presentations']} presentations of T = "
        f"{config.duration:g} in one compiled call, the default integration ({r['solver']}); "
        "difference: the largest absolute difference between their results:",
        "",
        "| network | batch | stepped (ms / presentation) | rebuilt (ms / presentation) | "
        "rebuilt / stepped speed | difference |",
        "|---|---:|---:|---:|---:|---:|",
        f"| {r['network']} | {r['batch']} | {r['stepped_ms']:.2f} | {r['rebuilt_ms']:.2f} | "
        f"{r['speedup']:.2f} | {r['largest_difference']:.1e} |",
    ]


def _load(values) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def _markdown_vector_field(a: dict, config: BenchConfig) -> list[str]:
    return [
        "",
        f"(a) One vector-field evaluation vs one discrete FG-A train_step, MLP {a['network']}, "
        f"batch {a['batch']}, T = {config.duration:g}, dt0 = {config.dt0:g} (target ≤ "
        f"{VF_TARGET:g}: {'met' if a['met'] else 'not met'}):",
        "",
        "| measured | vector field (ms) | FG-A step (ms) | ratio |",
        "|---|---:|---:|---:|",
        f"| one jitted call each | {a['field_ms']:.3f} | {a['step_ms']:.3f} | {a['ratio']:.2f} |",
        f"| inside a compiled loop of {config.inner} | {a['loop_field_ms']:.3f} | "
        f"{a['loop_step_ms']:.3f} | {a['loop_ratio']:.2f} |",
    ]


def _markdown_solvers(rows: list[dict], config: BenchConfig) -> list[str]:
    lines = [
        "",
        f"(b) Vector-field evaluations per presentation (T = {config.duration:g}, fixed step "
        f"{config.dt0:g}). Δw error: the relative error of the weight "
        f"change over the {config.presentations + 1} presentations against Heun at dt0/"
        f"{REFERENCE_REFINEMENT}:",
        "",
        "| solver | step (rtol, atol) | activation | steps | evaluations | s / presentation | "
        "ms / evaluation | Δw error |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r["steps"] is None:
            cells = "failed | — | — | — | —"
        else:
            cells = (
                f"{r['steps']:.0f} | {r['evaluations']:.0f} | {r['seconds']:.3f} | "
                f"{r['ms_per_evaluation']:.3f} | {r['delta_error']:.1e}"
            )
        step = "fixed" if r["rtol"] is None else f"PID ({r['rtol']:g}, {r['atol']:g})"
        lines.append(f"| {r['solver']} | {step} | {r['activation']} | {cells} |")
    return lines


def _integration(row: dict) -> str:
    return f"{row['solver']}{' reading the tabulated perturbation' if row['tabulated'] else ''}"


def _markdown_ensembles(rows: list[dict], config: BenchConfig) -> list[str]:
    lines = [
        "",
        f"(c) {config.ensemble}-member vmapped ensemble vs one member ("
        f"{config.ensemble_presentations} presentation(s) of T = {config.ensemble_duration:g}, "
        f"dt0 = {config.dt0:g}, the default integration: "
        f"{', '.join(sorted({_integration(r) for r in rows}))}). Old: every member's solve "
        "vmapped; new: one solve carrying the member "
        "axis (fused). Ratio: ensemble time / one member's time; target per network; "
        "difference: the largest absolute difference between the old and new results:",
        "",
        "| network | batch | members differ in | one (ms) | old (ms) | old ratio | new (ms) | "
        "new ratio | target | met | new / old speed | difference |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        over = "seed (weights, paths)" if r["over"] == "seeds" else "η (shared paths)"
        lines.append(
            f"| {r['network']} | {r['batch']} | {over} | {r['one_ms']:.1f} | "
            f"{r['vmap_ms']:.1f} | {r['vmap_ratio']:.1f} | {r['fused_ms']:.1f} | "
            f"{r['fused_ratio']:.1f} | ≤ {r['target']:g} | "
            f"{'yes' if r['fused_met'] else '**no**'} | {r['speedup']:.2f} | "
            f"{r['largest_difference']:.1e} |"
        )
    lines += [
        "",
        "The stored weights within a solve, timed in the same rounds: rebuilt from the learned "
        "change Δw where they are read (new, the default: the solver steps Δw alone) against "
        "stepped beside Δw (the state before: two weight-sized arrays stepped), for one member "
        "and for the fused ensemble. Ratio: the fused ensemble / one member, each with its own "
        "weights state; difference: the largest absolute difference between their results:",
        "",
        "| network | members differ in | one, stepped (ms) | one, rebuilt (ms) | "
        "fused, stepped (ms) | stepped ratio | fused, rebuilt (ms) | rebuilt ratio | "
        "rebuilt / stepped speed | difference |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        over = "seed" if r["over"] == "seeds" else "η"
        lines.append(
            f"| {r['network']} | {over} | {r['one_stepped_ms']:.1f} | {r['one_ms']:.1f} | "
            f"{r['stepped_ms']:.1f} | {r['stepped_ratio']:.1f} | {r['fused_ms']:.1f} | "
            f"{r['fused_ratio']:.1f} | {r['rebuilt_speedup']:.2f} | "
            f"{r['rebuilt_difference']:.1e} |"
        )
    lines += [
        "",
        f"The floor: what no layout of the members can beat on this machine, timed in the same "
        f"rounds. A presentation's evaluations (solver steps × evaluations per step, the first "
        f"step's extra evaluation not counted) in one compiled loop, each feeding the next state: "
        f"the vector field of one member and of all {config.ensemble} at once (vmapped, as the "
        f"fused solve evaluates them), and the network work inside an evaluation (the rule's "
        f"discrete estimate: forward, JVP, weight rates) for one batch and for "
        f"{config.ensemble} batches through one network (every member's FLOPs in the fastest "
        "layout, one matrix product per layer) and, beside it, with every member's own weights "
        "(vmapped over the members as the fused solve does; own / folded: what that layout "
        "costs), and the perturbation's table of one presentation for one member and for all "
        "(members over η share one). Ratios: time / the same for one member; "
        "floor: the network work of all members / one member's whole presentation (the least "
        "the ensemble's ratio can be here; above the target, no layout meets it):",
        "",
        "| network | members differ in | evaluations | field one (ms) | field all (ms) | "
        "field ratio | field all / one presentation | network one (ms) | network all (ms) | "
        "network ratio | network, own weights (ms) | own / folded | table one (ms) | "
        "table all (ms) | floor ratio | measured ratio | target | target feasible here |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        over = "seed" if r["over"] == "seeds" else "η"
        lines.append(
            f"| {r['network']} | {over} | {r['evaluations']} | {r['field_one_ms']:.1f} | "
            f"{r['field_members_ms']:.1f} | {r['field_ratio']:.1f} | {r['field_floor']:.1f} | "
            f"{r['network_one_ms']:.1f} | {r['network_wide_ms']:.1f} | "
            f"{r['network_ratio']:.1f} | {r['network_members_ms']:.1f} | "
            f"{r['layout_ratio']:.2f} | {r['table_one_ms']:.1f} | {r['table_members_ms']:.1f} | "
            f"{r['floor_ratio']:.1f} | {r['fused_ratio']:.1f} | "
            f"≤ {r['target']:g} | {'yes' if r['feasible'] else '**no**'} |"
        )
    return lines


def _cli() -> BenchConfig:
    defaults = BenchConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    prepare_parser(parser)
    parser.add_argument("--widths", type=int, nargs="+", default=list(defaults.widths))
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--duration", type=float, default=defaults.duration, help="T")
    parser.add_argument("--dt0", type=float, default=defaults.dt0)
    parser.add_argument(
        "--tolerances",
        type=float,
        nargs="+",
        default=[v for pair in defaults.tolerances for v in pair],
        help="Tsit5's rtol atol pairs, e.g. 1e-3 1e-6 1e-5 1e-8",
    )
    parser.add_argument("--presentations", type=int, default=defaults.presentations)
    parser.add_argument("--ensemble", type=int, default=defaults.ensemble, help="members")
    parser.add_argument(
        "--ensemble-widths",
        nargs="+",
        default=[",".join(map(str, w)) for w in defaults.ensemble_widths],
        help="one network per entry, widths comma-separated (e.g. 32 256,256)",
    )
    parser.add_argument(
        "--ensemble-batches", type=int, nargs="+", default=list(defaults.ensemble_batches)
    )
    parser.add_argument(
        "--ensemble-targets",
        type=float,
        nargs="+",
        default=list(defaults.ensemble_targets),
        help="the largest ensemble/one ratio met, one per network",
    )
    parser.add_argument("--number", type=int, default=defaults.number)
    parser.add_argument("--repeats", type=int, default=defaults.repeats)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(defaults.parts))
    parser.add_argument("--out", help="folder for summary.json and summary.md")
    args = parser.parse_args()
    return BenchConfig(
        widths=tuple(args.widths),
        batch_size=args.batch_size,
        duration=args.duration,
        dt0=args.dt0,
        tolerances=tuple(zip(args.tolerances[::2], args.tolerances[1::2])),
        presentations=args.presentations,
        ensemble=args.ensemble,
        ensemble_widths=tuple(tuple(int(w) for w in s.split(",")) for s in args.ensemble_widths),
        ensemble_batches=tuple(args.ensemble_batches),
        ensemble_targets=tuple(args.ensemble_targets),
        number=args.number,
        repeats=args.repeats,
        seed=args.seed,
        parts=tuple(args.parts),
        out=args.out,
    )


if __name__ == "__main__":
    run_main(lambda: main(_cli()))
