"""The input stream of the continuous-time simulator: presentations held for a fixed duration."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..data import Split, batches, num_batches


class Presentations(eqx.Module):
    """``x[k]`` (a batch: one example per parallel copy of the network, all sharing weights) is
    presented during ``[0, duration)`` of presentation ``k``'s local time, with labels ``y[k]``.

    The first ``transition`` time units of every presentation after the first blend smoothly
    (a C¹ smoothstep) from the previous input to the new one, so the input's own rate of change
    ``ẋ`` is finite; ``transition=0`` switches instantly (``ẋ = 0`` throughout). Times are in the
    simulator's time unit (the same as every time constant).
    """

    x: Float[Array, "presentations batch *input"]
    y: Int[Array, "presentations batch"]
    duration: float = eqx.field(static=True)
    transition: float = eqx.field(static=True, default=0.0)

    def __check_init__(self):
        if self.x.ndim < 2 or self.y.shape != self.x.shape[:2]:
            raise ValueError(
                f"Presentations need x [presentations, batch, ...] and y [presentations, batch]; "
                f"got x {self.x.shape} and y {self.y.shape}"
            )
        if not self.duration > 0:
            raise ValueError(f"the presentation duration must be positive, got {self.duration}")
        if not 0 <= self.transition < self.duration:
            raise ValueError(
                f"the transition ({self.transition}) must lie in [0, duration={self.duration})"
            )

    def check(self, classes: int | None, *, real_targets: bool = False) -> None:
        """Bad data fails here, before any integration, naming the data: labels must be integers
        in ``[0, classes)`` (when ``classes`` is known) and inputs finite. ``real_targets``: the
        loss also takes real-valued targets (MSE), which must then be finite. Traced streams
        (built inside a transformation) are not checked."""
        if isinstance(self.x, jax.core.Tracer) or isinstance(self.y, jax.core.Tracer):
            return
        if real_targets and jnp.issubdtype(self.y.dtype, jnp.floating):
            bad = ~np.isfinite(np.asarray(self.y))
            if bad.any():
                k, n = np.argwhere(bad)[0]
                raise ValueError(
                    f"the stream's target y[{k}, {n}]={float(self.y[k, n])} is not finite "
                    f"({int(bad.sum())} targets in all); targets must be finite numbers"
                )
        elif not jnp.issubdtype(self.y.dtype, jnp.integer):
            raise ValueError(
                f"the stream's labels y must be integer class indices, got dtype {self.y.dtype}"
            )
        y = np.asarray(self.y)
        integer = np.issubdtype(y.dtype, np.integer)
        outside = (y < 0) | (y >= classes) if classes is not None else y < 0
        if integer and outside.any():
            k, n = np.argwhere(outside)[0]
            valid = f"0..{classes - 1} (the model has {classes} classes)" if classes else ">= 0"
            raise ValueError(
                f"the stream's label y[{k}, {n}]={int(y[k, n])} is out of range "
                f"({int(outside.sum())} labels in all); valid: {valid}"
            )
        finite = np.isfinite(np.asarray(self.x))
        if not finite.all():
            k, n = np.argwhere(~finite)[0][:2]
            raise ValueError(
                f"the stream's inputs x are not finite: presentation {k}, example {n} holds "
                f"{np.asarray(self.x[k, n])[~finite[k, n]].flat[0]} ({int((~finite).sum())} "
                "values in all); the inputs must be finite numbers"
            )

    @classmethod
    def from_split(
        cls,
        split: Split,
        batch_size: int,
        *,
        duration: float,
        transition: float = 0.0,
        key: PRNGKeyArray | None = None,
        count: int | None = None,
        epochs: int = 1,
    ) -> Presentations:
        """The presentations of ``split``'s batches, in ``ctlearn.data.batches``'s order: epoch
        ``e`` is ``batches(split, batch_size, key=jax.random.fold_in(key, e))`` (the order
        ``ctlearn.train`` uses when ``key`` is its data key), each epoch's last partial batch
        dropped; ``key=None`` keeps the stored order. ``count`` presentations (as many epochs
        as they need, the last one cut short), or ``epochs`` whole epochs when ``count`` is
        ``None``."""
        per_epoch = num_batches(split, batch_size)  # refuses a batch larger than the split
        if count is None:
            if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
                raise ValueError(f"epochs must be an int >= 1, got {epochs!r}")
            count = epochs * per_epoch
        elif isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count (presentations) must be an int >= 1, got {count!r}")
        xs, ys = [], []
        for epoch in range(-(-count // per_epoch)):
            epoch_key = None if key is None else jax.random.fold_in(key, epoch)
            for x, y in batches(split, batch_size, key=epoch_key, shuffle=key is not None):
                if len(xs) == count:
                    break
                xs.append(np.asarray(x))
                ys.append(np.asarray(y))
        return cls(
            jnp.asarray(np.stack(xs)),
            jnp.asarray(np.stack(ys)),
            duration=duration,
            transition=transition,
        )

    @property
    def num(self) -> int:
        return self.x.shape[0]

    @property
    def batch_size(self) -> int:
        return self.x.shape[1]

    def jump_times(self) -> tuple[float, ...]:
        """Local times where the input's rate changes abruptly (for the step-size controller)."""
        return (self.transition,) if self.transition > 0 else ()


def blended_input(
    previous: Array, current: Array, t: Float[Array, ""], transition: float
) -> tuple[Array, Array]:
    """``(x, ẋ)`` at local time ``t``: a smoothstep from ``previous`` to ``current`` over
    ``transition`` (``current`` and zero rate when ``transition`` is 0)."""
    if transition == 0:
        return current, jnp.zeros_like(current)
    u = jnp.clip(t / transition, 0.0, 1.0)
    s = u * u * (3.0 - 2.0 * u)
    s_dot = jnp.where((t > 0) & (t < transition), 6.0 * u * (1.0 - u) / transition, 0.0)
    return previous + s * (current - previous), s_dot * (current - previous)
