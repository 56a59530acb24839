"""Study (f): learning on pulsed devices.

    python -m sims.study_device [--preset mnist1d|fashion] [--quick] [--out DIR] [--seeds N]

Every weight is a pulsed device (``ct.PulsedDevice`` with the soft-bounds response on [−1, 1]):
at the end of each presentation the accumulated update is written as whole pulses of dw_min
(stochastic rounding), each step shrinking towards the bound it moves to. An asymmetric device
(up steps dw_min·(1 + β), down steps dw_min·(1 − β)) drifts under pulses that carry no net
signal towards its symmetry point w* = β, so every weight is pulled there while it learns. The
figure shows test accuracy, gradient alignment and the mean of the stored parameters against
dw_min, one line per asymmetry β; the dashed line is the ideal circuit (dw_min = 0: the update
stored as it is); the BP lines are gradient flow (continuous BP) at the same η_eff and discrete
BP (one SGD step of η_eff per presentation), both on the ideal circuit; on the parameter panel,
the reference lines are the symmetry points w*. Device-to-device spread:
``sims.study_device_spread``.

Presets: ``mnist1d`` (the default: MNIST-1D, MLP 40-32-10, 300 presentations) and ``fashion``
(Fashion-MNIST at ``sims._analog.FASHION_BASE``, where the ideal circuit is trained; measured in
``results/study_device_fashion/summary.md``).
"""

from __future__ import annotations

from ctlearn.dynamics import PulsedDevice

from ._analog import bp_reference, fashion_preset, study_main

SOFT = {"device": {"response": "soft_bounds", "w_min": -1.0, "w_max": 1.0}}
FASHION = fashion_preset(
    "device",
    {"device.dw_min": [None, 0.0003, 0.001, 0.003, 0.01], "device.up_down": [0.0, 0.3]},
    ensemble=6,
    base={"hardware": SOFT},
)
FULL = {
    "name": "device",
    "base": {"widths": [32], "presentations": 300, "hardware": SOFT},
    "grid": {"device.dw_min": [None, 0.001, 0.01], "device.up_down": [0.0, 0.3]},
    "seeds": 2,
    "ensemble": 12,
}
PRESETS = {"mnist1d": FULL, "fashion": FASHION}
QUICK = {
    "base": {"widths": [16], "presentations": 12, "test_size": 200, "duration": 4.0},
    "grid": {"device.dw_min": [None, 0.01], "device.up_down": [0.0, 0.3]},
    "seeds": 1,
    "ensemble": 4,
}


def references(raw, out, progress):
    """The BP lines (``bp_reference``) on the accuracy panel, and on the parameter-mean panel
    the symmetry point w* of the nominal device at each asymmetry of the grid."""
    lines = bp_reference(raw, out, progress)
    device = raw["base"]["hardware"]["device"]
    lines["weight_mean"] = {
        f"symmetry point w* (β={beta:g})": PulsedDevice(
            **{**device, "up_down": beta}
        ).symmetry_point()
        for beta in raw["grid"]["device.up_down"]
    }
    return lines


def main(argv=None):
    return study_main(
        argv,
        __doc__,
        PRESETS,
        QUICK,
        x="device.dw_min",
        series="device.up_down",
        logx=True,
        metrics=("test_accuracy", "alignment", "weight_mean"),
        labels={
            "device.dw_min": "pulse step dw_min",
            "device.up_down": "asymmetry β",
            "weight_mean": "mean stored parameter",
        },
        title="pulsed devices (soft bounds)",
        references=references,
    )


if __name__ == "__main__":
    main()
