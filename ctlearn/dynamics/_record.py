"""Recording signals inside presentations: ``Recording`` (the hook ``simulate`` takes: traces
through every presentation of a run) and ``record_presentation`` (one presentation from the
initial state)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from ..nn import Network
from ._bound import BoundSimulator, prepare
from ._rule import Signals
from ._simulator import Simulator
from ._solve import solve_presentation
from ._state import SimState, split_state
from ._stream import Presentations


class _Observed(eqx.Module):
    """A Diffrax ``SaveAt`` function: ``record(state, signals)`` with the signals as the synapses
    observe them at that instant. A module, not a closure: two of them with the same simulator
    and ``record`` compare equal, so a jitted solve compiled for one serves the other."""

    bound: BoundSimulator
    record: Callable[[SimState, Signals], Any]

    def __call__(self, t, y, args):
        return self.record(y, self.bound.signals(self.bound.model(y), y, t, args))


class Recording(eqx.Module):
    """What ``simulate(..., record=...)`` keeps from inside every presentation: ``fn(state,
    signals)`` at ``times`` evenly spaced local times in [0, T) (T itself is the next
    presentation's 0). ``state`` is the state Diffrax integrates (its ``delta`` holds the
    presentation's change so far), ``signals`` are as the synapses observe them. Only what
    ``fn`` returns is kept (``SaveAt(fn=...)``): keep it small."""

    fn: Callable[[SimState, Signals], Any]
    times: int = eqx.field(static=True)

    def __check_init__(self):
        if isinstance(self.times, bool) or not isinstance(self.times, int) or self.times < 1:
            raise ValueError(f"a Recording needs times >= 1 (an int), got times={self.times!r}")

    def local_times(self, duration: float) -> Array:
        """The recorded local times of a presentation of length ``duration``."""
        return jnp.linspace(0.0, duration, self.times, endpoint=False)

    def saveat(self, bound: BoundSimulator, duration: float) -> diffrax.SaveAt:
        """The records at ``local_times`` and the state at the end of the presentation."""
        subs = [
            diffrax.SubSaveAt(ts=self.local_times(duration), fn=_Observed(bound, self.fn)),
            diffrax.SubSaveAt(t1=True),
        ]
        return diffrax.SaveAt(subs=subs)


def record_presentation(
    simulator: Simulator,
    model: Network,
    stream: Presentations,
    *,
    key: PRNGKeyArray,
    index: int = 0,
    times: int = 200,
    record: Callable[[SimState, Signals], Any],
    progress: bool = False,
) -> tuple[Array, Any]:
    """Traces during presentation ``index`` from the initial state: ``record(state, signals)``
    at ``times`` evenly spaced local times, both ends included (``SaveAt(fn=...)``, so only what
    is recorded is kept), ``signals`` as the synapses observe them. With ``progress``, Diffrax's
    own progress meter follows the solve. Returns ``(ts, recorded)``."""
    bound, state = prepare(simulator, model, stream, key=key)
    state, args = split_state(bound.simulator, state, stream, index)
    state = bound.switch(state, args, stream.y[max(index - 1, 0)])
    ts = jnp.linspace(0.0, stream.duration, times)
    sol = eqx.filter_jit(solve_presentation)(
        bound,
        state,
        args,
        stream.duration,
        jax.random.fold_in(key, index),
        saveat=diffrax.SaveAt(ts=ts, fn=_Observed(bound, record)),
        progress=progress,
    )
    if sol.result != diffrax.RESULTS.successful:
        raise RuntimeError(f"the solve of presentation {index} failed: {sol.result}")
    return ts, sol.ys
