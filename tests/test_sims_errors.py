"""User errors of the ``python -m sims.*`` entry points and of sweeps: one line on stderr naming
the file, option or grid key, the value and what is valid, status 2; the traceback only with
``--debug`` (ctlearn._usererror; issue 18 items 3 and 5). Most probes run in this process; two
run a command in a subprocess for the one-line and ``--debug`` behaviour end to end."""

import argparse
import contextlib
import io
import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from ctlearn._usererror import prepare_parser, run_main
from ctlearn.cli import main as ctlearn_main
from ctlearn.sweep import AnalogBase, SweepSpec, load_spec, run_study, run_sweep
from ctlearn.sweep._analog import check_grid

ROOT = Path(__file__).resolve().parent.parent

BAD_TOML = 'seeds = 1\n[grid\n"noise.sigma" = [0.1]\n'  # the table header lacks its "]"


def _one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


# --- the helper --------------------------------------------------------------------------------


def test_a_user_error_is_one_line_with_status_2(monkeypatch, capsys):
    def entry():
        raise ValueError("several reasons:\n- one\n- another\n- and a last")

    monkeypatch.setattr(sys, "argv", ["tool.py", "--out", "o"])
    with pytest.raises(SystemExit) as exit:
        run_main(entry)
    assert exit.value.code == 2
    assert (
        _one_line(capsys.readouterr().err)
        == "tool.py: error: several reasons: one; another; and a last"
    )


def test_debug_and_programming_errors_keep_the_traceback(monkeypatch):
    def user_error():
        raise ValueError("bad value")

    def bug():
        return {}["missing"]

    monkeypatch.setattr(sys, "argv", ["tool.py", "--debug"])
    with pytest.raises(ValueError, match="bad value"):
        run_main(user_error)
    monkeypatch.setattr(sys, "argv", ["tool.py"])
    with pytest.raises(KeyError):  # a bug is not a user error: its traceback is shown
        run_main(bug)
    # What follows "--" is not an option.
    monkeypatch.setattr(sys, "argv", ["tool.py", "--", "--debug"])
    with pytest.raises(SystemExit):
        run_main(user_error)


def test_argparse_refusals_are_one_line(capsys):
    parser = argparse.ArgumentParser(prog="tool.py")
    prepare_parser(parser)
    parser.add_argument("--seeds", type=int)
    with pytest.raises(SystemExit) as exit:
        parser.parse_args(["--seeds", "abc"])
    assert exit.value.code == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("tool.py: error: argument --seeds: invalid int value: 'abc'")
    assert parser.parse_args(["--debug"]).debug


def test_ctlearn_train_refuses_a_bad_option_value_on_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        ctlearn_main(["train", "--out", str(tmp_path / "run"), "--epochs", "two"])
    assert exit.value.code == 2
    assert "--epochs: invalid int value: 'two'" in _one_line(capsys.readouterr().err)


# --- every sims entry point: a bad option value, refused before any work ------------------------


@pytest.mark.parametrize(
    ("module", "argv", "names"),
    [
        ("analog_sweep", ["--grid", "{bad_toml}"], ["bad.toml", "line 2"]),
        ("bench_continuous", ["--dt0", "-1"], ["dt0", "-1.0"]),
        ("bench_estimators", ["--optimizers", "magic"], ["'magic'", "sgd, adam"]),
        ("bench_localmixer", ["--presets", "XL"], ["'XL'", "S/1/1"]),
        ("bench_sweep", ["--points-side", "0"], ["--points-side", ">= 1, got 0"]),
        ("continuous_fashion", ["--quick", "--band", "2", "1"], ["band", "(2.0, 1.0)"]),
        ("continuous_vs_discrete", ["--transition", "12"], ["transition", "12.0", "duration=10.0"]),
        ("fdfa_figures", ["--figures", "9"], ["figures", "(4, 5, 6, 7)", "(9,)"]),
        ("fdfa_figures", ["--figures", "4,x"], ["--figures '4,x'", "subset of 4,5,6,7"]),
        ("gallery", ["--only", "nope"], ["--only", "'nope'", "teach_neurons"]),
        ("gpu_check", ["--preset", "XL"], ["'XL'", "S/1/1"]),
        # A value of the wrong type for a method option (a TypeError of the estimators).
        ("reproduce_fdfa", ["--methods", "fg-a:shared=maybe"], ["shared", "'maybe'"]),
        ("reproduce_localmixer", ["--seeds", "0"], ["seeds", "0"]),
        ("teach_neurons", ["--lr", "-1"], ["lr", "-1.0"]),
        ("teach_continuous_discrete", ["--presentations", "0"], ["presentations", "0"]),
        ("teach_variance", ["--samples", "0"], ["samples", "0"]),
        ("multiplexing", ["--seeds", "0"], ["seeds", "0"]),
        ("mgd", ["--seeds", "0"], ["seeds", "0"]),
        ("variance_ren", ["--samples", "0"], ["samples", "0"]),
        ("study_noise", ["--seeds", "0"], ["seeds", ">= 1, got 0"]),
        ("study_phase", ["--preset", "nope"], ["--preset", "'nope'", "'mnist1d'"]),
        ("bench_engine", ["--bogus"], ["unrecognized arguments: --bogus"]),
    ],
)
def test_every_sim_refuses_a_bad_value_on_one_line(module, argv, names, tmp_path, monkeypatch):
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text(BAD_TOML)
    argv = [a.format(bad_toml=bad_toml) for a in argv] + ["--out", str(tmp_path / "out")]
    monkeypatch.setattr(sys, "argv", [module, *argv])
    monkeypatch.delitem(sys.modules, f"sims.{module}", raising=False)  # run as a fresh __main__
    err = _run_as_main(module)
    line = _one_line(err)
    assert line.startswith(f"{module}.py: error: ")
    for name in names:
        assert name in line
    assert not (tmp_path / "out").exists()


def _run_as_main(module: str) -> str:
    """Runs ``python -m sims.<module>`` in this process; returns its stderr (status 2)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit:
        runpy.run_module(f"sims.{module}", run_name="__main__", alter_sys=True)
    assert exit.value.code == 2, err.getvalue()
    return err.getvalue()


# --- sweeps: types before values ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        (
            {"noise.sigma": [None, "0.01"]},
            "grid: 'noise.sigma' has value '0.01' (a str); valid: a number, or None",
        ),
        ({"rule.lr": [10.0, True]}, "grid: 'rule.lr' has value True (a bool); valid: a number"),
    ],
)
def test_a_grid_value_of_the_wrong_type_is_named(grid, message):
    with pytest.raises(ValueError) as error:
        check_grid(SweepSpec(grid=grid, seeds=1))
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("base", "message"),
    [
        ({"dt0": "0.05"}, "base: dt0='0.05' is not valid: it must be a number"),
        ({"duration": [10]}, "base: duration=[10] is not valid: it must be a number"),
        ({"widths": True}, "base: widths=True is not valid: it must be a list of integers"),
        ({"mask": "yes"}, "base: mask='yes' is not valid: it must be true or false"),
        ({"hardware": "noise"}, "base: hardware must map kinds (noise, differentiator"),
        ({"hardware": {"noise": 0.1}}, "base: hardware.noise must map its fields to values"),
        (
            {"hardware": {"noise": {"sigma": "high"}}},
            "base: hardware.noise.sigma='high' is not valid: it must be a number",
        ),
        (
            {"hardware": {"noise": {"sigmaa": 0.1}}},
            "base: hardware.noise has no field(s) 'sigmaa'; valid: sigma, tau",
        ),
    ],
)
def test_a_base_setting_of_the_wrong_type_is_named(base, message):
    with pytest.raises(ValueError) as error:
        AnalogBase.from_dict(base)
    assert message in str(error.value)


# --- sweeps: grid files and run folders --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("bad.toml", BAD_TOML, "is not valid TOML (Expected ']' at the end of a table declaration "
         "(at line 2, column 6)): correct it at that line"),
        ("bad.json", '{"grid": {"a": [1]}, "seeds": 1,}', "is not valid JSON (Expecting property "
         "name enclosed in double quotes: line 1 column 33 (char 32)): correct it at that line"),
        ("empty.json", "", "is not valid JSON (Expecting value: line 1 column 1 (char 0))"),
    ],
)  # fmt: skip
def test_a_malformed_grid_file_is_named_with_its_line(name, text, where, tmp_path):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        load_spec(path)
    assert str(error.value).startswith(f"{path} {where}")


def test_a_missing_grid_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.toml does not exist: give a .json or .toml"):
        load_spec(tmp_path / "nope.toml")


def _toy_spec() -> SweepSpec:
    return SweepSpec(grid={"x": [1, 2]}, seeds=2, ensemble=2, name="toy")


def _toy_evaluate(spec, members):
    return [{"y": m.params["x"] + m.seed} for m in members]


def _finished_sweep(path: Path) -> None:
    run_sweep(_toy_spec(), path, _toy_evaluate, progress=False)


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ('{"name": "toy", "grid": {"x": [1, 2]', "is not valid JSON (Expecting"),
        ("", "is not valid JSON (Expecting value: line 1 column 1 (char 0))"),
        ("[]", "holds no 'grid' object"),
    ],
)
def test_a_damaged_spec_json_is_named_with_what_to_do(text, what, tmp_path):
    _finished_sweep(tmp_path)
    (tmp_path / "spec.json").write_text(text)
    with pytest.raises(ValueError) as error:
        run_sweep(_toy_spec(), tmp_path, _toy_evaluate, progress=False)
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'spec.json'} {what}")
    assert message.endswith(f"restore it, or delete {tmp_path} to run the sweep from the start")


def test_a_damaged_or_deleted_results_json_is_refused(tmp_path):
    _finished_sweep(tmp_path)
    results = tmp_path / "results.json"
    text = results.read_text()
    results.write_text(text[: len(text) // 2])  # cut by a full disk, say
    with pytest.raises(ValueError, match=r"results.json is not valid JSON \(.*line \d+ column"):
        run_sweep(_toy_spec(), tmp_path, _toy_evaluate, progress=False)
    results.write_text('[{"point": 0}]\n')
    with pytest.raises(ValueError, match="row 0 is not an object with int 'point' and 'seed'"):
        run_sweep(_toy_spec(), tmp_path, _toy_evaluate, progress=False)
    # Rows of another sweep: a grid value other than the point's, a member the sweep lacks.
    for row in ({"point": 1, "seed": 0, "x": 3, "y": 3}, {"point": 9, "seed": 0, "x": 1}):
        results.write_text(json.dumps([row]))
        with pytest.raises(ValueError, match=r"row 0 \(point \d, seed 0\) is not a member"):
            run_sweep(_toy_spec(), tmp_path, _toy_evaluate, progress=False)
    results.unlink()  # results.csv is still there: the finished chunks are not recomputed silently
    with pytest.raises(FileNotFoundError, match="results.json is missing but results.csv is there"):
        run_sweep(_toy_spec(), tmp_path, _toy_evaluate, progress=False)


def test_a_damaged_study_summary_is_refused_before_any_work(tmp_path, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("the study started its work")

    monkeypatch.setattr("ctlearn.sweep._study.AnalogSweep", no_work)
    (tmp_path / "summary.json").write_text('{"runs": [')
    with pytest.raises(ValueError) as error:
        run_study(_toy_spec(), tmp_path, model=None, x="x")
    assert str(error.value).startswith(f"{tmp_path / 'summary.json'} is not valid JSON (")
    assert "restore it, or delete it" in str(error.value)


def test_a_damaged_gallery_index_is_refused_before_any_sim_runs(tmp_path, monkeypatch):
    from sims import gallery

    def no_work(*args, **kwargs):
        raise AssertionError("a sim ran")

    monkeypatch.setattr(gallery, "run_sim", no_work)
    index = tmp_path / "docs" / "gallery" / "index.json"
    index.parent.mkdir(parents=True)
    index.write_text('{"entries": [{"name": "teach_neurons"}]}')
    argv = [
        "--only",
        "teach_neurons",
        "--out",
        str(tmp_path / "out"),
        "--docs",
        str(index.parents[1]),
    ]
    with pytest.raises(ValueError, match=r"index.json: entry 0 is not a gallery entry"):
        gallery.main(argv)
    index.write_text("{")
    with pytest.raises(ValueError, match=r"index.json is not valid JSON \(.*line 1 column 2"):
        gallery.main(argv)


def test_a_damaged_mode_file_of_continuous_fashion_is_refused_before_any_work(
    tmp_path, monkeypatch
):
    from sims import continuous_fashion

    def no_work(*args, **kwargs):
        raise AssertionError("the data was loaded")

    monkeypatch.setattr(continuous_fashion, "_data", no_work)
    config = continuous_fashion._cli(["--quick", "--out", str(tmp_path)])
    saved = tmp_path / "modes" / f"{next(iter(continuous_fashion.MODES))}.json"
    saved.parent.mkdir()
    saved.write_text('{"settings": {"epochs": 1}, "curve": ')
    with pytest.raises(ValueError) as error:
        continuous_fashion.main(config)
    assert str(error.value).startswith(f"{saved} is not valid JSON (Expecting value: line 1")
    assert "restore it, or delete it to run mode" in str(error.value)


# --- end to end: one line, and the traceback with --debug ----------------------------------------


def test_the_command_prints_one_line_and_the_traceback_only_with_debug(tmp_path):
    grid = tmp_path / "bad.toml"
    grid.write_text(BAD_TOML)
    command = [sys.executable, "-m", "sims.analog_sweep", "--grid", str(grid), "--out"]
    plain = subprocess.run(
        [*command, str(tmp_path / "a")], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert plain.returncode == 2, plain.stderr
    line = _one_line(plain.stderr)
    assert line.startswith(f"analog_sweep.py: error: {grid} is not valid TOML (")
    assert "line 2, column 6" in line
    debug = subprocess.run(
        [*command, str(tmp_path / "b"), "--debug"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert debug.returncode == 1
    assert debug.stderr.startswith("Traceback (most recent call last):")
    assert f"ValueError: {grid} is not valid TOML" in debug.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
