"""The sims scripts run end to end on tiny configurations."""

import json

import numpy as np
import pytest

from ctlearn.train import read_metrics
from sims.bench_estimators import BenchConfig
from sims.bench_estimators import main as bench_estimators


def test_bench_estimators_reports_a_ratio_to_bp_per_method_and_optimizer(tmp_path):
    config = BenchConfig(
        methods=("bp", "fg-a", "lg-fg-a:noise=rademacher"),
        widths=(16, 16),
        batch_size=4,
        number=1,
        repeats=2,
        out=str(tmp_path),
    )
    result = bench_estimators(config)
    assert [row["method"] for row in result["rows"]] == list(config.methods)
    for row in result["rows"]:
        for optimizer in ("sgd", "adam"):
            assert row[f"{optimizer}_ms"] > 0 and row[f"{optimizer}_ratio"] > 0
    assert result["rows"][0]["sgd_ratio"] == 1.0
    saved = json.loads((tmp_path / "bench_estimators.json").read_text())
    assert saved["rows"] == result["rows"]
    assert "| lg-fg-a:noise=rademacher |" in (tmp_path / "bench_estimators.md").read_text()


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(methods=("fg-a", "bp")), "first method must be 'bp'"),
        (dict(methods=("bp", "fg-q")), "unknown method 'fg-q'"),
        (dict(methods=("bp", "fg-a:mask")), "expected KEY=VALUE"),
        (dict(optimizers=("lamb",)), "unknown optimizer 'lamb'"),
    ],
)
def test_bench_estimators_rejects_bad_configs(options, message):
    with pytest.raises(ValueError, match=message):
        BenchConfig(**options)


def test_reproduce_fdfa_writes_results_beside_the_paper_and_resumes(tmp_path, capsys):
    from sims.reproduce_fdfa import ReproduceConfig
    from sims.reproduce_fdfa import main as reproduce

    config = ReproduceConfig(
        dataset="mnist1d",
        depth=3,
        width=16,
        methods=("bp", "fdfa", "dfa"),
        epochs=2,
        seeds=2,
        batch_size=200,
        out=str(tmp_path),
        progress=False,
    )
    result = reproduce(config)
    assert [r["method"] for r in result["rows"]] == ["bp", "fdfa", "dfa"]
    for row in result["rows"]:
        assert len(row["test_acc_runs"]) == 2 and 0 <= row["test_acc_mean"] <= 100
        assert row["paper_mean"] is None  # the paper has no mnist1d numbers
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["rows"] == result["rows"]
    assert "| fdfa |" in (tmp_path / "results.md").read_text()
    for row, spec in zip(result["rows"], config.methods):
        last = [read_metrics(tmp_path / "runs" / f"{spec}-seed{s}")[-1] for s in range(2)]
        assert row["train_loss_runs"] == [m["train_loss"] for m in last]
        assert row["train_loss_mean"] == pytest.approx(np.mean(row["train_loss_runs"]))
        assert f"| {row['train_loss_mean']:.3g} |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    dfa_config = json.loads((tmp_path / "runs" / "dfa-seed0" / "config.json").read_text())
    assert dfa_config["config"]["model_options"]["init"] == "zeros"
    # A second call finds every run complete and trains nothing.
    stamp = (tmp_path / "runs" / "bp-seed0" / "checkpoint.eqx").stat().st_mtime_ns
    again = reproduce(config)
    assert again["rows"] == result["rows"]
    assert (tmp_path / "runs" / "bp-seed0" / "checkpoint.eqx").stat().st_mtime_ns == stamp


def test_reproduce_fdfa_shares_its_runs_with_another_process_and_the_last_writes_tables(
    tmp_path, capsys
):
    from ctlearn.train import RunLock
    from sims.reproduce_fdfa import ReproduceConfig
    from sims.reproduce_fdfa import main as reproduce

    config = ReproduceConfig(
        dataset="mnist1d",
        depth=2,
        width=8,
        methods=("bp", "dfa"),
        epochs=1,
        seeds=2,
        batch_size=200,
        out=str(tmp_path),
        progress=False,
    )
    held_run = tmp_path / "runs" / "dfa-seed0"
    with RunLock(held_run):  # as another process training that run holds it
        result = reproduce(config)
    assert result == {"held": [str(held_run)]}
    assert "1 run(s) are being trained by other processes" in capsys.readouterr().out
    assert not (tmp_path / "results.json").exists() and not (held_run / "config.json").exists()
    for name in ("bp-seed0", "bp-seed1", "dfa-seed1"):
        assert (tmp_path / "runs" / name / "metrics.jsonl").is_file()
    # The process that ends last (here: the same command once the lock is gone) writes them.
    rows = reproduce(config)["rows"]
    assert [len(r["test_acc_runs"]) for r in rows] == [2, 2]
    assert json.loads((tmp_path / "results.json").read_text())["rows"] == rows


def test_reproduce_fdfa_init_reaches_every_method_but_dfa_and_a_bad_one_fails_first():
    from sims.reproduce_fdfa import ReproduceConfig

    config = ReproduceConfig(methods=("fg-w", "dfa"), init="torch")
    assert config.train_config("fg-w", 0).model_options["init"] == "torch"
    assert config.train_config("dfa", 0).model_options["init"] == "zeros"  # the paper's DFA
    assert "init" not in ReproduceConfig(methods=("fg-w",)).train_config("fg-w", 0).model_options
    with pytest.raises(ValueError, match="unknown init 'bogus'; valid: kaiming_uniform, torch"):
        ReproduceConfig(methods=("fg-w",), init="bogus")


def test_reproduce_fdfa_resizes_for_alexnet_and_refuses_a_bad_size_first():
    from sims.reproduce_fdfa import ReproduceConfig, _markdown

    config = ReproduceConfig(model="alexnet", methods=("bp", "fdfa"), image_size=64, seeds=1)
    assert {config.train_config(m, 0).image_size for m in config.methods} == {64}
    row = dict(method="bp", test_acc_mean=50.0, test_acc_std=0.0, test_acc_runs=[50.0])
    row.update(paper_mean=None, paper_std=None, difference=None)
    assert "images resized to 64×64" in _markdown(config, [row])
    assert "no difference is given after 100 epochs" not in _markdown(config, [row])
    with pytest.raises(ValueError, match="image_size must be an integer >= 1, got 0"):
        ReproduceConfig(model="alexnet", image_size=0)


def test_reproduce_fdfa_rows_subtract_the_paper_only_after_its_schedule():
    from sims.reproduce_fdfa import ReproduceConfig, _markdown, method_row

    runs = [
        [{"test_acc": 0.5, "train_loss": 2.0}, {"test_acc": 0.9, "train_loss": 0.25}],
        [{"test_acc": 0.6, "train_loss": 1.0}, {"test_acc": 0.8, "train_loss": 0.75}],
    ]
    for epochs, difference in ((100, 85.0 - 92.10), (2, None)):
        config = ReproduceConfig(model="fdfa_cnn", methods=("bp",), epochs=epochs, seeds=2)
        row, curves = method_row(config, "bp", runs)
        assert row["test_acc_runs"] == pytest.approx([90.0, 80.0])
        assert (row["test_acc_mean"], row["test_acc_std"]) == pytest.approx((85.0, 5.0))
        assert (row["paper_mean"], row["paper_std"]) == (92.10, 0.16)  # Table 2, Fashion-MNIST
        assert row["difference"] == (None if difference is None else pytest.approx(difference))
        assert row["train_loss_runs"] == [0.25, 0.75] and row["train_loss_mean"] == 0.5
        assert curves == [pytest.approx([50.0, 90.0]), pytest.approx([60.0, 80.0])]
        table = _markdown(config, [row])
        assert ("no difference is given after 2 epochs" in table) == (epochs == 2)
        assert table.splitlines()[-1] == (
            "| bp | 85.00 ± 5.00 | 92.10 ± 0.16 | -7.10 | 0.5 |"
            if epochs == 100
            else "| bp | 85.00 ± 5.00 | 92.10 ± 0.16 | — | 0.5 |"
        )


def test_paper_table_lookup():
    from sims.fdfa_paper import paper_accuracy

    assert paper_accuracy("fdfa_fc", "fashion_mnist", "fdfa", 2) == (89.27, 0.07)
    assert paper_accuracy("fdfa_fc", "cifar10", "lg-fg-a", 4) == (34.56, 0.34)
    assert paper_accuracy("fdfa_cnn", "mnist", "dkp") == (99.08, 0.03)
    assert paper_accuracy("fdfa_cnn_reference", "mnist", "dkp") == (99.08, 0.03)
    assert paper_accuracy("alexnet", "cifar100", "fdfa") == (57.27, 0.11)
    assert paper_accuracy("fdfa_fc", "mnist", "lg-fg-a", 2) is None


# A benchmark's smoke test: slow (the default suite keeps under ~10 minutes).
@pytest.mark.slow
def test_bench_localmixer_reports_time_and_memory_ratios(tmp_path):
    from sims.bench_localmixer import BenchConfig as MixerBench
    from sims.bench_localmixer import main as bench_localmixer

    result = bench_localmixer(
        MixerBench(presets=("S/1/1",), batch_size=4, number=1, repeats=1, out=str(tmp_path))
    )
    (row,) = result["rows"]
    assert row["parameters"] == 271_892
    assert row["lg-fg-a / bp time"] > 0 and row["bp examples/s"] > 0
    # With one patch and one group there is nothing to replicate: naive and fused cost the same.
    assert row["lg-bp fused/naive memory"] == pytest.approx(1.0, abs=0.1)
    assert "| S/1/1 |" in (tmp_path / "bench_localmixer.md").read_text()
    profile = row["profile"]
    stages = {e["stage"]: e for e in profile["stages"]}
    # The tangent and the local updates each do matrix products; the noise is drawn, not free.
    assert stages["tangent (jvp − forward)"]["lg-fg-a"]["gflop"] > 0
    assert stages["local updates (x ⊗ δ̂, through the norms)"]["lg-fg-a"]["gflop"] > 0
    assert stages["backward pass (grad − forward)"]["bp"]["gflop"] > 0
    assert 0.3 < profile["matmul flop ratio (lg-fg-a / bp)"] < 3
    assert profile["time by op kind ms"]["bp"]["matrix products"] > 0
    assert "where a step's time goes" in (tmp_path / "bench_localmixer.md").read_text()


def test_reproduce_localmixer_uses_the_papers_settings_and_writes_results(tmp_path):
    from sims.reproduce_localmixer import ReproduceConfig as MixerConfig
    from sims.reproduce_localmixer import main as reproduce_localmixer

    config = MixerConfig(
        preset="S/1/1",
        dataset="mnist1d",
        methods=("bp", "lg-fg-a:noise=rademacher"),
        epochs=1,
        batch_size=100,
        model_options=(("patches", 2), ("channels", 16), ("groups", 2)),
        out=str(tmp_path),
        progress=False,
    )
    settings = config.settings()
    # Appendix 11, MNIST: SGD, lr 0.01, linear decay, no augmentation; epochs/batch overridden.
    assert (settings["optimizer"], settings["lr"], settings["schedule"]) == ("sgd", 0.01, "linear")
    assert settings["crop_area"] is None and settings["epochs"] == 1
    result = reproduce_localmixer(config)
    assert [r["method"] for r in result["rows"]] == list(config.methods)
    assert all(0 <= r["test_error_mean"] <= 100 for r in result["rows"])
    assert "| lg-fg-a:noise=rademacher |" in (tmp_path / "results.md").read_text()
    run = json.loads((tmp_path / "runs" / "bp-seed0" / "config.json").read_text())["config"]
    assert run["model_options"]["channels"] == 16 and run["momentum"] == 0.9


def test_localmixer_paper_tables():
    from sims.localmixer_paper import paper_error, paper_settings

    assert paper_error("cifar10", "M/8/16", "lg-fg-a") == (30.68, 19.39)
    assert paper_error("cifar10", "L/8/64", "bp", "contrastive") == (17.53, 13.35)
    assert paper_error("mnist1d", "S/1/1", "bp") is None
    contrastive = paper_settings("cifar10", "L/8/64", "contrastive")
    assert (contrastive["batch_size"], contrastive["lr"], contrastive["crop_area"]) == (
        2048,
        4.0,
        0.3,
    )
    with pytest.raises(ValueError, match="no contrastive settings"):
        paper_settings("mnist", "S/1/1", "contrastive")
