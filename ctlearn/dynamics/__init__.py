"""Continuous-time learning: perturbation processes, neuron models, plasticity rules, the
non-idealities of analog circuits, and the simulator that hands them to ``diffrax.diffeqsolve``."""

from ._activity_noise import AbstractFilteredNoise as AbstractFilteredNoise
from ._activity_noise import ActivityNoise as ActivityNoise
from ._activity_noise import ActivityNoiseState as ActivityNoiseState
from ._bound import BoundSimulator as BoundSimulator
from ._bound import prepare as prepare
from ._chips import AbstractChips as AbstractChips
from ._chips import ChipsState as ChipsState
from ._cost_noise import CostNoise as CostNoise
from ._crosscheck import AlignmentPoint as AlignmentPoint
from ._crosscheck import instantaneous_agreement as instantaneous_agreement
from ._crosscheck import integrated_alignment as integrated_alignment
from ._device_response import RESPONSES as RESPONSES
from ._device_response import AbstractResponse as AbstractResponse
from ._device_response import ConstantStep as ConstantStep
from ._device_response import ExpStep as ExpStep
from ._device_response import LinearStep as LinearStep
from ._device_response import SoftBounds as SoftBounds
from ._differentiator import Differentiator as Differentiator
from ._differentiator import DifferentiatorState as DifferentiatorState
from ._discrete_updates import DiscreteUpdates as DiscreteUpdates
from ._engine import Plan as Plan
from ._engine import pec_obstacle as pec_obstacle
from ._engine import plan as plan
from ._engine import refinement as refinement
from ._engine import stiff_rates as stiff_rates
from ._engine import tabulation_obstacle as tabulation_obstacle
from ._engine import waveform_obstacle as waveform_obstacle
from ._ensemble import EnsembleResult as EnsembleResult
from ._ensemble import ensemble_memory as ensemble_memory
from ._ensemble import simulate_ensemble as simulate_ensemble
from ._estimate_laws import bandwidth_chips as bandwidth_chips
from ._estimate_laws import chip_weights as chip_weights
from ._estimate_laws import code_cosine as code_cosine
from ._estimate_laws import first_order_cosine as first_order_cosine
from ._estimate_laws import grid_period as grid_period
from ._estimate_laws import sinusoid_cosine as sinusoid_cosine
from ._estimate_laws import slot_signs as slot_signs
from ._estimate_laws import time_multiplexed_cosine as time_multiplexed_cosine
from ._estimate_laws import walsh_cosine as walsh_cosine
from ._estimate_laws import walsh_signs as walsh_signs
from ._hardware import AbstractNonIdeality as AbstractNonIdeality
from ._high_pass import HighPass as HighPass
from ._high_pass import HighPassState as HighPassState
from ._injection import Injection as Injection
from ._measure import measure as measure
from ._mismatch import Mismatch as Mismatch
from ._mismatch import MismatchState as MismatchState
from ._neurons import AbstractNeurons as AbstractNeurons
from ._neurons import Instantaneous as Instantaneous
from ._neurons import Leaky as Leaky
from ._ou import IntegratedOU as IntegratedOU
from ._ou import IntegratedOUState as IntegratedOUState
from ._pcm_drift import PCMDrift as PCMDrift
from ._pcm_drift import pcm_drift_exponent as pcm_drift_exponent
from ._pec import HeunPEC as HeunPEC
from ._perturbation import AbstractClosedForm as AbstractClosedForm
from ._perturbation import AbstractPerturbation as AbstractPerturbation
from ._precision import Quantisation as Quantisation
from ._pulsed_device import DEVICE_PRESETS as DEVICE_PRESETS
from ._pulsed_device import PulsedDevice as PulsedDevice
from ._pulsed_device import PulsedDeviceState as PulsedDeviceState
from ._random_codes import RandomCodes as RandomCodes
from ._record import Recording as Recording
from ._record import record_presentation as record_presentation
from ._record_run import record_run as record_run
from ._rule import AbstractRule as AbstractRule
from ._rule import Signals as Signals
from ._rule_activity import FGARule as FGARule
from ._rule_activity import LGFGARule as LGFGARule
from ._rule_direct import DFARule as DFARule
from ._rule_direct import DKPRule as DKPRule
from ._rule_direct import FDFARule as FDFARule
from ._rule_feedback import FARule as FARule
from ._rule_feedback import LFARule as LFARule
from ._rule_feedback import LGFARule as LGFARule
from ._rule_gradient import GradientFlow as GradientFlow
from ._rule_gradient import LocalGradientFlow as LocalGradientFlow
from ._rule_gradient import LocalGreedyGradientFlow as LocalGreedyGradientFlow
from ._rule_mgd import MGDRule as MGDRule
from ._rule_weight import FGWRule as FGWRule
from ._rule_weight import LGFGWRule as LGFGWRule
from ._rules import RULES as RULES
from ._rules import make_rule as make_rule
from ._rules import rule_options as rule_options
from ._simulate import SimulationDiverged as SimulationDiverged
from ._simulate import SimulationResult as SimulationResult
from ._simulate import effective_learning_rate as effective_learning_rate
from ._simulate import run_presentations as run_presentations
from ._simulate import simulate as simulate
from ._simulator import Simulator as Simulator
from ._sinusoids import ALLOCATIONS as ALLOCATIONS
from ._sinusoids import Sinusoids as Sinusoids
from ._sinusoids import SinusoidsState as SinusoidsState
from ._spline import CubicSpline as CubicSpline
from ._spline import CubicSplineState as CubicSplineState
from ._state import PresentationArgs as PresentationArgs
from ._state import SimState as SimState
from ._state import split_state as split_state
from ._stream import Presentations as Presentations
from ._term import CircuitTerm as CircuitTerm
from ._time_multiplexed import TimeMultiplexed as TimeMultiplexed
from ._walsh_codes import WalshCodes as WalshCodes
from ._walsh_codes import walsh_order as walsh_order
from ._waveform import AbstractTabulatedTerm as AbstractTabulatedTerm
from ._waveform import WaveformRelaxation as WaveformRelaxation
from ._weight_drift import WeightDrift as WeightDrift

__all__ = [
    "PCMDrift",
    "pcm_drift_exponent",
    "AbstractResponse",
    "ConstantStep",
    "ExpStep",
    "LinearStep",
    "RESPONSES",
    "SoftBounds",
    "DEVICE_PRESETS",
    "PulsedDevice",
    "PulsedDeviceState",
    "bandwidth_chips",
    "chip_weights",
    "code_cosine",
    "first_order_cosine",
    "grid_period",
    "sinusoid_cosine",
    "slot_signs",
    "time_multiplexed_cosine",
    "walsh_cosine",
    "walsh_signs",
    "AbstractFilteredNoise",
    "ActivityNoise",
    "CostNoise",
    "ActivityNoiseState",
    "BoundSimulator",
    "prepare",
    "AlignmentPoint",
    "instantaneous_agreement",
    "integrated_alignment",
    "Differentiator",
    "DifferentiatorState",
    "DiscreteUpdates",
    "HighPass",
    "HighPassState",
    "MGDRule",
    "Plan",
    "pec_obstacle",
    "plan",
    "refinement",
    "stiff_rates",
    "tabulation_obstacle",
    "waveform_obstacle",
    "EnsembleResult",
    "ensemble_memory",
    "simulate_ensemble",
    "AbstractNonIdeality",
    "Injection",
    "measure",
    "Mismatch",
    "MismatchState",
    "AbstractNeurons",
    "Instantaneous",
    "Leaky",
    "IntegratedOU",
    "IntegratedOUState",
    "HeunPEC",
    "AbstractClosedForm",
    "AbstractPerturbation",
    "Quantisation",
    "Recording",
    "record_presentation",
    "record_run",
    "AbstractRule",
    "Signals",
    "FGARule",
    "LGFGARule",
    "DFARule",
    "DKPRule",
    "FDFARule",
    "FARule",
    "LFARule",
    "LGFARule",
    "GradientFlow",
    "LocalGradientFlow",
    "LocalGreedyGradientFlow",
    "FGWRule",
    "LGFGWRule",
    "RULES",
    "make_rule",
    "rule_options",
    "SimulationDiverged",
    "SimulationResult",
    "effective_learning_rate",
    "run_presentations",
    "simulate",
    "Simulator",
    "AbstractChips",
    "ChipsState",
    "RandomCodes",
    "TimeMultiplexed",
    "WalshCodes",
    "walsh_order",
    "ALLOCATIONS",
    "Sinusoids",
    "SinusoidsState",
    "CubicSpline",
    "CubicSplineState",
    "PresentationArgs",
    "SimState",
    "split_state",
    "Presentations",
    "CircuitTerm",
    "AbstractTabulatedTerm",
    "WaveformRelaxation",
    "WeightDrift",
]
