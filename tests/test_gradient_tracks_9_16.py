"""The gradient measurements tracks 9, 10, 11, 15 and 16 share (`properties.directional_derivative`,
`bptt_truncation`, `scaling`, `sn_pullback`): each test asserts a number a wrong helper would
break."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import theory
from properties import GradientProblem, ModelSpec, as_numpy
from properties.bptt_truncation import TRUNCATION, banach_steps
from properties.directional_derivative import (
    FD_TOL,
    directional_derivative,
    inner,
    norm,
    unit_direction,
)
from properties.scaling import REGIME, ScalingProblem, energy_error
from properties.sn_pullback import vector_jacobian_product, without_sn


def spec(**changes) -> ModelSpec:
    base = ModelSpec(n_in=3, n_hidden=5, weight_scale=10.0, structure="gaussian", seed=3)
    return base.with_(**changes)


@pytest.mark.parametrize("L", [0.1, 0.5, 0.9, 0.95])
@pytest.mark.parametrize("n", [2, 8])
def test_banach_steps_is_the_smallest_T_meeting_the_truncation(L: float, n: int) -> None:
    T = banach_steps(L, n)
    bound = lambda t: L**t * math.sqrt(n) / (1 - L)  # noqa: E731
    assert bound(T) <= TRUNCATION
    assert T == 1 or bound(T - 1) > TRUNCATION


def test_banach_steps_refuses_a_non_contraction() -> None:
    # MeasurementFailed (a ValueError) naming the premise and the measured L: a failed check
    with pytest.raises(ValueError, match=r"certified contraction L: 1 \(needs in \[0, 1\)\)"):
        banach_steps(1.0, 4)


def test_unit_direction_has_unit_norm_and_depends_on_the_seed() -> None:
    model = spec().build()
    v, w = unit_direction(model, 0), unit_direction(model, 1)
    assert abs(norm(v) - 1.0) <= 1e-14
    assert abs(inner(v, w)) < 0.9  # two seeds, two directions


def test_finite_difference_matches_the_implicit_directional_derivative() -> None:
    problem = GradientProblem(spec(spectral_norm=True))
    v = unit_direction(problem.model, 7)
    fd = directional_derivative(problem, v)
    assert abs(fd - inner(problem.implicit, v)) <= FD_TOL * norm(problem.implicit)


def test_clone_without_sn_runs_the_same_matrix() -> None:
    model = spec(weight_scale=100.0).build()
    clone = without_sn(model)
    assert not clone.spectral_norm
    with torch.no_grad():
        gap = (clone.recurrent_weight() - model.recurrent_weight()).abs().max()
    assert float(gap) == 0.0


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_vjp_of_effective_weight_matches_the_hand_derived_pullback(symmetric: bool,
                                                                   scale: float) -> None:
    model = spec(symmetric=symmetric, weight_scale=scale).build()
    G = np.random.default_rng(0).standard_normal((5, 5))
    vjp = vector_jacobian_product(model, torch.as_tensor(G)).numpy()
    hand = theory.pull_back_to_raw(as_numpy(model), G)
    assert np.linalg.norm(vjp - hand) <= 1e-10 * np.linalg.norm(hand)


def test_ignoring_sn_in_the_pullback_is_far_off() -> None:
    """The premise of track 16's control: sym(G) is not the raw gradient under SN."""
    model = spec(weight_scale=10.0).build()
    G = np.random.default_rng(1).standard_normal((5, 5))
    hand = theory.pull_back_to_raw(as_numpy(model), G)
    naive = 0.5 * (G + G.T)
    assert np.linalg.norm(naive - hand) >= 1.0 * np.linalg.norm(hand)  # r = γ/σ ≈ 0.1


def test_energy_error_of_the_reference_itself_is_zero() -> None:
    problem = ScalingProblem(spec())
    problem._estimates[("symmetric", 0.5)] = {  # plant the reference as an "estimate"
        k: torch.as_tensor(v) for k, v in problem.implicit.items()}
    assert energy_error(problem, 0.5, "symmetric") == 0.0


def test_asymptotic_window_ends_at_beta_kappa_equal_rho() -> None:
    problem = ScalingProblem(spec(weight_scale=100.0, structure="spike", drive_scale=0.1))
    for estimator, order in (("one_sided", 1.0), ("symmetric", 2.0)):
        top = float(problem.window(estimator)[-1])
        assert top == pytest.approx(min(0.3, REGIME / problem.radius(estimator)))
        assert abs(problem.window_slope(estimator) - order) <= 0.02
    # κ₁ ≥ a, so the one-sided bias at its window's top is ≤ ρ (to first order)
    top = float(problem.window("one_sided")[-1])
    assert energy_error(problem, top, "one_sided") <= 1.2 * REGIME
