"""The fixed point of FDFA's learned feedback: what its direct feedback matrices converge to."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..nn import Network


@eqx.filter_jit
def converged_feedback(model: Network, x: Float[Array, "batch ..."]) -> tuple[Array, ...]:
    """For every hidden layer l, the batch mean of ∂logits/∂y_l, shaped [n_out, *y_l]: the
    expectation of FDFA's feedback target d ⊗ u (Bacho & Chu, eq. 12), hence where its feedback
    settles under a small feedback rate."""
    shapes = model.activity_shapes(x[:1])[:-1]
    zeros = tuple(jnp.zeros(s.shape[1:], s.dtype) for s in shapes)

    def jacobians(xi):
        def logits(post):
            return model(xi[None], post=tuple(p[None] for p in post) + (None,)).logits[0]

        return jax.jacrev(logits)(zeros)

    return tuple(jnp.mean(j, axis=0) for j in jax.vmap(jacobians)(x))
