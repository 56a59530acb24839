"""The cost read through a high-pass filter: how an analog circuit separates the perturbation's
effect on the cost from the cost itself (MGD's analog mode)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ._hardware import (
    AbstractNonIdeality,
    check_blank,
    is_zero,
    non_negative_finite,
    require,
)
from ._rule import Signals


class HighPassState(eqx.Module):
    """The low-pass copy ``L_f`` of every block's loss (``None`` where a block has none)."""

    losses: tuple


class HighPass(AbstractNonIdeality):
    """The cost change ``C̃`` that value-correlating rules read (``MGDRule``) measured by a
    first-order high-pass of time constant ``tau`` (τ_hp) on the cost: ``C̃ = L − L_f`` with
    ``τ_hp · dL_f/dt = L − L_f``, i.e. the transfer function ``iωτ_hp / (1 + iωτ_hp)``, instead of
    the exact ``L(w + p) − L(w)`` (``tau = 0``, the ideal).

    The filter passes the perturbation's modulation of the cost well above 1/τ_hp and removes
    what changes slower (the loss's descent from learning); it also passes the cost's change when
    the input switches, and the part of the perturbation's own effect that is slower than τ_hp is
    lost. It is ``Differentiator`` with the output read as ``τ · (rate)``: the same filter, here
    as a value, where ``Differentiator`` reports a rate. ``blank`` (time units from each
    presentation's start): the synapses read ``C̃ = 0`` during it, so the switch of the input is
    not learned from. ``hold_switch``: when the input and labels switch between presentations,
    the filter's low-pass copy jumps by the cost's jump, so ``C̃`` carries on as it was and the
    switch itself is not passed (MGD's analog mode, which sets its previous cost to the current
    one whenever the sample changes); with ``transition > 0`` the blended input is passed
    either way (only the labels jump). The filter starts at the exact change and carries over
    between presentations.
    """

    tau: float = 0.0
    blank: float = 0.0
    hold_switch: bool = eqx.field(static=True, default=False)
    evolves: ClassVar[bool] = True

    @property
    def switches(self) -> bool:  # the extra forward passes only where they are used
        return self.hold_switch

    def __check_init__(self):
        require("tau", self.tau, non_negative_finite, "finite and >= 0", "HighPass")
        require("blank", self.blank, non_negative_finite, "finite and >= 0", "HighPass")
        if not isinstance(self.hold_switch, bool):
            raise ValueError(
                f"HighPass: hold_switch must be True or False, got {self.hold_switch!r}"
            )

    def is_ideal(self):
        return is_zero(self.tau, self.blank)

    def check(self, stream):
        check_blank("HighPass", self.blank, stream.duration)

    def time_constants(self):
        return {"high-pass tau_hp": self.tau}

    def init(self, model, signals: Signals, *, key):
        del model, key
        if signals.loss_changes is None:
            raise ValueError(
                "HighPass filters the cost change that value-correlating rules read (MGDRule); "
                "this simulator's rule reads rates only: use Differentiator for those"
            )
        return HighPassState(
            tuple(
                None if s is None else s - c for s, c in zip(signals.losses, signals.loss_changes)
            )
        )

    def _changes(self, signals: Signals, state: HighPassState):
        tau = self.tau
        return tuple(
            None if s is None else jnp.where(tau > 0, s - f, c)
            for s, f, c in zip(signals.losses, state.losses, signals.loss_changes)
        )

    def observe(self, signals, state, t):
        open_ = t >= self.blank
        changes = jax.tree.map(lambda c: jnp.where(open_, c, 0.0), self._changes(signals, state))
        return dataclasses.replace(signals, loss_changes=changes)

    def switch(self, state, before, after):
        if not self.hold_switch:
            return state
        return HighPassState(
            tuple(
                None if f is None else f + (a - b)
                for f, b, a in zip(state.losses, before.losses, after.losses)
            )
        )

    def drift(self, signals, state, t):
        tau = self.tau
        safe = jnp.where(tau > 0, tau, 1.0)
        return HighPassState(
            tuple(
                None if s is None else jnp.where(tau > 0, (s - f) / safe, 0.0)
                for s, f in zip(signals.losses, state.losses)
            )
        )
