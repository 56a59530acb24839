"""The jit-compiled training and evaluation steps."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Sharding
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from ..augment import Augmentation, two_views
from ..estimators import AbstractEstimator
from ..losses import accuracy, get_loss
from ..nn import Network
from ._state import TrainState


@eqx.filter_jit
def train_step(
    estimator: AbstractEstimator,
    optimizer: optax.GradientTransformation,
    state: TrainState,
    x: Float[Array, " batch *input"],
    y: Int[Array, " batch"],
    epoch_key: PRNGKeyArray,
    *,
    state_sharding: Sharding | None = None,
    augmentation: Augmentation | tuple[Augmentation, Augmentation] | None = None,
) -> tuple[TrainState, Float[Array, ""], Float[Array, ""]]:
    """One step: estimate the gradient, apply the optimizer's update. Returns the new state and
    the batch loss and accuracy at the weights before the update.

    The step's randomness is ``fold_in(epoch_key, step within the epoch)``: a pure function of the
    seed, the epoch and the step, so a resumed run draws what an uninterrupted one would.
    ``state_sharding`` (e.g. ``DataParallel.replicated``) is imposed on the new state's arrays,
    whatever the compiler would choose, for a batch sharded over several devices.
    ``augmentation``: one pipeline applied to the batch, or a pair that turns it into two views
    stacked on the batch axis (labels repeated), for contrastive local losses.
    """
    key = jax.random.fold_in(epoch_key, state.step)
    if augmentation is not None:
        key, augment_key = jax.random.split(key)
        if isinstance(augmentation, tuple):
            x = two_views(x, *augmentation, key=augment_key)
            y = jnp.concatenate([y, y])
        else:
            x = augmentation(x, key=augment_key)
    grads, est_state, diagnostics = estimator.estimate(
        state.model, (x, y), state.est_state, key=key
    )
    params = eqx.filter(state.model, eqx.is_inexact_array)
    updates, opt_state = optimizer.update(grads, state.opt_state, params)
    model = eqx.apply_updates(state.model, updates)
    if state.model.has_batch_norm:  # running statistics follow the batch, not the optimizer
        model = model.with_batch_stats(state.model.updated_batch_stats(x))
    new_state = TrainState(model, opt_state, est_state, state.epoch, state.step + 1)
    if state_sharding is not None:
        arrays, static = eqx.partition(new_state, eqx.is_array)
        arrays = jax.lax.with_sharding_constraint(arrays, state_sharding)
        new_state = eqx.combine(arrays, static)
    return new_state, diagnostics["loss"], accuracy(diagnostics["logits"], y)


@eqx.filter_jit
def eval_step(
    model: Network,
    loss: str,
    x: Float[Array, " batch *input"],
    y: Int[Array, " batch"],
    mask: Bool[Array, " batch"] | None = None,
) -> tuple[Float[Array, ""], Int[Array, ""]]:
    """The summed loss and the number of correct predictions of ``model`` on one batch; with
    ``mask``, of the examples where it is true only (the others are padding)."""
    logits = model.inference()(x).logits
    correct = jnp.argmax(logits, axis=-1) == y
    losses = get_loss(loss)(logits, y)
    if mask is not None:
        correct, losses = correct & mask, jnp.where(mask, losses, 0.0)
    return jnp.sum(losses), jnp.sum(correct)
