"""properties: hypothesis strategies and checks that turn measurement + prediction into evidence."""

from __future__ import annotations

from . import profiles  # noqa: F401  (registers the ci / dev / thorough profiles)
from .bounds import Bound, RelativeBound, at_least_bound, at_most_bound, declared_bounds
from .evidence import (
    Evidence,
    MeasurementFailed,
    at_least,
    at_most,
    holds,
    require_converged,
    within,
)
from .extract import NumpyModel, as_numpy
from .gradients import Agreement, GradientProblem, agreement, fitted_slope, gradient_models
from .search import MeasuredOnce, Search, SearchOutcome, find_example, worst_case
from .strategies import (
    ModelSpec,
    contractive_models,
    initial_states,
    inputs,
    noncontractive_models,
)

__all__ = [
    "Agreement",
    "Bound",
    "RelativeBound",
    "Search",
    "at_least_bound",
    "at_most_bound",
    "declared_bounds",
    "GradientProblem",
    "agreement",
    "fitted_slope",
    "gradient_models",
    "MeasuredOnce",
    "MeasurementFailed",
    "Evidence",
    "ModelSpec",
    "NumpyModel",
    "SearchOutcome",
    "as_numpy",
    "at_least",
    "at_most",
    "contractive_models",
    "find_example",
    "holds",
    "initial_states",
    "inputs",
    "noncontractive_models",
    "require_converged",
    "within",
    "worst_case",
]
