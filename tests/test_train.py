"""The training loop: resuming, fail-fast validation, divergence, run files, learning."""

import dataclasses
import json

import equinox as eqx
import jax
import numpy as np
import pytest
from conftest import tree_allclose

from ctlearn.data import ArraySplit, Dataset, load_dataset
from ctlearn.train import (
    TrainConfig,
    TrainingDiverged,
    load_checkpoint,
    load_run,
    make_schedule,
    read_metrics,
    save_checkpoint,
    train,
)

SMALL = dict(model_options={"widths": [32, 32]}, batch_size=50, epochs=3)


@pytest.fixture(scope="module")
def mnist1d():
    return load_dataset("mnist1d")


def _weights(result):
    return eqx.filter(result.model, eqx.is_inexact_array)


@pytest.mark.parametrize(
    "options",
    [
        dict(method="lg-fg-a", schedule="exp"),
        dict(method="fg-w", optimizer="sgd", lr=1e-4, schedule="cosine", warmup_epochs=1),
    ],
)
def test_interrupted_then_resumed_run_ends_with_identical_weights(options, mnist1d, tmp_path):
    config = TrainConfig(**SMALL, **options)
    whole = train(config, tmp_path / "whole", dataset=mnist1d, progress=False)
    first = train(config, tmp_path / "split", dataset=mnist1d, progress=False, stop_after_epochs=1)
    assert [m["epoch"] for m in first.metrics] == [1]
    resumed = train(config, tmp_path / "split", resume=True, dataset=mnist1d, progress=False)
    assert int(resumed.state.step) == int(whole.state.step) == 3 * (4000 // 50)
    assert tree_allclose(_weights(resumed), _weights(whole), rtol=0, atol=0)
    assert tree_allclose(resumed.state.opt_state, whole.state.opt_state, rtol=0, atol=0)
    timing = ("seconds", "eval_seconds")
    strip = lambda ms: [{k: v for k, v in m.items() if k not in timing} for m in ms]
    assert strip(read_metrics(tmp_path / "split")) == strip(whole.metrics)
    # The saved checkpoint holds the same state as the returned one.
    loaded = load_run(tmp_path / "split", dataset=mnist1d)
    assert tree_allclose(_weights(loaded), _weights(whole), rtol=0, atol=0)


def test_run_folder_holds_config_metrics_and_checkpoint(mnist1d, tmp_path):
    config = TrainConfig(**{**SMALL, "epochs": 2}, method="fg-a")
    train(config, tmp_path, dataset=mnist1d, progress=False)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert TrainConfig(**saved["config"]) == config
    assert saved["data"]["input_shape"] == [40] and saved["data"]["num_classes"] == 10
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2
    for epoch, line in enumerate(lines, start=1):
        record = json.loads(line)
        for key in ("epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc", "seconds"):
            assert np.isfinite(record[key]), key
        assert record["epoch"] == epoch and record["step"] == epoch * 80
        assert 0.0 <= record["test_acc"] <= 1.0
    assert (tmp_path / "checkpoint.eqx").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_folder_holding_a_run_is_not_overwritten(mnist1d, tmp_path):
    config = TrainConfig(**{**SMALL, "epochs": 1})
    train(config, tmp_path, dataset=mnist1d, progress=False)
    before = (tmp_path / "checkpoint.eqx").read_bytes()
    with pytest.raises(FileExistsError, match="already holds a run.*--resume"):
        train(config, tmp_path, dataset=mnist1d, progress=False)
    assert (tmp_path / "checkpoint.eqx").read_bytes() == before


def test_resume_refuses_a_different_configuration(mnist1d, tmp_path):
    config = TrainConfig(**SMALL, schedule="linear")
    train(config, tmp_path, dataset=mnist1d, progress=False, stop_after_epochs=1)
    with pytest.raises(ValueError, match="lr: saved 0.001, given 0.01"):
        train(dataclasses.replace(config, lr=0.01), tmp_path, resume=True, progress=False)
    with pytest.raises(ValueError, match="'linear' schedule, which depends on the run's length"):
        train(dataclasses.replace(config, epochs=5), tmp_path, resume=True, progress=False)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(config, tmp_path / "empty", resume=True, progress=False)


def test_resume_may_extend_a_run_whose_schedule_ignores_its_length(mnist1d, tmp_path):
    config = TrainConfig(**{**SMALL, "epochs": 1}, schedule="exp")
    train(config, tmp_path, dataset=mnist1d, progress=False)
    longer = dataclasses.replace(config, epochs=2)
    result = train(longer, tmp_path, resume=True, dataset=mnist1d, progress=False)
    assert [m["epoch"] for m in result.metrics] == [1, 2]


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("method", "sgd-magic", "unknown method 'sgd-magic'; valid methods: bp, "),
        ("dataset", "no_such_data", "unknown dataset 'no_such_data'; available datasets: mnist1d"),
        ("model", "resnet", "unknown model 'resnet'; valid models: alexnet, fdfa_cnn, "),
        ("optimizer", "rmsprop", "unknown optimizer 'rmsprop'; valid: sgd, adam"),
        ("schedule", "step", "unknown schedule 'step'; valid: constant, linear, cosine, exp"),
        ("loss", "hinge", "unknown loss 'hinge'; valid: cross_entropy, mse"),
        ("epochs", 0, "epochs must be an integer >= 1, got 0"),
        ("batch_size", 2.5, "batch_size must be an integer >= 1, got 2.5"),
        ("lr", float("nan"), "lr must be a finite real number > 0, got nan"),
        ("lr_decay", 1.5, "lr_decay must be a finite real number > 0 and <= 1, got 1.5"),
        ("momentum", 1.0, "momentum must be a finite real number >= 0 and < 1, got 1.0"),
        ("warmup_epochs", 5, r"warmup_epochs \(5\) must be fewer than epochs \(5\)"),
        ("method_options", {"noise": "uniform"}, "noise"),
        ("method_options", {"temperature": 1}, "no option.*temperature; valid options: loss"),
        ("model_options", {"depth": 3}, "model 'mlp' has no option.*depth; valid options: widths"),
        ("data_source", "ftp", "unknown source 'ftp'; valid sources: auto, local, tfds"),
        ("input_scaling", "unit", "unknown input_scaling 'unit'; valid: standardise, symmetric"),
        ("input_scaling", "symmetric", "applies to \\[0, 255\\] images; mnist1d"),
        ("image_size", 0, "image_size must be an integer >= 1, got 0"),
        ("image_size", 32, "image_size 32 resizes images; mnist1d holds sequences"),
        ("augment", "mixup", "unknown augment 'mixup'; valid: none, crop_flip, byol"),
        ("crop_area", 0.0, "crop_area must be a finite real number > 0 and <= 1, got 0.0"),
        ("views", 3, "unknown views 3; valid: 1, 2"),
        ("views", 2, "views=2 needs an augmentation"),
    ],
)
def test_invalid_configs_fail_on_creation_with_a_message(field, value, message):
    with pytest.raises((ValueError, TypeError), match=message):
        TrainConfig(**{field: value})


def test_divergence_stops_with_epoch_and_step_and_keeps_the_last_checkpoint(mnist1d, tmp_path):
    config = TrainConfig(**SMALL)
    train(config, tmp_path, dataset=mnist1d, progress=False, stop_after_epochs=1)
    checkpoint = (tmp_path / "checkpoint.eqx").read_bytes()
    metrics = (tmp_path / "metrics.jsonl").read_text()
    # The same data with one training input corrupted (a NaN), as a broken sensor would: the loss
    # turns NaN at the first batch that holds it.
    x = np.array(mnist1d.train.x)
    x[123, 7] = np.nan
    poisoned = Dataset("mnist1d", ArraySplit(x, mnist1d.train.y), mnist1d.test, 10, (40,), "test")
    order = np.asarray(jax.random.permutation(_epoch_key(config.seed, 1), 4000))
    bad_step = 80 + int(np.flatnonzero(order == 123)[0]) // 50 + 1
    with pytest.raises(TrainingDiverged, match=f"at epoch 2, step {bad_step}") as info:
        train(config, tmp_path, resume=True, dataset=poisoned, progress=False)
    assert (info.value.epoch, info.value.step) == (2, bad_step)
    assert "last good checkpoint" in str(info.value) and "after epoch 1" in str(info.value)
    assert (tmp_path / "checkpoint.eqx").read_bytes() == checkpoint
    assert (tmp_path / "metrics.jsonl").read_text() == metrics


def _epoch_key(seed, epoch):
    # The shuffling key of an epoch, as ctlearn.train derives it (documented in train_step).
    data_root, _ = jax.random.split(jax.random.fold_in(jax.random.key(seed), 1))
    return jax.random.fold_in(data_root, epoch)


def test_a_failed_checkpoint_write_leaves_the_previous_one(mnist1d, tmp_path, monkeypatch):
    result = train(TrainConfig(**{**SMALL, "epochs": 1}), dataset=mnist1d, progress=False)
    path = tmp_path / "checkpoint.eqx"
    save_checkpoint(path, result.state)
    before = path.read_bytes()

    def broken(f, tree):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(eqx, "tree_serialise_leaves", broken)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, result.state)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.eqx", "checkpoint.eqx.sha256"]
    load_checkpoint(path, result.state)  # the previous checkpoint still verifies


def test_schedules():
    steps, epochs = 10, 4
    lr = lambda name, **kw: make_schedule(name, 0.1, steps_per_epoch=steps, epochs=epochs, **kw)
    assert float(lr("constant")(37)) == pytest.approx(0.1)
    assert float(lr("exp", decay=0.5)(0)) == pytest.approx(0.1)
    assert float(lr("exp", decay=0.5)(9)) == pytest.approx(0.1)
    assert float(lr("exp", decay=0.5)(25)) == pytest.approx(0.025)
    assert float(lr("linear")(20)) == pytest.approx(0.05)
    assert float(lr("linear")(40)) == pytest.approx(0.0, abs=1e-9)
    assert float(lr("cosine")(20)) == pytest.approx(0.05)
    warm = lr("cosine", warmup_epochs=2)
    assert float(warm(10)) == pytest.approx(0.05)
    assert float(warm(20)) == pytest.approx(0.1)
    assert float(warm(30)) == pytest.approx(0.05)


# A short run (10 epochs of 4000 mnist1d sequences; chance is 10%) must clearly learn. Measured
# with seed 0: BP 0.62, FG-A 0.27, LG-FG-A 0.30 test accuracy.
@pytest.mark.parametrize("method, floor", [("bp", 0.45), ("fg-a", 0.22), ("lg-fg-a", 0.22)])
def test_short_mnist1d_run_beats_chance_widely(method, floor, mnist1d):
    config = TrainConfig(method=method, epochs=10, batch_size=32, seed=0)
    result = train(config, dataset=mnist1d, progress=False)
    accuracies = [m["test_acc"] for m in result.metrics]
    assert accuracies[-1] > floor, accuracies
    assert result.metrics[-1]["train_loss"] < result.metrics[0]["train_loss"]


def test_contrastive_training_needs_two_views_and_runs_on_them(mnist1d, tmp_path):
    mixer = dict(preset="S/1/1", patches=2, channels=16, groups=2, blocks=2)
    with pytest.raises(ValueError, match="contrastive model .* two views"):
        TrainConfig(model="local_mixer", model_options=mixer | {"objective": "contrastive"})
    with pytest.raises(ValueError, match="contrastive model .* two views"):
        TrainConfig(model="local_mixer", model_options=mixer, augment="crop_flip", views=2)
    config = TrainConfig(
        model="local_mixer",
        model_options=mixer | {"objective": "contrastive", "projection": 8},
        method="lg-fg-a",
        augment="crop_flip",
        crop_area=0.5,
        views=2,
        epochs=1,
        batch_size=100,
    )
    result = train(config, tmp_path / "run", dataset=mnist1d, progress=False)
    assert np.isfinite(result.metrics[-1]["train_loss"])
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert (saved["augment"], saved["views"], saved["crop_area"]) == ("crop_flip", 2, 0.5)
    # Augmentation is part of the step's randomness: the same config gives the same weights.
    again = train(config, dataset=mnist1d, progress=False)
    assert tree_allclose(_weights(again), _weights(result), rtol=0, atol=0)


def test_image_size_resizes_the_dataset_the_run_loads(synthetic_idx_dir, tmp_path):
    folder, data = synthetic_idx_dir  # synthetic 28x28 images in IDX files
    config = TrainConfig(
        dataset="mnist",
        data_dir=str(folder),
        data_source="local",
        model="fdfa_cnn",
        image_size=36,
        epochs=1,
        batch_size=4,
    )
    result = train(config, tmp_path / "run", progress=False)
    assert result.model.input_shape == (36, 36, 1)
    assert np.isfinite(result.metrics[-1]["train_loss"])
    assert load_run(tmp_path / "run").model.input_shape == (36, 36, 1)
    native = load_dataset("mnist", data_dir=folder, source="local")
    with pytest.raises(ValueError, match="image_size is 36, but the given dataset's inputs have"):
        train(config, dataset=native, progress=False)


def test_runs_saved_before_input_scaling_existed_still_resume():
    # config.json files written before the option hold no input_scaling: they mean "standardise".
    config = TrainConfig(**SMALL)
    saved = json.loads(config.to_json())
    del saved["input_scaling"]
    config.resumable_as(TrainConfig.from_json(json.dumps(saved)))
    symmetric = dataclasses.replace(config, dataset="fashion_mnist", input_scaling="symmetric")
    with pytest.raises(ValueError, match="input_scaling: saved 'standardise', given 'symmetric'"):
        symmetric.resumable_as(dataclasses.replace(config, dataset="fashion_mnist"))
