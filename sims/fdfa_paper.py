"""Test accuracies (%, mean ± std over 10 runs) reported by Bacho & Chu (FDFA paper).

``FC[(dataset, depth)][method]``: Table B.6 (fully connected nets; depth 4 is also Table 1).
``CNN[dataset][method]``: Table 2 (15C5-P2-40C5-P2-128-10). ``ALEXNET[dataset][method]``: Table 3.
"""

_FC_ROWS = {
    # depth: method -> (MNIST, Fashion-MNIST, CIFAR10), each (mean, std)
    2: {
        "bp": ((98.25, 0.04), (89.37, 0.09), (56.20, 0.12)),
        "fg-w": ((85.87, 0.25), (77.72, 0.18), (30.47, 0.32)),
        "fg-a": ((93.39, 0.06), (84.73, 0.14), (47.39, 0.23)),
        "dfa": ((98.04, 0.07), (88.67, 0.12), (54.80, 0.22)),
        "dkp": ((98.12, 0.05), (89.09, 0.11), (55.41, 0.18)),
        "fdfa": ((98.21, 0.02), (89.27, 0.07), (55.74, 0.14)),
    },
    3: {
        "bp": ((98.39, 0.06), (90.01, 0.08), (56.66, 0.18)),
        "fg-w": ((82.36, 0.48), (73.94, 0.57), (27.52, 0.34)),
        "fg-a": ((90.86, 0.17), (82.21, 0.13), (43.39, 0.14)),
        "lg-fg-a": ((91.64, 0.07), (82.41, 0.13), (43.08, 0.18)),
        "dfa": ((98.18, 0.06), (89.19, 0.13), (54.20, 0.11)),
        "dkp": ((98.28, 0.06), (89.63, 0.12), (55.15, 0.24)),
        "fdfa": ((98.30, 0.04), (89.82, 0.13), (55.70, 0.15)),
    },
    4: {
        "bp": ((98.46, 0.05), (89.99, 0.15), (56.92, 0.19)),
        "fg-w": ((80.03, 0.62), (71.72, 0.63), (25.17, 0.32)),
        "fg-a": ((83.40, 1.33), (77.62, 0.25), (35.53, 0.21)),
        "lg-fg-a": ((86.89, 0.90), (77.98, 0.21), (34.56, 0.34)),
        "dfa": ((98.15, 0.05), (89.15, 0.09), (53.61, 0.16)),
        "dkp": ((98.27, 0.05), (89.48, 0.09), (54.35, 0.21)),
        "fdfa": ((98.32, 0.05), (89.56, 0.11), (54.97, 0.19)),
    },
}
_DATASETS = ("mnist", "fashion_mnist", "cifar10")

FC: dict[tuple[str, int], dict[str, tuple[float, float]]] = {
    (dataset, depth): {method: row[i] for method, row in methods.items()}
    for depth, methods in _FC_ROWS.items()
    for i, dataset in enumerate(_DATASETS)
}

CNN: dict[str, dict[str, tuple[float, float]]] = {
    dataset: {method: row[i] for method, row in methods.items()}
    for methods in [
        {
            "bp": ((99.32, 0.03), (92.10, 0.16), (68.11, 0.57)),
            "fg-w": ((87.63, 1.20), (74.93, 0.55), (33.10, 0.37)),
            "fg-a": ((96.63, 0.31), (82.71, 0.89), (42.51, 0.32)),
            "lg-fg-a": ((95.42, 0.72), (79.96, 0.94), (37.74, 2.41)),
            "dfa": ((98.80, 0.08), (89.69, 0.22), (58.14, 0.94)),
            "dkp": ((99.08, 0.03), (90.39, 0.25), (60.30, 0.34)),
            "fdfa": ((99.16, 0.03), (91.54, 0.11), (66.96, 0.70)),
        }
    ]
    for i, dataset in enumerate(_DATASETS)
}

ALEXNET: dict[str, dict[str, tuple[float, float]]] = {
    "cifar100": {
        "bp": (60.43, 0.35),
        "fg-w": (3.43, 0.43),
        "fg-a": (15.84, 0.32),
        "lg-fg-a": (15.27, 0.29),
        "dfa": (35.75, 0.58),
        "dkp": (49.15, 0.34),
        "fdfa": (57.27, 0.11),
    },
}


# Every number of the paper's tables is the test accuracy after this many epochs (Appendix A).
PAPER_EPOCHS = 100


def paper_accuracy(model: str, dataset: str, method: str, depth: int | None = None):
    """The paper's (mean, std) test accuracy in %, or None where the paper reports none."""
    if model == "fdfa_fc":
        return FC.get((dataset, depth), {}).get(method)
    if model in ("fdfa_cnn", "fdfa_cnn_reference"):  # the public code's variant of Table 2's net
        return CNN.get(dataset, {}).get(method)
    if model == "alexnet":
        return ALEXNET.get(dataset, {}).get(method)
    return None
