"""Reproduce Ren et al.'s LocalMixer results (Tables 3 and 4): methods × seeds on one preset.

    python -m sims.reproduce_localmixer --preset M/1/16 --dataset fashion_mnist \
        --method bp,lg-bp,lg-fg-a --epochs 20 --out runs/localmixer

Unset training options take Appendix 11's settings for the dataset (MNIST's for datasets the
paper did not use, such as fashion_mnist and mnist1d): SGD with momentum 0.9, batch 128, lr 0.01
and linear decay for supervised MNIST / CIFAR-10; cosine decay with warm-up and BYOL augmentation
for contrastive training and ImageNet. ``--objective contrastive`` trains every block by InfoNCE
between two augmented views, and the readout by cross-entropy on the (stop-gradient) features.
Every run is a ``ctlearn train`` run folder under ``OUT/runs`` (interrupted runs resume); the
same command started in several processes (e.g. one per core) shares the runs out, and the one
that ends last writes ``results.json``, ``results.md`` (test / train error beside the paper's)
and ``learning_curves.png`` to ``OUT``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from ctlearn._usererror import prepare_parser, run_main
from ctlearn.data import load_dataset
from ctlearn.estimators import parse_method
from ctlearn.files import atomic_write_text
from ctlearn.plotting import plot_learning_curves
from ctlearn.train import TrainConfig
from models import LOCAL_MIXER_PRESETS

from ._report import complete_method_runs
from .localmixer_paper import paper_error, paper_settings


@dataclasses.dataclass(frozen=True)
class ReproduceConfig:
    """``None`` training options take the paper's settings (``paper_settings``)."""

    preset: str = "M/1/16"
    dataset: str = "mnist"
    methods: tuple[str, ...] = ("bp", "lg-bp", "lg-fg-a")
    objective: str = "supervised"
    seeds: int = 1
    epochs: int | None = None
    batch_size: int | None = None
    optimizer: str | None = None
    lr: float | None = None
    schedule: str | None = None
    warmup_epochs: int | None = None
    weight_decay: float = 0.0
    crop_area: float | None = None
    model_options: tuple[tuple[str, object], ...] = ()
    data_dir: str | None = None
    out: str = "runs/reproduce_localmixer"
    progress: bool = True

    def __post_init__(self):
        if self.preset not in LOCAL_MIXER_PRESETS:
            raise ValueError(
                f"unknown preset {self.preset!r}; valid: {', '.join(LOCAL_MIXER_PRESETS)}"
            )
        if self.seeds < 1:
            raise ValueError(f"seeds must be at least 1, got {self.seeds}")
        for spec in self.methods:  # every option is checked before any training starts
            self.train_config(spec, 0)

    def settings(self) -> dict:
        """The paper's settings with this config's overrides."""
        settings = dict(warmup_epochs=0)
        settings.update(paper_settings(self.dataset, self.preset, self.objective))
        for name in (
            "epochs",
            "batch_size",
            "optimizer",
            "lr",
            "schedule",
            "warmup_epochs",
            "crop_area",
        ):
            value = getattr(self, name)
            if value is not None:
                settings[name] = value
        return settings

    def train_config(self, spec: str, seed: int) -> TrainConfig:
        name, options = parse_method(spec)
        s = self.settings()
        contrastive = self.objective == "contrastive"
        return TrainConfig(
            dataset=self.dataset,
            model="local_mixer",
            model_options={"preset": self.preset, "objective": self.objective}
            | dict(self.model_options),
            method=name,
            method_options=options,
            epochs=s["epochs"],
            batch_size=s["batch_size"],
            optimizer=s["optimizer"],
            lr=s["lr"],
            schedule=s["schedule"],
            warmup_epochs=s["warmup_epochs"],
            momentum=0.9,
            weight_decay=self.weight_decay,
            augment="none" if s["crop_area"] is None else "byol",
            crop_area=s["crop_area"] or 0.08,
            views=2 if contrastive else 1,
            seed=seed,
            data_dir=self.data_dir,
        )


def main(config: ReproduceConfig) -> dict:
    """Trains every (method, seed) run not yet complete, then writes the tables and figure."""
    out = Path(config.out)
    data = load_dataset(config.dataset, data_dir=config.data_dir)
    metrics_of, held = complete_method_runs(config, out, data)
    if held:
        return {"held": held}
    rows, curves = [], {}
    for spec in config.methods:
        test_errors, train_errors, runs = [], [], []
        for seed in range(config.seeds):
            metrics = metrics_of[spec, seed]
            test_errors.append(100.0 * (1.0 - metrics[-1]["test_acc"]))
            train_errors.append(100.0 * (1.0 - metrics[-1]["train_acc"]))
            runs.append([100.0 * (1.0 - m["test_acc"]) for m in metrics])
        curves[spec] = runs
        name, _ = parse_method(spec)
        paper = paper_error(config.dataset, config.preset, name, config.objective)
        rows.append(
            {
                "method": spec,
                "test_error_mean": float(np.mean(test_errors)),
                "test_error_std": float(np.std(test_errors)),
                "train_error_mean": float(np.mean(train_errors)),
                "test_error_runs": test_errors,
                "paper_test_error": None if paper is None else paper[0],
                "paper_train_error": None if paper is None else paper[1],
            }
        )
    result = {
        "config": dataclasses.asdict(config),
        "settings": config.settings(),
        "rows": rows,
    }
    atomic_write_text(out / "results.json", json.dumps(result, indent=2, default=str) + "\n")
    table = _markdown(config, rows)
    atomic_write_text(out / "results.md", table + "\n")
    plot_learning_curves(
        curves,
        out / "learning_curves.png",
        ylabel="test error (%)",
        title=f"LocalMixer {config.preset} on {config.dataset} ({config.objective})",
    )
    print(table)
    return result


def _markdown(config: ReproduceConfig, rows: list[dict]) -> str:
    s = config.settings()
    table = "Table 3" if config.objective == "supervised" else "Table 4"
    aug = "no augmentation" if s["crop_area"] is None else f"BYOL crops ≥ {s['crop_area']:g}"
    lines = [
        f"LocalMixer {config.preset} on {config.dataset} ({config.objective}): error (%) after "
        f"{s['epochs']} epochs, {config.seeds} seed(s); {s['optimizer']} lr {s['lr']:g} "
        f"({s['schedule']}), batch {s['batch_size']}, {aug}. Train error is the running error "
        f"during the last epoch. Paper: Ren et al., {table}.",
        "",
        "| method | test error | train error | paper test / train |",
        "|---|---:|---:|---:|",
    ]
    for r in rows:
        paper = (
            "—"
            if r["paper_test_error"] is None
            else f"{r['paper_test_error']:.2f} / {r['paper_train_error']:.2f}"
        )
        std = "" if len(r["test_error_runs"]) == 1 else f" ± {r['test_error_std']:.2f}"
        lines.append(
            f"| {r['method']} | {r['test_error_mean']:.2f}{std} | "
            f"{r['train_error_mean']:.2f} | {paper} |"
        )
    return "\n".join(lines)


def _cli() -> ReproduceConfig:
    defaults = ReproduceConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    prepare_parser(parser)
    parser.add_argument("--preset", default=defaults.preset, choices=list(LOCAL_MIXER_PRESETS))
    parser.add_argument("--dataset", default=defaults.dataset)
    parser.add_argument(
        "--method",
        "--methods",
        dest="methods",
        default=",".join(defaults.methods),
        help="comma-separated methods; options as NAME:KEY=VALUE;KEY=VALUE",
    )
    parser.add_argument(
        "--objective", default=defaults.objective, choices=["supervised", "contrastive"]
    )
    parser.add_argument("--seeds", type=int, default=defaults.seeds)
    parser.add_argument("--epochs", type=int, help="default: the paper's")
    parser.add_argument("--batch-size", type=int, help="default: the paper's")
    parser.add_argument("--optimizer", help="default: the paper's (sgd, or lars)")
    parser.add_argument("--lr", type=float, help="default: the paper's")
    parser.add_argument("--schedule", help="default: the paper's (linear or cosine)")
    parser.add_argument("--warmup-epochs", type=int, help="default: the paper's")
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    parser.add_argument("--crop-area", type=float, help="BYOL crops' area lower bound")
    parser.add_argument(
        "--model-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="LocalMixer option, e.g. patches=4 or norm_grad=false (repeatable)",
    )
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default=defaults.out)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    return ReproduceConfig(
        preset=args.preset,
        dataset=args.dataset,
        methods=tuple(m.replace(";", ",") for m in args.methods.split(",")),
        objective=args.objective,
        seeds=args.seeds,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        schedule=args.schedule,
        warmup_epochs=args.warmup_epochs,
        weight_decay=args.weight_decay,
        crop_area=args.crop_area,
        model_options=tuple(_option(o) for o in args.model_option),
        data_dir=args.data_dir,
        out=args.out,
        progress=not args.no_progress,
    )


def _option(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise SystemExit(f"--model-option needs KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


if __name__ == "__main__":
    run_main(lambda: main(_cli()))
