"""Pulsed analog devices: conductances change only by pulses of a minimum step, with a bounded
and asymmetric response, cycle-to-cycle noise per pulse and device-to-device spread."""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..nn import Network
from ._device_response import (
    AbstractResponse,
    ConstantStep,
    ExpStep,
    LinearStep,
    SoftBounds,
    as_response,
)
from ._hardware import AbstractNonIdeality, concrete, is_inf, is_zero, non_negative_finite, require
from ._mismatch import lognormal

NOISES = ("multiplicative", "additive")
"""How ``PulsedDevice``'s cycle-to-cycle noise acts on a pulse."""


RESPONSE_KEYS = 1_000_003  # offset of the response draws' keys (one per trainable array)


class PulsedDeviceState(eqx.Module):
    """Standard normal draws fixed for the circuit's life, one per device (every element of every
    trainable array) for each spread parameter: step size, asymmetry, lower and upper bound,
    and the response's shape (``LinearStep``'s γ)."""

    step: object
    up_down: object
    w_min: object
    w_max: object
    response: object


class PulsedDevice(AbstractNonIdeality):
    """Every trainable array is stored on pulsed devices (in the model's weight units).

    At the end of each presentation the rule's accumulated change Δ = w_target − w_stored is
    written as n pulses in the direction d = sign(Δ): n = ⌊|Δ|/dw_min + u⌋ with u uniform
    (stochastic pulse rounding: E n·dw_min = |Δ|), at most ``max_pulses`` (aihwkit's default
    pulse-train length, 31). The programming circuit knows only the nominal ``dw_min``; pulse k
    moves the device by d·δ_d·f(w, d)·(1 + ``c2c``·ξ_k), clipped to the device's bounds, where

    * δ_± = dw_min_i·(1 ± β_i) are the device's own up and down steps: dw_min_i =
      dw_min·LogNormal(mean 1, spread ``dw_min_d2d``) and β_i = ``up_down`` + ``up_down_d2d``·ξ
      (clipped to ±0.99), drawn once per device from the key;
    * f is the ``response`` (``ConstantStep``, ``LinearStep``, ``SoftBounds``, ``ExpStep``, or
      one of them by name at its defaults: ``"constant"``, ``"linear"``, ``"soft_bounds"``,
      ``"exp"``, as in a sweep's settings file);
    * the bounds are ``w_min``·(1 + ``w_min_d2d``·ξ) and ``w_max``·(1 + ``w_max_d2d``·ξ′);
    * ξ_k is a fresh standard normal per pulse: cycle-to-cycle noise, multiplying the step
      (``noise="multiplicative"``) or added with standard deviation ``c2c``·dw_min whatever the
      response (``"additive"``, aihwkit's ``mult_noise=False``).

    The initial weights are programmed exactly, clipped to each device's bounds.
    ``dw_min = 0`` (no pulses: the target is stored as it is) with infinite bounds is the ideal
    device. ``PulsedDevice.preset(name, scale)`` gives the published device families
    (``DEVICE_PRESETS``).
    """

    dw_min: float = 0.0
    response: AbstractResponse = eqx.field(default=ConstantStep(), converter=as_response)
    w_min: float = -jnp.inf
    w_max: float = jnp.inf
    up_down: float = 0.0
    c2c: float = 0.0
    dw_min_d2d: float = 0.0
    up_down_d2d: float = 0.0
    w_min_d2d: float = 0.0
    w_max_d2d: float = 0.0
    noise: str = eqx.field(static=True, default="multiplicative")
    max_pulses: int = eqx.field(static=True, default=31)
    writes: ClassVar[bool] = True

    def __check_init__(self):
        owner = "PulsedDevice"
        require("dw_min", self.dw_min, non_negative_finite, "finite and >= 0", owner)
        require("w_min", self.w_min, lambda v: v < 0, "< 0 (or -inf)", owner)
        require("w_max", self.w_max, lambda v: v > 0, "> 0 (or inf)", owner)
        require("up_down", self.up_down, lambda v: abs(v) < 1, "in (-1, 1)", owner)
        for name in ("c2c", "dw_min_d2d", "up_down_d2d", "w_min_d2d", "w_max_d2d"):
            require(name, getattr(self, name), non_negative_finite, "finite and >= 0", owner)
        if self.noise not in NOISES:
            raise ValueError(f"{owner}: unknown noise {self.noise!r}; valid: {', '.join(NOISES)}")
        if not isinstance(self.response, AbstractResponse):
            raise TypeError(
                f"{owner}: response must be a device response (ConstantStep, LinearStep, "
                f"SoftBounds, ExpStep), got {self.response!r}"
            )
        if isinstance(self.max_pulses, bool) or not isinstance(self.max_pulses, int):
            raise ValueError(f"{owner}: max_pulses must be an int >= 1, got {self.max_pulses!r}")
        if self.max_pulses < 1:
            raise ValueError(f"{owner}: max_pulses must be an int >= 1, got {self.max_pulses!r}")
        dw, lo, hi = concrete(self.dw_min), concrete(self.w_min), concrete(self.w_max)
        if None not in (dw, lo, hi) and dw >= hi - lo:
            raise ValueError(
                f"{owner}: one pulse (dw_min={dw}) would cross the whole weight range "
                f"[{lo}, {hi}]; dw_min must be < w_max - w_min = {hi - lo}"
            )
        response = type(self.response).__name__
        bounded = not isinstance(self.response, ConstantStep)
        if bounded and (concrete(self.w_max) == math.inf or concrete(self.w_min) == -math.inf):
            raise ValueError(
                f"{owner}: the {response} response needs finite bounds, got "
                f"w_min={self.w_min}, w_max={self.w_max}"
            )

    @classmethod
    def preset(cls, name: str, scale: float = 1.0, **overrides) -> PulsedDevice:
        """The device family ``name`` of ``DEVICE_PRESETS``, its conductance range mapped onto
        weights by ``scale`` (weight units per normalised conductance unit: steps and bounds are
        multiplied by it); ``overrides`` replace single fields."""
        if name not in DEVICE_PRESETS:
            raise ValueError(f"unknown device preset {name!r}; valid: {', '.join(DEVICE_PRESETS)}")
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be finite and > 0, got scale={scale!r}")
        fields = dict(DEVICE_PRESETS[name].fields)
        for key in ("dw_min", "w_min", "w_max"):
            fields[key] = fields[key] * scale
        fields.update(overrides)
        return cls(**fields)

    def is_ideal(self):
        return is_zero(self.dw_min) and is_inf(-self.w_min, self.w_max)

    def init(self, model: Network, signals, *, key: PRNGKeyArray) -> PulsedDeviceState:
        params = eqx.filter(model, eqx.is_inexact_array)
        leaves, treedef = jax.tree.flatten(params)
        draws = [
            jax.random.normal(jax.random.fold_in(key, i), (4, *leaf.shape), leaf.dtype)
            for i, leaf in enumerate(leaves)
        ]
        # The response's draws come from keys of their own, so the other four stay as they were
        # before the response could spread.
        shape_draws = [
            jax.random.normal(jax.random.fold_in(key, RESPONSE_KEYS + i), leaf.shape, leaf.dtype)
            for i, leaf in enumerate(leaves)
        ]
        return PulsedDeviceState(
            *(jax.tree.unflatten(treedef, [d[j] for d in draws]) for j in range(4)),
            jax.tree.unflatten(treedef, shape_draws),
        )

    def symmetry_point(self) -> float:
        """The nominal device's symmetry point w* (no device-to-device spread: steps
        dw_min·(1 ± ``up_down``), bounds ``w_min``, ``w_max``), where random pulses carrying no
        net signal pull every weight (``AbstractResponse.symmetry_point``). Refused for a
        response without a closed form (the constant and exponential steps)."""
        point = self.response.symmetry_point(
            1 + self.up_down, 1 - self.up_down, self.w_min, self.w_max
        )
        if point is None:
            raise ValueError(
                f"PulsedDevice: the {type(self.response).__name__} response has no closed-form "
                "symmetry point; valid: LinearStep with a nonzero gamma, or SoftBounds"
            )
        return float(point)

    def bounds(self, state: PulsedDeviceState) -> tuple[object, object]:
        """Every device's own lower and upper bound (trees shaped like the weights)."""
        low = jax.tree.map(lambda xi: self.w_min * (1 + self.w_min_d2d * xi), state.w_min)
        high = jax.tree.map(lambda xi: self.w_max * (1 + self.w_max_d2d * xi), state.w_max)
        return low, high

    def steps(self, state: PulsedDeviceState) -> tuple[object, object]:
        """Every device's own up and down step δ_± (trees shaped like the weights)."""

        def step(xi_step, xi_ud, direction):
            size = self.dw_min * lognormal(xi_step, self.dw_min_d2d)
            beta = jnp.clip(self.up_down + self.up_down_d2d * xi_ud, -0.99, 0.99)
            return size * (1 + direction * beta)

        up = jax.tree.map(lambda a, b: step(a, b, 1.0), state.step, state.up_down)
        down = jax.tree.map(lambda a, b: step(a, b, -1.0), state.step, state.up_down)
        return up, down

    def write(self, params, state: PulsedDeviceState, key: PRNGKeyArray, *, stored=None):
        low, high = self.bounds(state)
        if stored is None:  # the initial weights: programmed exactly, within each device's range
            return jax.tree.map(jnp.clip, params, low, high)
        up, down = self.steps(state)
        leaves, treedef = jax.tree.flatten(params)
        args = [jax.tree.leaves(t) for t in (stored, low, high, up, down, state.response)]
        written = [
            self._pulse(target, *leaf_args, jax.random.fold_in(key, i))
            for i, (target, *leaf_args) in enumerate(zip(leaves, *args))
        ]
        return jax.tree.unflatten(treedef, written)

    def _pulse(
        self,
        target: Float[Array, "*shape"],
        old: Float[Array, "*shape"],
        low: Float[Array, "*shape"],
        high: Float[Array, "*shape"],
        up: Float[Array, "*shape"],
        down: Float[Array, "*shape"],
        xi_response: Float[Array, "*shape"],
        key: PRNGKeyArray,
    ) -> Float[Array, "*shape"]:
        """The device values after the pulses that program ``old`` towards ``target``."""
        request = target - old
        nominal = jnp.where(self.dw_min > 0, self.dw_min, 1.0)
        u = jax.random.uniform(jax.random.fold_in(key, 0), old.shape, old.dtype)
        count = jnp.minimum(jnp.floor(jnp.abs(request) / nominal + u), self.max_pulses)
        going_up = request > 0
        step = jnp.where(going_up, up, down)
        sign = jnp.where(going_up, 1.0, -1.0).astype(old.dtype)
        noise_key = jax.random.fold_in(key, 1)

        def pulse(k, w):
            xi = jax.random.normal(jax.random.fold_in(noise_key, k), w.shape, w.dtype)
            factor = jnp.where(
                going_up,
                self.response.factor(w, True, low, high, xi_response),
                self.response.factor(w, False, low, high, xi_response),
            )
            if self.noise == "multiplicative":
                moved = w + sign * step * factor * (1 + self.c2c * xi)
            else:
                moved = w + sign * step * factor + self.c2c * self.dw_min * xi
            return jnp.where(k < count, jnp.clip(moved, low, high), w)

        pulsed = jax.lax.fori_loop(0, self.max_pulses, pulse, old)
        # dw_min = 0: no pulses, the target itself is stored (within the bounds).
        return jnp.where(self.dw_min > 0, pulsed, jnp.clip(target, low, high))


class DevicePreset(eqx.Module):
    """A published device family: ``PulsedDevice`` fields in normalised conductance units, and
    where the numbers come from."""

    fields: dict = eqx.field(static=True)
    source: str = eqx.field(static=True)


_AIHWKIT = "IBM aihwkit, src/aihwkit/simulator/presets/devices.py"

DEVICE_PRESETS: dict[str, DevicePreset] = {
    "reram_es": DevicePreset(
        dict(
            dw_min=0.00135,
            up_down=0.259359,
            w_min=-1.0,
            w_max=1.0,
            response=ExpStep(-1.18445, -0.081404, 5.0, 5.0, -0.5, -0.5),
            dw_min_d2d=0.2,
            up_down_d2d=0.05,
            w_min_d2d=0.3,
            w_max_d2d=0.3,
            c2c=5.0,
            noise="additive",
        ),
        f"ReRAM, exponential step: {_AIHWKIT} (ReRamESPresetDevice), a fit to Gong et al., "
        "Nat. Commun. 9, 2102 (2018); its write noise (75·dw_min) is not modelled",
    ),
    "reram_sb": DevicePreset(
        dict(
            dw_min=0.002,
            up_down=0.0,
            w_min=-0.75,
            w_max=1.25,
            response=SoftBounds(),
            dw_min_d2d=0.3,
            up_down_d2d=0.01,
            w_min_d2d=0.3 / 0.75,
            w_max_d2d=0.3 / 1.25,
            c2c=3.75,
            noise="additive",
        ),
        f"ReRAM, soft bounds: {_AIHWKIT} (ReRamSBPresetDevice), a loose fit to Gong et al. "
        "(2018); its write noise (56·dw_min) is not modelled",
    ),
    "capacitor": DevicePreset(
        dict(
            dw_min=0.005,
            up_down=0.0,
            w_min=-1.0,
            w_max=1.0,
            response=LinearStep(0.05, 0.05),
            dw_min_d2d=0.1,
            up_down_d2d=0.06,
            w_min_d2d=0.07,
            w_max_d2d=0.07,
            c2c=0.3,
            noise="additive",
        ),
        f"capacitor, linear step: {_AIHWKIT} (CapacitorPresetDevice), a fit to Li et al., VLSI "
        "2018; its leakage (lifetime 1e6 mini-batches) is WeightDrift's tau, not included here",
    ),
    "ecram": DevicePreset(
        dict(
            dw_min=0.002,
            up_down=0.0,
            w_min=-0.8276,
            w_max=1.1724,
            response=LinearStep(0.1153, 0.5085),
            dw_min_d2d=0.1,
            up_down_d2d=0.01,
            w_min_d2d=0.05,
            w_max_d2d=0.05,
            c2c=0.3,
            noise="multiplicative",
        ),
        f"Li-ion ECRAM, linear step: {_AIHWKIT} (EcRamPresetDevice), a fit to Tang et al., "
        "IEDM 2018 (range shifted so that the symmetry point is 0)",
    ),
    "gokmen_vlasov": DevicePreset(
        dict(
            dw_min=0.0016,
            up_down=0.0,
            w_min=-1.0,
            w_max=1.0,
            response=ConstantStep(),
            dw_min_d2d=0.3,
            up_down_d2d=0.01,
            w_min_d2d=0.3,
            w_max_d2d=0.3,
            c2c=0.3,
        ),
        f"the RPU specification of Gokmen & Vlasov, Front. Neurosci. 10, 333 (2016), ~1200 "
        f"states: {_AIHWKIT} (GokmenVlasovPresetDevice)",
    ),
    "idealized": DevicePreset(
        dict(
            dw_min=0.0002,
            up_down=0.0,
            w_min=-1.0,
            w_max=1.0,
            response=ConstantStep(),
            dw_min_d2d=0.3,
            up_down_d2d=0.0,
            w_min_d2d=0.3,
            w_max_d2d=0.3,
            c2c=0.3,
        ),
        f"Gokmen & Vlasov's device with ~10,000 states and no asymmetry spread (Rasch, Gokmen & "
        f"Haensch, IEEE Design & Test 2019): {_AIHWKIT} (IdealizedPresetDevice)",
    ),
}
"""Published device families, in normalised conductance units (``PulsedDevice.preset``)."""
