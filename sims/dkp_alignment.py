"""Why DKP's hidden layers align poorly with the BP gradient here: its feedback, started at zero
as in the FDFA paper's reference code, follows the change of the forward weights, not the weights.

    python -m sims.dkp_alignment [--quick] [--out results/dkp_alignment]

The FDFA paper's Fig. 7 network (a 5-layer ReLU FC net of width 256, as ``sims.fdfa_figures``
builds it) trains on MNIST-1D with Adam at 1e-3 (forward and feedback alike), under four rules:

- ``dkp``: the FDFA reference code's DKP (feedback from zero, no decay);
- ``dkp, kaiming start``: feedback starting at DFA's random matrices, as Webster et al.'s code;
- ``dkp, decay``: decay ``decay`` on the feedback and on the forward weights (the same L2 term
  added to each side's gradient before Adam), the mechanism by which Kolen-Pollack learning
  pulls forward and feedback weights together (their difference shrinks while both receive the
  same updates);
- ``dfa``: fixed random feedback (the same Kaiming matrices, never learned).

Every ``every`` steps, on a fixed probe batch: the angle between each hidden layer's update and
its BP gradient (each estimator's ``estimate``, as ``sims.fdfa_figures`` measures Fig. 7), and,
for the last hidden layer's feedback ``B`` and the output weights ``W_L``: cos(Bᵀ, W_L − W_L(0))
(the Kolen-Pollack identity: 1 with the same optimizer on both sides and no decay),
cos(Bᵀ, W_L) (how much of the true feedback B holds), cos(W_L − W_L(0), W_L(0)) and
|W_L − W_L(0)| / |W_L(0)|.

Writes ``summary.json`` (with the command, commit and machine), ``summary.md`` and
``dkp_alignment.png`` to ``--out``; the explanation in ``summary.md`` is generated from the
measured numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import matplotlib
import numpy as np
import optax

from ctlearn._usererror import prepare_parser, run_main
from ctlearn.data import batches, load_dataset
from ctlearn.diagnostics import gradient_angles
from ctlearn.estimators import make_estimator
from ctlearn.files import atomic_write_text
from ctlearn.plotting import save_figure
from ctlearn.provenance import provenance
from ctlearn.train import TrainState, evaluate, run_steps
from models import fdfa_fc

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RULES = ("dkp", "dkp, kaiming start", "dkp, decay", "dfa")
COLORS = {"dkp": "C1", "dkp, kaiming start": "C2", "dkp, decay": "C3", "dfa": "C0"}


@dataclasses.dataclass(frozen=True)
class AlignmentConfig:
    """The study's settings (see the module docstring); ``tail``: the fraction of the last
    probes averaged for the final angles."""

    dataset: str = "mnist1d"
    depth: int = 5
    width: int = 256
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    decay: float = 0.01
    every: int = 25
    probe: int = 512
    tail: float = 0.1
    seed: int = 0
    out: str = "results/dkp_alignment"

    def __post_init__(self):
        for name in ("depth", "width", "epochs", "batch_size", "every", "probe"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {name}={value!r}")
        if self.depth < 3:
            raise ValueError(f"depth must be >= 3 (two hidden layers at least), got {self.depth}")
        for name in ("lr", "decay"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value >= 0) or (name == "lr" and not value):
                raise ValueError(f"{name} must be a number > 0 (decay >= 0), got {value!r}")
        if not 0 < self.tail <= 1:
            raise ValueError(f"tail must be in (0, 1], got {self.tail!r}")


QUICK = AlignmentConfig(epochs=1, every=10, probe=128)


def _cos(a, b) -> float:
    a, b = np.ravel(np.asarray(a, np.float64)), np.ravel(np.asarray(b, np.float64))
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / norm) if norm > 0 else float("nan")


def _rule(config: AlignmentConfig, name: str, model):
    """The estimator, the forward optimizer and the estimator's initial state of rule ``name``."""
    key = jax.random.key(config.seed + 1)
    if name == "dfa":
        # The same Kaiming matrices as "dkp, kaiming start" (same key): the two differ only in
        # whether the feedback learns.
        estimator = make_estimator("dfa")
        return estimator, optax.adam(config.lr), estimator.init(model, key=key)
    options = {"feedback_lr": config.lr}
    if name == "dkp, kaiming start":
        options["feedback_init"] = "kaiming"
    optimizer = optax.adam(config.lr)
    if name == "dkp, decay":
        # The same L2 form on both sides, as the feedback optimizer adds it (before Adam).
        options["feedback_decay"] = config.decay
        optimizer = optax.chain(optax.add_decayed_weights(config.decay), optax.adam(config.lr))
    estimator = make_estimator("dkp", **options)
    return estimator, optimizer, estimator.init(model, key=key)


def train_rule(config: AlignmentConfig, data, name: str) -> dict[str, Any]:
    """Trains the network under rule ``name`` and records the probes (see the module docstring)."""
    model = fdfa_fc(data.input_shape, data.num_classes, config.depth, width=config.width,
                    local_heads=False, key=jax.random.key(config.seed))  # fmt: skip
    estimator, optimizer, est_state = _rule(config, name, model)
    state = TrainState.start(
        model, optimizer.init(eqx.filter(model, eqx.is_inexact_array)), est_state
    )
    bp = make_estimator("bp")
    probe = (data.train.x[: config.probe], data.train.y[: config.probe])
    w0 = np.asarray(model.layers[-1].weight)
    record: dict[str, list] = {key: [] for key in
                               ("step", "angles", "kp_identity", "feedback_vs_weights",
                                "change_vs_start", "relative_change")}  # fmt: skip

    @eqx.filter_jit
    def estimates(model, est_state, key):
        estimate = estimator.estimate(model, probe, est_state, key=key)[0]
        return estimate, bp.estimate(model, probe, None, key=key)[0]

    def angles(model, est_state, key):
        return gradient_angles(*estimates(model, est_state, key))["layers"]

    step = 0
    root = jax.random.key(config.seed + 2)
    for epoch in range(config.epochs):
        epoch_key = jax.random.fold_in(root, epoch)

        def measure(i, state, x, y, first=step, epoch_key=epoch_key):
            step = first + i  # over the whole run
            if step % config.every:
                return
            hidden = angles(state.model, state.est_state, jax.random.fold_in(epoch_key, step))
            w = np.asarray(state.model.layers[-1].weight)
            matrices = state.est_state if name == "dfa" else state.est_state[0]
            feedback = np.asarray(matrices[-1]).T
            record["step"].append(step)
            record["angles"].append([float(a) for a in hidden[:-1]])
            if name != "dfa":
                record["kp_identity"].append(_cos(feedback, w - w0))
            record["feedback_vs_weights"].append(_cos(feedback, w))
            record["change_vs_start"].append(_cos(w - w0, w0))
            record["relative_change"].append(float(np.linalg.norm(w - w0) / np.linalg.norm(w0)))

        epoch_batches = batches(data.train, config.batch_size, key=epoch_key)
        result = run_steps(estimator, optimizer, state, epoch_batches, epoch_key, callback=measure)
        state, step = result.state, step + len(result.losses)
    test_loss, test_acc = evaluate(state.model, data, "cross_entropy", 1000)
    angles_arr = np.array(record["angles"], float)
    tail = angles_arr[-max(1, round(len(angles_arr) * config.tail)) :]
    record.update(
        steps=step,
        test_loss=float(test_loss),
        test_accuracy=float(test_acc),
        first_angles=record["angles"][0],
        final_angles=[float(v) for v in np.nanmean(tail, axis=0)],
    )
    print(f"  {name}: final angles {np.round(record['final_angles'], 1).tolist()}, "
          f"test accuracy {test_acc:.3f}", flush=True)  # fmt: skip
    return record


def _mean(values) -> float:
    return float(np.nanmean(values)) if len(values) else float("nan")


def explanation(results: dict[str, dict], config: AlignmentConfig) -> str:
    """What the measurements say, in words, from the numbers in ``results``."""
    dkp, kaiming, decay, dfa = (results[name] for name in RULES)
    first_dkp = _mean(dkp["first_angles"])
    early = dkp["change_vs_start"][1] if len(dkp["change_vs_start"]) > 1 else float("nan")
    identity = min(dkp["kp_identity"][1:]) if len(dkp["kp_identity"]) > 1 else float("nan")
    lines = [
        f"- With the FDFA reference code's DKP (feedback from zero, Adam on both sides, no "
        f"decay), the last hidden layer's feedback stays parallel to the change of the output "
        f"weights: cos(Bᵀ, W_L − W_L(0)) is at least {identity:.3f} at every probe after the "
        f"first (the Kolen-Pollack identity; `tests/test_estimators_dkp.py` holds it exactly for "
        f"SGD). What B carries is therefore the change, never the initial weights, which the "
        f"true feedback contains: cos(Bᵀ, W_L) ends at {dkp['feedback_vs_weights'][-1]:.2f}, "
        f"after the change has grown to {dkp['relative_change'][-1]:.2f} of |W_L(0)|.",
        f"- Early in training the change points against the initial weights (cross-entropy first "
        f"shrinks the random logits): cos(W_L − W_L(0), W_L(0)) = {early:.2f} at step "
        f"{dkp['step'][1] if len(dkp['step']) > 1 else 0}. The first update, made from feedback "
        f"that has seen one batch, stands at {first_dkp:.0f}° from BP on average over the hidden "
        f"layers (above 90° means uphill).",
        f"- Decay {config.decay:g} on both sides (Kolen-Pollack's mechanism: the random start "
        f"decays on the forward side while both sides receive the same updates) brings the "
        f"feedback to the output weights: cos(Bᵀ, W_L) ends at "
        f"{decay['feedback_vs_weights'][-1]:.2f} against {dkp['feedback_vs_weights'][-1]:.2f} "
        f"without it.",
        f"- Over the last {config.tail:.0%} of the probes the hidden layers average "
        f"{_mean(dkp['final_angles']):.0f}° for DKP, {_mean(kaiming['final_angles']):.0f}° when "
        f"its feedback starts at DFA's random matrices, {_mean(decay['final_angles']):.0f}° with "
        f"decay {config.decay:g} on both sides, and {_mean(dfa['final_angles']):.0f}° for DFA "
        f"(test accuracy {dkp['test_accuracy']:.3f}, {kaiming['test_accuracy']:.3f}, "
        f"{decay['test_accuracy']:.3f}, {dfa['test_accuracy']:.3f}).",
    ]
    return "\n".join(lines)


def markdown(summary: dict) -> str:
    config, results = summary["config"], summary["results"]
    stamp = summary["provenance"]
    hidden = len(next(iter(results.values()))["final_angles"])
    lines = [
        "# DKP's alignment with the BP gradient",
        "",
        f"`{stamp['command']}`; commit `{stamp['commit']}`; machine {stamp['machine']}.",
        "",
        f"{config['depth']}-layer ReLU FC net of width {config['width']} on {config['dataset']}, "
        f"{config['epochs']} epochs of Adam at {config['lr']:g} (batch {config['batch_size']}); "
        f"angles on a probe of {config['probe']} training examples every {config['every']} "
        f"steps.",
        "",
        "| rule | " + " | ".join(f"layer {i + 1} first / final (°)" for i in range(hidden))
        + " | cos(Bᵀ, W_L) at the end | test accuracy |",
        "|---|" + "---:|" * (hidden + 2),
    ]  # fmt: skip
    for name, r in results.items():
        cells = [f"{a:.0f} / {b:.0f}" for a, b in zip(r["first_angles"], r["final_angles"])]
        lines.append(
            f"| {name} | " + " | ".join(cells)
            + f" | {r['feedback_vs_weights'][-1]:.2f} | {r['test_accuracy']:.3f} |"
        )  # fmt: skip
    lines += ["", "## What it shows", "", summary["explanation"], ""]
    return "\n".join(lines)


def plot(summary: dict, path: Path) -> Path:
    results = summary["results"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, r in results.items():
        angles = np.array(r["angles"], float)
        axes[0].plot(r["step"], np.nanmean(angles, axis=1), color=COLORS[name], label=name)
        axes[1].plot(r["step"], r["feedback_vs_weights"], color=COLORS[name], label=name)
    axes[0].axhline(90, color="k", lw=0.5, ls=":")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("hidden layers' mean angle to BP (°)")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("cos(Bᵀ, W_L): last feedback vs output weights")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("DKP's feedback learns the change of the forward weights")
    fig.tight_layout()
    return save_figure(fig, path)


def main(config: AlignmentConfig) -> dict:
    stamp = provenance()
    data = load_dataset(config.dataset)
    print(f"DKP alignment study: {config.epochs} epochs per rule, rules {', '.join(RULES)}")
    results = {name: train_rule(config, data, name) for name in RULES}
    summary = {"config": dataclasses.asdict(config), "provenance": stamp, "results": results}
    summary["explanation"] = explanation(results, config)
    out = Path(config.out)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out / "summary.md", markdown(summary))
    plot(summary, out / "dkp_alignment.png")
    print(markdown(summary))
    return summary


def _cli() -> AlignmentConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    prepare_parser(parser)
    parser.add_argument("--quick", action="store_true", help="one epoch, a small probe")
    parser.add_argument("--out", default=AlignmentConfig.out)
    args = parser.parse_args()
    base = QUICK if args.quick else AlignmentConfig()
    return dataclasses.replace(base, out=args.out)


if __name__ == "__main__":
    run_main(lambda: main(_cli()))
