"""eqprop_core: energy-based recurrent models, fixed-point solvers and spectral normalization.

Depends on nothing else in this project; `theory` is the independent witness that checks it.
"""

from __future__ import annotations

from .activations import ACTIVATIONS, Activation, get_activation
from .bptt import bptt_gradients, unrolled_loss
from .conv import (
    ConvEqProp,
    circular_conv_matrix,
    conv_operator_norm,
    conv_singular_values,
    reshaped_kernel_norm,
)
from .event_driven import (
    SCHEMES,
    EventStats,
    asynchronous_iteration,
    event_driven_equilibrium,
    lazy_iteration,
    synchronous_iteration,
)
from .gdd import (
    GDD_ESTIMATORS,
    PrimitiveModel,
    StepAgreement,
    StepUpdates,
    bptt_step_gradients,
    ep_step_updates,
    gdd_agreement,
)
from .gradients import (
    ESTIMATORS,
    EPGradients,
    PhaseNotConverged,
    ep_gradients,
    nudge_schedule,
    nudge_surrogate,
    nudged_map,
    smallest_usable_beta,
)
from .hardware import (
    compose,
    fake_quantize,
    neuron_noise,
    quantization_step,
    quantize_states,
    quantize_weights,
)
from .layered import LayeredEqProp, layer_slices, path_graph_norm
from .model import EquilibriumNotConverged, LoopedMLP, default_tolerance
from .solvers import SOLVERS, Outcome, SolverStats, get_solver
from .spectral import certified_spectral_norm, spectrally_normalize

__all__ = [
    "ACTIVATIONS",
    "SCHEMES",
    "EventStats",
    "asynchronous_iteration",
    "event_driven_equilibrium",
    "lazy_iteration",
    "synchronous_iteration",
    "ESTIMATORS",
    "Activation",
    "EPGradients",
    "GDD_ESTIMATORS",
    "PrimitiveModel",
    "StepAgreement",
    "StepUpdates",
    "bptt_step_gradients",
    "ep_step_updates",
    "gdd_agreement",
    "PhaseNotConverged",
    "bptt_gradients",
    "ep_gradients",
    "nudge_schedule",
    "smallest_usable_beta",
    "nudge_surrogate",
    "nudged_map",
    "unrolled_loss",
    "EquilibriumNotConverged",
    "ConvEqProp",
    "compose",
    "fake_quantize",
    "neuron_noise",
    "quantization_step",
    "quantize_states",
    "quantize_weights",
    "LayeredEqProp",
    "circular_conv_matrix",
    "conv_operator_norm",
    "conv_singular_values",
    "reshaped_kernel_norm",
    "LoopedMLP",
    "layer_slices",
    "path_graph_norm",
    "SOLVERS",
    "Outcome",
    "SolverStats",
    "certified_spectral_norm",
    "default_tolerance",
    "get_activation",
    "get_solver",
    "spectrally_normalize",
]
