"""theory: the independent witness, checked against hand values and finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize

import theory

# The positive root of tanh(2h) = h, by bracketing (a third method, neither Newton nor iteration).
TANH_2H_ROOT = scipy.optimize.brentq(lambda h: math.tanh(2 * h) - h, 0.5, 1.0, xtol=1e-15)


def rotation(theta: float) -> np.ndarray:
    return np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])


# -- spectra ----------------------------------------------------------------------------------
def test_spectral_norm_and_radius_of_a_diagonal_matrix() -> None:
    d = np.diag([3.0, -5.0, 0.5])
    assert abs(theory.spectral_norm(d) - 5.0) <= 1e-14
    assert abs(theory.spectral_radius(d) - 5.0) <= 1e-14


def test_spectral_norm_and_radius_of_a_scaled_rotation() -> None:
    r = 2.0 * rotation(0.7)  # complex eigenvalues 2e^{±0.7i}
    assert abs(theory.spectral_norm(r) - 2.0) <= 1e-14
    assert abs(theory.spectral_radius(r) - 2.0) <= 1e-14


def test_norm_and_radius_differ_for_a_non_normal_matrix() -> None:
    nilpotent = np.array([[0.0, 4.0], [0.0, 0.0]])
    assert abs(theory.spectral_norm(nilpotent) - 4.0) <= 1e-14
    assert theory.spectral_radius(nilpotent) <= 1e-14


def test_empty_matrix_has_zero_norm_and_radius() -> None:
    assert theory.spectral_norm(np.zeros((0, 0))) == 0.0
    assert theory.spectral_radius(np.zeros((0, 0))) == 0.0


def test_lipschitz_certificate_multiplies_the_slope_bound() -> None:
    w = np.diag([0.8, -0.3])
    assert abs(theory.lipschitz_certificate(w, "tanh") - 0.8) <= 1e-15
    assert abs(theory.lipschitz_certificate(w, "sigmoid") - 0.2) <= 1e-15


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_jacobian_matches_central_finite_differences(activation: str) -> None:
    rng = np.random.default_rng(0)
    n = 6
    w = rng.standard_normal((n, n))
    drive = rng.standard_normal(n)
    h = rng.uniform(-0.5, 0.5, n)
    eps = 1e-6
    fd = np.empty((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = eps
        fd[:, j] = (theory.fixed_point_map(h + e, w, drive, activation)
                    - theory.fixed_point_map(h - e, w, drive, activation)) / (2 * eps)
    jac = theory.jacobian_at_equilibrium(h, w, drive, activation)
    assert np.abs(jac - fd).max() <= 1e-8


def test_unknown_nonlinearity_is_refused() -> None:
    with pytest.raises(ValueError, match="'relu'"):
        theory.nonlinearity("relu")


# -- Banach bounds ----------------------------------------------------------------------------
def test_a_priori_bound_hand_values() -> None:
    np.testing.assert_array_equal(theory.a_priori_bound(0.5, np.array([0, 1, 2, 3]), 4.0),
                                  [4.0, 2.0, 1.0, 0.5])


def test_a_priori_from_first_step_hand_values() -> None:
    assert theory.a_priori_from_first_step(0.5, 3, 1.0) == 0.25  # 0.5³ / 0.5
    assert abs(theory.a_priori_from_first_step(0.9, 0, 2.0) - 20.0) <= 1e-12


def test_a_posteriori_bound_hand_values() -> None:
    assert theory.a_posteriori_bound(0.75, 2.0) == 6.0  # 0.75 / 0.25 · 2
    assert theory.a_posteriori_bound(0.0, 5.0) == 0.0


@pytest.mark.parametrize("L", [1.0, 1.5, -0.1, math.nan, math.inf])
@pytest.mark.parametrize(
    "bound",
    [lambda L: theory.a_priori_bound(L, 1, 1.0),
     lambda L: theory.a_priori_from_first_step(L, 1, 1.0),
     lambda L: theory.a_posteriori_bound(L, 1.0),
     lambda L: theory.steps_to_tolerance(L, 1.0, 1e-3)],
    ids=["a_priori", "from_first_step", "a_posteriori", "steps_to_tolerance"],
)
def test_banach_bounds_refuse_non_contractions(L: float, bound) -> None:
    with pytest.raises(ValueError, match=rf"L = {L!r}"):
        bound(L)


@pytest.mark.parametrize(
    ("L", "first_step", "tol", "k"),
    [(0.5, 1.0, 1e-3, 11), (0.5, 1.0, 0.5**10 / 0.5, 10), (0.1, 1.0, 1e-6, 7),
     (0.9, 1.0, 1e-6, 153), (0.5, 1e-4, 1e-3, 0), (0.0, 1.0, 1e-9, 1)],
)
def test_steps_to_tolerance_hand_values(L: float, first_step: float, tol: float, k: int) -> None:
    assert theory.steps_to_tolerance(L, first_step, tol) == k


def test_steps_to_tolerance_is_the_smallest_sufficient_k() -> None:
    for L in (0.2, 0.5, 0.9, 0.95, 0.99):
        for first_step in (0.03, 1.0, 7.0):
            for tol in (1e-3, 1e-8, 1e-12):
                k = theory.steps_to_tolerance(L, first_step, tol)
                assert L**k / (1 - L) * first_step <= tol
                assert k == 0 or L ** (k - 1) / (1 - L) * first_step > tol


def test_plain_iteration_obeys_the_a_priori_and_a_posteriori_bounds() -> None:
    rng = np.random.default_rng(3)
    w = rng.standard_normal((8, 8))
    w *= 0.9 / theory.spectral_norm(w)
    drive = rng.standard_normal(8)
    L = theory.lipschitz_certificate(w, "tanh")
    h_star = theory.find_fixed_point(w, drive, "tanh").h
    trajectory = theory.iterate_map(5.0 * rng.standard_normal(8), w, drive, "tanh", 60)
    errors = np.linalg.norm(trajectory - h_star, axis=1)
    k = np.arange(61)
    assert np.all(errors <= theory.a_priori_bound(L, k, errors[0]) + 1e-13)
    steps = np.linalg.norm(np.diff(trajectory, axis=0), axis=1)
    assert np.all(errors[1:] <= theory.a_posteriori_bound(L, steps) + 1e-13)
    assert np.all(errors <= theory.a_priori_from_first_step(L, k, steps[0]) + 1e-13)


# -- fixed points -----------------------------------------------------------------------------
def test_find_fixed_point_of_w_2i_from_a_positive_start() -> None:
    """W = 2I, drive 0: h = tanh(2h) has roots 0 and ±0.9575…; a positive start finds +."""
    found = theory.find_fixed_point(2.0 * np.eye(3), np.zeros(3), "tanh", np.full(3, 0.5))
    assert found.converged and found.residual <= 1e-14
    assert abs(TANH_2H_ROOT - 0.957504) <= 1e-6
    assert np.abs(found.h - TANH_2H_ROOT).max() <= 1e-12


def test_find_fixed_point_of_w_2i_finds_all_three_roots() -> None:
    w, drive = 2.0 * np.eye(1), np.zeros(1)
    roots = [theory.find_fixed_point(w, drive, "tanh", np.array([start])).h[0]
             for start in (-0.5, 0.0, 0.5)]
    assert abs(roots[0] + TANH_2H_ROOT) <= 1e-12
    assert roots[1] == 0.0
    assert abs(roots[2] - TANH_2H_ROOT) <= 1e-12


def test_find_fixed_point_reports_iterations_and_residual() -> None:
    rng = np.random.default_rng(5)
    w = rng.standard_normal((10, 10))
    w *= 0.95 / theory.spectral_norm(w)
    drive = rng.standard_normal(10)
    found = theory.find_fixed_point(w, drive, "tanh")
    residual = np.linalg.norm(found.h - theory.fixed_point_map(found.h, w, drive, "tanh"))
    assert found.converged and abs(residual - found.residual) <= 1e-15
    assert residual <= 1e-14
    assert found.iterations <= 15  # Newton: quadratic, not the ~600 steps of plain iteration


def test_energy_gradient_vanishes_at_the_witness_fixed_point() -> None:
    rng = np.random.default_rng(6)
    a = rng.standard_normal((7, 7))
    w = a + a.T
    w *= 0.9 / theory.spectral_norm(w)
    drive = rng.standard_normal(7)
    h = theory.find_fixed_point(w, drive, "tanh").h
    assert np.abs(theory.energy_gradient(h, w, drive, "tanh")).max() <= 1e-12
    off = 0.9 * h  # still inside (−1, 1), no longer a fixed point
    assert np.abs(theory.energy_gradient(off, w, drive, "tanh")).max() >= 1e-2


def test_distinct_points_merges_within_tolerance_only() -> None:
    points = [np.array([0.0]), np.array([5e-7]), np.array([0.9575]), np.array([-0.9575])]
    kept = theory.distinct_points(points, 1e-6)
    assert len(kept) == 3
    assert len(theory.distinct_points(points, 1e-9)) == 4
