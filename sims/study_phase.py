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
trained, with ``sims._analog.differentiator_base`` on top: at ``FASHION_BASE``'s own η and σ_p
the reward differentiator's loop diverges for every finite τ_d, see ``sims.study_differentiator``);
its noise levels are multiples of that preset's σ_p (1 and 3, as the MNIST-1D grid's top two),
so that the noise keeps its size relative to the perturbation; measured in
``results/study_phase_fashion/summary.md``. Where noise makes a fast differentiator's cell
diverge, probes of a few hundred presentations found the reward differentiator needed (with the
"post" one alone, or the exact derivative under the same noise, nothing diverged): presumably the
noise-driven wander of the weights raises the reward loop's gain (see ``sims.study_differentiator``)
past one, which the exact derivative, leaving the loop out, cannot show.
"""

from __future__ import annotations

from ._analog import differentiator_base, fashion_preset, study_main

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
FASHION_TAUS = [0.1, 0.2, 0.5]
_FASHION_BASE = differentiator_base(FASHION_TAUS)
_FASHION_BASE["hardware"] = {**HARDWARE, **_FASHION_BASE["hardware"]}
FASHION = fashion_preset(
    "phase",
    {
        "noise.sigma": [None, _FASHION_BASE["sigma"], 3 * _FASHION_BASE["sigma"]],
        "differentiator.tau": FASHION_TAUS,
    },
    seeds=2,
    ensemble=6,
    base=_FASHION_BASE,
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
