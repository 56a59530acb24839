"""Study (c): learning against weight precision in bits.

    python -m sims.study_precision [--preset mnist1d|fashion] [--quick] [--out DIR] [--seeds N]

Every weight is stored as one of 2^bits levels spanning [−1, 1] and written at the end of each
presentation (the conductances hold still while the update accumulates). The figure shows test
accuracy and gradient alignment against bits. With round-to-nearest, an update smaller than
half a level is lost: once a level is larger than the typical update η·c·T·|∂L/∂w|, learning
stalls, although the rule's direction (the alignment, measured before the write) is unchanged.

Presets: ``mnist1d`` (the default: MNIST-1D, MLP 40-32-10, 300 presentations) and ``fashion``
(Fashion-MNIST at ``sims._analog.FASHION_BASE``, where the ideal circuit is trained; measured in
``results/study_precision_fashion/summary.md``, the point bits = None being the ideal device).
"""

from __future__ import annotations

from ._analog import fashion_preset, study_main

PRECISION = {"precision": {"w_max": 1.0}}
FULL = {
    "name": "precision",
    "base": {"widths": [32], "presentations": 300, "hardware": PRECISION},
    "grid": {"precision.bits": [None, 16, 12, 10, 8, 6, 4]},
    "seeds": 3,
    "ensemble": 21,
}
FASHION = fashion_preset(
    "precision",
    {"precision.bits": [None, 12, 10, 8, 7, 6]},
    ensemble=6,
    base={"hardware": PRECISION},
)
PRESETS = {"mnist1d": FULL, "fashion": FASHION}
QUICK = {
    "base": {"widths": [16], "presentations": 12, "test_size": 200, "duration": 4.0},
    "grid": {"precision.bits": [None, 6]},
    "seeds": 1,
    "ensemble": 2,
}


def main(argv=None):
    return study_main(
        argv,
        __doc__,
        PRESETS,
        QUICK,
        x="precision.bits",
        labels={"precision.bits": "weight precision (bits)"},
        title="weight precision",
    )


if __name__ == "__main__":
    main()
