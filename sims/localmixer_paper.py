"""Error rates (%, test / train) reported by Ren et al. (2023) for LocalMixer.

``SUPERVISED[(dataset, preset)][method]``: Table 3; ``CONTRASTIVE[(dataset, preset)][method]``:
Table 4 (linear readout of self-supervised features). ``SETTINGS``: Appendix 11's training
settings per (dataset, objective).
"""

from __future__ import annotations

_METHODS = (
    "bp", "l-bp", "lg-bp", "fa", "l-fa", "lg-fa", "dfa", "fg-w", "fg-a", "lg-fg-w", "lg-fg-a"
)  # fmt: skip

# Columns: MNIST S/1/1, MNIST M/1/16, CIFAR-10 M/8/16, ImageNet L/32/64; each (test, train).
_SUPERVISED_COLUMNS = (
    ("mnist", "S/1/1"),
    ("mnist", "M/1/16"),
    ("cifar10", "M/8/16"),
    ("imagenet2012", "L/32/64"),
)
_SUPERVISED_ROWS = (
    ((2.66, 0.00), (2.41, 0.00), (33.62, 0.00), (36.82, 14.69)),
    ((2.38, 0.00), (2.16, 0.00), (30.75, 0.00), (42.38, 22.80)),
    ((2.43, 0.00), (2.81, 0.00), (33.84, 0.05), (54.37, 39.66)),
    ((2.82, 0.00), (2.90, 0.00), (39.94, 28.44), (94.55, 94.13)),
    ((3.21, 0.00), (2.90, 0.00), (39.74, 28.98), (87.20, 85.69)),
    ((3.11, 0.00), (2.50, 0.00), (39.73, 32.32), (85.45, 82.83)),
    ((3.31, 0.00), (3.17, 0.00), (38.80, 33.69), (91.17, 90.28)),
    ((9.25, 8.93), (8.56, 8.64), (55.95, 54.28), (97.71, 97.58)),
    ((3.24, 1.53), (3.76, 1.75), (59.72, 41.29), (98.83, 98.80)),
    ((9.25, 8.93), (5.66, 4.59), (52.70, 51.71), (97.39, 97.29)),
    ((3.24, 1.53), (2.55, 0.00), (30.68, 19.39), (58.37, 44.86)),
)

# Columns: CIFAR-10 M/8/16, CIFAR-10 L/8/64, ImageNet L/32/64.
_CONTRASTIVE_COLUMNS = (("cifar10", "M/8/16"), ("cifar10", "L/8/64"), ("imagenet2012", "L/32/64"))
_CONTRASTIVE_ROWS = (
    ((24.11, 21.08), (17.53, 13.35), (55.66, 49.79)),
    ((24.69, 21.80), (19.13, 13.60), (59.11, 52.50)),
    ((29.63, 25.60), (23.62, 16.80), (68.36, 62.53)),
    ((45.87, 44.06), (67.93, 65.32), (82.86, 80.21)),
    ((37.73, 36.13), (31.05, 26.97), (83.18, 79.80)),
    ((36.72, 34.06), (30.49, 25.56), (82.57, 79.53)),
    ((46.09, 42.76), (39.26, 37.17), (93.51, 92.51)),
    ((53.37, 51.56), (50.45, 45.64), (91.94, 89.69)),
    ((54.59, 52.96), (56.63, 56.09), (97.83, 97.79)),
    ((52.66, 50.23), (52.27, 48.67), (91.36, 88.81)),
    ((32.88, 29.73), (26.81, 23.90), (73.24, 66.89)),
)


def _table(columns, rows) -> dict[tuple[str, str], dict[str, tuple[float, float]]]:
    return {
        column: {method: row[i] for method, row in zip(_METHODS, rows)}
        for i, column in enumerate(columns)
    }


SUPERVISED = _table(_SUPERVISED_COLUMNS, _SUPERVISED_ROWS)
CONTRASTIVE = _table(_CONTRASTIVE_COLUMNS, _CONTRASTIVE_ROWS)

# Appendix 11. Augmentation: None, or the BYOL pipeline's crop-area lower bound.
SETTINGS: dict[tuple[str, str], dict] = {
    ("mnist", "supervised"): dict(
        batch_size=128, optimizer="sgd", lr=0.01, epochs=1000, schedule="linear", crop_area=None
    ),
    ("cifar10", "supervised"): dict(
        batch_size=128, optimizer="sgd", lr=0.01, epochs=200, schedule="linear", crop_area=None
    ),
    ("cifar10", "contrastive"): dict(
        batch_size=512,
        optimizer="sgd",
        lr=1.0,
        epochs=1000,
        schedule="cosine",
        warmup_epochs=10,
        crop_area=0.5,
    ),
    ("imagenet2012", "supervised"): dict(
        batch_size=256,
        optimizer="sgd",
        lr=0.05,
        epochs=120,
        schedule="cosine",
        warmup_epochs=10,
        crop_area=0.3,
    ),
    ("imagenet2012", "contrastive"): dict(
        batch_size=2048,
        optimizer="lars",
        lr=0.1,
        epochs=800,
        schedule="cosine",
        warmup_epochs=10,
        crop_area=0.08,
    ),
}
# CIFAR-10 L/8/64 contrastive: batch 2048, lr 4.0, crop area lower bound 0.3.
LARGE_CIFAR_CONTRASTIVE = dict(SETTINGS[("cifar10", "contrastive")], batch_size=2048, lr=4.0,
                               crop_area=0.3)  # fmt: skip


def paper_error(
    dataset: str, preset: str, method: str, objective: str = "supervised"
) -> tuple[float, float] | None:
    """(test, train) error in % of ``method`` on (``dataset``, ``preset``), or None if the paper
    has no such entry."""
    table = SUPERVISED if objective == "supervised" else CONTRASTIVE
    return table.get((dataset, preset), {}).get(method)


def paper_settings(dataset: str, preset: str, objective: str = "supervised") -> dict:
    """Appendix 11's settings for ``dataset`` (MNIST's for the datasets the paper did not use:
    fashion_mnist, mnist1d)."""
    if objective == "contrastive" and dataset == "cifar10" and preset == "L/8/64":
        return dict(LARGE_CIFAR_CONTRASTIVE)
    key = (dataset if dataset in ("cifar10", "imagenet2012") else "mnist", objective)
    if key not in SETTINGS:
        raise ValueError(
            f"the paper gives no {objective} settings for {dataset}; valid: "
            + ", ".join(f"{d} {o}" for d, o in SETTINGS)
        )
    return dict(SETTINGS[key])
