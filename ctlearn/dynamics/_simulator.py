"""``Simulator``: the static description of a continuous-time simulation (rule, perturbation,
neurons, loss, solver, non-idealities), checked when built and against a stream before any
integration. ``prepare`` binds it to a network and a stream (``BoundSimulator``)."""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax

from ..losses import get_loss
from ..nn import Network
from ._hardware import AbstractNonIdeality, concrete
from ._neurons import AbstractNeurons, Instantaneous
from ._rule import AbstractRule
from ._stream import Presentations


class Simulator(eqx.Module):
    """The static description of a simulation: rule, perturbation, neurons, loss, solver.

    ``perturbation`` may be ``None`` only for rules that perturb nothing (gradient flow, DFA).
    ``input_rate``: the tangent carries the input's own rate of change ``ẋ`` (what a circuit
    would see during transitions). ``weight_rate``: it also carries the weights' own rate ``Ẇ``
    (``Ẇx`` terms), found by one fixed-point iteration (the exact relation is implicit).
    ``freeze``: weights stay fixed and only ``delta`` integrates ``ẇ`` (for cross-checks).
    ``solver``: ``None`` (the default) takes the fastest path measured (``ct.plan``,
    ``sims.bench_engine``): Heun in PEC mode (``HeunPEC``, one evaluation per step) at ``dt0``
    reading the perturbation from a table made once per presentation, at ``dt0/k`` where a
    part of the state is stiff against ``dt0`` (``ct.refinement``); Heun where PEC mode is
    not safe (noise, fast states, fast full-rate parts) or the table cannot serve, each with a
    one-line warning saying why; or a ``WaveformRelaxation`` or any Diffrax solver
    given explicitly (``diffrax.Heun()`` is the stepping reference). ``dt0``: the time resolution
    (the fixed step of a stepping solver; the spacing of the waveform engine's time points);
    ``controller``: a Diffrax step-size controller (``None``: constant steps). ``max_steps`` per
    presentation, for stepping solvers. ``hardware``: the circuit's non-idealities
    (``AbstractNonIdeality`` components, at most one of each kind; see ``ctlearn.dynamics``).
    """

    rule: AbstractRule
    perturbation: Any
    neurons: AbstractNeurons = Instantaneous()
    loss: str = eqx.field(static=True, default="cross_entropy")
    solver: Any = None
    dt0: float | None = eqx.field(static=True, default=None)
    controller: Any = None
    input_rate: bool = eqx.field(static=True, default=False)
    weight_rate: bool = eqx.field(static=True, default=False)
    freeze: bool = eqx.field(static=True, default=False)
    max_steps: int = eqx.field(static=True, default=4096)
    hardware: tuple[AbstractNonIdeality, ...] = ()

    def __check_init__(self):
        kinds = [type(h) for h in self.hardware]
        for h in self.hardware:
            if not isinstance(h, AbstractNonIdeality):
                raise TypeError(
                    f"hardware must hold non-ideality components (AbstractNonIdeality), got {h!r}"
                )
        if len(set(kinds)) != len(kinds):
            twice = next(k for k in kinds if kinds.count(k) > 1).__name__
            raise ValueError(f"hardware holds more than one {twice}: give each kind once")
        if self.rule.site != "none" and self.perturbation is None:
            raise ValueError(
                f"rule {type(self.rule).__name__} perturbs the network ({self.rule.site!r}): "
                "give it a perturbation process"
            )
        if self.controller is None and self.dt0 is None:
            raise ValueError("a constant step needs dt0 (or give an adaptive controller)")
        if self.dt0 is not None and not self.dt0 > 0:
            raise ValueError(f"dt0 must be positive, got {self.dt0}")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {self.max_steps}")
        get_loss(self.loss)

    def check(self, stream: Presentations, model: Network | None = None) -> None:
        """Non-physical settings and bad data (labels outside ``model``'s classes, non-finite
        inputs) fail here, before any integration, naming the values."""
        classes = None
        if model is not None:
            classes = jax.eval_shape(model, stream.x[0]).logits.shape[-1]
        stream.check(classes, real_targets=self.loss == "mse")
        tau_p = None if self.perturbation is None else float(self.perturbation.tau)
        tau_x = self.neurons.fastest_time_constant()
        if tau_x is not None and not math.isfinite(tau_x):
            raise ValueError(
                f"the neurons' time constant tau={tau_x} is not finite: they would never move; "
                "give a finite tau > 0 (or Instantaneous() neurons)"
            )
        if tau_p is not None and stream.duration < tau_p:
            raise ValueError(
                f"the presentation (duration {stream.duration}) is shorter than the perturbation's "
                f"time scale tau_p={tau_p}: the rule could not average over it"
            )
        for h in self.hardware:
            h.check(stream)
        if self.controller is None:
            scales = {"tau_p": tau_p, "neurons' tau": tau_x, "transition": stream.transition}
            for name, value in self.rule.time_constants().items():
                scales[name] = concrete(value)
            for h in self.hardware:
                if not h.is_ideal():
                    for name, value in h.time_constants().items():
                        scales[name] = concrete(value)
            for name, value in scales.items():
                if value and self.dt0 > value * (1 + 1e-6):  # float32 parameters round
                    raise ValueError(
                        f"the fixed step dt0={self.dt0} is larger than {name}={value}: it would "
                        f"step over the dynamics; choose dt0 <= {value}"
                    )
            _check_band(self.perturbation, self.dt0)


# Products of two perturbation rates (ṗ_i·ṗ_j, in ṙ·ẏ) reach twice the band's top frequency: a
# fixed step must sample that at least twice per period, ω_max·dt0 <= π/2, or they alias.
MAX_BAND_STEP = 0.5 * math.pi


def _check_band(perturbation, dt0: float) -> None:
    """Refuse a fixed step too coarse for the perturbation's band (its fastest angular frequency
    ω_max): the rule's products of rates would alias into a false mean."""
    if perturbation is None:
        return
    try:
        omega = float(perturbation.max_frequency())
    except (TypeError, jax.errors.ConcretizationTypeError):  # traced parameters: checked per member
        return
    if omega * dt0 > MAX_BAND_STEP * (1 + 1e-6):
        raise ValueError(
            f"dt0={dt0} gives too few time points for the perturbation's band: its fastest "
            f"component (ω_max={omega:.4g} rad per time unit) is sampled {omega * dt0:.3g} rad "
            f"apart, and the rule's products of rates (up to 2·ω_max) would alias; choose "
            f"dt0 <= {MAX_BAND_STEP / omega:.4g} (ω_max·dt0 <= π/2)"
        )
