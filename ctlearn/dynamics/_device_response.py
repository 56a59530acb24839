"""How a device's conductance step depends on where it is: the bounded-response families of
pulsed analog devices (after IBM aihwkit's ``ConstantStep``, ``LinearStep``, ``SoftBounds`` and
``ExpStep`` device models)."""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._hardware import require


class AbstractResponse(eqx.Module):
    """The factor f(w, d) ≥ 0 that multiplies a pulse's nominal step at weight ``w`` in
    direction ``d`` (+1 up, −1 down), given the device's bounds w_min < 0 < w_max."""

    @abc.abstractmethod
    def factor(
        self,
        w: Float[Array, "*shape"],
        up: bool,
        w_min: Float[Array, "*shape"],
        w_max: Float[Array, "*shape"],
        xi: Float[Array, "*shape"] | None = None,
    ) -> Float[Array, "*shape"]:
        """f(w, up) for a pulse up (``up``) or down; ``xi``: every device's own standard normal
        draw, for a response whose shape spreads from device to device (ignored otherwise)."""

    def symmetry_point(
        self, alpha_up: float, alpha_down: float, w_min: float, w_max: float
    ) -> float | None:
        """The weight w* where an up step α₊·f(w*, up) equals a down step α₋·f(w*, down), so
        that random pulses with no net signal pull the device there; ``None`` where the response
        has no such closed form (here: every response but the linear ones)."""
        del alpha_up, alpha_down, w_min, w_max
        return None


class ConstantStep(AbstractResponse):
    """Every pulse moves the weight by the same step until it is clipped at a bound."""

    def factor(self, w, up, w_min, w_max, xi=None):
        return jnp.ones_like(w)


class LinearStep(AbstractResponse):
    """The step shrinks linearly towards the bound it moves to: up pulses by
    1 − γ_up·w/w_max, down pulses by 1 − γ_down·w/w_min (γ = 0: a constant step; γ = 1: soft
    bounds, zero at the bound). ``gamma_d2d``: each device's own γ is |γ + gamma_d2d·ξ| (ξ its
    standard normal draw), as aihwkit's ``gamma_up_dtod``/``gamma_down_dtod`` (default 0.05
    there). aihwkit's capacitor (γ = 0.05) and ECRAM (γ_up = 0.1153, γ_down = 0.5085) presets
    use this family."""

    gamma_up: float = 0.0
    gamma_down: float = 0.0
    gamma_d2d: float = 0.0

    def __check_init__(self):
        for name in ("gamma_up", "gamma_down"):
            require(name, getattr(self, name), lambda v: 0 <= v <= 1, "in [0, 1]", "LinearStep")
        require("gamma_d2d", self.gamma_d2d, lambda v: v >= 0 and math.isfinite(v),
                "finite and >= 0", "LinearStep")  # fmt: skip

    def symmetry_point(self, alpha_up, alpha_down, w_min, w_max):
        # α₊(1 − γ₊w/w_max) = α₋(1 − γ₋w/w_min), linear in w.
        slope = alpha_up * self.gamma_up / w_max - alpha_down * self.gamma_down / w_min
        return None if slope == 0 else (alpha_up - alpha_down) / slope

    def factor(self, w, up, w_min, w_max, xi=None):
        bound, gamma = (w_max, self.gamma_up) if up else (w_min, self.gamma_down)
        if xi is not None:
            gamma = jnp.abs(gamma + self.gamma_d2d * xi)
        return jnp.maximum(1 - gamma * w / bound, 0.0)


class SoftBounds(AbstractResponse):
    """The step falls linearly to zero at the bound it moves to: 1 − w/w_max up, 1 − w/w_min
    down (``LinearStep`` with γ = 1). With unequal up and down steps, random pulses pull the
    weight to its symmetry point w* = (α₊ − α₋)/(α₊/w_max − α₋/w_min), α± the step sizes."""

    def factor(self, w, up, w_min, w_max, xi=None):
        return jnp.maximum(1 - w / (w_max if up else w_min), 0.0)

    def symmetry_point(self, alpha_up, alpha_down, w_min, w_max):
        return LinearStep(1.0, 1.0).symmetry_point(alpha_up, alpha_down, w_min, w_max)


class ExpStep(AbstractResponse):
    """aihwkit's exponential step: f = max(1 − A_d·exp(d·γ_d·z), 0) with
    z = 2a·w/(w_max − w_min) + b, d = +1 up and −1 down, so the step collapses steeply near one
    bound (a negative A makes it grow there instead). Defaults are aihwkit's ``ExpStepDevice``
    values (A_up = 0.00081, A_down = 0.36833, γ_up = 12.44625, γ_down = 12.78785, a = 0.244,
    b = 0.2425)."""

    a_up: float = 0.00081
    a_down: float = 0.36833
    gamma_up: float = 12.44625
    gamma_down: float = 12.78785
    a: float = 0.244
    b: float = 0.2425

    def __check_init__(self):
        for name in ("a_up", "a_down", "gamma_up", "gamma_down", "a", "b"):
            require(name, getattr(self, name), math.isfinite, "finite", "ExpStep")

    def factor(self, w, up, w_min, w_max, xi=None):
        z = 2 * self.a * w / (w_max - w_min) + self.b
        amplitude, rate, sign = (
            (self.a_up, self.gamma_up, 1.0) if up else (self.a_down, self.gamma_down, -1.0)
        )
        return jnp.maximum(1 - amplitude * jnp.exp(sign * rate * z), 0.0)


RESPONSES: dict[str, type[AbstractResponse]] = {
    "constant": ConstantStep,
    "linear": LinearStep,
    "soft_bounds": SoftBounds,
    "exp": ExpStep,
}
"""The response families by name (each at its default parameters), for settings files."""


def as_response(value: AbstractResponse | str) -> AbstractResponse:
    """``value`` as a response: a name of ``RESPONSES`` gives that family at its defaults."""
    if isinstance(value, str):
        if value not in RESPONSES:
            raise ValueError(
                f"unknown device response {value!r}; valid: {', '.join(RESPONSES)} (or a "
                "response module)"
            )
        return RESPONSES[value]()
    return value
