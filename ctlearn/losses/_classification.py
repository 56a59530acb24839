"""Per-example losses. Every estimator averages them over the batch."""

from __future__ import annotations

import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int


def cross_entropy(logits: Float[Array, "batch classes"], labels: Int[Array, " batch"]) -> Array:
    """Softmax cross-entropy of integer ``labels``, per example [batch]."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def mse(outputs: Float[Array, "batch out"], targets: Float[Array, "batch out"]) -> Array:
    """Half the squared error summed over output units, per example [batch].

    Integer targets of shape [batch] are read as class labels and one-hot encoded; real targets
    of shape [batch] are the single output unit's targets.
    """
    if targets.ndim == outputs.ndim - 1:
        if jnp.issubdtype(targets.dtype, jnp.integer):
            targets = jnp.eye(outputs.shape[-1], dtype=outputs.dtype)[targets]
        elif outputs.shape[-1] == 1:
            targets = targets[..., None]
    if targets.shape != outputs.shape:
        raise ValueError(
            f"mse: targets of shape {targets.shape} do not match outputs of shape "
            f"{outputs.shape}; give targets shaped like the outputs, class labels [batch], or "
            "[batch] real targets for a single output unit"
        )
    return 0.5 * jnp.sum((outputs - targets) ** 2, axis=-1)


def accuracy(logits: Float[Array, "batch classes"], labels: Int[Array, " batch"]) -> Array:
    """Fraction of examples whose arg-max logit is the label; for one output unit and real
    targets [batch] (binary 0/1 targets, as MSE takes them), the fraction whose output lies on
    the same side of 0.5 as its target."""
    if logits.shape[-1] == 1 and jnp.issubdtype(labels.dtype, jnp.floating):
        return jnp.mean((logits[..., 0] > 0.5) == (labels > 0.5))
    return jnp.mean(jnp.argmax(logits, axis=-1) == labels)
