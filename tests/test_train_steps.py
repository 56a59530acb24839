"""``run_steps``, the one discrete training loop (``train`` runs its epochs through it): the same
states as a loop of ``train_step`` written out, its callback's timing and early stop, and its
divergence check. MNIST-1D (generated offline)."""

import dataclasses
import itertools

import jax
import numpy as np
import pytest
from conftest import tree_allclose

from ctlearn.data import batches, load_dataset
from ctlearn.train import TrainConfig, TrainingDiverged, initial_state, run_steps, train_step

CONFIG = TrainConfig(method="fg-a", model_options={"widths": [16]}, batch_size=100, lr=1e-3)


@pytest.fixture(scope="module")
def setup():
    data = load_dataset("mnist1d")
    estimator = CONFIG.make_estimator()
    optimizer, _ = CONFIG.make_optimizer(40)
    state = initial_state(CONFIG, data, estimator, optimizer)
    stream = list(itertools.islice(batches(data.train, 100, key=jax.random.key(5)), 12))
    return data, estimator, optimizer, state, stream


def test_run_steps_is_a_loop_of_train_step_and_calls_back_before_each_step(setup):
    _, estimator, optimizer, state, stream = setup
    key = jax.random.key(6)
    by_hand, expected_losses = state, []
    for x, y in stream:
        by_hand, loss, _ = train_step(estimator, optimizer, by_hand, x, y, key)
        expected_losses.append(float(loss))
    seen = []

    def callback(i, s, x, y):
        seen.append((i, int(s.step), x is stream[i][0]))

    result = run_steps(estimator, optimizer, state, stream, key, callback=callback, check_every=5)
    assert not result.stopped and int(result.state.step) == 12
    assert tree_allclose(result.state.model, by_hand.model, rtol=0, atol=0)
    np.testing.assert_array_equal([float(v) for v in result.losses], expected_losses)
    assert seen == [(i, i, True) for i in range(12)]  # before step i, after i steps, its batch


def test_a_callback_returning_true_stops_before_that_step(setup):
    _, estimator, optimizer, state, stream = setup
    result = run_steps(
        estimator, optimizer, state, stream, jax.random.key(6), callback=lambda i, *_: i == 4
    )
    assert result.stopped and int(result.state.step) == 4 and len(result.losses) == 4


def test_a_non_finite_loss_is_named_by_its_step_and_a_check_can_let_it_pass(setup):
    data, _, _, _, stream = setup
    config = TrainConfig(model_options={"widths": [16]}, batch_size=100, lr=1e9, optimizer="sgd")
    estimator = config.make_estimator()
    optimizer, _ = config.make_optimizer(40)
    state = initial_state(config, data, estimator, optimizer)
    with pytest.raises(TrainingDiverged, match=r"the loss is (nan|inf) at step (\d+)") as info:
        run_steps(estimator, optimizer, state, stream, jax.random.key(0), check_every=3)
    losses = run_steps(
        estimator, optimizer, state, stream, jax.random.key(0), check=lambda *_: None
    ).losses
    first_bad = int(np.flatnonzero(~np.isfinite([float(v) for v in losses]))[0]) + 1
    assert info.value.step == first_bad and info.value.epoch is None
    with pytest.raises(ValueError, match="check_every must be a positive int, got 0"):
        run_steps(estimator, optimizer, state, stream, jax.random.key(0), check_every=0)


def test_complete_run_trains_resumes_or_reads_a_run_folder(tmp_path, monkeypatch):
    from ctlearn.train import _complete, complete_run, run_name, train

    data = load_dataset("mnist1d")
    config = TrainConfig(model_options={"widths": [8]}, batch_size=200, epochs=2)
    whole = complete_run(config, tmp_path / "whole", dataset=data, progress=False)
    train(config, tmp_path / "split", dataset=data, progress=False, stop_after_epochs=1)
    resumed = complete_run(config, tmp_path / "split", dataset=data, progress=False)
    strip = lambda ms: [{k: v for k, v in m.items() if "seconds" not in k} for m in ms]
    assert len(whole) == 2 and strip(resumed) == strip(whole)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run must be read, not trained")

    monkeypatch.setattr(_complete, "train", no_training)
    assert complete_run(config, tmp_path / "whole", dataset=data) == whole
    assert complete_run(dataclasses.replace(config, epochs=1), tmp_path / "whole") == whole[:1]
    # a finished folder of another run is refused, naming the folder and what differs
    other = dataclasses.replace(config, lr=0.5)
    with pytest.raises(ValueError, match=r"whole: cannot resume: .*lr: saved 0.001, given 0.5"):
        complete_run(other, tmp_path / "whole", dataset=data)
    assert run_name("fg-a:noise=rademacher,shared=true") == "fg-a_noise-rademacher_shared-true"


def test_complete_runs_skips_a_held_run_retries_it_once_and_refuses_a_folder_given_twice(
    tmp_path, monkeypatch
):
    from ctlearn.train import RunLock, _complete, complete_run, complete_runs

    data = load_dataset("mnist1d")
    first = TrainConfig(model_options={"widths": [8]}, batch_size=200, epochs=1)
    second = dataclasses.replace(first, seed=1)
    runs = [(first, tmp_path / "a"), (second, tmp_path / "b")]
    alone = complete_run(second, tmp_path / "alone", dataset=data, progress=False)
    strip = lambda ms: [{k: v for k, v in m.items() if "seconds" not in k} for m in ms]

    # Another holder of b's lock (flock refuses a second open file description as it would
    # another process): a is trained, b comes back None, untouched, after two tries.
    tries = []
    original = _complete.complete_run

    def counting(config, run_dir, **kwargs):
        tries.append(run_dir.name)
        return original(config, run_dir, **kwargs)

    monkeypatch.setattr(_complete, "complete_run", counting)
    with RunLock(tmp_path / "b"):
        held = complete_runs(runs, dataset=data, progress=False)
    assert tries == ["a", "b", "b"]
    assert len(held[0]) == 1 and held[1] is None
    assert not (tmp_path / "b" / "config.json").exists()

    # A holder that lets go between the two passes: the second pass trains b, reading a.
    lock = RunLock(tmp_path / "b")
    lock.acquire()
    tries.clear()

    def releasing(config, run_dir, **kwargs):
        tries.append(run_dir.name)
        try:
            return original(config, run_dir, **kwargs)
        finally:
            if run_dir.name == "b":
                lock.release()

    monkeypatch.setattr(_complete, "complete_run", releasing)
    stamp = (tmp_path / "a" / "checkpoint.eqx").stat().st_mtime_ns
    both = complete_runs(runs, dataset=data, progress=False)
    assert tries == ["a", "b", "b"]
    assert both[0] == held[0] and strip(both[1]) == strip(alone)
    assert (tmp_path / "a" / "checkpoint.eqx").stat().st_mtime_ns == stamp

    with pytest.raises(ValueError, match=r"b is given twice, for two different runs"):
        complete_runs([*runs, (first, tmp_path / "b")], dataset=data)
