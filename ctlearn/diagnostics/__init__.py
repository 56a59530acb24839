"""Diagnostics of estimators: repeated sampling, angles to the true gradient, variances measured
and predicted, FDFA's feedback fixed point, timing, memory, floating-point work and per-op
profiles."""

from ._angles import angle_degrees as angle_degrees
from ._angles import gradient_angles as gradient_angles
from ._feedback import converged_feedback as converged_feedback
from ._fit import fit_power_law as fit_power_law
from ._flops import compiled_matmul_flops as compiled_matmul_flops
from ._layer_variance import first_layer_variance_terms as first_layer_variance_terms
from ._layer_variance import predicted_relative_variance as predicted_relative_variance
from ._layer_variance import relative_variance as relative_variance
from ._memory import compiled_memory as compiled_memory
from ._ops import op_kind as op_kind
from ._ops import op_times as op_times
from ._ops import time_by_kind as time_by_kind
from ._sampling import sample_estimates as sample_estimates
from ._sampling import tree_cosine as tree_cosine
from ._timing import time_side_by_side as time_side_by_side
from ._traced import layer_angles as layer_angles
from ._traced import normalised_variance_of as normalised_variance_of
from ._variance import gradient_statistics as gradient_statistics
from ._variance import measured_variance as measured_variance
from ._variance import normalised_variance as normalised_variance
from ._variance import predicted_variance as predicted_variance
from ._variance import stack_leaves as stack_leaves

__all__ = [
    "angle_degrees",
    "gradient_angles",
    "converged_feedback",
    "fit_power_law",
    "compiled_matmul_flops",
    "first_layer_variance_terms",
    "predicted_relative_variance",
    "relative_variance",
    "compiled_memory",
    "op_kind",
    "op_times",
    "time_by_kind",
    "sample_estimates",
    "tree_cosine",
    "time_side_by_side",
    "layer_angles",
    "normalised_variance_of",
    "gradient_statistics",
    "measured_variance",
    "normalised_variance",
    "predicted_variance",
    "stack_leaves",
]
