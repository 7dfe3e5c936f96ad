"""Fixed-point solvers: tolerance reached, agreement with the scipy witness, certified stops,
and honest reporting of non-convergence (stats, warning, never an exception).
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
import torch

import theory
from eqprop_core import SOLVERS, EquilibriumNotConverged, LoopedMLP, get_solver
from eqprop_core.solvers import Outcome, SolverStats, fixed_point_iteration
from properties import as_numpy

from .builders import build_model, inputs, random_symmetric

SOLVER_NAMES = ["fixed_point", "damped", "anderson"]


def witness_fixed_points(model: LoopedMLP, x: torch.Tensor) -> np.ndarray:
    """h* per row of x by theory's Newton solver (float64, scipy), each certified converged."""
    numpy_model = as_numpy(model)
    drive = numpy_model.drive(x)
    rows = []
    for d in drive:
        found = theory.find_fixed_point(numpy_model.weight, d, numpy_model.activation)
        assert found.converged, found.residual
        rows.append(found.h)
    return np.stack(rows)


def spectral_radius_at_equilibrium(model: LoopedMLP, x: torch.Tensor) -> list[float]:
    numpy_model = as_numpy(model)
    drive = numpy_model.drive(x)
    h_star = witness_fixed_points(model, x)
    return [
        theory.spectral_radius(
            theory.jacobian_at_equilibrium(h, numpy_model.weight, d, numpy_model.activation))
        for h, d in zip(h_star, drive, strict=True)
    ]


def oscillating_model() -> LoopedMLP:
    """W = −2I, no SN: h* is unique but unstable (J* ≈ −2), plain iteration 2-cycles."""
    return build_model(-2.0 * np.eye(5), spectral_norm=False, drive_scale=0.3)


def chaotic_model() -> LoopedMLP:
    """Asymmetric, skew-dominated W with ‖W‖₂ = 5, no SN: no solver settles."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((12, 12))
    w = a - a.T + 0.1 * rng.standard_normal((12, 12))
    return build_model(5.0 * w / np.linalg.norm(w, 2), n_in=3, symmetric=False,
                       spectral_norm=False, drive_scale=1.0, seed=1)


# -- reaching the fixed point ----------------------------------------------------------------
def test_float64_default_solve_reaches_1e_12_and_matches_theory(slow_contraction) -> None:
    model, x = slow_contraction
    h, stats = model.equilibrium(x)
    assert stats.all_converged
    assert stats.max_residual <= 1e-12
    assert float(np.abs(h.numpy() - witness_fixed_points(model, x)).max()) <= 1e-10


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_reported_residual_is_the_true_residual(solver: str, slow_contraction) -> None:
    model, x = slow_contraction
    h, stats = model.equilibrium(x, solver=solver, tol=1e-6)
    numpy_model = as_numpy(model)
    drive = numpy_model.drive(x)
    recomputed = [np.linalg.norm(theory.fixed_point_map(row, numpy_model.weight, d, "tanh") - row)
                  for row, d in zip(h.numpy(), drive, strict=True)]
    assert np.abs(stats.residual.numpy() - recomputed).max() <= 1e-14
    assert stats.max_residual <= 1e-6


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_all_three_solvers_agree(dtype: torch.dtype) -> None:
    model = build_model(random_symmetric(20, seed=3), spectral_norm=True, drive_scale=1.0,
                        dtype=dtype)
    x = inputs(6, dtype=dtype)
    solutions = {}
    for name in SOLVER_NAMES:
        h, stats = model.equilibrium(x, solver=name)
        assert stats.all_converged, stats.summary()
        solutions[name] = h
    # residual ≤ tol ⇒ ‖h − h*‖ ≤ tol/(1 − L) with L = 0.95: 20·tol apart at most.
    slack = 40 * (1e-12 if dtype == torch.float64 else 1e-5)
    for name in ("damped", "anderson"):
        assert float((solutions[name] - solutions["fixed_point"]).abs().max()) <= slack


def test_anderson_needs_at_most_half_the_steps_of_plain_iteration(slow_contraction) -> None:
    model, x = slow_contraction
    rho = spectral_radius_at_equilibrium(model, x)
    assert 0.9 <= max(rho) <= 0.96  # the premise: a slow contraction, ρ(J*) ≈ 0.95
    _, plain = model.equilibrium(x, solver="fixed_point")
    _, anderson = model.equilibrium(x, solver="anderson")
    assert plain.all_converged and anderson.all_converged
    assert 2 * anderson.steps <= plain.steps


def test_damping_slows_a_monotone_contraction(slow_contraction) -> None:
    model, x = slow_contraction
    _, plain = model.equilibrium(x, solver="fixed_point")
    _, damped = model.equilibrium(x, solver="damped", damping=0.5)
    assert damped.all_converged
    # the damped map contracts by (1 − α) + α·ρ: about twice as many steps at α = ½.
    assert 1.5 * plain.steps <= damped.steps <= 2.5 * plain.steps


def test_step_count_and_residual_on_a_scalar_contraction() -> None:
    """T(h) = h/2 + 1, h0 = 0: h_k = 2 − 2^{1−k}, ‖T(h_k) − h_k‖ = 2^{−k} exactly."""
    h0 = torch.zeros(1, 1, dtype=torch.float64)
    h, stats = fixed_point_iteration(lambda h: 0.5 * h + 1.0, h0, tol=2.0**-20, max_steps=100,
                                     lipschitz=0.5)
    # stops when the residual at h_20 is ≤ tol (21 map evaluations), returns h_21 = T(h_20).
    assert stats.steps == 21
    assert float(stats.residual[0]) == 2.0**-21
    assert float(2.0 - h[0, 0]) == 2.0**-20
    # the a-posteriori bound L/(1 − L)·‖h − h_prev‖ is tight for a linear map
    assert float(stats.error_bound[0]) == 2.0**-20


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_every_start_reaches_the_same_fixed_point(solver: str, slow_contraction) -> None:
    """L < 1 (Banach): zeros, huge Gaussian and far-corner starts all end at the one h*."""
    model, x = slow_contraction
    g = torch.as_tensor(np.random.default_rng(2).standard_normal((4, 16)))
    starts = [torch.zeros_like(g), 1e6 * g, 1e3 * torch.sign(g)]
    ends = []
    for h0 in starts:
        h, stats = model.equilibrium(x, h0, solver=solver)
        assert stats.all_converged, stats.summary()
        ends.append(h)
    spread = max(float((h - ends[0]).abs().max()) for h in ends[1:])
    assert spread <= 1e-10


# -- certified stop ---------------------------------------------------------------------------
@pytest.mark.parametrize("solver", SOLVER_NAMES)
@pytest.mark.parametrize("tol", [1e-2, 1e-5, 1e-9])
def test_error_bound_covers_the_true_error(solver: str, tol: float, slow_contraction) -> None:
    model, x = slow_contraction
    h, stats = model.equilibrium(x, solver=solver, tol=tol)
    assert stats.lipschitz is not None and stats.lipschitz < 1
    true_error = np.linalg.norm(h.numpy() - witness_fixed_points(model, x), axis=1)
    assert stats.error_bound is not None
    assert np.all(stats.error_bound.numpy() >= true_error)
    assert true_error.max() > 0  # a bound of something, not of an exact zero


def test_no_error_bound_without_a_certificate() -> None:
    model = build_model(3.0 * np.eye(4), spectral_norm=False)
    _, stats = model.equilibrium(inputs(2))
    assert model.lipschitz_certificate() >= 1
    assert stats.error_bound is None and stats.lipschitz is None


# -- non-contractive models: measured, never raised --------------------------------------------
def test_bistable_model_has_several_fixed_points() -> None:
    """W = 3I (no SN, L = 3): converges, but to different fixed points from different starts."""
    model = build_model(3.0 * np.eye(4), spectral_norm=False, drive_scale=0.1)
    x = inputs(1)
    up, stats_up = model.equilibrium(x, torch.ones(1, 4, dtype=torch.float64),
                                     solver="fixed_point")
    down, stats_down = model.equilibrium(x, -torch.ones(1, 4, dtype=torch.float64),
                                         solver="fixed_point")
    assert stats_up.all_converged and stats_down.all_converged
    assert float((up - down).abs().min()) >= 1.5  # h ≈ +0.995 vs −0.995 per unit


def test_bistable_model_out_of_steps_reports_not_converged() -> None:
    model = build_model(3.0 * np.eye(4), spectral_norm=False, drive_scale=0.1)
    _, stats = model.equilibrium(inputs(2), solver="fixed_point", max_steps=3)
    assert not stats.all_converged
    assert math.isfinite(stats.max_residual) and stats.max_residual > 1e-3
    assert stats.steps == 3


def test_oscillating_model_reports_not_converged() -> None:
    model = oscillating_model()
    _, stats = model.equilibrium(inputs(3), solver="fixed_point", max_steps=300)
    assert not stats.converged.any()
    assert not stats.diverged
    assert math.isfinite(stats.max_residual) and stats.max_residual >= 1.0  # a 2-cycle, not h*
    assert min(stats.residual_trace[-10:]) >= 1.0
    assert stats.steps == 300


def test_damping_rescues_the_oscillating_model() -> None:
    """T_α = ½I + ½T has slope ½ − ½·2φ′ ∈ [−½, ½] per unit for W = −2I: a contraction."""
    model = oscillating_model()
    x = inputs(3)
    h, stats = model.equilibrium(x, solver="damped", damping=0.5)
    assert stats.all_converged and stats.max_residual <= 1e-12
    assert float(np.abs(h.numpy() - witness_fixed_points(model, x)).max()) <= 1e-10


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_chaotic_model_reports_not_converged_with_every_solver(solver: str) -> None:
    _, stats = chaotic_model().equilibrium(inputs(4, 3), solver=solver, max_steps=100)
    assert not stats.all_converged
    assert float(stats.converged.double().mean()) <= 0.5
    assert not math.isnan(stats.max_residual) and stats.max_residual >= 1e-3
    assert "NOT converged" in stats.summary() or "DIVERGED" in stats.summary()


def test_forward_warns_when_the_free_phase_misses_its_tolerance() -> None:
    model = oscillating_model()
    with pytest.warns(EquilibriumNotConverged, match=r"NOT converged .* max residual"):
        logits = model(inputs(2), solver="fixed_point", max_steps=100)
    assert tuple(logits.shape) == (2, 3)  # it still returns the (unconverged) readout


def test_forward_is_silent_when_converged(slow_contraction) -> None:
    model, x = slow_contraction
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logits = model(x)
    assert bool(torch.isfinite(logits).all())


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("spectral_norm", [True, False])
def test_nan_weights_give_measured_non_convergence(symmetric: bool, spectral_norm: bool) -> None:
    model = LoopedMLP(3, 5, 2, symmetric=symmetric, spectral_norm=spectral_norm,
                      dtype=torch.float64)
    with torch.no_grad():
        model.W[0, 0] = math.nan
    _, stats = model.equilibrium(torch.ones(2, 3, dtype=torch.float64))
    assert not stats.converged.any()
    assert stats.diverged and stats.max_residual == math.inf


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_nan_producing_map_is_reported_as_diverged(solver: str) -> None:
    """The solver level below the model: a map that returns NaN is measured, not raised."""
    h, stats = get_solver(solver)(lambda h: h * math.nan, torch.ones(3, 4), tol=1e-6,
                                  max_steps=50)
    assert stats.diverged and not stats.converged.any()
    assert stats.max_residual == math.inf
    assert stats.steps == 1  # stops at the first non-finite residual
    assert tuple(h.shape) == (3, 4)


# -- option validation ------------------------------------------------------------------------
def got(value: object) -> str:
    return rf"got {re.escape(repr(value))}$"


def test_unknown_solver_is_refused() -> None:
    model = LoopedMLP(3, 4, 2)
    with pytest.raises(ValueError, match=r"unknown solver 'newton'; choose one of"):
        model.equilibrium(torch.zeros(1, 3), solver="newton")
    assert sorted(SOLVERS) == sorted(SOLVER_NAMES)


@pytest.mark.parametrize("solver", SOLVER_NAMES)
@pytest.mark.parametrize("tol", [0, -1e-6, math.nan, math.inf])
def test_bad_tol_is_refused(solver: str, tol: float) -> None:
    with pytest.raises(ValueError, match=r"tol .*" + got(tol)):
        LoopedMLP(3, 4, 2).equilibrium(torch.zeros(1, 3), solver=solver, tol=tol)


@pytest.mark.parametrize("solver", SOLVER_NAMES)
@pytest.mark.parametrize("max_steps", [0, -5, 2.5])
def test_bad_max_steps_is_refused(solver: str, max_steps: float) -> None:
    with pytest.raises(ValueError, match=r"max_steps .*" + got(max_steps)):
        LoopedMLP(3, 4, 2).equilibrium(torch.zeros(1, 3), solver=solver, max_steps=max_steps)


@pytest.mark.parametrize("max_steps", [math.inf, math.nan])
def test_non_finite_max_steps_is_refused_naming_it(max_steps: float) -> None:
    with pytest.raises(ValueError, match=r"max_steps .*" + got(max_steps)):
        LoopedMLP(3, 4, 2).equilibrium(torch.zeros(1, 3), solver="fixed_point",
                                       max_steps=max_steps)


@pytest.mark.parametrize("solver", ["fixed_point", "damped"])
@pytest.mark.parametrize("damping", [0, -0.5, 1.5, math.nan])
def test_bad_damping_is_refused(solver: str, damping: float) -> None:
    with pytest.raises(ValueError, match=r"damping .*" + got(damping)):
        LoopedMLP(3, 4, 2).equilibrium(torch.zeros(1, 3), solver=solver, damping=damping)


def test_bad_anderson_memory_is_refused() -> None:
    with pytest.raises(ValueError, match=r"memory .*" + got(0)):
        LoopedMLP(3, 4, 2).equilibrium(torch.zeros(1, 3), solver="anderson", memory=0)


@pytest.mark.parametrize("mixing", [0, -0.5, math.nan])
def test_bad_anderson_mixing_is_refused(mixing: float) -> None:
    with pytest.raises(ValueError, match=r"mixing .*" + got(mixing)):
        LoopedMLP(3, 4, 2).equilibrium(torch.zeros(1, 3), solver="anderson", mixing=mixing)


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_a_solve_ends_in_one_named_outcome(solver: str) -> None:
    """Converged, out of steps or diverged: the outcome enum says which, with its message."""
    def contraction(h: torch.Tensor) -> torch.Tensor:
        return 0.5 * h + 1.0

    start = torch.zeros(3, 2, dtype=torch.float64)
    _, done = get_solver(solver)(contraction, start, tol=1e-9, max_steps=500)
    _, short = get_solver(solver)(contraction, start, tol=1e-9, max_steps=2)
    _, blown = get_solver(solver)(lambda h: h * math.nan, torch.ones(3, 2), tol=1e-9,
                                  max_steps=5)
    assert done.outcome is Outcome.CONVERGED and done.all_converged
    assert short.outcome is Outcome.NOT_CONVERGED and not short.diverged
    assert blown.outcome is Outcome.DIVERGED and blown.diverged
    for stats in (done, short, blown):
        assert stats.outcome.value in stats.summary() and stats.outcome.message


def test_an_outcome_that_contradicts_the_flags_is_a_value_error() -> None:
    converged = torch.tensor([True, False])
    with pytest.raises(ValueError, match="CONVERGED contradicts"):
        SolverStats("x", 1e-6, torch.zeros(2), [], 1, converged, outcome=Outcome.CONVERGED)
    assert SolverStats("x", 1e-6, torch.zeros(2), [], 1, converged).outcome \
        is Outcome.NOT_CONVERGED


def test_the_iteration_driver_is_the_plain_loop_bit_for_bit() -> None:
    """`iterate`, the loop every solver and truncated EP share: without a tolerance, exactly
    `steps` applications (the first one supplied when given); with one, it stops at the first
    residual ≤ tol and returns that step's image unadvanced."""
    from eqprop_core.solvers import iterate

    weight = torch.randn(6, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    weight = 0.9 * weight / torch.linalg.matrix_norm(weight, 2)

    def T(h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(h @ weight.T + 0.3)

    h0 = torch.zeros(4, 6, dtype=torch.float64)
    expected = [h0]
    for _ in range(7):
        expected.append(T(expected[-1]))
    run = iterate(T, h0, steps=7, tol=None, advance=lambda h, f, g, r: f)
    assert torch.equal(run.last, expected[6]) and torch.equal(run.image, expected[7])
    assert run.steps == 7 and run.trace == [] and not run.stopped
    marked = iterate(T, h0, steps=2, tol=None, advance=lambda h, f, g, r: f,
                     first=torch.ones_like(h0))
    assert torch.equal(marked.last, torch.ones_like(h0))  # the supplied first step was used
    solved = iterate(T, h0, steps=10_000, tol=1e-12, advance=lambda h, f, g, r: f)
    assert solved.stopped and solved.trace[-1] <= 1e-12 < solved.trace[-2]
    k = solved.steps
    assert torch.equal(solved.last, _iterate_n(T, h0, k - 1))
    h, stats = fixed_point_iteration(T, h0, tol=1e-12, max_steps=10_000)
    assert torch.equal(h, solved.image) and stats.steps == k and stats.residual_trace == \
        solved.trace


def _iterate_n(T, h: torch.Tensor, n: int) -> torch.Tensor:
    for _ in range(n):
        h = T(h)
    return h
