"""Which integration a simulator's presentations get: Diffrax's stepping solvers (by default Heun
in PEC mode reading a perturbation tabulated once per presentation) or the waveform engine
(``WaveformRelaxation`` over windows of each presentation). ``plan`` decides once per binding,
before any work."""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import diffrax
import equinox as eqx
import jax.numpy as jnp

from ..nn import Network
from ._hardware import concrete
from ._neurons import Instantaneous
from ._pec import MAX_STIFF_STEP, HeunPEC
from ._simulator import Simulator
from ._stream import Presentations
from ._waveform import WaveformRelaxation

# The fastest perturbation component must be sampled at least this many times per radian of its
# phase: ω_max·dt0 ≤ 1 keeps 2π ≈ 6.3 points per period, where a measured Δw error of ~2e-3
# (second order through the ReLU kinks) stays below the engine's 5e-3 target.
MAX_PHASE_STEP = 1.0
# Where a part of the state relaxes or learns at its own rate λ (``stiff_rates``) with
# λ·dt0 above this, the automatic path steps at dt0/k, the smallest whole k that brings λ·dt0/k
# below it. Chosen by measurement (``sims.bench_engine``, part (b): the k column and the errors
# on the smooth network): with leaky neurons, a differentiator or local heads learning at their
# full rate, Heun at λ·dt0 near 1 misses Δw by far more than the engine's 5e-3 target, and at
# this bound it meets it.
MAX_RATE_STEP = 0.15
# Parts that learn at their full rate r (see ``AbstractRule.full_rate``) get windows of at most
# STIFFNESS / r, so that each Picard sweep shrinks the remaining error about tenfold.
STIFFNESS = 0.1


class Plan(eqx.Module):
    """How every presentation is integrated: the Diffrax ``solver``, step-size ``controller``,
    first step ``dt0`` and ``max_steps``; ``engine`` names it (``"waveform"`` or ``"diffrax"``),
    ``tabulate`` says whether a stepping solver reads the perturbation from a table made once
    per presentation on its grid n·dt0 (``"diffrax"`` only), and ``notice`` says why an
    automatic choice could not take its fast path (``None`` otherwise). ``members``: how a
    vmapped ensemble's fixed-step presentations are solved (``"fused"``: one solve carrying the
    member axis in its state; ``"vmap"``: every member's solve vmapped, the reference);
    ``brownian``: the Brownian path that drives noise (``None``: one increment per step at a
    fixed step, a ``VirtualBrownianTree`` otherwise; ``"increments"`` or ``"tree"``);
    ``weights``: where only the learned change moves the stored weights, whether a solve
    rebuilds them from it where they are read (``"rebuilt"``) or steps them beside it
    (``"stepped"``, the reference)."""

    solver: Any
    controller: Any
    dt0: float | None = eqx.field(static=True)
    max_steps: int = eqx.field(static=True)
    engine: str = eqx.field(static=True)
    notice: str | None = eqx.field(static=True, default=None)
    tabulate: bool = eqx.field(static=True, default=False)
    members: str = eqx.field(static=True, default="fused")
    brownian: str | None = eqx.field(static=True, default=None)
    weights: str = eqx.field(static=True, default="rebuilt")


def waveform_obstacle(simulator: Simulator) -> str | None:
    """Why the waveform engine cannot integrate ``simulator``'s presentations (``None`` if it
    can): it needs a constant time resolution, a deterministic closed-form perturbation, no
    fast neuron or filter states and no noise (their stiffness or Brownian paths call for
    stepping)."""
    if simulator.controller is not None:
        return f"adaptive step control (controller={type(simulator.controller).__name__})"
    perturbation = simulator.perturbation
    if perturbation is not None and perturbation.evolves:
        return f"a perturbation whose state evolves ({type(perturbation).__name__})"
    if not isinstance(simulator.neurons, Instantaneous):
        return f"neurons with state ({type(simulator.neurons).__name__})"
    for h in simulator.hardware:
        if h.evolves:
            return f"a non-ideality with its own dynamics ({type(h).__name__})"
        noise = h.weight_noise()
        if noise is not None:
            return f"weight noise ({type(h).__name__} {noise})"
    return None


def plan(simulator: Simulator, stream: Presentations, model: Network | None = None) -> Plan:
    """The integration of ``simulator``'s presentations of ``stream`` (to ``model``: its local
    heads and the rule's full-rate parts decide how short the waveform engine's windows must be).

    ``solver=None`` (automatic) takes the fastest path measured on CPU (``sims.bench_engine``):
    Heun's predictor–corrector in PEC mode (``HeunPEC``, one evaluation per step) at ``dt0``
    reading the perturbation from a table made once per presentation on its grid, and at
    ``dt0/k`` where a part of the state relaxes or learns fast against ``dt0`` (``refinement``).
    Where PEC mode is not safe (``pec_obstacle``: noise, states that relax fast against ``dt0``,
    parts that learn at their full rate) it takes Heun (two evaluations per step); where the
    table cannot serve (``tabulation_obstacle``) the perturbation is evaluated at every step.
    Each fallback says why in a one-line warning (``Plan.notice``). A ``WaveformRelaxation``
    given explicitly integrates windows of each presentation at once; it is refused, naming the
    obstacle, where it cannot serve. Any Diffrax solver given explicitly runs exactly as given
    (the reference)."""
    solver = simulator.solver
    if isinstance(solver, WaveformRelaxation):
        obstacle = waveform_obstacle(simulator)
        if obstacle is None:
            window, obstacle = _window(simulator, solver, stream, model)
        if obstacle is not None:
            raise ValueError(
                f"WaveformRelaxation cannot integrate {obstacle}; use a Diffrax solver (e.g. "
                "diffrax.Heun()) or solver=None to choose automatically"
            )
        return _waveform(simulator, solver, stream, window)
    if solver is not None:
        return _stepping(simulator, stream, None, tabulate=False)
    reasons = []
    substeps, fastest = refinement(simulator, model)
    if substeps > 1:
        reasons.append(f"dt0={simulator.dt0} divided by {substeps} ({fastest})")
        simulator = dataclasses.replace(
            simulator, dt0=simulator.dt0 / substeps, max_steps=simulator.max_steps * substeps
        )
    stiff = pec_obstacle(simulator, model)
    if stiff is not None:
        reasons.append(f"Heun's two evaluations per step instead of PEC mode's one ({stiff})")
    simulator = dataclasses.replace(
        simulator, solver=HeunPEC() if stiff is None else diffrax.Heun()
    )
    tabulate = simulator.perturbation is not None  # else nothing to tabulate
    if tabulate:
        obstacle = tabulation_obstacle(simulator, stream)
        if obstacle is not None:
            tabulate = False
            reasons.append(f"the perturbation evaluated at every step ({obstacle})")
    notice = None
    if reasons:
        name = "Heun in PEC mode" if stiff is None else "Heun"
        notice = f"ctlearn: presentations are integrated by {name} at dt0={simulator.dt0}: " + (
            "; ".join(reasons)
        )
        warnings.warn(notice, stacklevel=3)
    return _stepping(simulator, stream, notice, tabulate=tabulate)


def common_plan(plans: list[Plan]) -> list[Plan]:
    """The plans of an ensemble's members made one where their settings asked for different
    fixed-step integrations (e.g. a differentiator's τ_d per member, which sets how finely the
    automatic path divides ``dt0``): every member then takes the finest step any member needs,
    Heun where any member cannot take PEC mode, and a tabulated perturbation only where every
    member can read one. Plans that are not all fixed-step Diffrax ones are returned as given."""
    if len(plans) < 2 or all(p == plans[0] for p in plans):
        return plans
    if not all(
        p.engine == "diffrax" and isinstance(p.controller, diffrax.ConstantStepSize) for p in plans
    ):
        return plans
    finest = min(plans, key=lambda p: p.dt0)
    same_solver = all(type(p.solver) is type(finest.solver) for p in plans)
    notices = list(dict.fromkeys(p.notice for p in plans if p.notice))
    one = dataclasses.replace(
        finest,
        solver=finest.solver if same_solver else diffrax.Heun(),
        max_steps=max(p.max_steps for p in plans),
        tabulate=all(p.tabulate for p in plans),
        notice="; ".join(notices) if notices else None,
    )
    return [one] * len(plans)


def stiff_rates(simulator: Simulator, model: Network | None) -> dict[str, float]:
    """The rates (1 / time unit) at which parts of the state relax or learn on their own, by
    name, where they are known: the neurons' 1/τ, each non-ideality's 1/τ (its filters), the
    rule's own 1/τ (an integrating state, ``AbstractRule.time_constants``) and the rule's full
    rate (``AbstractRule.full_rate``: local heads, feedback) for ``model``."""
    rates = {}
    tau = simulator.neurons.fastest_time_constant()
    if tau:
        rates[f"{type(simulator.neurons).__name__} neurons' tau={tau:g}"] = 1.0 / tau
    for h in simulator.hardware:
        if h.is_ideal():
            continue
        for name, value in h.time_constants().items():
            value = concrete(value)
            if value:
                rates[f"{type(h).__name__} {name}={value:g}"] = 1.0 / value
    for name, value in simulator.rule.time_constants().items():
        value = concrete(value)
        if value:
            rates[f"{type(simulator.rule).__name__} {name}={value:g}"] = 1.0 / value
    rate = None if model is None else concrete(simulator.rule.full_rate(model))
    if rate:
        rates[f"{type(simulator.rule).__name__}'s parts that learn at their full rate {rate:g}"] = (
            rate
        )
    return rates


def refinement(simulator: Simulator, model: Network | None) -> tuple[int, str | None]:
    """How many steps the automatic path takes per ``dt0``, and why: the smallest whole ``k``
    with ``λ·dt0/k <= MAX_RATE_STEP`` for the fastest of ``stiff_rates`` (1 and ``None`` where
    ``dt0`` already resolves them, or the step is adaptive)."""
    if simulator.controller is not None or simulator.dt0 is None:
        return 1, None
    rates = stiff_rates(simulator, model)
    if not rates:
        return 1, None
    name = max(rates, key=rates.get)
    product = rates[name] * simulator.dt0
    substeps = max(1, math.ceil(product / MAX_RATE_STEP * (1 - 1e-6)))
    if substeps == 1:
        return 1, None
    return substeps, f"{name}: rate·dt0 = {product:.3g} > {MAX_RATE_STEP}"


def pec_obstacle(simulator: Simulator, model: Network | None) -> str | None:
    """Why Heun in PEC mode is not safe for ``simulator`` (``None`` if it is): it must be an
    ODE at a constant step (no noise, no adaptive control) whose rate is dominated by its
    explicit time dependence (a perturbation; measured: gradient flow, driven by the state alone,
    loses accuracy in PEC mode, ``sims.bench_engine``), and every rate the state relaxes or
    learns at must keep ``rate·dt0 <= MAX_STIFF_STEP`` (PEC mode is stable to 1, Heun to 2):
    neurons and non-idealities with their own dynamics are left to Heun, as are rules whose
    parts learn at their full rate (``AbstractRule.full_rate``) too fast for ``dt0``."""
    obstacle = waveform_obstacle(simulator)
    if obstacle is not None:
        return obstacle
    if simulator.perturbation is None:
        return (
            f"{type(simulator.rule).__name__} perturbs nothing: its rate is driven by the state "
            "itself, where the reused rate costs accuracy"
        )
    dt0 = simulator.dt0
    if model is None:
        return "a network not given to plan (its full-rate parts are unknown)"
    rate = concrete(simulator.rule.full_rate(model))
    if rate is None:
        return "a rule whose full-rate parts are traced (their rate is unknown)"
    if rate * dt0 > MAX_STIFF_STEP:
        return (
            f"parts that learn at their full rate {rate:g} ({type(simulator.rule).__name__}), "
            f"rate·dt0 = {rate * dt0:.3g} > {MAX_STIFF_STEP}"
        )
    for h in simulator.hardware:
        for name, tau in h.time_constants().items():
            tau = concrete(tau)
            if tau is None or dt0 > MAX_STIFF_STEP * tau:
                return f"{type(h).__name__} {name}={tau} against dt0={dt0}"
    return None


def tabulation_obstacle(simulator: Simulator, stream: Presentations) -> str | None:
    """Why a fixed-step solver cannot read the perturbation from a table on its grid n·dt0
    (``None`` if it can): the grid must be the solver's only evaluation times (Euler, Heun or
    ``HeunPEC`` at a constant step that divides the presentation) and the perturbation
    closed-form."""
    if simulator.controller is not None:
        return f"adaptive step control (controller={type(simulator.controller).__name__})"
    if not isinstance(simulator.solver, (diffrax.Euler, diffrax.Heun, HeunPEC)):
        return f"a solver that evaluates between steps ({type(simulator.solver).__name__})"
    perturbation = simulator.perturbation
    if perturbation is not None and perturbation.evolves:
        return f"a perturbation whose state evolves ({type(perturbation).__name__})"
    steps = stream.duration / simulator.dt0
    if abs(steps - round(steps)) > 1e-6 * steps:
        return f"a presentation of {stream.duration} that is not a whole number of steps dt0"
    return None


def _window(
    simulator: Simulator, solver: WaveformRelaxation, stream: Presentations, model
) -> tuple[float, str | None]:
    """The longest window the engine may use (``solver.window``, default τ_p/2 or T/20 without a
    perturbation, shortened against the rule's full rate), or the reason there is none."""
    if solver.window is not None:
        window = solver.window
    elif simulator.perturbation is not None:
        window = 0.5 * float(simulator.perturbation.tau)
    else:
        window = stream.duration / 20
    rate = 0.0 if model is None else concrete(simulator.rule.full_rate(model))
    panel = solver.nodes * simulator.dt0
    if rate is None:
        return window, "a rule whose full-rate parts are traced (their rate is unknown)"
    if rate > 0:
        window = min(window, STIFFNESS / rate)
    if window < panel * (1 - 1e-9):
        return window, (
            f"parts that learn at their full rate {rate:g} ({type(simulator.rule).__name__}: "
            f"local heads, direct or learned feedback, or an exact gradient), too fast for "
            f"windows of one panel ({panel:g} = nodes·dt0; it needs rate·window <= {STIFFNESS})"
        )
    return window, None


def _stepping(
    simulator: Simulator, stream: Presentations, notice: str | None, *, tabulate: bool
) -> Plan:
    if simulator.controller is None:
        controller = diffrax.ConstantStepSize()
    elif stream.transition > 0:
        # The input's rate changes abruptly where the transition ends: tell the controller.
        controller = diffrax.ClipStepSizeController(
            simulator.controller, jump_ts=jnp.array([stream.transition])
        )
    else:
        controller = simulator.controller
    return Plan(
        simulator.solver,
        controller,
        simulator.dt0,
        simulator.max_steps,
        "diffrax",
        notice,
        tabulate,
    )


def _waveform(
    simulator: Simulator, solver: WaveformRelaxation, stream: Presentations, window: float
) -> Plan:
    """Windows of at most ``window`` tile [0, T] with an edge where the input transition ends;
    each holds ``panels`` panels of ``nodes`` points, enough for a node spacing of at most
    ``dt0`` (refused where ``dt0`` is too coarse for the perturbation's band)."""
    dt0 = simulator.dt0
    perturbation = simulator.perturbation
    if perturbation is not None:
        omega = float(perturbation.max_frequency())
        if omega * dt0 > MAX_PHASE_STEP * (1 + 1e-6):
            raise ValueError(
                f"dt0={dt0} samples the perturbation's fastest component (ω_max={omega:.4g} "
                f"rad per time unit) {omega * dt0:.3g} rad apart: too few time points for its "
                f"band; the waveform engine needs dt0 <= {MAX_PHASE_STEP / omega:.4g}"
            )
    segments = [(0.0, stream.transition), (stream.transition, stream.duration)]
    edges, longest = [0.0], 0.0
    for start, end in segments:
        if end <= start:
            continue
        count = math.ceil((end - start) / window * (1 - 1e-9))
        edges += [start + (end - start) * (i + 1) / count for i in range(count)]
        longest = max(longest, (end - start) / count)
    panels = solver.panels or math.ceil(longest / (solver.nodes * dt0) * (1 - 1e-9))
    resolved = dataclasses.replace(solver, panels=panels, window=window)
    return Plan(resolved, diffrax.StepTo(ts=tuple(edges)), None, len(edges) - 1, "waveform")
