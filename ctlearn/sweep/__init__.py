"""Resumable parameter sweeps: a grid of settings times seeds, evaluated chunk by chunk by a
function the caller supplies (typically a vmapped ensemble), with the results written as JSON and
CSV tables after every chunk."""

from ._analog import IDEAL as IDEAL
from ._analog import KINDS as KINDS
from ._analog import SWEEPABLE as SWEEPABLE
from ._analog import AnalogBase as AnalogBase
from ._analog import AnalogSweep as AnalogSweep
from ._discrete_bp import discrete_bp as discrete_bp
from ._discrete_bp import train_discrete_bp as train_discrete_bp
from ._run import run_sweep as run_sweep
from ._spec import Member as Member
from ._spec import SweepSpec as SweepSpec
from ._spec import load_spec as load_spec
from ._study import run_study as run_study
from ._table import aggregate as aggregate
from ._table import load_table as load_table
from ._table import markdown_table as markdown_table

__all__ = [
    "IDEAL",
    "KINDS",
    "SWEEPABLE",
    "AnalogBase",
    "AnalogSweep",
    "discrete_bp",
    "train_discrete_bp",
    "run_sweep",
    "Member",
    "SweepSpec",
    "load_spec",
    "run_study",
    "aggregate",
    "load_table",
    "markdown_table",
]
