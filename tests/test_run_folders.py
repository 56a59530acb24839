"""Trustworthy run folders (issue 18): one owner at a time, checkpoints verified by checksum,
checkpoint and metrics in agreement, leftovers removed, bad ``--out``/``--epochs`` refused,
files readable by the user's group. Each test is a probe of one failure, with its refusal."""

import json
import os
import re
import shutil
import socket

import equinox as eqx
import numpy as np
import pytest

from ctlearn.cli import main
from ctlearn.data import ArraySplit, Dataset
from ctlearn.files import atomic_write_text
from ctlearn.train import (
    CheckpointError,
    RunFolderError,
    RunFolderLocked,
    RunLock,
    TrainConfig,
    load_run,
    read_metrics,
    train,
)

CONFIG = TrainConfig(
    dataset="mnist1d", model_options={"widths": [8]}, batch_size=10, epochs=2, eval_batch_size=20
)


def _split(n, seed):
    rng = np.random.default_rng(seed)
    return ArraySplit(rng.normal(size=(n, 6)).astype(np.float32), rng.integers(0, 3, n))


@pytest.fixture(scope="module")
def data():
    return Dataset("mnist1d", _split(40, 0), _split(20, 1), 3, (6,), "memory")


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory):
    """A run folder after 2 completed epochs (copied by each test before it is damaged)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    train(CONFIG, out, dataset=data, progress=False)
    return out


@pytest.fixture
def run(finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    return out


def _resume(run, data, config=CONFIG):
    return train(config, run, resume=True, dataset=data, progress=False)


def test_a_second_process_on_the_same_folder_is_refused_naming_the_holder(run, data):
    with RunLock(run):  # another open file description: flock refuses it as it would a process
        with pytest.raises(RunFolderLocked, match=rf"PID {os.getpid()} on host") as err:
            _resume(run, data)
    assert socket.gethostname() in str(err.value)
    _resume(run, data)  # released: the folder can be used again


def test_a_fresh_run_takes_the_lock_too(tmp_path, data):
    with RunLock(tmp_path / "new"), pytest.raises(RunFolderLocked, match="is in use by"):
        train(CONFIG, tmp_path / "new", dataset=data, progress=False)


def test_nan_bytes_in_the_checkpoint_are_detected_naming_the_file(run, data):
    path = run / "checkpoint.eqx"
    raw = bytearray(path.read_bytes())
    raw[-64:] = np.full(16, np.nan, np.float32).tobytes()
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=r"checkpoint\.eqx is damaged"):
        _resume(run, data)
    with pytest.raises(CheckpointError, match=r"checkpoint\.eqx is damaged"):
        load_run(run, dataset=data)


def test_a_truncated_checkpoint_is_detected(run, data):
    path = run / "checkpoint.eqx"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"checkpoint\.eqx is damaged"):
        _resume(run, data)


def test_a_missing_checksum_is_refused(run, data):
    (run / "checkpoint.eqx.sha256").unlink()
    with pytest.raises(CheckpointError, match=r"checkpoint\.eqx\.sha256 is missing"):
        _resume(run, data)


def test_a_checkpoint_of_another_configuration_names_the_file(run, data):
    content = json.loads((run / "config.json").read_text())
    content["config"]["model_options"]["widths"] = [16]
    (run / "config.json").write_text(json.dumps(content))
    edited = TrainConfig(**content["config"])
    with pytest.raises(CheckpointError, match=r"checkpoint\.eqx does not hold a checkpoint"):
        _resume(run, data, edited)


@pytest.mark.parametrize("damage", ["emptied", "deleted"])
def test_lost_metrics_are_refused_not_restarted(run, data, damage):
    metrics = run / "metrics.jsonl"
    metrics.write_text("") if damage == "emptied" else metrics.unlink()
    expected = "records 0 completed epochs" if damage == "emptied" else "is missing"
    with pytest.raises(RunFolderError, match=rf"metrics\.jsonl {expected}.*epoch 2"):
        _resume(run, data)


def test_a_malformed_metrics_line_is_named(run, data):
    metrics = run / "metrics.jsonl"
    metrics.write_text(metrics.read_text().splitlines()[0] + "\n{not json\n")
    with pytest.raises(RunFolderError, match=r"metrics\.jsonl line 2 is not JSON"):
        _resume(run, data)


def test_a_metrics_row_without_its_epoch_is_named(run, data):
    metrics = run / "metrics.jsonl"
    metrics.write_text('{"train_loss": 1.0}\n')
    with pytest.raises(RunFolderError, match=r"line 1 should record epoch 1, got epoch=None"):
        _resume(run, data)


def test_a_deleted_checkpoint_is_refused_not_restarted(run, data):
    (run / "checkpoint.eqx").unlink()
    with pytest.raises(RunFolderError, match=r"checkpoint\.eqx is missing but the run recorded 2"):
        _resume(run, data)


def test_a_save_interrupted_before_the_metrics_is_completed_exactly(run, data, finished):
    metrics = run / "metrics.jsonl"
    metrics.write_text(metrics.read_text().splitlines()[0] + "\n")
    result = _resume(run, data)
    assert result.metrics == read_metrics(finished) == read_metrics(run)


def test_fewer_epochs_than_completed_are_refused_and_the_config_kept(run, data):
    before = (run / "config.json").read_bytes()
    with pytest.raises(ValueError, match=r"epochs=1 \(--epochs\) is below the 2 epochs"):
        _resume(run, data, TrainConfig(**{**CONFIG.__dict__, "epochs": 1}))
    assert (run / "config.json").read_bytes() == before


def test_leftover_temporary_files_are_removed_on_resume(run, data):
    leftovers = [run / ".checkpoint.eqx.x1y2.tmp", run / ".metrics.jsonl.z3.tmp"]
    for path in leftovers:
        path.write_bytes(b"\0" * 1000)
    _resume(run, data)
    assert not any(p.exists() for p in leftovers)


@pytest.mark.parametrize("out", ["", "   "])
def test_an_empty_out_is_refused_and_nothing_written(out, tmp_path, monkeypatch, capsys, data):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="the output folder is empty"):
        train(CONFIG, out, dataset=data, progress=False)
    assert main(["train", "--out", out, "--no-progress", "--epochs", "1"]) == 1
    assert "is empty: name the run's folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_files_are_written_with_the_users_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_the_cli_reports_a_damaged_checkpoint_in_one_line(run, capsys):
    (run / "checkpoint.eqx").write_bytes(b"")
    assert main(["train", "--out", str(run), "--resume", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "checkpoint.eqx is damaged" in err


def test_a_dataset_not_on_disk_without_network_fails_fast_and_creates_nothing(
    tmp_path, monkeypatch, caplog
):
    pytest.importorskip("tensorflow_datasets")
    pytest.importorskip("tensorflow")
    import tensorflow_datasets as tfds

    from ctlearn.data import DatasetNotAvailableError, load_dataset

    def retries(self, *args, **kwargs):
        raise AssertionError("TFDS's download (with its ~200 s of retries) must not start")

    monkeypatch.setenv("CTLEARN_OFFLINE", "0")
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", retries)
    # TEST-NET-1 (RFC 5737) is never routed: no network, on any machine.
    monkeypatch.setattr("ctlearn.data._network.PROBE_HOST", ("192.0.2.1", 443))
    monkeypatch.setattr("ctlearn.data._network.PROBE_SECONDS", 1.0)
    where = tmp_path / "nonexistent"
    with pytest.raises(DatasetNotAvailableError, match="no network to download it") as err:
        load_dataset("mnist", data_dir=where)
    assert str(where) in str(err.value) and "tfds build mnist" in str(err.value)
    assert not where.exists()
    # The error is the only word on it: TFDS's own warning about the folder is not logged.
    assert not [r for r in caplog.records if "Variant folder" in r.getMessage()], caplog.text


def _one_line_error(capsys, argv):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("ctlearn: error: "), err
    return err


@pytest.mark.parametrize(
    "content, message",
    [
        ("", r"config\.json is not valid JSON"),
        ("{not json", r"config\.json is not valid JSON"),
        ('{"data": {}}', r"config\.json holds no 'config' object"),
        ('{"config": {"epochs": 0}}', r"config\.json: its 'config' is not valid \(epochs must"),
    ],
)
def test_a_damaged_config_is_one_line_naming_the_file(run, capsys, content, message):
    (run / "config.json").write_text(content)
    err = _one_line_error(capsys, ["train", "--out", str(run), "--resume", "--no-progress"])
    assert re.search(message, err), err


@pytest.mark.parametrize(
    "content, message",
    [("", r"metrics\.jsonl records 0 completed epochs"), ("[1]\n", r"metrics\.jsonl line 1")],
)
def test_damaged_metrics_are_one_line_naming_the_file(run, capsys, content, message):
    (run / "metrics.jsonl").write_text(content)
    err = _one_line_error(capsys, ["train", "--out", str(run), "--resume", "--no-progress"])
    assert re.search(message, err), err


def test_a_checkpoint_that_does_not_fit_the_edited_config_is_one_line(run, capsys):
    content = json.loads((run / "config.json").read_text())
    content["config"]["model_options"]["widths"] = [16]
    (run / "config.json").write_text(json.dumps(content))
    err = _one_line_error(capsys, ["train", "--out", str(run), "--resume", "--no-progress"])
    assert "checkpoint.eqx does not hold a checkpoint of this run's configuration" in err


def test_a_bad_model_option_names_the_option_and_what_is_valid(tmp_path, capsys):
    argv = ["train", "--out", str(tmp_path / "r"), "--model-option", "widths=abc"]
    err = _one_line_error(capsys, argv)
    assert "model option widths='abc' is not valid: it must be a list of integers" in err
    assert not (tmp_path / "r").exists()
    with pytest.raises(ValueError, match="model option widths='abc'"):  # --debug: the traceback
        main([*argv, "--debug"])


def test_an_error_listing_several_sources_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CTLEARN_OFFLINE", "1")
    argv = ["train", "--out", str(tmp_path / "r"), "--dataset", "mnist"]
    _one_line_error(capsys, [*argv, "--data-dir", str(tmp_path / "none"), "--no-progress"])


def test_a_save_killed_before_its_rename_leaves_a_checkpoint_that_verifies(run, data, monkeypatch):
    from ctlearn.train import _checkpoint

    before = load_run(run, dataset=data)

    def killed(path, mode="wb"):
        raise KeyboardInterrupt  # as a kill between the sidecar's first write and the rename

    monkeypatch.setattr(_checkpoint, "atomic_open", killed)
    state = eqx.tree_at(lambda s: s.epoch, before.state, before.state.epoch + 1)
    with pytest.raises(KeyboardInterrupt):
        _checkpoint.save_checkpoint(run / "checkpoint.eqx", state, extra={"epoch": 3})
    monkeypatch.undo()
    assert "previous" in json.loads((run / "checkpoint.eqx.sha256").read_text())
    assert _resume(run, data).metrics == before.metrics  # the old checkpoint, verified
