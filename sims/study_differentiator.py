"""Study (b): learning against the differentiators' time constant τ_d relative to τ_p.

    python -m sims.study_differentiator [--preset mnist1d|fashion] [--quick] [--out DIR]
                                        [--seeds N]

The synapses read ẏ and ṙ through first-order high-pass differentiators (transfer function
iω/(1 + iωτ_d)) instead of exact derivatives, and ignore them at the start of each
presentation (a blanking window while they ring after the input switches: 2 τ_p in the MNIST-1D
preset, ``RING_DOWN`` τ_d of the slowest after the transition in the Fashion-MNIST one). The
figure shows test accuracy and gradient alignment against τ_d/τ_p (τ_p = 1; "None" is the exact
derivative with the same blanking). Both rates pass through the same filter, so their product
keeps its sign at every frequency: the direction holds while the filters' gain |H|² shrinks the
update, and learning slows; once τ_d is a sizeable fraction of τ_p the filters delay the
perturbation's components enough to turn the update away and nothing is learned. The reward
differentiator also sees the loss's change caused by learning itself, a feedback loop that can
diverge at a large η for fast differentiators, so the MNIST-1D preset uses η = 10.

Presets: ``mnist1d`` (the default: MNIST-1D, MLP 40-32-10, 300 presentations, η = 10) and
``fashion`` (Fashion-MNIST at ``sims._analog.FASHION_BASE``, where the ideal circuit is trained,
with ``sims._analog.differentiator_base`` on top; measured in
``results/study_differentiator_fashion/summary.md``, the point τ_d = None being the exact
derivative with the same blanking). At ``FASHION_BASE``'s own η and σ_p every finite τ_d
diverged within the first presentation (the earlier result, at commit ``cded932``). Measured
since, a presentation at a time: the divergence needs the reward differentiator (the "post"
one alone learns), persists with Heun at a step of τ_d/8 (not numerics), sets in at an η that
falls as τ_d shrinks and scales as 1/σ_p, and the loop's gain per unit η, computed from the
jvp of the loss along the rule's ẇ, is several times MNIST-1D's. So the preset keeps the
rule's mean update and variance and raises σ_p (``differentiator_base``: the loop's gain and
the switch's ring shrink against the perturbation's signal), blanks for ``RING_DOWN`` τ_d after
each input transition (so τ_d stops at 0.5: with T = 5 τ_p a slower one would leave little time
to learn), and steps at τ_d/4 of the fastest.
"""

from __future__ import annotations

from ._analog import differentiator_base, fashion_preset, study_main

BLANKING = {"differentiator": {"blank": 2.0}}
FULL = {
    "name": "differentiator",
    "base": {"widths": [32], "presentations": 300, "lr": 10.0, "hardware": BLANKING},
    "grid": {"differentiator.tau": [None, 0.05, 0.1, 0.2, 0.5, 1.0]},
    "seeds": 3,
    "ensemble": 18,
}
FASHION_TAUS = [None, 0.1, 0.2, 0.5]
FASHION = fashion_preset(
    "differentiator",
    {"differentiator.tau": FASHION_TAUS},
    ensemble=6,
    base=differentiator_base(FASHION_TAUS),
)
PRESETS = {"mnist1d": FULL, "fashion": FASHION}
QUICK = {
    "base": {"widths": [16], "presentations": 12, "test_size": 200, "duration": 4.0},
    "grid": {"differentiator.tau": [0.05, 0.5]},
    "seeds": 1,
    "ensemble": 2,
}


def main(argv=None):
    return study_main(
        argv,
        __doc__,
        PRESETS,
        QUICK,
        x="differentiator.tau",
        logx=True,
        labels={"differentiator.tau": "differentiator τ_d / τ_p"},
        title="differentiator bandwidth",
    )


if __name__ == "__main__":
    main()
