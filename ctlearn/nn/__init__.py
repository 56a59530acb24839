"""Layers and networks shared by the discrete (jvp) and continuous (Diffrax) time domains."""

from ._conv import Conv2d as Conv2d
from ._conv import FlatDense as FlatDense
from ._layer import AbstractLayer as AbstractLayer
from ._layer import Dense as Dense
from ._layer import identity as identity
from ._layer import relu as relu
from ._network import Network as Network
from ._network import Trace as Trace
from ._norm import BatchNorm as BatchNorm
from ._norm import BatchStats as BatchStats
