"""The ``ctlearn`` command line: ``ctlearn train``, ``ctlearn datasets``, ``ctlearn methods``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._usererror import prepare_parser, report_user_error


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(
            "\nctlearn: interrupted; the last completed epoch is saved (use --resume)",
            file=sys.stderr,
        )
        return 130
    except Exception as e:
        # One line for a user error, the traceback for anything else (and with --debug).
        if not report_user_error("ctlearn", e, debug=getattr(args, "debug", False)):
            raise
        return 1


def _train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, initialize_distributed, read_config, train

    if args.distributed:  # before anything else asks JAX for its devices
        initialize_distributed()
    if not args.out.strip():
        raise ValueError(f"--out {args.out!r} is empty: name the run's folder")
    given = _given_config(args)
    if args.resume and (Path(args.out) / "config.json").is_file():
        base = dataclasses.asdict(read_config(args.out))
    else:
        base = {}
    for name in ("model_options", "method_options"):
        given[name] = {**base.get(name, {}), **given.get(name, {})}
    config = TrainConfig(**{**base, **given})
    result = train(
        config,
        args.out,
        resume=args.resume,
        progress=not args.no_progress,
        stop_after_epochs=args.stop_after_epochs,
    )
    if result.metrics:
        last = result.metrics[-1]
        print(
            f"epoch {last['epoch']}/{config.epochs}: test accuracy {last['test_acc']:.4f}, "
            f"test loss {last['test_loss']:.4f}, train accuracy {last['train_acc']:.4f}; "
            f"run saved in {args.out}"
        )
    return 0


def _given_config(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields set on the command line (unset flags are None and left out)."""
    fields = (
        "dataset",
        "model",
        "method",
        "epochs",
        "batch_size",
        "optimizer",
        "lr",
        "schedule",
        "lr_decay",
        "warmup_epochs",
        "momentum",
        "weight_decay",
        "loss",
        "seed",
        "data_dir",
        "data_source",
        "input_scaling",
        "image_size",
        "eval_batch_size",
        "devices",
        "augment",
        "crop_area",
        "views",
    )
    given = {f: getattr(args, f) for f in fields if getattr(args, f) is not None}
    model_options = dict(args.model_option or [])
    if args.widths is not None:
        model_options["widths"] = args.widths
    if args.activation is not None:
        model_options["activation"] = args.activation
    method_options = dict(args.method_option or [])
    for flag, option in (
        ("noise", "noise"),
        ("num_samples", "num_samples"),
        ("shared_noise", "shared"),
        ("relu_mask", "mask"),
    ):
        if getattr(args, flag) is not None:
            method_options[option] = getattr(args, flag)
    if model_options:
        given["model_options"] = model_options
    if method_options:
        given["method_options"] = method_options
    return given


def _datasets(args: argparse.Namespace) -> int:
    from .data import available_datasets

    for name, description in available_datasets().items():
        print(f"{name:14s} {description}")
    print("(any other TFDS image-classification dataset can be named too)")
    return 0


def _methods(args: argparse.Namespace) -> int:
    from .estimators import ESTIMATORS, estimator_options

    for name, cls in ESTIMATORS.items():
        summary = _summary(cls.__doc__)
        print(f"{name:10s} {summary}")
        print(f"{'':10s} options: {', '.join(estimator_options(name))}")
    return 0


def _models(args: argparse.Namespace) -> int:
    import inspect

    from .nn import architectures

    for name, builder in architectures().items():
        summary = _summary(builder.__doc__)
        options = [
            p
            for p in inspect.signature(builder).parameters
            if p not in ("input_shape", "num_classes", "key")
        ]
        print(f"{name:10s} {summary}\n{'':10s} options: {', '.join(options)}")
    return 0


def _summary(doc: str | None) -> str:
    """The first paragraph of a docstring, on one line."""
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def _key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as JSON when it parses (numbers, lists, true/false)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ctlearn",
        description="Learning without backpropagation, in continuous and discrete time.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="train a network with a learning rule (discrete time, jvp mode)",
        description="Train a network with a learning rule. The output folder receives "
        "config.json, metrics.jsonl and checkpoint.eqx. Unset options take TrainConfig's "
        "defaults (or, with --resume, the saved run's values).",
    )
    train.set_defaults(run=_train)
    train.add_argument("--out", required=True, help="output folder of the run")
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the run saved in --out from its last checkpoint",
    )
    train.add_argument("--dataset", help="dataset name (see `ctlearn datasets`; default mnist1d)")
    train.add_argument("--data-dir", help="folder of IDX files or a TFDS data directory")
    train.add_argument("--data-source", choices=("auto", "local", "tfds"))
    train.add_argument(
        "--input-scaling",
        choices=("standardise", "symmetric"),
        help="images standardised per channel (default) or mapped onto [-1, 1]",
    )
    train.add_argument(
        "--image-size",
        type=int,
        help="resize the images to this square side (bilinear; e.g. 64 for alexnet on 28x28 data)",
    )
    train.add_argument("--model", help="architecture (see `ctlearn models`; default mlp)")
    train.add_argument("--widths", type=int, nargs="+", help="hidden widths of the MLP")
    train.add_argument("--activation", help="hidden activation of the MLP (relu, tanh, softplus)")
    train.add_argument(
        "--model-option",
        type=_key_value,
        action="append",
        metavar="KEY=VALUE",
        help="any other model option (repeatable)",
    )
    train.add_argument("--method", help="learning rule (see `ctlearn methods`; default bp)")
    train.add_argument("--noise", help="perturbation distribution: gaussian or rademacher")
    train.add_argument(
        "--shared-noise",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="one perturbation for the whole batch (default: one per example)",
    )
    train.add_argument(
        "--relu-mask",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="mask FG-A estimates where the ReLU is inactive (default on)",
    )
    train.add_argument("--num-samples", type=int, help="perturbations averaged per step")
    train.add_argument(
        "--method-option",
        type=_key_value,
        action="append",
        metavar="KEY=VALUE",
        help="any other option of the learning rule (repeatable)",
    )
    train.add_argument("--loss", help="cross_entropy (default) or mse")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--eval-batch-size", type=int)
    train.add_argument("--optimizer", help="sgd or adam (default)")
    train.add_argument("--lr", type=float, help="learning rate (default 1e-3)")
    train.add_argument("--schedule", help="constant (default), linear, cosine or exp")
    train.add_argument("--lr-decay", type=float, help="per-epoch factor of the exp schedule")
    train.add_argument("--warmup-epochs", type=int)
    train.add_argument("--momentum", type=float, help="SGD momentum (default 0.9)")
    train.add_argument("--weight-decay", type=float)
    train.add_argument("--seed", type=int)
    train.add_argument(
        "--augment", help="training-batch augmentation: none (default), crop_flip or byol"
    )
    train.add_argument("--crop-area", type=float, help="random crops' area lower bound (0.08)")
    train.add_argument(
        "--views",
        type=int,
        help="2: train on two augmented views per example (contrastive models); default 1",
    )
    train.add_argument(
        "--devices",
        type=int,
        help="devices that share each batch (default: all that JAX sees; 1: no sharding)",
    )
    train.add_argument(
        "--distributed",
        action="store_true",
        help="join a multi-host run: start the same command on every host (SLURM, Open MPI "
        "and Kubernetes jobs are detected; elsewhere set JAX_COORDINATOR_ADDRESS=host:port, "
        "JAX_NUM_PROCESSES and JAX_PROCESS_ID)",
    )
    train.add_argument(
        "--stop-after-epochs",
        type=int,
        help="stop this call after N epochs (resume later with --resume)",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    prepare_parser(train)

    commands.add_parser("datasets", help="list the datasets").set_defaults(run=_datasets)
    commands.add_parser("methods", help="list the learning rules").set_defaults(run=_methods)
    commands.add_parser("models", help="list the architectures").set_defaults(run=_models)
    return parser
