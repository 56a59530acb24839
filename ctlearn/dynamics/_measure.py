"""``measure``: the one ``jax.jvp`` of the network and its block losses that gives every signal's
rate at an instant (the (x, ẋ) pairs of Ren et al. section 3.5)."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from ..estimators._objective import block_losses
from ..nn import Network
from ._neurons import AbstractNeurons
from ._rule import AbstractRule, Signals, perturb_weights


def measure(
    rule: AbstractRule,
    neurons: AbstractNeurons,
    loss: str,
    model: Network,
    x: tuple[Array, Array],
    y: Array,
    p: tuple[tuple[Array, ...], tuple[Array, ...]],
    *,
    activity: tuple[Array, ...] | None = None,
    w_dot=None,
    injected: tuple[tuple[Array, ...], tuple[Array, ...]] | None = None,
    noise: tuple[tuple[Array, ...], tuple[Array, ...]] | None = None,
    circuit: Callable[[Network], Network] | None = None,
) -> Signals:
    """One ``jax.jvp`` of the network and its block losses at input ``x = (x, ẋ)`` (``ẋ``
    ``None``: the input is held still) and
    perturbation ``p = (p, ṗ)`` (entering where ``rule.site`` says), with leaky neurons' states
    ``activity`` (their rates from the neuron model) and optionally the weights' rate ``w_dot``.

    For a non-ideal circuit: ``injected`` is what reaches the perturbation points instead of
    ``p`` (the returned signals keep the generator's ``p``), ``noise = (n, ṅ)`` is added at every
    layer's activation input, and ``circuit`` maps the stored weights to the network as built.
    A rule that ``reads_changes`` also gets the cost change ``L(w + p) − L(w)`` from a second
    forward pass with nothing injected (the neurons' state and any noise kept)."""
    (x, x_dot), (p, p_dot) = x, p
    site, greedy = rule.site, rule.greedy
    params, static = eqx.partition(model, eqx.is_inexact_array)
    injected = (p, p_dot) if injected is None else injected
    n, n_dot = (None, None) if noise is None else noise

    def forward(x, p, params, activity, n):
        net = eqx.combine(params, static)
        if site == "weights":
            net = perturb_weights(net, p)
        if circuit is not None:
            net = circuit(net)
        kwargs = {}
        if site == "pre":
            kwargs["perturbation"] = p if n is None else tuple(a + b for a, b in zip(p, n))
        else:
            if site == "post":
                kwargs["post"] = tuple(p) + (None,)
            if n is not None:
                kwargs["perturbation"] = n
        trace = net(x, greedy=greedy, activity=activity, **kwargs)
        return block_losses(loss, net, trace, y), trace

    activity_dot = None
    if activity is not None:
        _, trace0 = forward(x, injected[0], params, activity, n)
        activity_dot = neurons.drift(model if circuit is None else circuit(model), trace0, activity)
    # Inputs whose rate is zero (weights without ``w_dot``, an input without ``ẋ``) are held
    # out of the jvp rather than given zero tangents, which would cost a matmul per layer each.
    primals = {"p": injected[0], "activity": activity, "n": n}
    tangents = {"p": injected[1], "activity": activity_dot, "n": n_dot}
    if w_dot is not None:
        primals["params"], tangents["params"] = params, w_dot
    if x_dot is not None:
        primals["x"], tangents["x"] = x, x_dot

    def varying(moving):
        held = {"x": x, "params": params}
        return forward(**{**held, **moving})

    (losses, trace), (loss_rates, trace_dot) = jax.jvp(varying, (primals,), (tangents,))
    changes = None
    if rule.reads_changes:
        # The cost change C̃ = L(w + p) − L(w): a second forward pass with nothing injected.
        resting = jax.tree.map(jnp.zeros_like, injected[0])
        unperturbed, _ = forward(x, resting, params, activity, n)
        changes = tuple(
            None if a is None else a - b for a, b in zip(losses, unperturbed, strict=True)
        )
    return Signals(
        x, x_dot, y, trace, trace_dot, losses, loss_rates, tuple(p), tuple(p_dot), changes
    )
