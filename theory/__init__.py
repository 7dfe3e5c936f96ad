"""theory: what the mathematics predicts, computed independently with NumPy/SciPy in float64.

This package never imports eqprop_core: it is the witness the suite checks the code against.
"""

from __future__ import annotations

from . import (
    conv,  # circular convolutions as dense operators, their exact norms (track 22)
    golden,  # the NumPy golden reference (track 23): golden.ep_gradients, …
    layered,  # block-structured (layered) networks: theory.layered (track 21)
)
from .activations import NONLINEARITIES, nonlinearity
from .asynchronous import (
    MaxNormCertificate,
    conditioned_weights,
    gauss_seidel_iteration_matrix,
    max_norm_certificate,
    max_norm_lipschitz,
    perron_weights,
    residual_error_bound,
    weighted_max_norm,
)
from .banach import (
    a_posteriori_bound,
    a_priori_bound,
    a_priori_from_first_step,
    steps_to_tolerance,
)
from .energy import energy, energy_gradient, guaranteed_decrease
from .fixed_point import (
    CertifiedFixedPoint,
    NumpyFixedPoint,
    certified_fixed_point,
    distinct_points,
    find_fixed_point,
    fixed_point_map,
    iterate_map,
    step_rounding,
)
from .gradients import equilibria, implicit_gradients, pull_back_to_raw
from .network import Network
from .spectra import (
    jacobian_at_equilibrium,
    lipschitz_certificate,
    spectral_norm,
    spectral_radius,
)

__all__ = [
    "NONLINEARITIES",
    "MaxNormCertificate",
    "conditioned_weights",
    "gauss_seidel_iteration_matrix",
    "max_norm_certificate",
    "max_norm_lipschitz",
    "perron_weights",
    "residual_error_bound",
    "weighted_max_norm",
    "Network",
    "equilibria",
    "implicit_gradients",
    "pull_back_to_raw",
    "NumpyFixedPoint",
    "a_posteriori_bound",
    "a_priori_bound",
    "a_priori_from_first_step",
    "distinct_points",
    "energy",
    "energy_gradient",
    "CertifiedFixedPoint",
    "certified_fixed_point",
    "find_fixed_point",
    "step_rounding",
    "fixed_point_map",
    "golden",
    "layered",
    "conv",
    "guaranteed_decrease",
    "iterate_map",
    "jacobian_at_equilibrium",
    "lipschitz_certificate",
    "nonlinearity",
    "spectral_norm",
    "spectral_radius",
    "steps_to_tolerance",
]
