"""The ``ctlearn`` command line."""

import json

import pytest

from ctlearn.cli import main


def test_train_writes_a_run_and_resume_continues_it(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["train", "--out", str(out), "--no-progress"]
    args = [
        "--method",
        "lg-fg-a",
        "--widths",
        "16",
        "16",
        "--noise",
        "rademacher",
        "--epochs",
        "2",
        "--batch-size",
        "100",
        "--optimizer",
        "sgd",
        "--lr",
        "1e-3",
        "--schedule",
        "exp",
    ]
    assert main(common + args + ["--stop-after-epochs", "1"]) == 0
    assert "epoch 1/2: test accuracy" in capsys.readouterr().out
    saved = json.loads((out / "config.json").read_text())["config"]
    assert saved["method"] == "lg-fg-a" and saved["optimizer"] == "sgd"
    assert saved["model_options"] == {"widths": [16, 16]}
    assert saved["method_options"] == {"noise": "rademacher"}
    # --resume alone takes every option from the saved run.
    assert main(common + ["--resume"]) == 0
    assert "epoch 2/2: test accuracy" in capsys.readouterr().out
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--method", "magic"], "unknown method 'magic'; valid methods: bp, l-bp"),
        (["--method", "bp", "--noise", "gaussian"], "method 'bp' has no option(s) noise"),
        (["--dataset", "cifar11"], "unknown dataset 'cifar11'; available datasets: mnist1d"),
        (["--lr", "-1"], "lr must be a finite real number > 0, got -1.0"),
        (["--method-option", "shared=maybe", "--method", "fg-a"], "shared"),
    ],
)
def test_invalid_options_fail_before_any_work(args, message, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--no-progress"] + args) == 1
    err = capsys.readouterr().err
    assert err.startswith("ctlearn: error: ") and message in err
    assert not out.exists()


def test_listing_commands(capsys):
    assert main(["methods"]) == 0
    listing = capsys.readouterr().out
    for name in ("bp", "l-bp", "lg-bp", "fg-w", "fg-a", "lg-fg-w", "lg-fg-a"):
        assert f"\n{name} " in "\n" + listing
    assert main(["datasets"]) == 0
    assert "fashion_mnist" in capsys.readouterr().out
    assert main(["models"]) == 0
    assert "widths" in capsys.readouterr().out
