"""FDFA: forward direct feedback alignment (Bacho & Chu, Algorithm 1, eq. 7-10).

The feedback matrices are learned from forward gradients: activity perturbations ``u_l`` at every
hidden layer's output, one ``jax.jvp`` of the network's outputs along them gives per example
``d = Σ_l ∂y_L/∂y_l u_l`` (eq. 7), and ``B_l`` moves towards ``mean_n d_n ⊗ u_{l,n}``, whose
expectation is ``E[∂y_L/∂y_l]`` (eq. 12). Weights then learn as in DFA through the learned
``B_l`` (eq. 14); the output layer from its own error.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array

from ._direct import AbstractLearnedFeedback, outer_over_batch
from ._noise import check_noise, draw_many


def fdfa_directional_derivative(model, x, u) -> Array:
    """``d = Σ_l ∂y_L/∂y_l u_l`` [batch, n_out] for perturbations ``u`` of the hidden layers'
    output activities (one array per hidden layer), from one ``jax.jvp``."""
    primal = tuple(jnp.zeros_like(u_l) for u_l in u)
    _, d = jax.jvp(lambda post: model(x, post=post + (None,)).logits, (primal,), (tuple(u),))
    return d


def fdfa_feedback_grads(feedback, d: Array, u) -> tuple[Array, ...]:
    """FDFA's feedback update direction, ``B_l − mean_n d_n ⊗ u_{l,n}`` per hidden layer (eq.
    10), for the perturbations ``u`` (one array per hidden layer) and the outputs' directional
    derivative ``d`` [batch, n_out] along them. The one formula of FDFA's feedback in both time
    domains: the continuous rule passes the perturbation's rate ṗ and the output's rate ẏ_L and
    moves B at −α times this."""
    return tuple(b - t for b, t in zip(feedback, fdfa_feedback_targets(d, u)))


def fdfa_feedback_targets(d: Array, u) -> tuple[Array, ...]:
    """``mean_n d_n ⊗ u_{l,n}`` per hidden layer, the feedback's target (eq. 8-10)."""
    return tuple(outer_over_batch(d, u_l) / d.shape[0] for u_l in u)


def fdfa_targets(model, x, key, noise: str = "gaussian") -> tuple[Array, ...]:
    """One sample of ``mean_n d_n ⊗ u_{l,n}`` per hidden layer (the target of eq. 8-10), with
    perturbations independent per example, unit and layer."""
    shapes = model.activity_shapes(x)[:-1]
    u = draw_many(key, [s.shape for s in shapes], noise)
    return fdfa_feedback_targets(fdfa_directional_derivative(model, x, u), u)


class FDFA(AbstractLearnedFeedback):
    """FDFA: DFA with feedback learned by forward gradients, starting from zero.

    ``B_l`` follows the gradient ``B_l − mean_n d_n ⊗ u_{l,n}`` (eq. 10): with
    ``feedback_optimizer="sgd"`` and step α this is exactly the exponential average of eq. 8;
    ``"adam"`` with α = 1e-4 (the defaults) is what the paper's experiments use. ``noise``:
    "gaussian" (the paper's) or "rademacher".
    """

    loss: str = "cross_entropy"
    noise: str = "gaussian"
    feedback_optimizer: str = "adam"
    feedback_lr: float = 1e-4
    feedback_decay: float = 0.0

    def __check_init__(self):
        check_noise(self.noise)

    def feedback_gradients(self, model, x, trace, e, feedback, *, key):
        del trace, e
        u = draw_many(key, [s.shape for s in model.activity_shapes(x)[:-1]], self.noise)
        return fdfa_feedback_grads(feedback, fdfa_directional_derivative(model, x, u), u)
