"""Study (g): learning on pulsed devices that differ from device to device.

    python -m sims.study_device_spread [--preset mnist1d|fashion] [--quick] [--out DIR]

Every weight is a soft-bounds pulsed device on [−1, 1] with pulse step dw_min = 0.001 (as in
``sims.study_device``), and each device draws its own step size (log-normal, relative spread
s_dw) and its own asymmetry β_i (normal, spread s_β around 0) once, from the key. A device with
β_i ≠ 0 pulls its weight towards its own symmetry point w* = β_i, so a spread of asymmetries
is a spread of weight biases the rule has to work against; a spread of step sizes is a
per-synapse learning-rate spread on top of the rounding. The figure shows test accuracy and
gradient alignment against s_dw, one line per s_β; the dashed line is the device without spread;
the BP lines are gradient flow (continuous BP) at the same η_eff and discrete BP (one SGD step of
η_eff per presentation), both on the ideal circuit.

Presets: ``mnist1d`` (the default: MNIST-1D, MLP 40-32-10, 300 presentations) and ``fashion``
(Fashion-MNIST at ``sims._analog.FASHION_BASE``; measured in
``results/study_device_spread_fashion/summary.md``).
"""

from __future__ import annotations

from ._analog import bp_reference, fashion_preset, study_main

DEVICE = {"device": {"response": "soft_bounds", "w_min": -1.0, "w_max": 1.0, "dw_min": 0.001}}
GRID = {"device.dw_min_d2d": [None, 0.3, 1.0], "device.up_down_d2d": [0.0, 0.1, 0.3]}
FASHION = fashion_preset("device_spread", GRID, ensemble=9, base={"hardware": DEVICE})
FULL = {
    "name": "device_spread",
    "base": {"widths": [32], "presentations": 300, "hardware": DEVICE},
    "grid": GRID,
    "seeds": 2,
    "ensemble": 9,
}
PRESETS = {"mnist1d": FULL, "fashion": FASHION}
QUICK = {
    "base": {"widths": [16], "presentations": 12, "test_size": 200, "duration": 4.0},
    "grid": {"device.dw_min_d2d": [None, 1.0], "device.up_down_d2d": [0.0, 0.3]},
    "seeds": 1,
    "ensemble": 4,
}


def main(argv=None):
    return study_main(
        argv,
        __doc__,
        PRESETS,
        QUICK,
        x="device.dw_min_d2d",
        series="device.up_down_d2d",
        labels={"device.dw_min_d2d": "step-size spread s_dw", "device.up_down_d2d": "s_β"},
        title="pulsed devices: device-to-device spread",
        references=bp_reference,
    )


if __name__ == "__main__":
    main()
