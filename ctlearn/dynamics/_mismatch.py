"""Device mismatch: every neuron and synapse of a fabricated circuit differs a little."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..nn import Network
from ._hardware import AbstractNonIdeality, is_zero, non_negative_finite, require


class MismatchState(eqx.Module):
    """Standard normal draws, fixed for the circuit's life: per layer, one for each output
    unit's gain and offset; per trainable array, one per synapse for its learning rate."""

    gain: tuple[Float[Array, " units"], ...]
    offset: tuple[Float[Array, " units"], ...]
    lr: object


def lognormal(xi, spread):
    """exp(s ξ − s²/2): a positive factor with mean 1 and, for small s, relative spread s."""
    return jnp.exp(spread * xi - spread**2 / 2)


class Mismatch(AbstractNonIdeality):
    """Fixed random deviations drawn once from the simulation's key.

    * ``gain_spread`` (dimensionless): each neuron's input gain is a log-normal factor with mean
      1 and relative spread ≈ ``gain_spread``: its activation input is ``g ⊙ (x W + b)``.
    * ``offset_spread`` (units of the activation input): each neuron's input has a fixed offset
      drawn from N(0, ``offset_spread``²).
    * ``lr_spread`` (dimensionless): each synapse (and bias) applies the rule's ``ẇ`` times its
      own log-normal factor with mean 1 and relative spread ≈ ``lr_spread``.

    The network the loss sees is the mismatched one; the stored conductances (the model) are
    what learns. Rules that measure the circuit (perturbation rules) descend the mismatched
    network's loss; a rule that computes gradients from the model (``GradientFlow``) does not
    know the mismatch. Gains and offsets apply to layers with a ``weight`` whose last axis is the
    output units and a ``bias`` (``Dense``, ``Conv2d``: one per output channel).
    """

    gain_spread: float | Array = 0.0
    offset_spread: float | Array = 0.0
    lr_spread: float | Array = 0.0

    def __check_init__(self):
        for name in ("gain_spread", "offset_spread", "lr_spread"):
            require(name, getattr(self, name), non_negative_finite, "finite and >= 0", "Mismatch")

    def is_ideal(self):
        return is_zero(self.gain_spread, self.offset_spread, self.lr_spread)

    def init(self, model: Network, signals, *, key):
        gains, offsets = [], []
        for i, layer in enumerate(model.layers):
            weight, bias = getattr(layer, "weight", None), getattr(layer, "bias", None)
            if weight is None or bias is None or weight.shape[-1:] != bias.shape:
                raise ValueError(
                    f"Mismatch: layer {i} ({type(layer).__name__}) has no weight whose last axis "
                    "is its output units with a matching bias; mismatch supports Dense and Conv2d"
                )
            k = jax.random.fold_in(key, i)
            draws = jax.random.normal(k, (2, *bias.shape))
            gains.append(draws[0])
            offsets.append(draws[1])
        params = eqx.filter(model, eqx.is_inexact_array)
        leaves, treedef = jax.tree.flatten(params)
        lr_key = jax.random.fold_in(key, len(model.layers))
        lr = [
            jax.random.normal(jax.random.fold_in(lr_key, i), leaf.shape)
            for i, leaf in enumerate(leaves)
        ]
        return MismatchState(tuple(gains), tuple(offsets), jax.tree.unflatten(treedef, lr))

    def network(self, model: Network, state: MismatchState) -> Network:
        layers = []
        for layer, xi_g, xi_o in zip(model.layers, state.gain, state.offset):
            g = lognormal(xi_g, self.gain_spread)
            o = self.offset_spread * xi_o
            layers.append(
                eqx.tree_at(
                    lambda la: (la.weight, la.bias), layer, (layer.weight * g, layer.bias * g + o)
                )
            )
        return eqx.tree_at(lambda m: m.layers, model, tuple(layers))

    def synapses(self, w_dot, state: MismatchState):
        return jax.tree.map(
            lambda w, xi: None if w is None else w * lognormal(xi, self.lr_spread),
            w_dot,
            state.lr,
            is_leaf=lambda v: v is None,
        )
