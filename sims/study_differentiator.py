"""Study (b): learning against the differentiators' time constant τ_d relative to τ_p.

    python -m sims.study_differentiator [--quick] [--out DIR] [--seeds N]

The synapses read ẏ and ṙ through first-order high-pass differentiators (transfer function
iω/(1 + iωτ_d)) instead of exact derivatives, and ignore them for the first 2 τ_p of each
presentation (a blanking window while they ring after the input switches). The figure shows
test accuracy and gradient alignment against τ_d/τ_p (τ_p = 1; "None" is the exact
derivative with the same blanking). Both rates pass through the same filter, so their product
keeps its sign at every frequency: the direction holds (alignment ≈ 0.6 up to τ_d = 0.2 τ_p)
while the filters' gain |H|² shrinks the update, and learning slows (measured test accuracy
20 % exact, 20 % at 0.05 τ_p, 18 % at 0.1, 14 % at 0.2); at τ_d ≥ 0.5 τ_p the filters delay the
perturbation's components enough to turn the update away (alignment 0.26, then 0.06) and
nothing is learned. The reward differentiator also sees the loss's change caused by learning
itself, a feedback loop: at η = 30 it diverged for τ_d ≤ 0.1, so this study uses η = 10.
"""

from __future__ import annotations

from ._analog import study_main

FULL = {
    "name": "differentiator",
    "base": {
        "widths": [32],
        "presentations": 300,
        "lr": 10.0,
        "hardware": {"differentiator": {"blank": 2.0}},
    },
    "grid": {"differentiator.tau": [None, 0.05, 0.1, 0.2, 0.5, 1.0]},
    "seeds": 3,
    "ensemble": 18,
}
QUICK = {
    "base": {"widths": [16], "presentations": 12, "test_size": 200, "duration": 4.0},
    "grid": {"differentiator.tau": [0.05, 0.5]},
    "seeds": 1,
}


def main(argv=None):
    return study_main(
        argv,
        __doc__,
        FULL,
        QUICK,
        x="differentiator.tau",
        logx=True,
        labels={"differentiator.tau": "differentiator τ_d / τ_p"},
        title="differentiator bandwidth",
    )


if __name__ == "__main__":
    main()
