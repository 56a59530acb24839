"""What the variance sims share (``sims.variance_ren``, ``sims.teach_variance``): the first
layer of a p-q-1 tanh network on synthetic data (Gaussian inputs, targets from a random
teacher), the estimators compared, and the measured and predicted variance of each."""

from __future__ import annotations

import functools
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ctlearn.diagnostics import (
    gradient_statistics,
    measured_variance,
    predicted_variance,
    sample_estimates,
    stack_leaves,
)
from ctlearn.estimators import make_estimator
from models import mlp

LOSS = "mse"
TEACHER_WIDTH = 4
# label -> (method, shared noise); the labels of the paper's Figure 8 plus shared activity
# perturbation (Table 1's other column) and BP (no noise).
ESTIMATORS: dict[str, tuple[str, bool | None]] = {
    "wt perturb": ("fg-w", True),
    "ind wt perturb": ("fg-w", False),
    "act perturb": ("fg-a", False),
    "shared act perturb": ("fg-a", True),
    "BP": ("bp", None),
}
COLORS = {
    "wt perturb": "tab:blue",
    "ind wt perturb": "tab:orange",
    "act perturb": "tab:green",
    "shared act perturb": "tab:purple",
    "BP": "black",
}

# Compiler options of the quick mode: without XLA backend optimisation a compilation takes a half
# to a third of the time, and at the quick mode's sizes compiling, not running, takes the time.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


def make_estimators(labels) -> dict[str, Any]:
    """The estimators behind ``labels`` (keys of ``ESTIMATORS``), each perturbing (and
    estimating) the first layer only, with the MSE loss."""
    out = {}
    for label in labels:
        method, shared = ESTIMATORS[label]
        options = {} if shared is None else {"shared": shared, "layers": (0,)}
        out[label] = make_estimator(method, loss=LOSS, **options)
    return out


def make_problem(p: int, q: int, *, pool: int, seed: int = 0):
    """``(student, X, Y)``: a random p-q-1 tanh network and a pool of ``pool`` examples with
    standard Gaussian inputs and targets from a fixed random p-4-1 tanh teacher. Every weight
    matrix is drawn from U(±√(3/fan_in)) (``Dense``'s default for tanh layers), biases are zero.

    The problems of one seed are nested: each is the top-left corner of one p_max × q_max problem
    (p, q ≤ ``MAX_SIZE``) with its weights rescaled to the fan-in, so a larger p adds inputs (and
    their weights) to the same network and data, and a larger q adds hidden units: a sweep shows
    the trend, not a new random network at every point. Drawn with NumPy: cheap, where JAX would
    compile a random kernel for every shape."""
    if not (1 <= p <= MAX_SIZE and 1 <= q <= MAX_SIZE):
        raise ValueError(f"p and q must be in 1 … {MAX_SIZE}, got p={p}, q={q}")
    base = _base_problem(seed, pool)
    X = base["X"][:, :p]
    teacher_hidden = np.tanh(X @ (base["teacher_in"][:p] * math.sqrt(3.0 / p)))
    Y = teacher_hidden @ (base["teacher_out"] * math.sqrt(3.0 / TEACHER_WIDTH))
    weights = (
        base["student_in"][:p, :q] * math.sqrt(3.0 / p),
        base["student_out"][:q] * math.sqrt(3.0 / q),
    )
    student = mlp(
        (p,), 1, (q,), activation="tanh", local_heads=False, init="zeros", key=jax.random.key(0)
    )
    student = eqx.tree_at(
        lambda m: tuple(layer.weight for layer in m.layers),
        student,
        tuple(jnp.asarray(w, jnp.float32) for w in weights),
    )
    return student, jnp.asarray(X, jnp.float32), jnp.asarray(Y, jnp.float32)


MAX_SIZE = 1024  # the largest fan-in and fan-out of make_problem


@functools.lru_cache(maxsize=2)
def _base_problem(seed: int, pool: int) -> dict[str, np.ndarray]:
    """The largest problem of ``seed``: inputs, and weights as U(−1, 1) before scaling."""
    rng = np.random.default_rng(seed)
    return {
        "X": rng.standard_normal((pool, MAX_SIZE)),
        "teacher_in": rng.uniform(-1, 1, (MAX_SIZE, TEACHER_WIDTH)),
        "teacher_out": rng.uniform(-1, 1, (TEACHER_WIDTH, 1)),
        "student_in": rng.uniform(-1, 1, (MAX_SIZE, MAX_SIZE)),
        "student_out": rng.uniform(-1, 1, (MAX_SIZE, 1)),
    }


@eqx.filter_jit
def gradient_constants(model, X, Y) -> tuple[jax.Array, jax.Array]:
    """``(V, S)`` of Table 1 for the first layer over the pool ``(X, Y)``: the element-wise
    variance and squared mean of the per-example exact gradients (weights and bias)."""
    bp = make_estimator("bp", loss=LOSS)

    def exact(x, y):
        g = bp.estimate(model, (x[None], y[None]), None, key=None)[0].layers[0]
        return stack_leaves(jax.tree.map(lambda a: a[None], g))[0]

    return gradient_statistics(jax.vmap(exact)(X, Y))


def perturbed_count(label: str, p: int, q: int) -> int:
    """M of Table 1: the first layer's (p+1)·q weights and biases for weight perturbation, its q
    units for activity perturbation (0 for BP)."""
    method = ESTIMATORS[label][0]
    return {"fg-w": (p + 1) * q, "fg-a": q}.get(method, 0)


def theory(label: str, V, S, *, batch_size: int, p: int, q: int) -> float:
    """Table 1's average variance of ``label``'s first-layer estimate (BP: V/N)."""
    method, shared = ESTIMATORS[label]
    V, S = float(V), float(S)
    if method == "bp":
        return V / batch_size
    m = perturbed_count(label, p, q)
    return float(predicted_variance(V, S, batch_size=batch_size, perturbed=m, shared=shared))


def first_layer_draws(estimators: dict[str, Any], model, X, Y, *, batch_size: int, keys):
    """One first-layer estimate [(p+1)·q] per key and estimator (traceable): each key draws a
    mini-batch of ``batch_size`` pool examples (with replacement) and the noise; every estimator
    sees the same mini-batches. Returns ``{label: [len(keys), (p+1)·q]}``."""

    def one(k):
        ki, kn = jax.random.split(k)
        idx = jax.random.randint(ki, (batch_size,), 0, X.shape[0])
        batch = (X[idx], Y[idx])
        estimates = {
            label: sample_estimates(est, model, batch, None, num=1, key=kn)
            for label, est in estimators.items()
        }
        return {label: stack_leaves(g.layers[0])[0] for label, g in estimates.items()}

    return jax.vmap(one)(keys)


def measure_points(
    settings,
    labels,
    *,
    samples: int,
    pool: int,
    seed: int = 0,
    max_examples: int = 2**20,
    fast_compile: bool = False,
) -> list[dict[str, Any]]:
    """Measured and predicted first-layer variance of each estimator in ``labels`` at every
    ``(N, p, q)`` of ``settings``, from ``samples`` draws each. One compiled function computes
    V and S and draws for every setting; it is called as often as ``max_examples`` examples per
    setting and call require. Returns per setting ``{"N", "p", "q", "V", "S", "measured":
    {label: ...}, "predicted": {label: ...}}``."""
    settings = [tuple(int(v) for v in s) for s in settings]
    estimators = make_estimators(labels)
    calls = max(math.ceil(samples * n / max_examples) for n, _, _ in settings)
    per_call = math.ceil(samples / calls)
    options = FAST_COMPILE if fast_compile else None
    problems = {(p, q): make_problem(p, q, pool=pool, seed=seed) for _, p, q in settings}

    # The problems and the seed's key are arguments, not constants: XLA would otherwise try to
    # constant-fold the computation at compile time, which is slow.
    def draws(call, seed_key, problems):
        out = []
        for n, p, q in settings:
            model, X, Y = problems[(p, q)]
            key = seed_key
            for value in (n, p, q, call):
                key = jax.random.fold_in(key, value)
            keys = jax.random.split(key, per_call)
            out.append(first_layer_draws(estimators, model, X, Y, batch_size=n, keys=keys))
        return out

    def reduce(problems, chunks):
        constants = {pq: gradient_constants(*problem) for pq, problem in problems.items()}
        variances = [
            {
                label: measured_variance(jnp.concatenate([c[j][label] for c in chunks])[:samples])
                for label in labels
            }
            for j in range(len(settings))
        ]
        return constants, variances

    seed_key = jax.random.PRNGKey(seed)
    compiled = eqx.filter_jit(draws).lower(jnp.int32(0), seed_key, problems).compile(options)
    chunks = [compiled(jnp.int32(c), seed_key, problems) for c in range(calls)]
    constants, variances = (
        eqx.filter_jit(reduce).lower(problems, chunks).compile(options)(problems, chunks)
    )
    points = []
    for (n, p, q), got in zip(settings, variances):
        V, S = (float(v) for v in constants[(p, q)])
        predicted = {label: theory(label, V, S, batch_size=n, p=p, q=q) for label in labels}
        points.append(
            {"N": n, "p": p, "q": q, "V": V, "S": S}
            | {"measured": {label: float(v) for label, v in got.items()}}
            | {"predicted": predicted}
        )
    return points


def relative(pt: dict, kind: str, label: str) -> float:
    """``pt[kind][label]`` divided by V + S, the mean squared per-example gradient element: Table
    1 then reads ≈ (M+1)/N (independent noise), the gradient's own scale divided out."""
    return pt[kind][label] / (pt["V"] + pt["S"])
