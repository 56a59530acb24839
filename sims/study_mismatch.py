"""Study (d): learning against device mismatch.

    python -m sims.study_mismatch [--preset mnist1d|fashion] [--quick] [--out DIR] [--seeds N]

Every neuron's input gain is a fixed log-normal factor of relative spread s_g and every synapse
learns at its own log-normal rate of relative spread s_η, both drawn once per circuit. The
figure shows test accuracy and gradient alignment against s_g, one line per s_η. The rule
measures the circuit as built, so it follows the gradient with respect to each neuron's
effective weights g·w: with respect to the stored conductances that is a fixed positive
per-neuron preconditioner (1/g), and learning-rate spread is a per-synapse one. Both keep the
update a descent direction while turning it away from −∇L, so the alignment is expected to
fall with the spread while learning continues.

Presets: ``mnist1d`` (the default: MNIST-1D, MLP 40-32-10, 300 presentations) and ``fashion``
(Fashion-MNIST at ``sims._analog.FASHION_BASE``, where the ideal circuit is trained; measured in
``results/study_mismatch_fashion/summary.md``, the point s_g = None, s_η = 0 being the ideal
circuit).
"""

from __future__ import annotations

from ._analog import fashion_preset, study_main

FULL = {
    "name": "mismatch",
    "base": {"widths": [32], "presentations": 300},
    "grid": {"mismatch.gain_spread": [None, 0.1, 0.3, 1.0], "mismatch.lr_spread": [0.0, 0.3, 1.0]},
    "seeds": 2,
    "ensemble": 24,
}
FASHION = fashion_preset(
    "mismatch",
    {"mismatch.gain_spread": [None, 0.3, 1.0], "mismatch.lr_spread": [0.0, 1.0]},
    ensemble=6,
)
PRESETS = {"mnist1d": FULL, "fashion": FASHION}
QUICK = {
    "base": {"widths": [16], "presentations": 12, "test_size": 200, "duration": 4.0},
    "grid": {"mismatch.gain_spread": [None, 0.3], "mismatch.lr_spread": [0.0, 1.0]},
    "seeds": 1,
    "ensemble": 4,
}


def main(argv=None):
    return study_main(
        argv,
        __doc__,
        PRESETS,
        QUICK,
        x="mismatch.gain_spread",
        series="mismatch.lr_spread",
        labels={"mismatch.gain_spread": "gain spread s_g", "mismatch.lr_spread": "s_η"},
        title="device mismatch",
    )


if __name__ == "__main__":
    main()
