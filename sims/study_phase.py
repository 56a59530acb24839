"""Study: where learning works, over activity noise × differentiator time constant.

    python -m sims.study_phase [--preset mnist1d|fashion] [--quick] [--out DIR] [--seeds N]

A two-parameter phase diagram: the circuit's test accuracy (and gradient alignment) after
learning, for every pair of activity-noise level σ_n and differentiator time constant τ_d/τ_p.
Cells whose mean test accuracy reaches 15 % (chance is 10 %) are marked as learning. Noise is
expected to lower the alignment at every τ_d while the accuracy holds until σ_n is a few times
σ_p, where the fastest differentiator passes enough noise for the weights to wander off or
diverge; slower differentiators filter that noise, and also the perturbation's effect, so
learning fades as τ_d approaches τ_p.

Presets: ``mnist1d`` (the default: MNIST-1D, MLP 40-32-10, 200 presentations, η = 10, 2 seeds)
and ``fashion`` (Fashion-MNIST at ``sims._analog.FASHION_BASE``, where the ideal circuit is
trained). Not run in full: at that preset's η every finite τ_d diverges (see
``sims.study_differentiator`` and ``results/study_differentiator_fashion``), so its diagram
would show only that.
"""

from __future__ import annotations

from ._analog import fashion_preset, study_main

HARDWARE = {"noise": {"tau": 0.1}, "differentiator": {"blank": 2.0}}
FULL = {
    "name": "phase",
    "base": {"widths": [32], "presentations": 200, "lr": 10.0, "hardware": HARDWARE},
    "grid": {
        "noise.sigma": [None, 0.003, 0.01, 0.03],
        "differentiator.tau": [0.05, 0.2, 0.5, 1.0],
    },
    "seeds": 2,
    "ensemble": 16,
}
FASHION = fashion_preset(
    "phase",
    {"noise.sigma": [None, 0.01, 0.03], "differentiator.tau": [0.05, 0.2, 0.5]},
    seeds=2,
    ensemble=6,
    base={"hardware": HARDWARE},
)
PRESETS = {"mnist1d": FULL, "fashion": FASHION}
QUICK = {
    "base": {"widths": [16], "presentations": 12, "test_size": 200, "duration": 4.0},
    "grid": {"noise.sigma": [None, 0.03], "differentiator.tau": [0.05, 0.5]},
    "seeds": 1,
    "ensemble": 4,
}


def main(argv=None):
    return study_main(
        argv,
        __doc__,
        PRESETS,
        QUICK,
        x="noise.sigma",
        y="differentiator.tau",
        threshold=0.15,
        labels={"noise.sigma": "activity noise σ_n", "differentiator.tau": "τ_d / τ_p"},
        title="noise × differentiator",
    )


if __name__ == "__main__":
    main()
