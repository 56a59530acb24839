"""Diagnostics of estimators: repeated sampling, angles to the true gradient, timing, memory,
floating-point work and per-op profiles."""

from ._angles import angle_degrees as angle_degrees
from ._angles import gradient_angles as gradient_angles
from ._fit import fit_power_law as fit_power_law
from ._flops import compiled_matmul_flops as compiled_matmul_flops
from ._memory import compiled_memory as compiled_memory
from ._ops import op_kind as op_kind
from ._ops import op_times as op_times
from ._ops import time_by_kind as time_by_kind
from ._sampling import sample_estimates as sample_estimates
from ._sampling import tree_cosine as tree_cosine
from ._timing import time_side_by_side as time_side_by_side
from ._variance import gradient_statistics as gradient_statistics
from ._variance import measured_variance as measured_variance
from ._variance import normalised_variance as normalised_variance
from ._variance import predicted_variance as predicted_variance
from ._variance import stack_leaves as stack_leaves
