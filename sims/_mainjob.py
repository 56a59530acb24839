"""The README main job's continuous circuit, shared by ``sims.bench_engine`` and
``sims.gpu_check``: MNIST-1D, an MLP 40-64-64-10, batches of 20 held for T = 10 τ_p,
continuous FG-A with the ReLU mask, and the discrete FG-A step it is measured against."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import optax

import ctlearn.dynamics as ct
from ctlearn.estimators import make_estimator
from ctlearn.train import TrainState, train_step
from models import mlp


@dataclasses.dataclass(frozen=True)
class MainJob:
    """The circuit: hidden ``widths``, ``batch_size``, η (``lr``, 1/time), the sinusoidal
    perturbation's ``sigma`` and ``tau_p``, the presentation's ``duration`` and ``transition``,
    the step ``dt0``; ``seed`` draws the weights and the batch order."""

    widths: tuple[int, ...] = (64, 64)
    batch_size: int = 20
    lr: float = 30.0
    sigma: float = 0.01
    tau_p: float = 1.0
    duration: float = 10.0
    transition: float = 1.0
    dt0: float = 0.05
    seed: int = 0


def main_job_stream(data, job: MainJob, count: int) -> ct.Presentations:
    """``count`` presentations of the training split at the main job's settings."""
    return ct.Presentations.from_split(
        data.train,
        job.batch_size,
        duration=job.duration,
        transition=job.transition,
        key=jax.random.key(job.seed),
        count=count,
    )


def main_job_model(data, job: MainJob, local_heads=False):
    """The main job's MLP, its initial weights drawn from ``job.seed``."""
    return mlp(data.input_shape, data.num_classes, job.widths, local_heads=local_heads,
               key=jax.random.key(job.seed))  # fmt: skip


def main_job_simulator(job: MainJob, solver=None) -> ct.Simulator:
    """Continuous FG-A with the ReLU mask and four sinusoids per unit, at ``job.dt0``."""
    return ct.Simulator(
        ct.FGARule(lr=job.lr, mask=True),
        ct.Sinusoids(job.sigma, job.tau_p, components=4),
        dt0=job.dt0,
        solver=solver,
    )


def discrete_step(model, x, y, key):
    """One discrete FG-A step (with the ReLU mask, SGD) of ``model`` on the batch ``(x, y)`` as
    ``ctlearn train`` and the main job take it: ``(step, train)``, ``step(train)`` one jitted
    ``train_step`` (dispatch included) from the starting state ``train``."""
    estimator, optimizer = make_estimator("fg-a", mask=True), optax.sgd(1e-3)
    train = TrainState.start(model, optimizer.init(eqx.filter(model, eqx.is_inexact_array)), None)
    return (lambda state: train_step(estimator, optimizer, state, x, y, key)), train


def discrete_step_calls(model, x, y, key, inner: int) -> dict:
    """Calls to time: ``"step"``, one ``discrete_step``, and ``"step_loop"``, ``inner`` of them
    inside one compiled loop (compute alone, no dispatch between steps)."""
    step, train = discrete_step(model, x, y, key)

    @eqx.filter_jit
    def step_loop(train):
        return jax.lax.scan(lambda s, _: (step(s)[0], None), train, None, length=inner)[0]

    return {"step": lambda: step(train), "step_loop": lambda: step_loop(train)}
