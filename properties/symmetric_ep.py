"""Symmetric-nudge EP against the implicit gradient and against finite differences of the
model's loss (track 9; the theorem, the β and the bounds are derived in the track's docstring):
the drawn symmetric problems, the directional metrics along a random unit direction of all raw
parameters, and the asymmetric models (‖W − Wᵀ‖/‖W + Wᵀ‖ ≥ 0.3) on which EP's limit is not the
gradient.
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from .directional_derivative import directional_derivative, inner, norm, unit_direction
from .gradients import GradientProblem, gradient_models
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
