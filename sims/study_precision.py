"""Study (c): learning against weight precision in bits.

    python -m sims.study_precision [--quick] [--out DIR] [--seeds N]

Every weight is stored as one of 2^bits levels spanning [−1, 1] and written at the end of each
presentation (the conductances hold still while the update accumulates). The figure shows test
accuracy and gradient alignment against bits. With round-to-nearest, an update smaller than
half a level is lost: once a level is larger than the typical update η·c·T·|∂L/∂w|, learning
stalls (measured: 10 bits and more match the ideal device, 8 bits lose a few points, 6 bits and
fewer stay at chance), although the rule's direction (the alignment, measured before the
write) is unchanged.
"""

from __future__ import annotations

from ._analog import study_main

FULL = {
    "name": "precision",
    "base": {
        "widths": [32],
        "presentations": 300,
        "hardware": {"precision": {"w_max": 1.0}},
    },
    "grid": {"precision.bits": [None, 16, 12, 10, 8, 6, 4]},
    "seeds": 3,
    "ensemble": 21,
}
QUICK = {
    "base": {"widths": [16], "presentations": 12, "test_size": 200, "duration": 4.0},
    "grid": {"precision.bits": [None, 6]},
    "seeds": 1,
}


def main(argv=None):
    return study_main(
        argv,
        __doc__,
        FULL,
        QUICK,
        x="precision.bits",
        labels={"precision.bits": "weight precision (bits)"},
        title="weight precision",
    )


if __name__ == "__main__":
    main()
