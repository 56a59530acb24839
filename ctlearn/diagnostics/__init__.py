"""Diagnostics of estimators: repeated sampling, angles to the true gradient."""

from ._sampling import sample_estimates as sample_estimates
from ._sampling import tree_cosine as tree_cosine
