"""Every continuous rule by the name of its discrete estimator: ``RULES`` has the keys of
``ctlearn.estimators.ESTIMATORS``, so each discrete method has its continuous twin."""

from __future__ import annotations

import dataclasses

from ._rule import AbstractRule
from ._rule_activity import FGARule, LGFGARule
from ._rule_direct import DFARule, DKPRule, FDFARule
from ._rule_feedback import FARule, LFARule, LGFARule
from ._rule_gradient import GradientFlow, LocalGradientFlow, LocalGreedyGradientFlow
from ._rule_weight import FGWRule, LGFGWRule

RULES: dict[str, type[AbstractRule]] = {
    "bp": GradientFlow,
    "l-bp": LocalGradientFlow,
    "lg-bp": LocalGreedyGradientFlow,
    "fg-w": FGWRule,
    "fg-a": FGARule,
    "lg-fg-w": LGFGWRule,
    "lg-fg-a": LGFGARule,
    "fa": FARule,
    "l-fa": LFARule,
    "lg-fa": LGFARule,
    "dfa": DFARule,
    "dkp": DKPRule,
    "fdfa": FDFARule,
}


def rule_options(name: str) -> tuple[str, ...]:
    """The constructor options of the continuous rule called ``name`` (``lr`` among them)."""
    return tuple(f.name for f in dataclasses.fields(_lookup(name)))


def _lookup(name: str) -> type[AbstractRule]:
    if name not in RULES:
        raise ValueError(f"unknown rule {name!r}; valid rules: {', '.join(RULES)}")
    return RULES[name]


def make_rule(name: str, lr: float, **options) -> AbstractRule:
    """The continuous twin of the discrete method ``name`` with learning rate ``lr`` (η, in
    1 / time unit) and ``options`` (unknown options are an error naming the valid ones)."""
    cls = _lookup(name)
    valid = rule_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"rule {name!r} has no option(s) {', '.join(unknown)}; valid options: "
            f"{', '.join(valid)}"
        )
    return cls(lr=lr, **options)
