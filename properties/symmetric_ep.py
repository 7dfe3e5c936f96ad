"""Symmetric-nudge EP against the implicit gradient and against finite differences of the
model's loss (track 9; the theorem, the β and the bounds are derived in the track's docstring):
the drawn symmetric problems, the directional metrics along a random unit direction of all raw
parameters, and the asymmetric models (‖W − Wᵀ‖/‖W + Wᵀ‖ ≥ 0.3) on which EP's limit is not the
gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from .directional_derivative import directional_derivative, inner, norm, unit_direction
from .gradients import READOUT_PARAMETERS, GradientProblem, gradient_models
from .strategies import ModelSpec
from .tolerances import SMALL_BETA

ASYMMETRY = 0.3  # the control's minimum ‖W − Wᵀ‖/‖W + Wᵀ‖


def directional_metrics(problem: GradientProblem) -> dict[str, float]:
    """FD directional derivative vs EP at SMALL_BETA (check) and 1e-3 (issue claim), and vs the
    implicit gradient (how good the FD itself is)."""
    v = unit_direction(problem.model, problem.spec.seed + 3)
    fd = directional_derivative(problem, v)
    small, stated = problem.ep(SMALL_BETA), problem.ep(1e-3)
    return {
        "fd_vs_ep": abs(fd - inner(small, v)) / norm(small),
        "stated": abs(fd - inner(stated, v)) / abs(fd),
        "fd_vs_implicit": abs(fd - inner(problem.implicit, v)) / norm(problem.implicit),
        "projection": abs(inner(problem.implicit, v)) / norm(problem.implicit),
    }


def symmetric_problems(spectral_norm: bool | None = None) -> SearchStrategy[ModelSpec]:
    return gradient_models(symmetric=True, spectral_norm=spectral_norm)


@st.composite
def asymmetric_models(draw: st.DrawFn) -> ModelSpec:
    """gradient_models with W ≠ Wᵀ and ‖W − Wᵀ‖/‖W + Wᵀ‖ ≥ ASYMMETRY."""
    spec = draw(gradient_models(symmetric=False))
    W = spec.build().W.detach().numpy()
    assume(np.linalg.norm(W - W.T) >= ASYMMETRY * np.linalg.norm(W + W.T))
    return spec


def small_beta_error(problem: GradientProblem) -> float:
    """EP at SMALL_BETA vs the implicit gradient: the worst per-parameter relative error."""
    return problem.error(SMALL_BETA).worst_relative_error


def small_beta_cosine_gap(problem: GradientProblem) -> float:
    """EP at SMALL_BETA vs the implicit gradient: the worst per-parameter 1 − cosine."""
    return 1.0 - problem.error(SMALL_BETA).worst_cosine


def readout_error(problem: GradientProblem) -> float:
    """The readout V, c (explicit at h_0) vs the implicit gradient: worst relative error."""
    return problem.error(SMALL_BETA, keys=READOUT_PARAMETERS).worst_relative_error


def asymmetric_bias(problem: GradientProblem) -> dict[str, Any]:
    """What the control records of an asymmetric model: its asymmetry, EP's per-parameter
    relative errors at SMALL_BETA and 1e-3 and its worst cosine at SMALL_BETA."""
    return {
        "asymmetry": problem.asymmetry,
        f"relative_error_beta_{SMALL_BETA:g}": problem.error(SMALL_BETA).relative_error,
        "relative_error_beta_1e-3": problem.error(1e-3).relative_error,
        f"cosine_beta_{SMALL_BETA:g}": problem.error(SMALL_BETA).worst_cosine,
    }
