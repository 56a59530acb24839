"""What a figure-making sim prints when it finishes, the runs of the table reproductions, and
the command line of the sims that run one configuration with a number of seeds."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ctlearn._usererror import prepare_parser
from ctlearn.files import read_json_object
from ctlearn.provenance import provenance
from ctlearn.train import complete_runs, run_name


def complete_method_runs(config: Any, out: Path, dataset: Any) -> tuple[dict, list[str]]:
    """Every (method, seed) run of a reproduction ``config`` (with ``methods``, ``seeds``,
    ``progress`` and ``train_config(spec, seed)``), each in ``out/runs/<method>-seed<seed>``,
    completed by ``ctlearn.train.complete_runs``: the finished runs' metrics by (spec, seed),
    and the folders that other processes still train (printed), so that a reproduction shared
    between processes writes its tables only in the one that ends last."""
    keys = [(spec, seed) for spec in config.methods for seed in range(config.seeds)]
    folders = [out / "runs" / f"{run_name(spec)}-seed{seed}" for spec, seed in keys]
    finished = complete_runs(
        [(config.train_config(*key), folder) for key, folder in zip(keys, folders)],
        dataset=dataset,
        progress=config.progress,
    )
    held = [str(folder) for folder, metrics in zip(folders, finished) if metrics is None]
    if held:
        print(
            f"{len(held)} run(s) are being trained by other processes, so no table was "
            "written: " + ", ".join(held) + ". The process that finishes last writes the "
            "tables; or run this command again once they are done (finished runs are read, "
            "not retrained)."
        )
    return {key: m for key, m in zip(keys, finished) if m is not None}, held


def print_report(result: dict[str, Any]) -> None:
    """The sim's summary page, the figures it wrote and its plain-language explanation."""
    print(result["summary"].read_text())
    print("figures:", ", ".join(str(f) for f in result["figures"]))
    print()
    print(result["explanation"])


def seeded_main(
    argv,
    doc: str,
    module: str,
    *,
    full: Any,
    quick: Any,
    run: Callable[..., dict[str, Any]],
    seeds_help: str,
) -> dict[str, Any]:
    """The command line of a sim with a full and a ``--quick`` configuration (dataclasses with a
    ``seeds`` field): ``--quick``, ``--out`` (default ``runs/<name>``), ``--seeds N``,
    ``--no-progress``; runs ``run(config, out, origin=..., progress=...)`` with the provenance
    of this command (``module``: the sim's module name), prints its report and returns it."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    prepare_parser(parser)
    parser.add_argument("--quick", action="store_true", help="a small version (CI, a first look)")
    parser.add_argument("--out", default=f"runs/{module.rsplit('.', 1)[-1]}")
    parser.add_argument("--seeds", type=int, default=None, help=seeds_help)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    config = quick if args.quick else full
    if args.seeds is not None:
        config = dataclasses.replace(config, seeds=args.seeds)
    result = run(
        config,
        args.out,
        origin=provenance(argv, module=module),
        progress=not args.no_progress,
    )
    print_report(result)
    return result


def saved_run(path: Path, config: Any) -> dict | None:
    """The run saved in the JSON file ``path`` (finished or not), ``None`` where there is none;
    one of another configuration than the dataclass ``config`` is refused, naming the fields
    that differ."""
    if not path.exists():
        return None
    hint = "delete it or choose another --out"
    saved = read_json_object(path, "config", dict, ValueError, hint)
    wanted = json.loads(json.dumps(dataclasses.asdict(config)))
    if saved["config"] != wanted:
        changed = sorted(k for k in wanted if saved["config"].get(k) != wanted[k])
        raise ValueError(
            f"{path} holds a run of another configuration (differing: {', '.join(changed)}): {hint}"
        )
    return saved
