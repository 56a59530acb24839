"""LocalMixer's layers (Ren et al. 2023, section 5, Figure 2 and Algorithm 2).

Every trainable stage is ``z = LN(linear(LN(x)))``: a linear map between two parameter-free local
layer normalisations (over each token's channels, or each token-group's channels), with the
perturbation point after the second normalisation. Activities keep a [batch, patches, ...] layout
whose trailing axis is group-major, so a signal indexed by (example, patch, group) - the replicated
local losses' directional derivatives - spreads over any layer's units by a reshape.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Sequence
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..losses import (
    contrastive_head_loss,
    get_loss,
    info_nce,
    linear_head_loss,
    naive_replicated_loss,
    replicated_loss,
)
from ._layer import AbstractLayer, identity, relu

OBJECTIVES = ("supervised", "contrastive")


def local_norm(x: Array) -> Array:
    """Parameter-free layer normalisation over the last axis (eps 1e-5)."""
    return jax.nn.standardize(x, axis=-1, epsilon=1e-5)


def patchify(x: Array, grid: tuple[int, ...]) -> Float[Array, "batch patches patch_features"]:
    """Cut images [N, H, W, C] into a ``grid`` = (rows, columns) of non-overlapping patches, or
    signals [N, L] / [N, L, C] into ``grid`` = (segments,), tokens in row-major order."""
    spatial = x.shape[1 : 1 + len(grid)]
    if len(grid) not in (1, 2) or x.ndim not in (len(grid) + 1, len(grid) + 2):
        raise ValueError(
            f"cannot cut inputs of shape {x.shape[1:]} into a {len(grid)}-D patch grid {grid}"
        )
    if any(s % g for s, g in zip(spatial, grid)):
        raise ValueError(f"patch grid {grid} must divide the input size {spatial}")
    n = x.shape[0]
    if len(grid) == 1:
        return x.reshape(n, grid[0], -1)
    (gh, gw), (h, w) = grid, spatial
    x = x.reshape(n, gh, h // gh, gw, w // gw, -1)
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(n, gh * gw, -1)


def _normal(key: PRNGKeyArray, shape: tuple[int, ...], fan_in: int) -> Array:
    """He-normal weights, std √(2/fan_in)."""
    return jax.random.normal(key, shape, jnp.float32) * math.sqrt(2.0 / fan_in)


class AbstractMixerLayer(AbstractLayer):
    """``z = LN(arrange(linear(LN_in(inputs(x)))))``; ``LN_in`` only with ``norm_input``.

    ``norm_grad``: the local update pulls the signal at ``z`` back through the output
    normalisation exactly (a local vjp); without it the normalisation is ignored (the paper's
    "NG" variant, Table 5).
    """

    norm_input: eqx.AbstractVar[bool]
    norm_grad: eqx.AbstractVar[bool]
    mixes_groups: eqx.AbstractClassVar[bool]
    """Whether a unit's output reaches every channel group of its token (then a perturbation
    there is scored by the sum of its token's replicated losses, not by its own group's)."""

    @abc.abstractmethod
    def inputs(self, x: Array) -> Array:
        """``x`` in the layout the linear map reads (before any normalisation)."""

    @abc.abstractmethod
    def linear(self, h: Array) -> Array:
        """The layer's linear map (its only parameters), output in the layer's output layout."""

    def _normed_inputs(self, x: Array) -> Array:
        h = self.inputs(x)
        return local_norm(h) if self.norm_input else h

    def pre_activation(self, x: Array) -> Array:
        return self.pre_activation_and_linear(x)[0]

    def pre_activation_and_linear(self, x: Array) -> tuple[Array, Array]:
        out = self.linear(self._normed_inputs(x))
        return local_norm(out), out

    def pre_activation_via(self, feedback: AbstractMixerLayer, x: Array) -> Array:
        """This layer's pre-activation, whose derivative with respect to ``x`` goes through
        ``feedback``'s linear map instead of this layer's (feedback alignment); the
        normalisations keep their derivative at this layer's values."""
        h = self._normed_inputs(x)
        forward, backward = self.linear(h), feedback.linear(h)
        return local_norm(jax.lax.stop_gradient(forward - backward) + backward)

    def local_grad(self, x: Array, delta: Array, linear: Array | None = None) -> AbstractMixerLayer:
        h = jax.lax.stop_gradient(self._normed_inputs(x))
        if self.norm_grad:
            # Pull delta back through the output normalisation at the linear map's output: the
            # recorded one when given (the forward pass computed it), else recomputed.
            out = self.linear(h) if linear is None else jax.lax.stop_gradient(linear)
            _, through_norm = jax.vjp(local_norm, out)
            (delta,) = through_norm(delta)
        # The linear map is linear in the parameters: its pullback needs no primal output.
        _, pullback = eqx.filter_vjp(lambda layer: layer.linear(h), self)
        return pullback(delta)[0]


class TokenwiseLinear(AbstractMixerLayer):
    """The same linear map [in, out] on every token: ``x`` [N, P, ...] → [N, P, out].

    With ``grid`` the input is a batch of images or signals, cut into patches first (block 0).
    """

    weight: Float[Array, "in_features out_features"]
    bias: Float[Array, " out_features"]
    grid: tuple[int, ...] | None = eqx.field(static=True)
    mixes_groups: ClassVar[bool] = False
    norm_input: bool = eqx.field(static=True)
    norm_grad: bool = eqx.field(static=True)
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        grid: Sequence[int] | None = None,
        norm_input: bool = True,
        norm_grad: bool = True,
        activation: Callable[[Array], Array] = relu,
        key: PRNGKeyArray,
    ):
        self.weight = _normal(key, (in_features, out_features), in_features)
        self.bias = jnp.zeros((out_features,), jnp.float32)
        self.grid = None if grid is None else tuple(int(g) for g in grid)
        self.norm_input = norm_input
        self.norm_grad = norm_grad
        self.activation = activation

    def inputs(self, x: Array) -> Float[Array, "batch patches in_features"]:
        if self.grid is not None:
            return patchify(x, self.grid)
        return x.reshape(x.shape[0], x.shape[1], -1)

    def linear(self, h: Float[Array, "batch patches in_features"]) -> Array:
        return h @ self.weight + self.bias


class TokenMixing(AbstractMixerLayer):
    """A linear map across the P tokens, shared by every channel: [N, P, D] → [N, P, D].

    It has no bias: a bias per token would be removed by the normalisation over channels that
    follows it (a defect of the reference code, not reproduced).
    """

    weight: Float[Array, "patches patches"]
    mixes_groups: ClassVar[bool] = True
    norm_input: bool = eqx.field(static=True)
    norm_grad: bool = eqx.field(static=True)
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(
        self,
        patches: int,
        *,
        norm_input: bool = True,
        norm_grad: bool = True,
        activation: Callable[[Array], Array] = relu,
        key: PRNGKeyArray,
    ):
        self.weight = _normal(key, (patches, patches), patches)
        self.norm_input = norm_input
        self.norm_grad = norm_grad
        self.activation = activation

    def inputs(self, x: Array) -> Float[Array, "batch patches channels"]:
        return x.reshape(x.shape[0], x.shape[1], -1)

    def linear(self, h: Float[Array, "batch patches channels"]) -> Array:
        return jnp.einsum("npd,pq->nqd", h, self.weight)


class GroupedLinear(AbstractMixerLayer):
    """One linear map per channel group: [N, P, G·H_g] → [N, P, G, C], each group normalised on
    its own (group normalisation's locality, Wu & He 2018)."""

    weight: Float[Array, "groups in_per_group out_per_group"]
    bias: Float[Array, "groups out_per_group"]
    mixes_groups: ClassVar[bool] = False
    norm_input: bool = eqx.field(static=True)
    norm_grad: bool = eqx.field(static=True)
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(
        self,
        groups: int,
        in_features: int,
        out_features: int,
        *,
        norm_input: bool = True,
        norm_grad: bool = True,
        activation: Callable[[Array], Array] = relu,
        key: PRNGKeyArray,
    ):
        if in_features % groups or out_features % groups:
            raise ValueError(
                f"GroupedLinear: {groups} groups must divide in_features={in_features} and "
                f"out_features={out_features}"
            )
        shape = (groups, in_features // groups, out_features // groups)
        self.weight = _normal(key, shape, shape[1])
        self.bias = jnp.zeros(shape[::2], jnp.float32)
        self.norm_input = norm_input
        self.norm_grad = norm_grad
        self.activation = activation

    @property
    def groups(self) -> int:
        return self.weight.shape[0]

    def inputs(self, x: Array) -> Float[Array, "batch patches groups in_per_group"]:
        return x.reshape(x.shape[0], x.shape[1], self.groups, -1)

    def linear(self, h: Float[Array, "batch patches groups in_per_group"]) -> Array:
        return jnp.einsum("npgh,ghc->npgc", h, self.weight) + self.bias


def _score(loss: str, objective: str, temperature: float, out: Array, y: Array) -> Array:
    """Per-example loss of a head's outputs [N, K]: the supervised ``loss`` against ``y``, or
    InfoNCE of the projections (``y`` unused)."""
    if objective == "contrastive":
        return info_nce(out, temperature=temperature)
    return get_loss(loss)(out, y)


class ReplicatedHead(AbstractLayer):
    """A block's local head: features [N, P, G, C] → (optionally normalised per group) → mean over
    patches → [N, G·C] → linear → logits (or, ``objective="contrastive"``, projections scored by
    InfoNCE with ``temperature``).

    Its loss is replicated per (patch, group) (Ren et al. eq. 4-5): copy (n, p, g) has example
    n's value but reaches only the features x[n, p, g] (``replicated_losses``), so a forward
    gradient at those features is scored by a loss that depends on them alone. ``replicated=False``
    gives the plain per-example loss instead (an ablation); ``fused=False`` uses the naive masked
    implementation (for the memory benchmark).
    """

    weight: Float[Array, "features outputs"]
    bias: Float[Array, " outputs"]
    groups: int = eqx.field(static=True)
    norm_input: bool = eqx.field(static=True)
    objective: str = eqx.field(static=True)
    temperature: float = eqx.field(static=True)
    replicated: bool = eqx.field(static=True)
    fused: bool = eqx.field(static=True)
    activation: Callable[[Array], Array] = eqx.field(static=True, default=identity)

    def __init__(
        self,
        groups: int,
        features: int,
        outputs: int,
        *,
        norm_input: bool = True,
        objective: str = "supervised",
        temperature: float = 0.5,
        replicated: bool = True,
        fused: bool = True,
        key: PRNGKeyArray,
    ):
        if objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}")
        if not temperature > 0:
            raise ValueError(f"the InfoNCE temperature must be positive, got {temperature}")
        self.weight = _normal(key, (features, outputs), features)
        self.bias = jnp.zeros((outputs,), jnp.float32)
        self.groups = groups
        self.norm_input = norm_input
        self.objective = objective
        self.temperature = float(temperature)
        self.replicated = replicated
        self.fused = fused
        self.activation = identity

    def features(self, x: Array) -> Float[Array, "batch patches groups channels"]:
        x = x.reshape(x.shape[0], x.shape[1], self.groups, -1)
        return local_norm(x) if self.norm_input else x

    def pre_activation(self, x: Array) -> Float[Array, "batch outputs"]:
        xbar = jnp.mean(self.features(x), axis=1).reshape(x.shape[0], -1)
        return xbar @ self.weight + self.bias

    def local_grad(
        self, x: Array, delta: Float[Array, "batch outputs"], linear: Array | None = None
    ) -> ReplicatedHead:
        x = jax.lax.stop_gradient(x)
        _, pullback = eqx.filter_vjp(lambda head: head.pre_activation(x), self)
        return pullback(delta)[0]

    def example_loss(self, loss: str, logits: Array, y: Array) -> Float[Array, " batch"]:
        """The per-example loss of the head's output ``logits`` [N, K] (``loss`` names the
        supervised loss; a contrastive head scores its projections by InfoNCE)."""
        return _score(loss, self.objective, self.temperature, logits, y)

    def replicated_losses(self, loss: str, x: Array, y: Array) -> Array:
        """The block's loss on features ``x``: [N, P, G] replicas (or [N] if not replicated).

        Summed over replicas, their gradients are exactly those of the example's loss, for the
        features and for the head's parameters alike."""
        if self.objective == "contrastive":
            fn = contrastive_head_loss(self.temperature)
        else:
            fn = linear_head_loss(get_loss(loss))
        params = (self.weight, self.bias)
        features = self.features(x)
        if not self.replicated:
            xbar = jnp.mean(features, axis=1).reshape(x.shape[0], -1)
            return fn(xbar, params, y)
        replicate = replicated_loss if self.fused else naive_replicated_loss
        return replicate(fn, features, params, y)


class Readout(AbstractLayer):
    """The final classifier: mean over tokens → layer normalisation → linear, starting at zero."""

    weight: Float[Array, "features classes"]
    bias: Float[Array, " classes"]
    norm_input: bool = eqx.field(static=True)
    activation: Callable[[Array], Array] = eqx.field(static=True, default=identity)

    def __init__(self, features: int, classes: int, *, norm_input: bool = True):
        self.weight = jnp.zeros((features, classes), jnp.float32)
        self.bias = jnp.zeros((classes,), jnp.float32)
        self.norm_input = norm_input
        self.activation = identity

    def pooled(self, x: Array) -> Float[Array, "batch features"]:
        h = jnp.mean(x.reshape(x.shape[0], x.shape[1], -1), axis=1)
        return local_norm(h) if self.norm_input else h

    def pre_activation(self, x: Array) -> Float[Array, "batch classes"]:
        return self.pooled(x) @ self.weight + self.bias

    def local_grad(
        self, x: Array, delta: Float[Array, "batch classes"], linear: Array | None = None
    ) -> Readout:
        h = jax.lax.stop_gradient(self.pooled(x))
        return eqx.tree_at(
            lambda layer: (layer.weight, layer.bias), self, (h.T @ delta, delta.sum(axis=0))
        )
