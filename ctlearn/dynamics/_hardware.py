"""The non-ideality interface: what an analog circuit does differently from the ideal simulator.

A ``Simulator`` takes a tuple of non-idealities (``hardware=(...)``). Each is a small module with
physical parameters that acts at one or more stages of the simulation; every stage is the
identity unless the component overrides it:

* ``network``: the circuit as built from the stored conductances (device mismatch);
* ``inject``: what reaches the perturbation points from the perturbation generator (amplitude
  limits, crosstalk between channels);
* ``activity_noise``: a signal added at every layer's activation input that no rule knows of;
* ``cost_noise``: a signal added to every block's cost where the circuit reads it (so to its
  rate and to the cost change as well);
* ``observe``: what the synapses measure of the instantaneous signals (finite-bandwidth
  differentiators);
* ``synapses``: how the synapses apply the rule's ``ẇ`` (learning-rate spread);
* ``weight_drift`` / ``weight_diffusion``: what the stored conductances do on their own
  (retention loss, random drift);
* ``write``: what the device stores when weights are written (quantisation, clipping): with
  ``writes = True`` the conductances stay fixed within a presentation and the update accumulated
  over it is written at its end.

A component with state (filter or noise states: ``evolves``; drawn device parameters: fixed)
creates it in ``init``; evolving states are integrated with the rest of the ``SimState``
(``drift`` and, for noise, ``diffusion``). Numeric parameters are plain fields, so that a sweep
can stack them and ``vmap`` over them; a component whose parameters are all at their ideal
value (``is_ideal``) is left out by ``prepare``, so zero strength is the ideal simulator.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import equinox as eqx
import jax
from jaxtyping import PRNGKeyArray

from ..nn import Network
from ._rule import Signals
from ._stream import Presentations


class AbstractNonIdeality(eqx.Module):
    """One kind of deviation of the circuit from the ideal simulator (see the module docstring)."""

    evolves: ClassVar[bool] = False
    """Whether ``init``'s state changes in time (then it is integrated, with ``drift`` and
    ``diffusion``); otherwise it is fixed for the whole run (e.g. drawn device parameters)."""
    writes: ClassVar[bool] = False
    """Whether weights change only when written at the end of each presentation."""
    switches: ClassVar[bool] = False
    """Whether the evolving state is adjusted when the input switches (``switch``)."""

    def is_ideal(self) -> bool:
        """Whether every parameter is (concretely) at its ideal value: the component then does
        nothing and ``prepare`` leaves it out."""
        return False

    def check(self, stream: Presentations) -> None:
        """Raises ``ValueError`` naming the values where the component's physics does not fit the
        presentations (e.g. a differentiator slower than a presentation)."""
        del stream

    def time_constants(self) -> dict[str, float]:
        """The component's time constants by name (for the fixed-step check), where concrete."""
        return {}

    def init(self, model: Network, signals: Signals, *, key: PRNGKeyArray) -> Any:
        """The component's state, given the signals at the start of the first presentation."""
        del model, signals, key
        return None

    def network(self, model: Network, state: Any) -> Network:
        return model

    def inject(self, p: tuple, p_dot: tuple) -> tuple[tuple, tuple]:
        return p, p_dot

    def activity_noise(self, state: Any, t) -> tuple[tuple, tuple] | None:
        """``(n, ṅ)``, one array per layer shaped like its activation input, or ``None``."""
        return None

    def cost_noise(self, state: Any, t) -> tuple[tuple, tuple] | None:
        """``(n, ṅ)``, one scalar per block added to its cost as read by the circuit, or
        ``None``."""
        return None

    def observe(self, signals: Signals, state: Any, t) -> Signals:
        """What the synapses measure at local time ``t`` of the signals ``signals``."""
        return signals

    def synapses(self, w_dot: Any, state: Any) -> Any:
        return w_dot

    def weight_drift(self, params: Any) -> Any | None:
        return None

    def weight_diffusion(self, params: Any) -> Any | None:
        """Diagonal noise scales shaped like ``params`` (d w = … + scale ⊙ dW), or ``None``."""
        return None

    def weight_noise(self) -> str | None:
        """What drives the stored weights with noise (a Brownian term, ``weight_diffusion``),
        named with its strength, or ``None`` if nothing does (integrators that cannot take
        noise ask this)."""
        return None

    def switch(self, state: Any, before: Signals, after: Signals) -> Any:
        """The evolving state as the next presentation starts, for components with
        ``switches``: ``before`` are the raw signals under the previous presentation's input and
        labels, ``after`` under the new ones, both at the new presentation's start (same weights,
        perturbation and neurons)."""
        del before, after
        return state

    def drift(self, signals: Signals, state: Any, t) -> Any:
        """The rate of an evolving state, from the raw (unobserved) signals."""
        return jax.tree.map(lambda a: 0 * a, state)

    def diffusion(self, state: Any, t) -> Any | None:
        """Diagonal noise scales shaped like the evolving state, or ``None``."""
        return None

    def write(self, params: Any, state: Any, key: PRNGKeyArray, *, stored: Any = None) -> Any:
        """What the device holds after writing ``params``; ``stored``: what it held before
        (``None`` for the initial programming of the weights)."""
        del state, key, stored
        return params


def concrete(value: Any) -> float | None:
    """``value`` as a Python float when it is concrete (a number or a concrete scalar array),
    ``None`` when it is traced (inside a vmapped sweep)."""
    try:
        return float(value)
    except (TypeError, jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return None


def require(name: str, value: Any, ok, what: str, owner: str) -> None:
    """Raises ``ValueError`` when the concrete ``value`` fails ``ok`` (traced values pass)."""
    v = concrete(value)
    if v is not None and not ok(v):
        raise ValueError(f"{owner}: {name} must be {what}, got {name}={value!r}")


def positive(v: float) -> bool:
    return v > 0 and not math.isnan(v)


def non_negative(v: float) -> bool:
    return v >= 0 and not math.isnan(v)


def non_negative_finite(v: float) -> bool:
    return non_negative(v) and math.isfinite(v)


def is_zero(*values: Any) -> bool:
    """Whether every value is concretely zero."""
    return all(concrete(v) == 0.0 for v in values)


def is_inf(*values: Any) -> bool:
    """Whether every value is concretely +∞."""
    return all(concrete(v) == math.inf for v in values)


def check_blank(owner: str, blank: Any, duration: float) -> None:
    """Refuse a blanking window (time units from each presentation's start during which the
    synapses ignore a measured signal) that covers the whole presentation of ``duration``."""
    value = concrete(blank)
    if value is not None and value >= duration:
        raise ValueError(
            f"{owner}: the blanking window blank={value} covers the whole presentation (duration "
            f"{duration}): nothing would be learned; choose blank < {duration}"
        )
