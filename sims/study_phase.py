"""Study: where learning works, over activity noise × differentiator time constant.

    python -m sims.study_phase [--quick] [--out DIR] [--seeds N]

A two-parameter phase diagram: the circuit's test accuracy (and gradient alignment) after
learning, for every pair of activity-noise level σ_n and differentiator time constant τ_d/τ_p.
Cells whose mean test accuracy reaches 15 % (chance is 10 %) are marked as learning. Measured
(η = 10, 200 presentations, 2 seeds): noise lowers the alignment at every τ_d (0.60, 0.46, 0.20
at σ_n = 0, 0.3, 1 × σ_p with τ_d = 0.05 τ_p) but accuracy holds until σ_n is a few times σ_p,
where the fastest differentiator passes enough noise for the weights to diverge; slower
differentiators filter that noise, and also the perturbation's effect, so from τ_d = 0.2 τ_p
nothing is learned in 200 presentations at this η.
"""

from __future__ import annotations

from ._analog import study_main

FULL = {
    "name": "phase",
    "base": {
        "widths": [32],
        "presentations": 200,
        "lr": 10.0,
        "hardware": {"noise": {"tau": 0.1}, "differentiator": {"blank": 2.0}},
    },
    "grid": {
        "noise.sigma": [None, 0.003, 0.01, 0.03],
        "differentiator.tau": [0.05, 0.2, 0.5, 1.0],
    },
    "seeds": 2,
    "ensemble": 16,
}
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
        FULL,
        QUICK,
        x="noise.sigma",
        y="differentiator.tau",
        threshold=0.15,
        labels={"noise.sigma": "activity noise σ_n", "differentiator.tau": "τ_d / τ_p"},
        title="noise × differentiator",
    )


if __name__ == "__main__":
    main()
