"""Perturbable layers: the stage where an activity perturbation is injected.

A layer computes ``z = pre_activation(x) + p`` and ``y = activation(z)``. The point ``z`` is where
the papers inject the activity perturbation ``p`` (zeros mean "unperturbed"), so one ``jax.jvp``
with respect to ``p`` gives every forward-mode quantity the estimators need, and the same call with
tangents ``(x_dot, p_dot, W_dot)`` is the (x, ẋ) propagation of the continuous-time mode.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

_INITS = ("kaiming_uniform", "torch", "zeros")


@jax.custom_jvp
def relu(z: Array) -> Array:
    """max(z, 0), with slope 1 at z = 0 (``jax.nn.relu`` takes 0 there).

    Any value in [0, 1] is a valid subgradient at 0; taking 1 lets a layer whose weights start at
    zero (DFA's forward weights in the FDFA paper) receive a learning signal on its first step,
    instead of staying dead forever. Elsewhere it is ``jax.nn.relu``.
    """
    return jnp.maximum(z, 0.0)


@relu.defjvp
def _relu_jvp(primals, tangents):
    (z,), (z_dot,) = primals, tangents
    return relu(z), jnp.where(z >= 0, z_dot, jnp.zeros_like(z_dot))


class AbstractLayer(eqx.Module):
    """A trainable stage ``y = activation(pre_activation(x) + p)``.

    Concrete layers state how the pre-activation is computed from their parameters and how a
    signal at the perturbation point (an estimated or exact ``∂L/∂z``) becomes a parameter update
    using only local quantities (``local_grad``): the ``x_{l-1} ⊗ δ`` contraction of every rule.
    """

    activation: eqx.AbstractVar[Callable[[Array], Array]]

    @abc.abstractmethod
    def pre_activation(self, x: Array) -> Array:
        """The point where the perturbation is added, for a batch ``x`` of shape [batch, ...]."""

    @abc.abstractmethod
    def local_grad(self, x: Array, delta: Array, linear: Array | None = None) -> AbstractLayer:
        """Parameter gradient given ``delta = ∂L/∂z`` at the perturbation point, summed over the
        batch. Returns a layer-shaped PyTree (the same structure as ``self``) holding the gradients.

        ``linear``: the output of the layer's linear map for this ``x`` as the forward pass
        recorded it (``Trace.linear``); a layer that normalises that output pulls ``delta`` back
        through the normalisation at it instead of recomputing the linear map. ``None``: recompute.
        Layers without a normalisation after their linear map ignore it.
        """

    def pre_activation_and_linear(self, x: Array) -> tuple[Array, Array | None]:
        """``(pre_activation(x), linear)``: ``linear`` is the linear map's output before the
        layer's normalisation, which ``local_grad`` needs, or ``None`` for a layer that has no
        normalisation after its linear map (its local update never needs its output)."""
        return self.pre_activation(x), None

    def activate(self, z: Array) -> Array:
        """The layer's output activity from its pre-activation: the activation, followed by any
        parameter-free stage a layer has after it (pooling). Direct-feedback rules differentiate
        it to carry a signal at the output back to the perturbation point."""
        return self.activation(z)

    def __call__(
        self, x: Array, p: Array | None = None, residual: Array | None = None
    ) -> tuple[Array, Array]:
        """Returns ``(y, z)``: the activity and the input of the activation: the pre-activation,
        plus the perturbation ``p``, plus ``residual`` (a residual block's input, added after the
        perturbation point and before the activation, as in LocalMixer). Both additions leave
        ``∂L/∂z`` unchanged, so the local update is the same whichever point ``z`` names."""
        y, z, _ = self.forward(x, p, residual)
        return y, z

    def forward(
        self, x: Array, p: Array | None = None, residual: Array | None = None
    ) -> tuple[Array, Array, Array | None]:
        """``(y, z, linear)``: ``__call__``'s pair and the linear output of
        ``pre_activation_and_linear`` (what ``Network`` records for the local updates)."""
        z, linear = self.pre_activation_and_linear(x)
        if p is not None:
            z = z + p
        if residual is not None:
            z = z + residual.reshape(z.shape)
        return self.activate(z), z, linear

    def active(self, z: Array) -> Array:
        """Boolean mask of the units at ``z`` that reach the layer's output: a non-zero slope of
        the activation (ReLU sparsity) and, after pooling, the winners of their windows. The
        gradient at every other unit is exactly zero, so masking estimates there is unbiased."""
        y, to_pre = jax.vjp(self.activate, z)
        (reach,) = to_pre(jnp.ones_like(y))
        return reach != 0


def _uniform(key: PRNGKeyArray, shape: tuple[int, ...], bound: float) -> Array:
    return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


class Dense(AbstractLayer):
    """Fully connected layer ``z = x W + b`` with ``W`` of shape [in, out].

    ``init``: ``"kaiming_uniform"`` draws W from U(±gain·√(3/fan_in)) (He et al., gain √2 for a ReLU
    layer, 1 for a linear one) with zero bias, as the FDFA paper does; ``"torch"`` is PyTorch's
    default U(±1/√fan_in) for both W and b; ``"zeros"`` starts at zero (DFA's forward weights).
    """

    weight: Float[Array, "in_features out_features"]
    bias: Float[Array, " out_features"]
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: Callable[[Array], Array] = relu,
        *,
        init: str = "kaiming_uniform",
        key: PRNGKeyArray,
    ):
        if in_features <= 0 or out_features <= 0:
            raise ValueError(
                f"Dense needs positive sizes, got in_features={in_features}, "
                f"out_features={out_features}"
            )
        if init not in _INITS:
            raise ValueError(f"unknown init {init!r}; valid: {', '.join(_INITS)}")
        wkey, bkey = jax.random.split(key)
        shape = (in_features, out_features)
        if init == "kaiming_uniform":
            gain = 2.0**0.5 if activation in (relu, jax.nn.relu) else 1.0
            self.weight = _uniform(wkey, shape, gain * (3.0 / in_features) ** 0.5)
            self.bias = jnp.zeros((out_features,), jnp.float32)
        elif init == "torch":
            bound = in_features**-0.5
            self.weight = _uniform(wkey, shape, bound)
            self.bias = _uniform(bkey, (out_features,), bound)
        else:
            self.weight = jnp.zeros(shape, jnp.float32)
            self.bias = jnp.zeros((out_features,), jnp.float32)
        self.activation = activation

    @property
    def in_features(self) -> int:
        return self.weight.shape[0]

    @property
    def out_features(self) -> int:
        return self.weight.shape[1]

    def pre_activation(self, x: Float[Array, "*batch in_features"]) -> Array:
        return x @ self.weight + self.bias

    def local_grad(
        self,
        x: Float[Array, "*batch in_features"],
        delta: Float[Array, "*batch out_features"],
        linear: Array | None = None,
    ) -> Dense:
        x2 = x.reshape(-1, x.shape[-1])
        d2 = delta.reshape(-1, delta.shape[-1])
        return eqx.tree_at(
            lambda layer: (layer.weight, layer.bias), self, (x2.T @ d2, d2.sum(axis=0))
        )


def identity(x: Array) -> Array:
    """The linear activation of output layers and readouts."""
    return x
