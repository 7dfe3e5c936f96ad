"""The measurements of tracks 13–15 (`properties.holomorphic`, `finite_nudge`, `directed`): unit
tests.

Each test asserts a number against a bound that a wrong window, a wrong unroll length, a wrong
Jacobian or a wrongly built directed model would violate.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import properties.directed as directed
import properties.finite_nudge as nudge
import properties.holomorphic as holomorphic
import theory
from eqprop_core import ep_gradients
from properties import ModelSpec, agreement, as_numpy
from properties.gradients import ENERGY_PARAMETERS
from theory.gradients import loss as true_loss

SPEC = ModelSpec(n_in=3, n_hidden=5, weight_scale=1.0, structure="gaussian", seed=3,
                 gamma=0.9, drive_scale=1.0)


# -- track 13: holomorphic EP ---------------------------------------------------------------------
@pytest.mark.parametrize("order", [1, 2, 4, 8])
def test_error_law_recovers_a_power_law_above_a_floor(order: int) -> None:
    """Synthetic error (|β|/R)^N + floor/|β|: the window avoids both ends, the slope is N."""
    def error_at(radius: float) -> float:
        return (radius / 0.3) ** order * (1 + (radius / 0.3) ** order) + 2e-14 / radius

    law = holomorphic.error_law(error_at, start=len(holomorphic.GRID) // 2)
    assert len(law.window) >= holomorphic.MIN_POINTS
    assert abs(law.slope - order) <= 0.02
    for radius in law.window:
        assert holomorphic.in_window(radius, law.seen[radius])


def test_error_law_reports_no_slope_without_a_window() -> None:
    law = holomorphic.error_law(lambda radius: 1e-15, start=5)  # exact to round-off everywhere
    assert law.window == [] and math.isnan(law.slope)


def test_real_circle_stand_in_at_four_points_is_symmetric_ep() -> None:
    """β_k = |β|cos(2πk/4) ∈ {β, 0, −β, 0}: the stand-in is exactly symmetric EP."""
    problem = holomorphic.HolomorphicProblem(SPEC)
    symmetric = problem.error(ep_gradients(problem.model, problem.x, problem.y, beta=0.05,
                                           estimator="symmetric", tol=holomorphic.TOL))
    assert abs(problem.real_circle_error(0.05, 4) - symmetric) <= 1e-9 * symmetric


def test_holomorphic_slope_on_one_model() -> None:
    problem = holomorphic.HolomorphicProblem(SPEC)
    laws = holomorphic.error_laws(problem, (2, 3))
    assert abs(laws[3].slope - 3) <= 0.05
    assert abs(laws[2].slope - 2) <= 0.05


# -- track 14: finite nudge -----------------------------------------------------------------------
@pytest.mark.parametrize("radius", [1.0, 1.2])
def test_no_unroll_when_the_phase_map_does_not_contract(radius: float) -> None:
    assert nudge.unroll_steps(radius) is None


def test_unroll_length_reaches_the_precision() -> None:
    k = nudge.unroll_steps(0.5)
    assert 0.5**k <= nudge.UNROLL_PRECISION < 0.5 ** (k - 1)
    assert nudge.unroll_steps(0.9999) == nudge.MAX_UNROLL


def test_phase_radius_at_zero_nudge_is_rho_of_the_free_jacobian() -> None:
    """With β = 0 the nudged Jacobian is theory's J* = diag(φ′(a*))W_eff."""
    model, x, y = SPEC.build(), SPEC.inputs(4), SPEC.labels(4)
    net = as_numpy(model)
    h = theory.equilibria(net, x.numpy())
    expected = max(theory.spectral_radius(theory.jacobian_at_equilibrium(hb, net.weight, a,
                                                                         "tanh"))
                   for hb, a in zip(h, net.drive(x)))
    assert abs(nudge.phase_radius(model, x, y, 0.0) - expected) <= 1e-10


def test_a_contractive_free_map_can_have_a_non_contracting_nudged_phase() -> None:
    """β = 0.5 adds −βVᵀ(diag p − ppᵀ)V to W_eff: plain iteration at h_β can stop contracting
    (track 14 then skips the unrolled check for that draw and relies on finite differences)."""
    spec = ModelSpec(n_in=2, n_hidden=7, weight_scale=10.0, structure="gaussian", seed=412,
                     gamma=0.9, drive_scale=0.1)
    model, x, y = spec.build(), spec.inputs(4), spec.labels(4)
    assert nudge.phase_radius(model, x, y, 0.0) <= 0.9
    assert nudge.phase_radius(model, x, y, nudge.BETA) >= 1.1
    update = ep_gradients(model, x, y, beta=nudge.BETA, estimator="one_sided", tol=nudge.TOL)
    assert nudge.directional_gap(model, x, y, "one_sided", update, seed=0)["gap"] <= nudge.FD_TOL


@pytest.mark.parametrize("estimator", ["one_sided", "symmetric"])
def test_surrogate_gradient_is_the_finite_nudge_update(estimator: str) -> None:
    model, x, y = SPEC.build(), SPEC.inputs(4), SPEC.labels(4)
    update = ep_gradients(model, x, y, beta=nudge.BETA, estimator=estimator, tol=nudge.TOL)
    total = nudge.surrogate_gradient(model, x, y, estimator, 200)
    assert agreement(total, update, keys=ENERGY_PARAMETERS).worst_relative_error <= 1e-10
    true = theory.implicit_gradients(as_numpy(model), x, y)
    assert agreement(update, true, keys=ENERGY_PARAMETERS).worst_relative_error >= 1e-3  # not ∇L


def test_one_sided_surrogate_lies_below_the_loss() -> None:
    model, x, y = SPEC.build(), SPEC.inputs(4), SPEC.labels(4)
    loss = true_loss(as_numpy(model), x, y)
    assert nudge.surrogate_value(model, x, y, "one_sided", 0.5) - loss <= -1e-4


# -- track 15: directed EP ------------------------------------------------------------------------
@pytest.mark.parametrize("asymmetry", [0.0, 0.3, 1.0])
def test_directed_model_has_the_requested_asymmetry(asymmetry: float) -> None:
    model = directed.directed_model(SPEC, skew_seed=7, asymmetry=asymmetry)
    assert not model.symmetric
    with torch.no_grad():
        w = model.recurrent_weight().numpy()
    measured = np.linalg.norm(w - w.T) / np.linalg.norm(w + w.T)
    assert abs(measured - asymmetry) <= 1e-12
    assert theory.spectral_norm(w) <= SPEC.gamma


def test_directed_bias_does_not_vanish_but_symmetric_does() -> None:
    skewed = directed.measure_one(SPEC, skew_seed=7, asymmetry=0.3)
    assert skewed["bias_limit"] >= 1e-2
    assert abs(skewed["bias_small"] / skewed["bias_large"] - 1) <= 1e-2
    straight = directed.measure_one(SPEC, skew_seed=7, asymmetry=0.0)
    assert straight["bias_limit"] <= 1e-8
    assert abs(directed.beta_slope(straight) - 2) <= 0.15
