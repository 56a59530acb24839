"""ctlearn: learning without backpropagation, in continuous and discrete time."""

__version__ = "0.1.0"

from . import augment as augment
from . import data as data
from . import diagnostics as diagnostics
from . import estimators as estimators
from . import losses as losses
from . import nn as nn
from . import train as train
