"""Discrete-time learning rules behind one interface, selectable by name."""

from __future__ import annotations

import dataclasses
import json

from ._base import AbstractEstimator as AbstractEstimator
from ._base import Batch as Batch
from ._base import Diagnostics as Diagnostics
from ._bp import BP as BP
from ._dfa import DFA as DFA
from ._direct import direct_feedback_grads as direct_feedback_grads
from ._direct import output_error as output_error
from ._dkp import DKP as DKP
from ._dkp import dkp_feedback_grads as dkp_feedback_grads
from ._fa import FA as FA
from ._fa import LocalFA as LocalFA
from ._fa import LocalGreedyFA as LocalGreedyFA
from ._fa import feedback_alignment_grads as feedback_alignment_grads
from ._fdfa import FDFA as FDFA
from ._fdfa import fdfa_feedback_grads as fdfa_feedback_grads
from ._fdfa import fdfa_feedback_targets as fdfa_feedback_targets
from ._fg_a import FGA as FGA
from ._fg_a import LGFGA as LGFGA
from ._fg_a import activity_directions as activity_directions
from ._fg_a import activity_grads as activity_grads
from ._fg_a import activity_tangents as activity_tangents
from ._fg_w import FGW as FGW
from ._fg_w import LGFGW as LGFGW
from ._fg_w import weight_grads as weight_grads
from ._local_bp import LocalBP as LocalBP
from ._local_bp import LocalGreedyBP as LocalGreedyBP
from ._noise import NOISES as NOISES
from ._noisy_bp import NoisyBP as NoisyBP
from ._objective import block_losses as block_losses
from ._objective import exact_head_grads as exact_head_grads
from ._objective import local_objective as local_objective

ESTIMATORS: dict[str, type[AbstractEstimator]] = {
    "bp": BP,
    "l-bp": LocalBP,
    "lg-bp": LocalGreedyBP,
    "fg-w": FGW,
    "fg-a": FGA,
    "lg-fg-w": LGFGW,
    "lg-fg-a": LGFGA,
    "fa": FA,
    "l-fa": LocalFA,
    "lg-fa": LocalGreedyFA,
    "dfa": DFA,
    "dkp": DKP,
    "fdfa": FDFA,
}


def estimator_options(name: str) -> tuple[str, ...]:
    """The constructor options of the estimator called ``name``."""
    return tuple(f.name for f in dataclasses.fields(_lookup(name)))


def _lookup(name: str) -> type[AbstractEstimator]:
    if name not in ESTIMATORS:
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(ESTIMATORS)}")
    return ESTIMATORS[name]


def make_estimator(name: str, **options) -> AbstractEstimator:
    """The estimator called ``name`` configured with ``options`` (unknown options are an error)."""
    cls = _lookup(name)
    valid = estimator_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"method {name!r} has no option(s) {', '.join(unknown)}; valid options: "
            f"{', '.join(valid)}"
        )
    return cls(**options)


def parse_method(spec: str) -> tuple[str, dict]:
    """Splits ``"NAME"`` or ``"NAME:KEY=VALUE,KEY=VALUE"`` into the method name and its options
    (values read as JSON where they parse: ``fg-a:shared=true,num_samples=4``), checking both."""
    name, _, rest = spec.partition(":")
    options = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"method spec {spec!r}: expected KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    make_estimator(name, **options)  # raises for an unknown name, option or value
    return name, options


__all__ = [
    "AbstractEstimator",
    "Batch",
    "Diagnostics",
    "BP",
    "DFA",
    "direct_feedback_grads",
    "output_error",
    "DKP",
    "dkp_feedback_grads",
    "FA",
    "LocalFA",
    "LocalGreedyFA",
    "feedback_alignment_grads",
    "FDFA",
    "fdfa_feedback_grads",
    "fdfa_feedback_targets",
    "FGA",
    "LGFGA",
    "activity_directions",
    "activity_grads",
    "activity_tangents",
    "FGW",
    "LGFGW",
    "weight_grads",
    "LocalBP",
    "LocalGreedyBP",
    "NOISES",
    "NoisyBP",
    "block_losses",
    "exact_head_grads",
    "local_objective",
    "ESTIMATORS",
    "estimator_options",
    "make_estimator",
    "parse_method",
]
