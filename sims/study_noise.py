"""Study (a): learning against activity-noise level.

    python -m sims.study_noise [--preset mnist1d|fashion] [--quick] [--out DIR] [--seeds N]

Every neuron's activation input carries band-limited noise (correlation time 0.1 τ_p) of
standard deviation σ_n, which no synapse can tell from the perturbation's own effect on the
reward. The figure shows the circuit's test accuracy after learning by continuous FG-A, and the
alignment (mean cosine) of each presentation's weight change with −∇L, against σ_n; the
perturbation's own amplitude is σ_p = 0.01. Noise adds variance to ṙ, not bias: the alignment
is expected to fall first while the accuracy holds, until, a few times σ_p, the noise-driven
random walk of the weights overwhelms learning or diverges.

Presets: ``mnist1d`` (the default: MNIST-1D, MLP 40-32-10, 300 presentations, η = 30; a net that
has only started learning) and ``fashion`` (Fashion-MNIST at ``sims._analog.FASHION_BASE``,
where the ideal circuit is trained; measured in ``results/study_noise_fashion/summary.md``,
the point σ_n = None being the ideal circuit).
"""

from __future__ import annotations

from ._analog import fashion_preset, study_main

NOISE = {"noise": {"tau": 0.1}}
FULL = {
    "name": "noise",
    "base": {"widths": [32], "presentations": 300, "hardware": NOISE},
    "grid": {"noise.sigma": [None, 0.001, 0.003, 0.01, 0.03, 0.1]},
    "seeds": 3,
    "ensemble": 18,
}
FASHION = fashion_preset(
    "noise",
    {"noise.sigma": [None, 0.003, 0.01, 0.03, 0.1]},
    ensemble=5,
    base={"hardware": NOISE},
)
PRESETS = {"mnist1d": FULL, "fashion": FASHION}
QUICK = {
    "base": {"widths": [16], "presentations": 12, "test_size": 200, "duration": 4.0},
    "grid": {"noise.sigma": [None, 0.01, 0.1]},
    "seeds": 1,
    "ensemble": 3,
}


def main(argv=None):
    return study_main(
        argv,
        __doc__,
        PRESETS,
        QUICK,
        x="noise.sigma",
        logx=True,
        labels={"noise.sigma": "activity noise σ_n"},
        title="activity noise",
    )


if __name__ == "__main__":
    main()
