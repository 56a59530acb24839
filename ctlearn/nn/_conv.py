"""Convolutional layers (NHWC images, HWIO kernels) and the flattening dense layer after them."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._layer import AbstractLayer, Dense, relu
from ._norm import BatchNorm

_PADDINGS = ("SAME", "VALID")


def _pair(name: str, value: int | tuple[int, int], minimum: int) -> tuple[int, int]:
    """``value`` as a (height, width) pair of integers of at least ``minimum``."""
    pair = (value, value) if isinstance(value, int) else value
    if (
        not isinstance(pair, tuple | list)
        or len(pair) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in pair)
    ):
        raise ValueError(
            f"Conv2d {name} must be an integer >= {minimum} or a pair of them, got {value!r}"
        )
    return tuple(pair)


def _explicit_padding(
    padding: int | tuple[int, int] | str, kernel: tuple[int, int], stride: tuple[int, int]
) -> tuple[tuple[int, int], tuple[int, int]]:
    """``padding`` as ((top, bottom), (left, right)) zero rows/columns."""
    if isinstance(padding, str):
        if padding not in _PADDINGS:
            raise ValueError(
                f"unknown Conv2d padding {padding!r}; valid: an integer, a pair of integers, "
                f"{', '.join(_PADDINGS)}"
            )
        if padding == "VALID":
            return ((0, 0), (0, 0))
        # With stride 1, "SAME" pads k - 1 in total whatever the image size (more after than
        # before, as XLA does); with a larger stride the pads would depend on the image size.
        if stride != (1, 1):
            raise ValueError(
                f"Conv2d padding 'SAME' needs stride 1, got stride={stride}; "
                "give explicit integer padding instead"
            )
        return tuple(((k - 1) // 2, k // 2) for k in kernel)
    ph, pw = _pair("padding", padding, 0)
    return ((ph, ph), (pw, pw))


def _pool(pool) -> tuple[int, int]:
    """``pool`` as (window, stride): an integer n is an n×n window with stride n."""
    pair = (pool, pool) if isinstance(pool, int) and not isinstance(pool, bool) else pool
    if (
        not isinstance(pair, tuple | list)
        or len(pair) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in pair)
    ):
        raise ValueError(
            f"Conv2d pool must be None, a positive integer or a (window, stride) pair, got {pool!r}"
        )
    return tuple(pair)


class Conv2d(AbstractLayer):
    """2-D convolution ``z = x ⋆ W + b`` on [batch, H, W, C] images with ``W`` [kh, kw, in, out],
    optionally batch-normalised (``batch_norm``: z = BN(x ⋆ W + b), the perturbation point after
    it), followed by the activation and an optional max-pool (``pool``: n for an n×n window with
    stride n, or a (window, stride) pair such as AlexNet's (3, 2)).

    ``init`` is as for ``Dense`` with fan_in = kh·kw·in_channels (the layer is a dense map of each
    kh×kw×in patch). ``padding``: zeros added on each side (an integer or an (h, w) pair), "VALID"
    (none) or "SAME" (stride 1 only). The pool drops trailing rows/columns that do not fill a
    window, as PyTorch's ``MaxPool2d`` does.
    """

    weight: Float[Array, "kh kw in_channels out_channels"]
    bias: Float[Array, " out_channels"]
    activation: Callable[[Array], Array] = eqx.field(static=True)
    stride: tuple[int, int] = eqx.field(static=True)
    padding: tuple[tuple[int, int], tuple[int, int]] = eqx.field(static=True)
    pool: tuple[int, int] | None = eqx.field(static=True)
    norm: BatchNorm | None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        *,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        pool: int | tuple[int, int] | None = None,
        batch_norm: bool = False,
        activation: Callable[[Array], Array] = relu,
        init: str = "kaiming_uniform",
        key: PRNGKeyArray,
    ):
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Conv2d {name} must be a positive integer, got {value!r}")
        kh, kw = _pair("kernel_size", kernel_size, 1)
        self.stride = _pair("stride", stride, 1)
        self.padding = _explicit_padding(padding, (kh, kw), self.stride)
        self.pool = None if pool is None else _pool(pool)
        self.norm = BatchNorm.create(out_channels) if batch_norm else None
        # The kernel is a dense map from a flattened kh·kw·in patch: Dense draws it (and checks
        # init) with the right fan_in; the patch order (kh, kw, in) is the HWIO layout.
        dense = Dense(kh * kw * in_channels, out_channels, activation, init=init, key=key)
        self.weight = dense.weight.reshape(kh, kw, in_channels, out_channels)
        self.bias = dense.bias
        self.activation = activation

    @property
    def in_channels(self) -> int:
        return self.weight.shape[2]

    @property
    def out_channels(self) -> int:
        return self.weight.shape[3]

    def pre_activation(
        self, x: Float[Array, "batch height width in_channels"]
    ) -> Float[Array, "batch out_height out_width out_channels"]:
        return self.pre_activation_and_linear(x)[0]

    def pre_activation_and_linear(
        self, x: Float[Array, "batch height width in_channels"]
    ) -> tuple[Array, Array | None]:
        z = self.convolve(x)
        return (z, None) if self.norm is None else (self.norm(z), z)

    def convolve(
        self, x: Float[Array, "batch height width in_channels"]
    ) -> Float[Array, "batch out_height out_width out_channels"]:
        """The convolution and bias, before any batch normalisation."""
        if x.ndim != 4 or x.shape[-1] != self.in_channels:
            raise ValueError(
                f"Conv2d expects images [batch, H, W, {self.in_channels}] (NHWC), got shape "
                f"{x.shape}"
            )
        z = jax.lax.conv_general_dilated(
            x,
            self.weight,
            window_strides=self.stride,
            padding=self.padding,
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        return z + self.bias

    def activate(self, z: Float[Array, "batch height width channels"]) -> Array:
        y = self.activation(z)
        if self.pool is None:
            return y
        size, step = self.pool
        return jax.lax.reduce_window(
            y, -jnp.inf, jax.lax.max, (1, size, size, 1), (1, step, step, 1), "VALID"
        )

    def local_grad(
        self,
        x: Float[Array, "batch height width in_channels"],
        delta: Float[Array, "batch out_height out_width out_channels"],
        linear: Array | None = None,
    ) -> Conv2d:
        # The weight gradient of a convolution is the correlation of x with delta; the vjp of the
        # pre-activation in its parameters computes exactly that, with x held constant.
        params, static = eqx.partition(self, eqx.is_inexact_array)
        if self.norm is None or linear is None:
            _, pullback = jax.vjp(lambda p: eqx.combine(p, static).pre_activation(x), params)
            (grads,) = pullback(delta)
            return eqx.combine(grads, static)
        # With the recorded convolution output, pull delta back through the batch norm there
        # (its scale and offset get their gradients on the way), then through the convolution,
        # which is linear in its kernel and bias: no convolution is recomputed.
        _, through_norm = jax.vjp(lambda norm, z: norm(z), self.norm, jax.lax.stop_gradient(linear))
        norm_grads, delta = through_norm(delta)
        _, through_conv = jax.vjp(
            lambda wb: eqx.tree_at(lambda c: (c.weight, c.bias), self, wb).convolve(x),
            (self.weight, self.bias),
        )
        ((weight, bias),) = through_conv(delta)
        return eqx.tree_at(lambda c: (c.weight, c.bias, c.norm), self, (weight, bias, norm_grads))


class FlatDense(AbstractLayer):
    """A ``Dense`` layer that first flattens its input [batch, ...] to [batch, in_features]: the
    step from convolutional feature maps to fully connected layers, and their local readouts.
    ``batch_norm`` normalises its linear output over the batch (z = BN(x W + b), PyTorch's
    ``BatchNorm1d``), the perturbation point after it, as ``Conv2d`` does."""

    dense: Dense
    activation: Callable[[Array], Array] = eqx.field(static=True)
    norm: BatchNorm | None

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: Callable[[Array], Array] = relu,
        *,
        batch_norm: bool = False,
        init: str = "kaiming_uniform",
        key: PRNGKeyArray,
    ):
        self.dense = Dense(in_features, out_features, activation, init=init, key=key)
        self.activation = activation
        self.norm = BatchNorm.create(out_features) if batch_norm else None

    @property
    def weight(self) -> Float[Array, "in_features out_features"]:
        return self.dense.weight

    @property
    def bias(self) -> Float[Array, " out_features"]:
        return self.dense.bias

    @property
    def in_features(self) -> int:
        return self.dense.in_features

    @property
    def out_features(self) -> int:
        return self.dense.out_features

    def _flatten(self, x: Float[Array, " batch *features"]) -> Float[Array, "batch in_features"]:
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.in_features:
            raise ValueError(
                f"FlatDense expects {self.in_features} features per example, got input shape "
                f"{x.shape} ({flat.shape[1]} features)"
            )
        return flat

    def pre_activation(
        self, x: Float[Array, " batch *features"]
    ) -> Float[Array, "batch out_features"]:
        return self.pre_activation_and_linear(x)[0]

    def pre_activation_and_linear(
        self, x: Float[Array, " batch *features"]
    ) -> tuple[Array, Array | None]:
        z = self.dense.pre_activation(self._flatten(x))
        return (z, None) if self.norm is None else (self.norm(z), z)

    def local_grad(
        self,
        x: Float[Array, " batch *features"],
        delta: Float[Array, "batch out_features"],
        linear: Array | None = None,
    ) -> FlatDense:
        flat = self._flatten(x)
        if self.norm is None:
            return eqx.tree_at(lambda layer: layer.dense, self, self.dense.local_grad(flat, delta))
        # Pull delta back through the batch norm at the linear output (recomputed only when the
        # forward pass did not record it); the dense map is linear in its parameters.
        if linear is None:
            linear = self.dense.pre_activation(flat)
        _, through_norm = jax.vjp(lambda norm, z: norm(z), self.norm, jax.lax.stop_gradient(linear))
        norm_grads, delta = through_norm(delta)
        grads = self.dense.local_grad(flat, delta)
        return eqx.tree_at(lambda layer: (layer.dense, layer.norm), self, (grads, norm_grads))
