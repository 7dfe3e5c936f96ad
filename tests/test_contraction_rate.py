"""`properties.contraction_rate` (tracks 5 and 6): the measured rate of plain iteration is ρ(J*),
J* = diag(φ′(a*))W_eff — not ρ(W_eff) — and the exclusions are counted, not scored."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.errors import UnsatisfiedAssumption

from properties.contraction_rate import (
    RATE_TOLERANCE,
    convergence_rate,
    equilibrium_of,
    rate_deviation,
    rate_search,
)
from properties.strategies import ModelSpec

SPEC = ModelSpec(n_in=3, n_hidden=10, weight_scale=1.0, structure="gaussian", seed=0, gamma=0.95,
                 drive_scale=1.0)


def test_the_equilibrium_agrees_with_newton_and_its_spectrum_is_ordered() -> None:
    eq = equilibrium_of(SPEC)
    assert eq.newton_gap <= 1e-12  # track 5's bound on the reference h*
    assert eq.rho <= eq.norm <= eq.lipschitz <= SPEC.gamma + 1e-12


@pytest.mark.parametrize("start", ["gaussian", "huge"])
def test_the_measured_rate_is_rho_of_the_jacobian(start: str) -> None:
    eq = equilibrium_of(SPEC)
    h0 = (np.random.default_rng(0).standard_normal(10) if start == "gaussian"
          else np.full(10, 1e6))
    fit = convergence_rate(eq, h0)
    assert abs(fit.rate - eq.rho) / eq.rho <= 1e-5  # measured 5e-7
    assert fit.switch_step < fit.first_step  # the fit lies in the renormalized regime


def test_a_driven_model_tells_rho_of_J_star_from_rho_of_W() -> None:
    """Strong drive (mean φ′(a*) ≈ 0.39): the rate is ρ(J*) = 0.62, far from ρ(W_eff) = 0.99."""
    eq = equilibrium_of(SPEC.with_(drive_scale=5.0, gamma=0.99))
    fit = convergence_rate(eq, np.random.default_rng(1).standard_normal(10))
    assert abs(fit.rate - eq.rho) / eq.rho <= 1e-5
    assert abs(fit.rate - eq.rho_weight) / eq.rho_weight > 5 * RATE_TOLERANCE


def test_a_start_at_h_star_is_excluded_and_counted() -> None:
    eq = equilibrium_of(SPEC)
    assert convergence_rate(eq, eq.h_star) is None
    excluded: dict = {}
    with pytest.raises(UnsatisfiedAssumption):
        rate_deviation((SPEC, eq.h_star), excluded)
    assert excluded == {"start_at_h_star": 1}


def test_a_search_where_every_draw_is_excluded_is_unmeasured() -> None:
    case = (SPEC, equilibrium_of(SPEC).h_star)
    out = rate_search(st.just(case), rate_deviation, 5, seed=0)
    assert math.isnan(out.worst) and out.examples == 0
