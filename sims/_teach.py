"""What the teaching demos share (``sims.teach_neurons``, ``sims.teach_continuous_discrete``):
the three-neuron network and its two examples, the circuit that learns them, and the command
line."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import ctlearn.dynamics as ct
from ctlearn._usererror import prepare_parser
from ctlearn.losses import get_loss
from models import mlp

LOSS = "mse"
GIF_DPI = 90
PARAMETERS = ("w₁ (x → h)", "b₁ (hidden bias)", "w₂ (h → y)", "b₂ (output bias)")


@dataclasses.dataclass(frozen=True)
class TeachConfig:
    """The toy problem and the circuit. Times are in units of τ_p.

    ``inputs``/``targets``: the examples, presented in turn (one at a time: batch 1);
    ``presentations``: how many; ``duration``: T; ``transition``: the fraction of T spent
    blending from the previous input; ``sigma``, ``tau_p``, ``components``: the sinusoid
    perturbation; ``lr``: the rule's η (1/time); ``dt0``: Heun's fixed step; ``times``: samples
    recorded per presentation; ``frames``: frames of the animation.
    """

    inputs: tuple[float, ...] = (-1.0, 1.0)
    targets: tuple[float, ...] = (-0.5, 0.5)
    presentations: int = 24
    duration: float = 4.0
    transition: float = 0.05
    sigma: float = 0.1
    tau_p: float = 1.0
    components: int = 4
    lr: float = 5.0
    dt0: float = 0.05
    times: int = 100
    frames: int = 60
    seed: int = 0

    def __post_init__(self):
        if len(self.inputs) != len(self.targets) or not self.inputs:
            raise ValueError(
                f"inputs and targets must be equally long and not empty, got {self.inputs} and "
                f"{self.targets}"
            )
        for name in ("presentations", "times", "frames", "components"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {name}={value!r}")
        for name in ("duration", "sigma", "tau_p", "lr", "dt0"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {name}={getattr(self, name)!r}")
        if not 0 <= self.transition < 1:
            raise ValueError(f"transition is a fraction of T in [0, 1), got {self.transition}")

    def simulator(self) -> ct.Simulator:
        """Continuous FG-A with the MSE loss and a sinusoid perturbation, fixed-step Heun."""
        return ct.Simulator(
            ct.FGARule(lr=self.lr, loss=LOSS),
            ct.Sinusoids(self.sigma, self.tau_p, components=self.components),
            loss=LOSS,
            dt0=self.dt0,
        )

    def model(self):
        """The 1 → 1 → 1 network (tanh hidden neuron, linear output)."""
        key = jax.random.fold_in(jax.random.key(self.seed), 0)
        return mlp((1,), 1, (1,), activation="tanh", local_heads=False, key=key)

    def stream(self) -> ct.Presentations:
        """The examples in turn, one per presentation. The targets are real numbers: with one
        output and a batch of one, the MSE loss reads them as the output's target."""
        k = np.arange(self.presentations) % len(self.inputs)
        x = jnp.asarray(np.asarray(self.inputs, np.float32)[k].reshape(-1, 1, 1))
        y = jnp.asarray(np.asarray(self.targets, np.float32)[k].reshape(-1, 1))
        return ct.Presentations(
            x, y, duration=self.duration, transition=self.transition * self.duration
        )

    def dataset(self) -> tuple[jax.Array, jax.Array]:
        """All examples as a batch: x [n, 1], targets [n, 1]."""
        x = jnp.asarray(self.inputs, jnp.float32)[:, None]
        return x, jnp.asarray(self.targets, jnp.float32)[:, None]


QUICK = {"presentations": 8, "times": 50, "frames": 16}


def flat(params) -> jax.Array:
    """A network's trainable arrays as one vector (w₁, b₁, w₂, b₂ for the 1-1-1 network)."""
    return jnp.concatenate([jnp.ravel(a) for a in jax.tree.leaves(params)])


def dataset_loss(config: TeachConfig, model, weights: np.ndarray) -> np.ndarray:
    """The mean MSE over every example, unperturbed, for each row of ``weights`` (flat, in the
    order of ``flat``), with ``model``'s structure."""
    x, t = config.dataset()
    return np.asarray(_dataset_losses(model, jnp.asarray(weights), x, t))


@eqx.filter_jit
def _dataset_losses(model, weights, x, t):
    params, static = eqx.partition(model, eqx.is_inexact_array)
    leaves, treedef = jax.tree.flatten(params)
    sizes = np.cumsum([a.size for a in leaves])[:-1]

    def loss(w):
        parts = jnp.split(w, sizes)
        moved = [p.reshape(a.shape) for p, a in zip(parts, leaves)]
        net = eqx.combine(jax.tree.unflatten(treedef, moved), static)
        return jnp.mean(get_loss(LOSS)(net(x).logits, t))

    return jax.vmap(loss)(weights)


def record_weights(state, signals, model, rule) -> jax.Array:
    """The weights alone, as one vector."""
    return flat(state.params)


def parse_config(argv, doc: str, out: str) -> tuple[TeachConfig, Path]:
    """The command line the teaching demos share: ``--quick``, ``--out``, ``--presentations``,
    ``--lr``, ``--seed``; returns the demo's settings and its output directory."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    prepare_parser(parser)
    parser.add_argument("--quick", action="store_true", help="fewer presentations and samples")
    parser.add_argument("--out", default=out)
    parser.add_argument("--presentations", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None, help="η of the rule (1/time)")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    options = dict(QUICK) if args.quick else {}
    for name in ("presentations", "lr", "seed"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    return TeachConfig(**options), Path(args.out)
