"""The sweep engine: specs, resumable runs, tables and their figures."""

import json
import math

import numpy as np
import pytest

from ctlearn.plotting_sweep import plot_phase_diagram, plot_sweep
from ctlearn.sweep import (
    AnalogBase,
    Member,
    SweepSpec,
    aggregate,
    load_spec,
    load_table,
    markdown_table,
    run_sweep,
)

# --- specs -------------------------------------------------------------------------------------


def test_json_spec_points_members_and_chunks(tmp_path):
    path = tmp_path / "noise_scan.json"
    path.write_text(
        json.dumps(
            {
                "base": {"epochs": 2, "model": {"widths": [8]}},
                "grid": {"noise.sigma": [None, 0.1], "rule": ["fg", "dfa", "bp"]},
                "seeds": [7, 3],
                "ensemble": 5,
            }
        )
    )
    spec = load_spec(path)
    assert spec.name == "noise_scan"
    assert spec.base == {"epochs": 2, "model": {"widths": [8]}}
    assert list(spec.grid) == ["noise.sigma", "rule"]
    # Last key fastest.
    assert spec.points() == [
        {"noise.sigma": None, "rule": "fg"},
        {"noise.sigma": None, "rule": "dfa"},
        {"noise.sigma": None, "rule": "bp"},
        {"noise.sigma": 0.1, "rule": "fg"},
        {"noise.sigma": 0.1, "rule": "dfa"},
        {"noise.sigma": 0.1, "rule": "bp"},
    ]
    members = spec.members()
    assert len(members) == 12
    # Point-major, seed-minor, seeds in the spec's order.
    assert [(m.point, m.seed) for m in members[:4]] == [(0, 7), (0, 3), (1, 7), (1, 3)]
    assert [m.index for m in members] == list(range(12))
    assert members[7] == Member(index=7, point=3, seed=3, params={"noise.sigma": 0.1, "rule": "fg"})
    chunks = spec.chunks()
    assert [len(c) for c in chunks] == [5, 5, 2]
    assert [m for c in chunks for m in c] == members
    # The canonical form round-trips through the constructor.
    assert SweepSpec.from_dict(spec.to_json()).to_json() == spec.to_json()


def test_toml_spec_int_seeds_and_none(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text(
        'name = "mismatch"\n'
        "seeds = 3\n"
        "[base]\n"
        'dataset = "mnist1d"\n'
        "[grid]\n"
        '"mismatch.sigma" = ["none", 0.01, 0.1]\n'
        'label = ["none-ish", "a"]\n'
    )
    spec = load_spec(path)
    assert spec.name == "mismatch"
    assert spec.seeds == [0, 1, 2]
    assert spec.ensemble == 16
    assert spec.grid == {"mismatch.sigma": [None, 0.01, 0.1], "label": ["none-ish", "a"]}
    assert len(spec.chunks()) == 2 and len(spec.chunks()[-1]) == 18 - 16
    # Only TOML reads "none" as None; in JSON it stays a string.
    json_path = tmp_path / "s.json"
    json_path.write_text('{"grid": {"a": ["none", null]}, "seeds": 1}')
    assert load_spec(json_path).grid == {"a": ["none", None]}


def test_empty_grid_is_one_point():
    spec = SweepSpec(grid={}, seeds=2)
    assert spec.points() == [{}]
    assert [(m.point, m.seed) for m in spec.members()] == [(0, 0), (0, 1)]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"grid": {"lr": []}, "seeds": 1}, "'lr' is empty"),
        ({"grid": {"lr": [0.1, 0.2, 0.1]}, "seeds": 1}, "duplicate value 0.1"),
        ({"grid": {"lr": [1, 1.0]}, "seeds": 1}, "duplicate value 1.0"),
        ({"grid": {"lr": 0.1}, "seeds": 1}, "'lr' must be a list.*float 0.1"),
        ({"grid": {"lr": [[1]]}, "seeds": 1}, r"value \[1\] of type list"),
        ({"grid": {"seed": [1]}, "seeds": 1}, "'seed' clashes"),
        ({"grid": {"lr": [0.1]}, "seeds": []}, "seeds is empty"),
        ({"grid": {"lr": [0.1]}, "seeds": 0}, "must be >= 1, got 0"),
        ({"grid": {"lr": [0.1]}, "seeds": [0, -2]}, "non-negative ints, got -2"),
        ({"grid": {"lr": [0.1]}, "seeds": [4, 1, 4]}, "duplicate value.* 4"),
        ({"grid": {"lr": [0.1]}, "seeds": 1, "ensemble": 0}, "ensemble must be an int >= 1, got 0"),
        (
            {"grid": {"lr": [0.1]}, "seeds": 1, "grids": {}, "seed": 2},
            "unknown sweep spec key.*'grids', 'seed'.*valid keys are name, base, grid",
        ),
        ({"seeds": 1}, "lacks required key.*'grid'"),
    ],
)
def test_invalid_specs_are_refused(tmp_path, data, match):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=match):
        load_spec(path)


def test_non_finite_grid_value_and_bad_suffix(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("seeds = 1\n[grid]\nx = [1.0, inf]\n")
    with pytest.raises(ValueError, match="non-finite value inf"):
        load_spec(path)
    with pytest.raises(ValueError, match="'.yaml'"):
        load_spec(tmp_path / "spec.yaml")


# --- running -----------------------------------------------------------------------------------


def _spec(**changes) -> SweepSpec:
    settings = {
        "name": "toy",
        "base": {"steps": 3},
        "grid": {"noise.sigma": [None, 0.5, 2.0], "rule": ["fg", "dfa"]},
        "seeds": 3,
        "ensemble": 4,
    }
    return SweepSpec(**{**settings, **changes})


class Evaluate:
    """A deterministic stand-in for a vmapped ensemble that records what it was asked for."""

    def __init__(self, fail_on_call: int | None = None):
        self.calls: list[list[int]] = []
        self.fail_on_call = fail_on_call

    def __call__(self, spec: SweepSpec, members: list[Member]) -> list[dict]:
        self.calls.append([m.index for m in members])
        if len(self.calls) == self.fail_on_call:
            raise RuntimeError("simulated crash")
        out = []
        for m in members:
            sigma = m.params["noise.sigma"] or 0.0
            bonus = 0.1 if m.params["rule"] == "fg" else 0.0
            accuracy = 1.0 / (1.0 + sigma) - 0.01 * m.seed + bonus
            out.append(
                {
                    "accuracy": np.float32(accuracy),  # a NumPy scalar, as a JAX run gives
                    "loss": float("nan") if sigma > 1 else sigma + m.seed,
                    "steps": spec.base["steps"],
                }
            )
        return out

    @property
    def members(self) -> int:
        return sum(len(call) for call in self.calls)


def _files(path) -> tuple[bytes, bytes, bytes]:
    names = ("spec.json", "results.json", "results.csv")
    return tuple((path / name).read_bytes() for name in names)


def test_interrupted_sweep_resumes_to_the_same_files(tmp_path):
    spec = _spec()
    whole = Evaluate()
    rows = run_sweep(spec, tmp_path / "whole", whole, progress=False)
    assert whole.calls == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15], [16, 17]]
    assert len(rows) == 18 and rows == load_table(tmp_path / "whole")

    first = Evaluate()
    partial = run_sweep(spec, tmp_path / "sliced", first, progress=False, max_chunks=1)
    assert first.members == 4 and partial == rows[:4]
    rest = Evaluate()
    resumed = run_sweep(spec, tmp_path / "sliced", rest, progress=False)
    assert rest.calls == whole.calls[1:]
    assert resumed == rows
    assert _files(tmp_path / "sliced") == _files(tmp_path / "whole")

    # A finished sweep evaluates nothing, but repairs a CSV left behind by a kill between the
    # two writes of its last chunk.
    csv = tmp_path / "whole" / "results.csv"
    complete = csv.read_bytes()
    csv.write_bytes(complete[: complete.rindex(b"\n5,")])
    again = Evaluate()
    assert run_sweep(spec, tmp_path / "whole", again, progress=False) == rows
    assert again.calls == [] and csv.read_bytes() == complete


def test_rows_columns_and_non_finite_values(tmp_path):
    rows = run_sweep(_spec(), tmp_path, Evaluate(), progress=False)
    assert list(rows[0]) == ["point", "seed", "noise.sigma", "rule", "accuracy", "loss", "steps"]
    assert rows[0]["noise.sigma"] is None and isinstance(rows[0]["accuracy"], float)
    # sigma = 2 gives a nan loss: None in the table, null in JSON, nan in CSV.
    big = [r for r in rows if r["noise.sigma"] == 2.0]
    assert len(big) == 6 and all(r["loss"] is None for r in big)
    assert '"loss": null' in (tmp_path / "results.json").read_text()
    csv_lines = (tmp_path / "results.csv").read_text().splitlines()
    assert csv_lines[0] == "point,seed,noise.sigma,rule,accuracy,loss,steps"
    assert csv_lines[1] == "0,0,None,fg,1.100000023841858,0.0,3"
    assert csv_lines[-1].startswith("5,2,2.0,dfa,") and ",nan,3" in csv_lines[-1]
    assert [(r["point"], r["seed"]) for r in rows] == sorted((r["point"], r["seed"]) for r in rows)


def test_changed_spec_is_refused(tmp_path):
    run_sweep(_spec(), tmp_path, Evaluate(), progress=False, max_chunks=1)
    changed = _spec(grid={"noise.sigma": [None, 0.5], "rule": ["fg", "dfa"], "lr": [0.1]})
    with pytest.raises(ValueError, match="grid axes added: 'lr'.*'noise.sigma'.*new directory"):
        run_sweep(changed, tmp_path, Evaluate(), progress=False)
    with pytest.raises(ValueError, match="differs in: seeds; ensemble"):
        run_sweep(_spec(seeds=4, ensemble=2), tmp_path, Evaluate(), progress=False)
    # The name is only a label: renaming keeps the results.
    renamed = Evaluate()
    run_sweep(_spec(name="other"), tmp_path, renamed, progress=False)
    assert renamed.members == 18 - 4
    assert json.loads((tmp_path / "spec.json").read_text())["name"] == "other"


def test_crash_keeps_finished_chunks_and_a_partial_chunk_is_recomputed(tmp_path):
    spec = _spec()
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_sweep(spec, tmp_path, Evaluate(fail_on_call=2), progress=False)
    rows = load_table(tmp_path)
    assert [(r["point"], r["seed"]) for r in rows] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    assert not list(tmp_path.glob(".*.tmp"))

    # Drop one row of chunk 0 by hand: the whole chunk is evaluated again.
    results = tmp_path / "results.json"
    results.write_text(json.dumps([r for r in rows if (r["point"], r["seed"]) != (0, 1)]))
    rest = Evaluate()
    finished = run_sweep(spec, tmp_path, rest, progress=False)
    assert rest.calls[0] == [0, 1, 2, 3] and rest.members == 18
    assert finished == run_sweep(spec, tmp_path / "fresh", Evaluate(), progress=False)


def test_evaluate_must_return_one_dict_of_scalars_per_member(tmp_path):
    spec = _spec()
    with pytest.raises(ValueError, match="returned 3 metric dicts for 4 members"):
        run_sweep(spec, tmp_path / "a", lambda s, ms: [{"x": 1.0}] * 3, progress=False)
    with pytest.raises(ValueError, match="'rule'.*not allowed"):
        run_sweep(spec, tmp_path / "b", lambda s, ms: [{"rule": 1.0}] * len(ms), progress=False)
    with pytest.raises(ValueError, match=r"'x' of member 0 is ndarray of shape \(2,\)"):
        run_sweep(spec, tmp_path / "c", lambda s, ms: [{"x": np.zeros(2)}] * 4, progress=False)
    with pytest.raises(ValueError, match="max_chunks must be None or an int >= 0, got -1"):
        run_sweep(spec, tmp_path / "d", Evaluate(), progress=False, max_chunks=-1)


# --- tables ------------------------------------------------------------------------------------

TABLE = [
    {"point": 0, "seed": 0, "sigma": None, "acc": 0.9, "loss": 1.0},
    {"point": 0, "seed": 1, "sigma": None, "acc": 0.7, "loss": None},
    {"point": 1, "seed": 0, "sigma": 0.1, "acc": 0.5, "loss": 2.0},
    {"point": 1, "seed": 1, "sigma": 0.1, "acc": 0.3, "loss": 4.0},
    {"point": 1, "seed": 2, "sigma": 0.1, "acc": 0.4, "loss": 6.0},
]


def test_aggregate_means_stds_and_counts():
    summary = aggregate(TABLE, ["sigma"], ["acc", "loss"])
    assert [s["sigma"] for s in summary] == [None, 0.1]
    ideal, noisy = summary
    assert ideal["acc_mean"] == pytest.approx(0.8) and ideal["acc_std"] == pytest.approx(0.1)
    assert ideal["acc_n"] == 2
    assert ideal["loss_mean"] == 1.0 and ideal["loss_std"] == 0.0 and ideal["loss_n"] == 1
    assert noisy["acc_mean"] == pytest.approx(0.4)
    assert noisy["acc_std"] == pytest.approx(math.sqrt(0.02 / 3))  # ddof = 0
    assert noisy["loss_mean"] == 4.0 and noisy["loss_std"] == pytest.approx(math.sqrt(8 / 3))
    with pytest.raises(ValueError, match="'lr', 'accuracy' not in the rows.*'sigma'"):
        aggregate(TABLE, ["lr"], ["accuracy"])


def test_markdown_table():
    summary = aggregate(TABLE, ["sigma"], ["acc"])
    text = markdown_table(summary, ["sigma", "acc_mean", "acc_std", "acc_n"], floatfmt=".3f")
    assert text == (
        "| sigma | acc_mean | acc_std | acc_n |\n"
        "|---:|---:|---:|---:|\n"
        "| None | 0.800 | 0.100 | 2 |\n"
        "| 0.100 | 0.400 | 0.082 | 3 |\n"
    )
    assert "| a\\|b |" in markdown_table([{"c": "a|b"}], ["c"])
    with pytest.raises(ValueError, match="'nope' not in the rows"):
        markdown_table(TABLE, ["sigma", "nope"])


# --- analog sweeps' base -----------------------------------------------------------------------


def test_analog_base_solvers_and_a_bad_solver_named():
    import diffrax

    assert AnalogBase(solver="default").simulator({}).solver is None  # the automatic engine
    assert isinstance(AnalogBase(solver="heun").simulator({}).solver, diffrax.Heun)
    assert isinstance(AnalogBase(solver="euler").simulator({}).solver, diffrax.Euler)
    with pytest.raises(ValueError, match="unknown solver 'rk4'; valid: default, euler, heun"):
        AnalogBase(solver="rk4")
    # η given as an int (as JSON and TOML grids write 10) is the float every member shares.
    for rule in (
        AnalogBase(lr=30).simulator({}).rule,
        AnalogBase().simulator({"rule.lr": 10}).rule,
    ):
        assert type(rule.lr) is float


# --- figures -----------------------------------------------------------------------------------


def test_plots_write_pngs_and_name_missing_columns(tmp_path):
    rows = run_sweep(_spec(), tmp_path / "sweep", Evaluate(), progress=False)
    path = plot_sweep(
        rows,
        "noise.sigma",
        ["accuracy", "loss"],
        tmp_path / "sweep.png",
        logx=True,
        series="rule",
        labels={"accuracy": "test accuracy"},
        title="toy",
    )
    assert path.exists() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    phase = plot_phase_diagram(
        rows, "noise.sigma", "rule", "accuracy", tmp_path / "phase.png", threshold=0.8, logx=True
    )
    assert phase.exists() and phase.stat().st_size > 1000
    with pytest.raises(ValueError, match="'lr' not in the rows"):
        plot_sweep(rows, "lr", ["accuracy"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="'acc' not in the rows"):
        plot_phase_diagram(rows, "noise.sigma", "rule", "acc", tmp_path / "y.png")
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.png").exists()
