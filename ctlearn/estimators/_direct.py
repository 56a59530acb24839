"""Direct feedback (DFA, DKP, FDFA): the output error reaches every hidden layer through a matrix.

Hidden layer ``l`` receives ``e B_l`` at its output activity ``y_l``, where ``e = ∂L/∂y_L`` is the
error at the network's output [batch, n_out] and ``B_l`` has shape [n_out, *y_l.shape[1:]]
(a convolutional map is fed as a whole: one feedback weight per output and map unit). The layer
turns it into ``δ_l = ∂y_l/∂z_l ᵀ (e B_l)`` with its own, local derivative (the activation's slope
and any pooling) and into parameter gradients by its ``x_{l-1} ⊗ δ_l`` contraction (Bacho & Chu
eq. 6 and 14). The output layer learns from ``e`` itself (identity feedback). Local heads are
unused.
"""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, PRNGKeyArray

from ..losses import get_loss
from ..nn import Network, Trace
from ._base import AbstractEstimator
from ._objective import assemble

FEEDBACK_OPTIMIZERS = ("adam", "sgd")


def output_error(loss: str, trace: Trace, y: Array) -> Array:
    """``e = ∂L/∂y_L`` of the batch-mean loss [batch, n_out] (it carries the 1/batch)."""
    fn = get_loss(loss)
    return jax.grad(lambda logits: jnp.mean(fn(logits, y)))(trace.logits)


def mean_loss(loss: str, trace: Trace, y: Array) -> Array:
    """The batch-mean network loss at the unperturbed point (the ``loss`` diagnostic)."""
    return jnp.mean(get_loss(loss)(trace.logits, y))


def feedback_shapes(model: Network) -> list[tuple[int, ...]]:
    """The shape [n_out, *activity] of each hidden layer's feedback matrix."""
    shapes = model.activity_shapes()
    n_out = shapes[-1].shape[-1]
    return [(n_out,) + s.shape[1:] for s in shapes[:-1]]


def kaiming_feedback(model: Network, key: PRNGKeyArray) -> tuple[Array, ...]:
    """Fixed random feedback: U(±√(6/n_l)) with n_l the units of layer ``l``'s activity (DFA)."""
    shapes = feedback_shapes(model)
    keys = jax.random.split(key, len(shapes))
    return tuple(
        jax.random.uniform(k, s, jnp.float32, -1.0, 1.0) * math.sqrt(6.0 / math.prod(s[1:]))
        for k, s in zip(keys, shapes)
    )


def zero_feedback(model: Network) -> tuple[Array, ...]:
    return tuple(jnp.zeros(s, jnp.float32) for s in feedback_shapes(model))


def outer_over_batch(e: Array, a: Array) -> Array:
    """``Σ_n e_n ⊗ a_n`` [n_out, *a.shape[1:]] (never materialising the per-example products)."""
    return jnp.tensordot(e, a, axes=((0,), (0,)))


def direct_feedback_grads(model: Network, trace: Trace, e: Array, feedback) -> Network:
    """The model-shaped gradient estimate when hidden layer ``l`` receives ``e B_l``."""
    grads = []
    last = len(model.layers) - 1
    for i, layer in enumerate(model.layers):
        signal = e if i == last else jnp.tensordot(e, feedback[i], axes=((1,), (0,)))
        _, to_pre = jax.vjp(layer.activate, trace.pre[i])
        (delta,) = to_pre(signal)
        grads.append(layer.local_grad(trace.inputs[i], delta, trace.linear[i]))
    return assemble(model, grads)


def feedback_optimizer(name: str, lr: float, decay: float) -> optax.GradientTransformation:
    """The Optax optimizer of the feedback matrices: ``adam`` or ``sgd`` (plain: with the
    gradient ``B − target`` and step ``lr`` it is the exponential moving average of FDFA eq. 8),
    with L2 ``decay`` added to the gradient when non-zero."""
    if name not in FEEDBACK_OPTIMIZERS:
        raise ValueError(
            f"unknown feedback_optimizer {name!r}; valid: {', '.join(FEEDBACK_OPTIMIZERS)}"
        )
    base = optax.adam(lr) if name == "adam" else optax.sgd(lr)
    return base if decay == 0.0 else optax.chain(optax.add_decayed_weights(decay), base)


def check_feedback_options(name: str, lr, decay) -> None:
    feedback_optimizer(name, 1.0, 0.0)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ValueError(f"feedback_lr must be a positive number, got {lr!r}")
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not decay >= 0:
        raise ValueError(f"feedback_decay must be a number >= 0, got {decay!r}")


class AbstractLearnedFeedback(AbstractEstimator):
    """Direct feedback whose matrices learn, from zero, in their own Optax optimizer
    (``feedback_optimizer`` "adam" or "sgd", step ``feedback_lr``, L2 ``feedback_decay``).

    Each step first updates the feedback with ``feedback_gradients`` and then projects the output
    error through the new matrices (the order of FDFA's Algorithm 1). The state is
    ``(feedback, optimizer state)``.
    """

    feedback_optimizer: eqx.AbstractVar[str]
    feedback_lr: eqx.AbstractVar[float]
    feedback_decay: eqx.AbstractVar[float]

    def __check_init__(self):
        check_feedback_options(self.feedback_optimizer, self.feedback_lr, self.feedback_decay)

    @abc.abstractmethod
    def feedback_gradients(self, model, x, trace, e, feedback, *, key) -> tuple[Array, ...]:
        """The gradient of each feedback matrix for this batch; ``trace`` is the unperturbed
        forward pass, ``e`` the output error."""

    def initial_feedback(self, model, key) -> tuple[Array, ...]:
        """The feedback matrices before any learning: zeros (the FDFA paper's code)."""
        del key
        return zero_feedback(model)

    def init(self, model, *, key):
        feedback = self.initial_feedback(model, key)
        return feedback, self._optimizer().init(feedback)

    def estimate(self, model, batch, state, *, key):
        x, y = batch
        feedback, opt_state = state
        trace = model(x)
        e = output_error(self.loss, trace, y)
        b_grads = self.feedback_gradients(model, x, trace, e, feedback, key=key)
        updates, opt_state = self._optimizer().update(b_grads, opt_state, feedback)
        feedback = optax.apply_updates(feedback, updates)
        grads = direct_feedback_grads(model, trace, e, feedback)
        diagnostics = {"loss": mean_loss(self.loss, trace, y), "logits": trace.logits}
        return grads, (feedback, opt_state), diagnostics

    def _optimizer(self) -> optax.GradientTransformation:
        return feedback_optimizer(self.feedback_optimizer, self.feedback_lr, self.feedback_decay)
