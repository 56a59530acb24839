"""Layers and networks shared by the discrete (jvp) and continuous (Diffrax) time domains."""

from ._conv import Conv2d as Conv2d
from ._conv import FlatDense as FlatDense
from ._layer import AbstractLayer as AbstractLayer
from ._layer import Dense as Dense
from ._layer import identity as identity
from ._layer import relu as relu
from ._mixer import OBJECTIVES as OBJECTIVES
from ._mixer import AbstractMixerLayer as AbstractMixerLayer
from ._mixer import GroupedLinear as GroupedLinear
from ._mixer import Readout as Readout
from ._mixer import ReplicatedHead as ReplicatedHead
from ._mixer import TokenMixing as TokenMixing
from ._mixer import TokenwiseLinear as TokenwiseLinear
from ._mixer import local_norm as local_norm
from ._mixer import patchify as patchify
from ._network import Network as Network
from ._network import Trace as Trace
from ._norm import BatchNorm as BatchNorm
from ._norm import BatchStats as BatchStats
from ._registry import ENTRY_POINT_GROUP as ENTRY_POINT_GROUP
from ._registry import architecture as architecture
from ._registry import architectures as architectures
from ._registry import make_network as make_network
from ._registry import register_architecture as register_architecture

__all__ = [
    "Conv2d",
    "FlatDense",
    "AbstractLayer",
    "Dense",
    "identity",
    "relu",
    "OBJECTIVES",
    "AbstractMixerLayer",
    "GroupedLinear",
    "Readout",
    "ReplicatedHead",
    "TokenMixing",
    "TokenwiseLinear",
    "local_norm",
    "patchify",
    "Network",
    "Trace",
    "BatchNorm",
    "BatchStats",
    "ENTRY_POINT_GROUP",
    "architecture",
    "architectures",
    "make_network",
    "register_architecture",
]
