"""ctlearn: learning without backpropagation, in continuous and discrete time."""

from . import estimators as estimators
from . import losses as losses
from . import nn as nn

__version__ = "0.1.0"
