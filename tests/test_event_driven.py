"""Event-driven and asynchronous dynamics (eqprop_core.event_driven) and the max-norm
certificate that makes them a theorem (theory.asynchronous)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import theory
from eqprop_core import (
    asynchronous_iteration,
    event_driven_equilibrium,
    lazy_iteration,
    synchronous_iteration,
)
from theory.asynchronous import (
    conditioned_weights,
    gauss_seidel_iteration_matrix,
    max_norm_certificate,
    max_norm_lipschitz,
    perron_weights,
    residual_error_bound,
    weighted_max_norm,
)

from .builders import build_model

TOL = 1e-12
F64 = torch.float64
# ‖W‖₂ = 0.95 exactly, yet one cyclic Gauss–Seidel sweep of h ↦ Wh has spectral radius ≈ 1.22.
GS_UNSTABLE = np.array([[-0.49204322, -0.49999858], [0.57456222, -0.74365723]])
GS_UNSTABLE = 0.95 * GS_UNSTABLE / np.linalg.norm(GS_UNSTABLE, 2)


def certified_problem(n: int = 6, batch: int = 3, seed: int = 0, l_w: float = 0.8):
    """(W, d, h0) with s·ρ(|W|) = l_w (a Perron-weighted max-norm contraction), tanh."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n, n))
    w *= l_w / theory.spectral_radius(np.abs(w))
    d = rng.standard_normal((batch, n))
    h0 = 3 * rng.standard_normal((batch, n))
    return (torch.as_tensor(w), torch.as_tensor(d), torch.as_tensor(h0))


def newton(w: torch.Tensor, d: torch.Tensor) -> np.ndarray:
    return np.stack([theory.find_fixed_point(w.numpy(), row, "tanh").h for row in d.numpy()])


# -- the schemes reach h* ----------------------------------------------------------------------
@pytest.mark.parametrize("solve, options", [
    (synchronous_iteration, {}),
    (lazy_iteration, {}),
    (lazy_iteration, {"threshold": 10.0, "shrink": 0.9}),
    (asynchronous_iteration, {"order": "random"}),
    (asynchronous_iteration, {"order": "cyclic"}),
    (asynchronous_iteration, {"order": "reverse"}),
])
def test_every_scheme_reaches_the_newton_fixed_point(solve, options) -> None:
    w, d, h0 = certified_problem()
    h, stats = solve(w, d, "tanh", h0, tol=TOL, **options)
    assert stats.all_converged and float(stats.residual.max()) <= TOL
    assert np.abs(h.numpy() - newton(w, d)).max() <= 1e-10


def test_synchronous_rounds_equal_plain_iteration() -> None:
    model = build_model(np.random.default_rng(1).standard_normal((5, 5)), spectral_norm=True)
    x = torch.randn(2, 4, dtype=F64)
    h0 = torch.randn(2, 5, dtype=F64)
    h, stats = event_driven_equilibrium(model, x, h0, scheme="synchronous", max_rounds=7)
    assert stats.steps == 7 and not stats.all_converged
    assert torch.allclose(h, model.trajectory(x, h0, 7)[-1], rtol=0, atol=1e-14)


def test_error_bound_holds_for_every_scheme() -> None:
    model = build_model(np.random.default_rng(2).standard_normal((6, 6)), spectral_norm=True)
    x = torch.randn(3, 4, dtype=F64)
    star, _ = model.equilibrium(x, tol=1e-14)
    for scheme in ("synchronous", "lazy", "asynchronous"):
        h, stats = event_driven_equilibrium(model, x, scheme=scheme, tol=1e-6)
        error = torch.linalg.vector_norm(h - star, dim=1)
        assert stats.error_bound is not None and (error <= stats.error_bound + 1e-15).all()


# -- accounting ------------------------------------------------------------------------------
def test_counts_are_exact() -> None:
    w, d, h0 = certified_problem(n=7, batch=4)
    _, lazy = lazy_iteration(w, d, "tanh", h0, tol=TOL, record=True)
    assert lazy.accounting_exact
    assert lazy.update_trace[-1] == int(lazy.updates.sum())
    changed = (lazy.history[1:] != lazy.history[:-1]).sum(dim=(0, 2))
    assert torch.equal(changed, lazy.updates)  # every counted update moved a neuron, no other
    assert lazy.history.shape == (int(lazy.rounds.max()) + 1, 4, 7)
    assert 0 < lazy.skipped_share < 1
    for solve in (synchronous_iteration, asynchronous_iteration):
        _, stats = solve(w, d, "tanh", h0, tol=TOL)
        assert torch.equal(stats.updates, stats.rounds * 7) and int(stats.skipped.sum()) == 0


def test_lazy_updates_only_the_neuron_that_is_off() -> None:
    w = torch.zeros(3, 3, dtype=F64)  # T(h) = tanh(d): h* = tanh(d), one round suffices
    d = torch.tensor([[0.3, -0.2, 0.5]], dtype=F64)
    h0 = torch.tanh(d).clone()
    h0[0, 1] += 0.7
    h, lazy = lazy_iteration(w, d, "tanh", h0, tol=TOL)
    _, sync = synchronous_iteration(w, d, "tanh", h0, tol=TOL)
    assert (int(lazy.updates[0]), int(lazy.skipped[0]), int(lazy.rounds[0])) == (1, 2, 1)
    assert (int(sync.updates[0]), int(sync.rounds[0])) == (3, 1)
    assert torch.equal(h, torch.tanh(d)) and lazy.extra["columns_applied"] == 1


def test_frozen_threshold_stalls_above_the_tolerance() -> None:
    w, d, h0 = certified_problem()
    _, stats = lazy_iteration(w, d, "tanh", h0, tol=TOL, threshold=1e-3, shrink=1.0)
    assert not stats.all_converged and bool(stats.stalled.all())
    assert float(stats.residual_max.max()) <= 1e-3  # every pending change is below θ …
    assert float(stats.residual.min()) > TOL  # … and yet the tolerance is missed


def test_maintained_preactivations_do_not_drift() -> None:
    w, d, h0 = certified_problem(n=10, l_w=0.95)
    for solve in (lazy_iteration, asynchronous_iteration):
        _, stats = solve(w, d, "tanh", h0, tol=TOL)
        assert stats.preactivation_drift <= 1e-13


# -- what the theorem says, and where its premise fails ---------------------------------------
def test_a_gauss_seidel_sweep_contracts_in_the_weighted_max_norm() -> None:
    w, d, h0 = certified_problem(n=8, batch=1, l_w=0.9)
    weights, l_w = conditioned_weights(w.numpy(), "tanh")
    star = newton(w, d)
    _, stats = asynchronous_iteration(w, d, "tanh", h0, tol=TOL, order="random", seed=3,
                                      record=True)
    errors = weighted_max_norm(stats.history.numpy()[:, 0] - star[0], weights)
    k = int(np.flatnonzero(errors > 1e-9)[-1])  # above round-off
    assert (errors[1 : k + 1] <= l_w * errors[:k] * (1 + 1e-12)).all()


def test_cyclic_gauss_seidel_cycles_on_a_two_norm_contraction() -> None:
    assert abs(theory.spectral_norm(GS_UNSTABLE) - 0.95) <= 1e-12
    radius = theory.spectral_radius(gauss_seidel_iteration_matrix(GS_UNSTABLE))
    assert radius > 1.2 and not max_norm_certificate(GS_UNSTABLE, "tanh").certified
    w, d = torch.as_tensor(GS_UNSTABLE), torch.zeros(1, 2, dtype=F64)
    h0 = torch.full((1, 2), 0.5, dtype=F64)
    _, cyclic = asynchronous_iteration(w, d, "tanh", h0, tol=TOL, order="cyclic", max_rounds=500)
    _, sync = synchronous_iteration(w, d, "tanh", h0, tol=TOL)
    assert sync.all_converged and not cyclic.all_converged
    assert float(cyclic.residual[0]) > 0.1  # a cycle, not slow convergence


def test_orders_reach_different_fixed_points_without_a_contraction() -> None:
    w = torch.tensor([[0.0, -2.0], [-2.0, 0.0]], dtype=F64)
    d, h0 = torch.zeros(1, 2, dtype=F64), torch.full((1, 2), 0.5, dtype=F64)
    h_cyclic, s1 = asynchronous_iteration(w, d, "tanh", h0, tol=TOL, order="cyclic")
    h_reverse, s2 = asynchronous_iteration(w, d, "tanh", h0, tol=TOL, order="reverse")
    assert s1.all_converged and s2.all_converged
    p = 0.9575040240772
    assert np.allclose(h_cyclic.numpy(), [[-p, p]], atol=1e-9)
    assert np.allclose(h_reverse.numpy(), [[p, -p]], atol=1e-9)


# -- the certificate ------------------------------------------------------------------------
def induced_norm_by_vertices(a: np.ndarray, w: np.ndarray) -> float:
    """max ‖Av‖_w over the vertices v = w∘σ, σ ∈ {±1}ⁿ, of the unit ‖·‖_w ball (brute force)."""
    return max(float(weighted_max_norm(a @ (w * np.array(sigma)), w))
               for sigma in itertools.product((-1.0, 1.0), repeat=a.shape[0]))


@pytest.mark.parametrize("seed", range(4))
def test_max_norm_lipschitz_equals_the_brute_force_induced_norm(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((5, 5))
    for w in (np.ones(5), rng.uniform(0.1, 2.0, 5), perron_weights(a)):
        assert abs(max_norm_lipschitz(a, "tanh", w) - induced_norm_by_vertices(a, w)) <= 1e-12
    assert abs(max_norm_lipschitz(a, "tanh") - np.linalg.norm(a, np.inf)) <= 1e-12
    assert abs(max_norm_lipschitz(a, "sigmoid") - 0.25 * np.linalg.norm(a, np.inf)) <= 1e-12


@pytest.mark.parametrize("seed", range(4))
def test_perron_weights_attain_rho_of_abs_w(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((6, 6))
    rho = theory.spectral_radius(np.abs(a))
    assert abs(max_norm_lipschitz(a, "tanh", perron_weights(a)) - rho) <= 1e-9
    for _ in range(20):  # Collatz–Wielandt: no weighting beats ρ(|W|)
        assert max_norm_lipschitz(a, "tanh", rng.uniform(0.01, 1.0, 6)) >= rho - 1e-12
    cert = max_norm_certificate(a, "tanh")
    assert cert.l_weighted <= cert.l_inf + 1e-12 and cert.rho_abs == pytest.approx(rho)


def test_perron_weights_of_a_reducible_matrix_are_positive() -> None:
    a = np.diag([0.9, -0.3, 0.0])
    w = perron_weights(a)
    assert (w > 0).all() and abs(max_norm_lipschitz(a, "tanh", w) - 0.9) <= 1e-9


def test_the_certificate_bounds_the_map_on_random_pairs() -> None:
    rng = np.random.default_rng(5)
    a = rng.standard_normal((6, 6)) * 0.3
    d = rng.standard_normal(6)
    for w in (np.ones(6), perron_weights(a)):
        L = max_norm_lipschitz(a, "tanh", w)
        for _ in range(200):
            x, y = rng.standard_normal(6), rng.standard_normal(6) * rng.choice([1e-4, 1.0])
            gap = theory.fixed_point_map(x, a, d, "tanh") - theory.fixed_point_map(y, a, d,
                                                                                    "tanh")
            assert weighted_max_norm(gap, w) <= L * weighted_max_norm(x - y, w) * (1 + 1e-12)


def test_conditioned_weights_keep_a_margin() -> None:
    rng = np.random.default_rng(6)
    a = np.diag(rng.uniform(-0.8, 0.8, 5))  # reducible: tight Perron weights would be ~1e-12
    w, l_w = conditioned_weights(a, "tanh")
    s_rho = theory.spectral_radius(np.abs(a))
    assert l_w <= (1 + s_rho) / 2 + 1e-12 and w.min() >= 1e-3
    with pytest.raises(ValueError, match="rho"):
        conditioned_weights(2 * np.eye(2), "tanh")


def test_gauss_seidel_matrix_matches_a_brute_force_sweep() -> None:
    rng = np.random.default_rng(7)
    a = rng.standard_normal((5, 5))
    order = [3, 0, 4, 1, 2]
    sweep = np.empty((5, 5))
    for j in range(5):
        e = np.eye(5)[j].copy()
        for i in order:  # linear Gauss–Seidel: e_i ← (W e)_i with the latest e
            e[i] = a[i] @ e
        sweep[:, j] = e
    assert np.abs(gauss_seidel_iteration_matrix(a, order) - sweep).max() <= 1e-12
    with pytest.raises(ValueError, match="permutation"):
        gauss_seidel_iteration_matrix(a, [0, 0, 1, 2, 3])


def test_residual_error_bound() -> None:
    assert residual_error_bound(0.5, 1e-3) == pytest.approx(2e-3)
    with pytest.raises(ValueError, match="L = 1.0"):
        residual_error_bound(1.0, 1e-3)


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("options, match", [
    ({"threshold": 0.0}, "threshold"),
    ({"threshold": -1.0}, "threshold"),
    ({"threshold": math.nan}, "threshold"),
    ({"shrink": 0.0}, "shrink"),
    ({"shrink": 1.5}, "shrink"),
    ({"tol": 0.0}, "tol"),
    ({"tol": math.inf}, "tol"),
    ({"max_rounds": 0}, "max_rounds"),
])
def test_lazy_refuses_bad_options(options: dict, match: str) -> None:
    w, d, h0 = certified_problem()
    with pytest.raises(ValueError, match=match):
        lazy_iteration(w, d, "tanh", h0, **{"tol": TOL, **options})


def test_shapes_and_values_are_checked() -> None:
    w, d, h0 = certified_problem(n=4, batch=2)
    with pytest.raises(ValueError, match="square"):
        lazy_iteration(w[:, :3], d, "tanh", h0, tol=TOL)
    with pytest.raises(ValueError, match=r"drive must have shape \(batch, 4\)"):
        lazy_iteration(w, d[:, :3], "tanh", h0, tol=TOL)
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 4\)"):
        asynchronous_iteration(w, d, "tanh", h0[:1], tol=TOL)
    bad = h0.clone()
    bad[0, 0] = math.nan
    with pytest.raises(ValueError, match="h0 contains non-finite"):
        synchronous_iteration(w, d, "tanh", bad, tol=TOL)
    with pytest.raises(ValueError, match="'zigzag'"):
        asynchronous_iteration(w, d, "tanh", h0, tol=TOL, order="zigzag")
    with pytest.raises(ValueError, match="'relu'"):
        lazy_iteration(w, d, "relu", h0, tol=TOL)


def test_model_wrapper_refuses_bad_input() -> None:
    model = build_model(np.eye(3) * 0.5)
    with pytest.raises(ValueError, match="'jacobi'"):
        event_driven_equilibrium(model, torch.zeros(1, 4, dtype=F64), scheme="jacobi")
    with pytest.raises(ValueError, match=r"h0 must have shape \(1, 3\)"):
        event_driven_equilibrium(model, torch.zeros(1, 4, dtype=F64),
                                 torch.zeros(2, 3, dtype=F64))
    with pytest.raises(ValueError, match="x must have shape"):
        event_driven_equilibrium(model, torch.zeros(1, 5, dtype=F64))
    with pytest.raises(ValueError, match="non-finite"):
        event_driven_equilibrium(model, torch.full((1, 4), math.nan, dtype=F64))


def test_certificate_refuses_bad_matrices() -> None:
    with pytest.raises(ValueError, match="square"):
        max_norm_certificate(np.ones((2, 3)), "tanh")
    with pytest.raises(ValueError, match="non-finite"):
        max_norm_lipschitz(np.array([[np.nan]]), "tanh")
    with pytest.raises(ValueError, match="weights must be finite and > 0"):
        max_norm_lipschitz(np.eye(2), "tanh", np.array([1.0, 0.0]))


@pytest.mark.parametrize("order", ["random", "cyclic"])
def test_huge_starts_leave_no_cancellation_error(order: str) -> None:
    # From |h0| ~ 1e5 the maintained a would keep an absolute error ~ε·1e5 after the states
    # collapse to |h| ≤ 1; the refresh removes it, so each sweep still contracts by L_w.
    w, d, _ = certified_problem(n=2, batch=1, seed=4, l_w=0.5)
    h0 = torch.tensor([[1.2573e5, -1.321e5]], dtype=F64)
    weights, l_w = conditioned_weights(w.numpy(), "tanh")
    star = newton(w, d)
    _, stats = asynchronous_iteration(w, d, "tanh", h0, tol=TOL, order=order, record=True)
    errors = weighted_max_norm(stats.history.numpy()[:, 0] - star[0], weights)
    scored = errors[1:] > 1e-13
    assert (errors[1:][scored] <= l_w * errors[:-1][scored] + 1e-14).all()
    assert stats.extra["refreshes"] >= 1
