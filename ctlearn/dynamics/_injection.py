"""The perturbation's path into the network: amplitude limits and crosstalk between channels."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._hardware import AbstractNonIdeality, is_inf, is_zero, non_negative_finite, positive, require


def neighbours(p):
    """The sum of each channel's two neighbours along the last axis (a line of channels; the
    ends have one neighbour)."""
    pad = [(0, 0)] * (p.ndim - 1)
    left = jnp.pad(p[..., :-1], pad + [(1, 0)])
    right = jnp.pad(p[..., 1:], pad + [(0, 1)])
    return left + right


class Injection(AbstractNonIdeality):
    """What the perturbation generator's signal ``p`` becomes on its way to the neurons, while
    the rules still use the generator's own ``p`` and ``ṗ``:

    * ``crosstalk`` κ (dimensionless): each channel picks up κ times each neighbouring channel
      along the units axis (adjacent lines), ``p_j + κ (p_{j−1} + p_{j+1})``;
    * ``amplitude`` a (units of the perturbation): the injector saturates softly,
      ``a·tanh(·/a)``, so perturbations much larger than a are clipped to ±a.

    Both bias the rule: crosstalk correlates the units' rates (the rule then applies a
    non-diagonal preconditioner), saturation shrinks the rates the rule over-credits.
    ``crosstalk = 0`` with ``amplitude = inf`` is the ideal injector.
    """

    amplitude: float = jnp.inf
    crosstalk: float = 0.0

    def __check_init__(self):
        require("amplitude", self.amplitude, positive, "> 0 (or inf)", "Injection")
        require(
            "crosstalk",
            self.crosstalk,
            lambda v: non_negative_finite(v) and v < 0.5,
            "in [0, 0.5)",
            "Injection",
        )

    def is_ideal(self):
        return is_inf(self.amplitude) and is_zero(self.crosstalk)

    def _channel(self, p):
        mixed = p + self.crosstalk * neighbours(p)
        finite = jnp.isfinite(self.amplitude)
        # A finite stand-in keeps the unused branch, and its tangent, finite.
        a = jnp.where(finite, self.amplitude, 1.0)
        return jnp.where(finite, a * jnp.tanh(mixed / a), mixed)

    def inject(self, p, p_dot):
        pairs = [jax.jvp(self._channel, (q,), (q_dot,)) for q, q_dot in zip(p, p_dot)]
        return tuple(a for a, _ in pairs), tuple(b for _, b in pairs)
