"""Ensembles solved as one fixed-step solve carrying the member axis (``members="fused"``, the
default) against each member's solve vmapped (``members="vmap"``, the former path) and against
the members run alone; the stored weights rebuilt from the learned change (``Plan.weights=
"rebuilt"``, the default) against weights stepped beside it; the options' refusals.

Synthetic inputs and labels (random numbers, not a dataset) on tiny networks, fixed seeds.
"""

from __future__ import annotations

import dataclasses

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ctlearn.dynamics as ct
from models import mlp

# The fused and vmapped solves do the same float32 arithmetic in another order (measured: the
# largest difference over every result array is 3e-8 on values of order 1); a member given
# another's numbers or key moves its loss by more than 1e-3.
TOLERANCE = 1e-6
# Weights rebuilt as start + Δw where they are read, or stepped beside Δw: the same sums rounded
# in another order (measured: 4.2e-7 at most, lone and fused, on values of order 1); a rebuild
# that dropped Δw would be off by Δw itself (above 1e-3 here).
REBUILT_TOLERANCE = 5e-6


def _stream():
    kx, ky = jax.random.split(jax.random.PRNGKey(42))
    x = jax.random.normal(kx, (3, 6, 10))
    y = jax.random.randint(ky, (3, 6), 0, 3)
    return ct.Presentations(x, y, duration=1.0, transition=0.1)


def _simulator(lr, sigma):
    # Activity noise and weight diffusion: an SDE whose noise reaches states and weights.
    return ct.Simulator(
        rule=ct.FGARule(lr=lr),
        perturbation=ct.Sinusoids(sigma=0.01, tau=0.5),
        dt0=0.05,
        hardware=(ct.ActivityNoise(sigma=sigma, tau=0.2), ct.WeightDrift(tau=50.0, sigma=1e-3)),
    )


def _largest_difference(a, b) -> float:
    return max(
        float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


# About a minute on 2 busy cores (two SDE ensembles compiled): slow. The default suite checks
# the fused path against lone runs (test_dynamics_hardware.py) and across devices
# (test_dynamics_sharding.py).
@pytest.mark.slow
def test_fused_members_equal_vmapped_solves():
    # Each member equal to its lone run is checked with the default (fused) path in
    # test_dynamics_hardware.py (test_an_ensemble_equals_its_members_run_one_by_one).
    stream = _stream()
    keys = [jax.random.PRNGKey(i) for i in range(2)]
    models = [mlp((10,), 3, (8,), local_heads=False, key=k) for k in keys]
    sims = [_simulator(lr, sigma) for lr, sigma in ((1.0, 0.0), (4.0, 0.05))]
    run = dict(keys=keys, chunk=3, progress=False, devices=1)
    fused = ct.simulate_ensemble(sims, models, stream, **run)
    vmapped = ct.simulate_ensemble(sims, models, stream, members="vmap", **run)
    assert _largest_difference(fused, vmapped) < TOLERANCE
    # Members differ: a mix-up of numbers or keys between members would not pass this.
    assert float(np.ptp(np.asarray(fused.results.loss[:, -1]))) > 1e-3


@pytest.mark.slow
def test_the_tree_can_still_drive_an_ensemble_and_gives_other_draws():
    stream = _stream()
    keys = [jax.random.PRNGKey(i) for i in range(2)]
    models = [mlp((10,), 3, (8,), local_heads=False, key=k) for k in keys]
    sims = [_simulator(2.0, 0.05)] * 2
    run = dict(keys=keys, chunk=3, progress=False, devices=1)
    tree = ct.simulate_ensemble(sims, models, stream, brownian="tree", **run)
    increments = ct.simulate_ensemble(sims, models, stream, **run)
    assert np.all(np.isfinite(np.asarray(tree.results.loss)))
    noise_tree = np.asarray(tree.results.hardware_state[0].n[0])
    noise_increments = np.asarray(increments.results.hardware_state[0].n[0])
    assert not np.allclose(noise_tree, noise_increments)


def test_bad_ensemble_options_are_refused_before_any_work():
    stream = _stream()
    key = jax.random.PRNGKey(0)
    model = mlp((10,), 3, (8,), local_heads=False, key=key)
    with pytest.raises(ValueError, match="members='fuse'; valid: fused, vmap"):
        ct.simulate_ensemble([_simulator(1.0, 0.01)], [model], stream, keys=[key], members="fuse")
    with pytest.raises(ValueError, match="unknown Brownian path 'bridge'"):
        ct.simulate_ensemble(
            [_simulator(1.0, 0.01)], [model], stream, keys=[key], brownian="bridge"
        )
    adaptive = ct.Simulator(
        rule=ct.FGARule(lr=1.0),
        perturbation=ct.Sinusoids(sigma=0.01, tau=0.5),
        solver=diffrax.Heun(),
        dt0=0.05,
        controller=diffrax.PIDController(rtol=1e-3, atol=1e-6),
        hardware=(ct.ActivityNoise(sigma=0.01, tau=0.2),),
    )
    with pytest.raises(ValueError, match="needs a stepping solver at a constant step"):
        ct.simulate_ensemble([adaptive], [model], stream, keys=[key], brownian="increments")


def test_members_whose_settings_ask_for_different_steps_share_the_finest():
    # A differentiator of τ_d = dt0 asks the automatic path for dt0/7, one of τ_d = 4·dt0 for
    # dt0/2: as one ensemble both take dt0/7 (without a common plan the members would differ in
    # structure and be refused), and the member that asked for it equals its lone run.
    whole = _stream()
    stream = ct.Presentations(whole.x[:1], whole.y[:1], duration=1.0, transition=0.1)
    keys = [jax.random.PRNGKey(i) for i in range(2)]
    models = [mlp((10,), 3, (8,), local_heads=False, key=k) for k in keys]
    sims = [
        ct.Simulator(
            ct.FGARule(lr=1.0),
            ct.Sinusoids(0.01, 0.5),
            dt0=0.05,
            hardware=(ct.Differentiator(tau),),
        )  # fmt: skip
        for tau in (0.05, 0.2)
    ]
    with pytest.warns(UserWarning, match="divided by"):
        ensemble = ct.simulate_ensemble(sims, models, stream, keys=keys, chunk=1, progress=False,
                                        devices=1)  # fmt: skip
        lone = ct.simulate(sims[0], models[0], stream, key=keys[0], chunk=1, progress=False)
    member = ensemble.member(0)
    assert _largest_difference(member.loss, lone.loss) < TOLERANCE
    assert _largest_difference(member.model, lone.model) < TOLERANCE
    assert float(np.ptp(np.asarray(ensemble.results.loss[:, -1]))) > 0


def _with_weights(bound, weights: str):
    return dataclasses.replace(bound, plan=dataclasses.replace(bound.plan, weights=weights))


def test_weights_rebuilt_from_the_learned_change_equal_weights_stepped_beside_it():
    # Ideal hardware, the default integration: lone and as two fused members (vmapped).
    stream = _stream()
    keys = [jax.random.PRNGKey(i) for i in range(2)]
    sim = ct.Simulator(ct.FGARule(lr=4.0), ct.Sinusoids(sigma=0.01, tau=0.5), dt0=0.05)
    prepared = [
        ct.prepare(sim, mlp((10,), 3, (8,), local_heads=False, key=k), stream, key=k) for k in keys
    ]
    bound, state = prepared[0]
    states = jax.tree.map(lambda *a: jnp.stack(a), *[s for _, s in prepared])

    def lone(bound):
        return ct.run_presentations(bound, state, stream, 0, stream.num, keys[0])

    def members(bound):
        run = lambda s, k: ct.run_presentations(bound, s, stream, 0, stream.num, k)  # noqa: E731
        return eqx.filter_vmap(run)(states, jnp.stack(keys))

    for run in (lone, members):
        rebuilt = eqx.filter(run(_with_weights(bound, "rebuilt")), eqx.is_inexact_array)
        stepped = eqx.filter(run(_with_weights(bound, "stepped")), eqx.is_inexact_array)
        assert _largest_difference(rebuilt, stepped) < REBUILT_TOLERANCE, run.__name__
        learned = rebuilt[0].delta
        assert max(float(jnp.max(jnp.abs(d))) for d in jax.tree.leaves(learned)) > 1e-3


def test_an_unknown_way_to_hold_the_weights_is_refused():
    stream = _stream()
    key = jax.random.PRNGKey(0)
    sim = ct.Simulator(ct.FGARule(lr=1.0), ct.Sinusoids(sigma=0.01, tau=0.5), dt0=0.05)
    bound, state = ct.prepare(sim, mlp((10,), 3, (8,), local_heads=False, key=key), stream, key=key)
    with pytest.raises(ValueError, match="Plan.weights='carried'.*valid: rebuilt, stepped"):
        ct.run_presentations(_with_weights(bound, "carried"), state, stream, 0, 1, key)
