"""Reproduce the FDFA paper's results: every method on its networks, several seeds.

    python -m sims.reproduce_fdfa --dataset fashion_mnist --depth 2 \
        --methods bp,fg-w,fg-a,dfa,dkp,fdfa --epochs 100 --seeds 10 --out runs/fdfa

Defaults are the paper's settings (Appendix A): Adam with learning rate 1e-4 for the forward and
the feedback weights, decayed by 0.95 after every epoch (the forward one), batch 64, softmax
cross-entropy, no augmentation, Kaiming-uniform forward weights, zero forward weights for DFA.
``--input-scaling symmetric`` maps images onto [-1, 1] as the paper's code does (default: each
channel standardised). ``--image-size 64`` resizes the images (bilinear), e.g. to train AlexNet
(which needs at least 63×63) on 28×28 Fashion-MNIST. ``--model fdfa_cnn_reference`` trains the
CNN as the paper's public code builds it (batch norm, one pool) against the same Table 2, to
tell the two architectures apart. Every run is a ``ctlearn train`` run
folder under ``OUT/runs``: an interrupted reproduction continues where it stopped. The same
command started in several processes shares the runs out (e.g. one per core, ``taskset -c K
python -m sims.reproduce_fdfa ...``): each trains the runs no other process holds, and the one
that ends last writes ``results.json``, ``results.md`` (mean ± std test accuracy beside the
paper's) and ``learning_curves.png`` to ``OUT``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import jax
import numpy as np

from ctlearn._usererror import prepare_parser, run_main
from ctlearn.data import load_dataset
from ctlearn.estimators import parse_method
from ctlearn.files import atomic_write_text
from ctlearn.nn import Dense
from ctlearn.plotting import plot_learning_curves
from ctlearn.provenance import provenance
from ctlearn.train import TrainConfig

from ._report import complete_method_runs
from .fdfa_paper import PAPER_EPOCHS, paper_accuracy

MODELS = ("fdfa_fc", "fdfa_cnn", "fdfa_cnn_reference", "alexnet")
# Per-method model options of the paper (Appendix A): DFA's forward weights start at zero.
MODEL_OPTIONS = {"dfa": {"init": "zeros"}}


@dataclasses.dataclass(frozen=True)
class ReproduceConfig:
    dataset: str = "fashion_mnist"
    model: str = "fdfa_fc"
    depth: int = 2
    width: int | None = None
    methods: tuple[str, ...] = ("bp", "fg-w", "fg-a", "dfa", "dkp", "fdfa")
    epochs: int = 100
    seeds: int = 10
    batch_size: int = 64
    lr: float = 1e-4
    lr_decay: float = 0.95
    init: str | None = None
    input_scaling: str = "standardise"
    image_size: int | None = None
    data_dir: str | None = None
    out: str = "runs/reproduce_fdfa"
    progress: bool = True

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; valid: {', '.join(MODELS)}")
        if self.seeds < 1:
            raise ValueError(f"seeds must be at least 1, got {self.seeds}")
        if self.model == "fdfa_fc" and self.depth not in (2, 3, 4):
            raise ValueError(f"depth must be 2, 3 or 4 (Table B.6), got {self.depth}")
        if self.init is not None:
            # The layers' own check, with its message, before any training.
            Dense(1, 1, init=self.init, key=jax.random.key(0))
        for spec in self.methods:
            parse_method(spec)
        for spec in self.methods:  # every option is checked before any training starts
            self.train_config(spec, 0)

    def train_config(self, spec: str, seed: int) -> TrainConfig:
        name, options = parse_method(spec)
        model_options = dict(MODEL_OPTIONS.get(name, {}))
        if self.init is not None and "init" not in model_options:
            # The forward init of every method the paper does not fix (DFA keeps zeros).
            model_options["init"] = self.init
        if self.model == "fdfa_fc":
            model_options["depth"] = self.depth
            if self.width is not None:
                model_options["width"] = self.width
        return TrainConfig(
            dataset=self.dataset,
            model=self.model,
            method=name,
            epochs=self.epochs,
            batch_size=self.batch_size,
            optimizer="adam",
            lr=self.lr,
            schedule="exp",
            lr_decay=self.lr_decay,
            seed=seed,
            model_options=model_options,
            method_options=options,
            data_dir=self.data_dir,
            input_scaling=self.input_scaling,
            image_size=self.image_size,
        )


def main(config: ReproduceConfig) -> dict:
    """Trains every (method, seed) run not yet complete, then writes the tables and figure."""
    out = Path(config.out)
    data = load_dataset(
        config.dataset,
        data_dir=config.data_dir,
        scaling=config.input_scaling,
        image_size=config.image_size,
    )
    metrics_of, held = complete_method_runs(config, out, data)
    if held:
        return {"held": held}
    rows, curves = [], {}
    for spec in config.methods:
        row, curves[spec] = method_row(
            config, spec, [metrics_of[spec, s] for s in range(config.seeds)]
        )
        rows.append(row)
    result = {"config": dataclasses.asdict(config), "provenance": provenance(), "rows": rows}
    atomic_write_text(out / "results.json", json.dumps(result, indent=2) + "\n")
    table = _markdown(config, rows)
    atomic_write_text(out / "results.md", table + "\n")
    plot_learning_curves(
        curves,
        out / "learning_curves.png",
        ylabel="test accuracy (%)",
        title=f"{config.model} ({_depth(config)}) on {config.dataset}",
    )
    print(table)
    return result


def method_row(
    config: ReproduceConfig, spec: str, metrics_by_seed: list[list[dict]]
) -> tuple[dict, list[list[float]]]:
    """The table row of method ``spec`` from its runs' per-epoch metrics (one list per seed),
    and its test-accuracy curves in %."""
    accuracies = [100.0 * metrics[-1]["test_acc"] for metrics in metrics_by_seed]
    # The last epoch's mean training minibatch loss: tells a net that underfits, or whose loss
    # grows while its accuracy rises, from one that fits.
    train_losses = [float(metrics[-1]["train_loss"]) for metrics in metrics_by_seed]
    curves = [[100.0 * m["test_acc"] for m in metrics] for metrics in metrics_by_seed]
    name, _ = parse_method(spec)
    paper = paper_accuracy(config.model, config.dataset, name, config.depth)
    mean, std = float(np.mean(accuracies)), float(np.std(accuracies))
    row = {
        "method": spec,
        "test_acc_mean": mean,
        "test_acc_std": std,
        "test_acc_runs": accuracies,
        "paper_mean": None if paper is None else paper[0],
        "paper_std": None if paper is None else paper[1],
        # A shorter or longer schedule than the paper's is shown beside its numbers but not
        # subtracted from them.
        "difference": (None if paper is None or config.epochs != PAPER_EPOCHS else mean - paper[0]),
        "train_loss_mean": float(np.mean(train_losses)),
        "train_loss_runs": train_losses,
    }
    return row, curves


def _depth(config: ReproduceConfig) -> str:
    return {
        "fdfa_fc": f"{config.depth} layers",
        "fdfa_cnn": "15C5-P2-40C5-P2-128-10",
        "fdfa_cnn_reference": "the public code's CNN: batch norm, one pool",
        "alexnet": "BN after each conv, no dropout",
    }[config.model]


_TABLES = {
    "fdfa_fc": "Table B.6",
    "fdfa_cnn": "Table 2",
    "fdfa_cnn_reference": "Table 2",
    "alexnet": "Table 3",
}


def _markdown(config: ReproduceConfig, rows: list[dict]) -> str:
    lines = [
        f"{config.model} ({_depth(config)}) on {config.dataset}: test accuracy (%) after "
        f"{config.epochs} epochs, mean ± std over {config.seeds} seed(s) (training loss: the last "
        f"epoch's mean minibatch cross-entropy, mean over seeds); Adam lr {config.lr:g} "
        f"× {config.lr_decay:g}/epoch, batch {config.batch_size}"
        + ("" if config.init is None else f", forward init {config.init} (DFA: zeros)")
        + (
            ""
            if config.input_scaling == "standardise"
            else f", inputs scaled {config.input_scaling} ([0, 255] onto [-1, 1])"
        )
        + (
            ""
            if config.image_size is None
            else f", images resized to {config.image_size}×{config.image_size}"
        )
        + ". Paper: Bacho & Chu, "
        f"{_TABLES[config.model]} (10 runs, {PAPER_EPOCHS} epochs)"
        + (
            ""
            if config.epochs == PAPER_EPOCHS
            else f"; no difference is given after {config.epochs} epochs"
        )
        + ".",
        "",
        "| method | ctlearn | paper | difference | training loss |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        paper = "—" if r["paper_mean"] is None else f"{r['paper_mean']:.2f} ± {r['paper_std']:.2f}"
        diff = "—" if r["difference"] is None else f"{r['difference']:+.2f}"
        std = "" if len(r["test_acc_runs"]) == 1 else f" ± {r['test_acc_std']:.2f}"
        loss = "—" if r.get("train_loss_mean") is None else f"{r['train_loss_mean']:.3g}"
        lines.append(
            f"| {r['method']} | {r['test_acc_mean']:.2f}{std} | {paper} | {diff} | {loss} |"
        )
    return "\n".join(lines)


def _cli() -> ReproduceConfig:
    defaults = ReproduceConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    prepare_parser(parser)
    parser.add_argument("--dataset", default=defaults.dataset)
    parser.add_argument("--model", default=defaults.model, choices=MODELS)
    parser.add_argument("--depth", type=int, default=defaults.depth, help="FC layers (2, 3, 4)")
    parser.add_argument("--width", type=int, help="hidden width (default: the paper's)")
    parser.add_argument(
        "--methods",
        default=",".join(defaults.methods),
        help="comma-separated methods; options as NAME:KEY=VALUE;KEY=VALUE",
    )
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--seeds", type=int, default=defaults.seeds)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--lr-decay", type=float, default=defaults.lr_decay)
    parser.add_argument(
        "--init",
        help="forward init of every method but DFA (e.g. torch: PyTorch's default, the paper's "
        "code's; default: each model's own)",
    )
    parser.add_argument(
        "--input-scaling",
        default=defaults.input_scaling,
        choices=("standardise", "symmetric"),
        help="images standardised per channel (default) or mapped onto [-1, 1] (the paper's code)",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        help="resize images to this square side (alexnet needs at least 63; default: as stored)",
    )
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default=defaults.out)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    methods = tuple(m.replace(";", ",") for m in args.methods.split(","))
    return ReproduceConfig(
        dataset=args.dataset,
        model=args.model,
        depth=args.depth,
        width=args.width,
        methods=methods,
        epochs=args.epochs,
        seeds=args.seeds,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_decay=args.lr_decay,
        init=args.init,
        input_scaling=args.input_scaling,
        image_size=args.image_size,
        data_dir=args.data_dir,
        out=args.out,
        progress=not args.no_progress,
    )


if __name__ == "__main__":
    run_main(lambda: main(_cli()))
