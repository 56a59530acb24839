"""Finite-bandwidth differentiators: what a circuit measures of a signal's rate of change."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ._hardware import (
    AbstractNonIdeality,
    check_blank,
    concrete,
    is_zero,
    non_negative_finite,
    require,
)
from ._rule import Signals

MEASURED = ("post", "reward")


class DifferentiatorState(eqx.Module):
    """The low-pass copies ``s_f`` of the differentiated signals: the generator's perturbation
    ``p`` (one array per point), the activation inputs ``z`` (one per layer) and the block
    losses (one per block, ``None`` where a block has no loss)."""

    p: tuple
    pre: tuple
    losses: tuple


def _rate(s, s_f, tau, exact):
    # τ = 0 (only reachable inside a sweep, where τ is traced) is the exact derivative.
    safe = jnp.where(tau > 0, tau, 1.0)
    return jnp.where(tau > 0, (s - s_f) / safe, exact)


class Differentiator(AbstractNonIdeality):
    """First-order high-pass differentiators with time constant ``tau`` (τ_d, in the
    simulator's time unit) in place of exact derivatives: a signal ``s`` is read as
    ``(s − s_f)/τ_d`` with ``τ_d ṡ_f = s − s_f``, i.e. the transfer function ``iω/(1 + iωτ_d)``:
    a derivative below the corner frequency 1/τ_d, a gain of 1/τ_d and a phase lag above it.

    ``measure`` says which rates pass through one: ``"post"`` the post-synaptic rate ẏ (the
    injected ``ṗ``, which the generator's own signal is differentiated for, and the measured
    ``ż``), ``"reward"`` the reward rate ṙ (every block loss). Other rates stay exact. The
    filters start so that their output equals the exact rate at the first instant, and carry
    over between presentations. ``tau = 0`` is the ideal (exact) differentiator.

    A differentiator sees every change of its signal: the loss's jump or ramp when the input
    switches, and the loss's change from learning itself, not only the perturbation's effect, and
    rings for a few τ_d after a switch. ``blank`` (time units from each presentation's start) is
    a blanking window during which the synapses ignore the reward rate (ẇ = 0), as circuits do
    after a switching event; learning then lasts T − blank. A differentiator much slower than τ_p
    averages the perturbation's rate away.
    """

    tau: float = 0.0
    measure: tuple[str, ...] = eqx.field(static=True, default=MEASURED)
    blank: float = 0.0
    evolves: ClassVar[bool] = True

    def __check_init__(self):
        require("tau", self.tau, non_negative_finite, "finite and >= 0", "Differentiator")
        require("blank", self.blank, non_negative_finite, "finite and >= 0", "Differentiator")
        bad = [m for m in self.measure if m not in MEASURED]
        if bad or not self.measure:
            raise ValueError(
                f"Differentiator: unknown measure {tuple(self.measure)!r}; valid: a non-empty "
                f"subset of {MEASURED}"
            )

    def is_ideal(self):
        return is_zero(self.tau, self.blank)

    def check(self, stream):
        check_blank("Differentiator", self.blank, stream.duration)
        tau = concrete(self.tau)
        if tau is not None and tau > stream.duration:
            raise ValueError(
                f"the differentiator's time constant tau_d={tau} is longer than a presentation "
                f"(duration {stream.duration}): it would report rates from earlier presentations; "
                f"choose tau_d <= {stream.duration}"
            )

    def time_constants(self):
        return {"differentiator tau_d": self.tau}

    def init(self, model, signals: Signals, *, key):
        def start(s, s_dot):
            return None if s is None else s - self.tau * s_dot

        return DifferentiatorState(
            tuple(map(start, signals.p, signals.p_dot)),
            tuple(map(start, signals.trace.pre, signals.trace_dot.pre)),
            tuple(map(start, signals.losses, signals.loss_rates)),
        )

    def _rates(self, signals: Signals, state: DifferentiatorState):
        def rates(values, filtered, exact):
            return tuple(
                None if s is None else _rate(s, f, self.tau, e)
                for s, f, e in zip(values, filtered, exact)
            )

        return DifferentiatorState(
            rates(signals.p, state.p, signals.p_dot),
            rates(signals.trace.pre, state.pre, signals.trace_dot.pre),
            rates(signals.losses, state.losses, signals.loss_rates),
        )

    def observe(self, signals, state, t):
        rates = self._rates(signals, state)
        changes = {}
        if "post" in self.measure:
            changes["p_dot"] = rates.p
            changes["trace_dot"] = dataclasses.replace(signals.trace_dot, pre=rates.pre)
        if "reward" in self.measure:
            changes["loss_rates"] = rates.losses
        # Blanking: the synapses ignore the differentiators while they ring after the switch.
        open_ = t >= self.blank
        changes["loss_rates"] = jax.tree.map(
            lambda r: jnp.where(open_, r, 0.0), changes.get("loss_rates", signals.loss_rates)
        )
        return dataclasses.replace(signals, **changes)

    def drift(self, signals, state, t):
        return self._rates(signals, state)
