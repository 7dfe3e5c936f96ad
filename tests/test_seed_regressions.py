"""Cases the seed sweep (`python -m tracks.sweep`) found failing, shrunk, each pinned here.

A certificate that holds at seed 0 and fails at seed 1 certifies the seed; each case below was a
failure at some seed other than 0 and is now a regression test of its fix (derived, not a
loosened bound).
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import theory
from properties import as_numpy, contractive_models
from properties.banach_bounds import (
    a_posteriori_violation,
    a_priori_violation,
    certified_stop_violation,
    step_count_violation,
)
from properties.finite_nudge import FD_TOL, in_premise, measure
from properties.quantizer_promise import promise_ratio, weight_quantizer
from properties.strategies import ModelSpec

# Track 4, seed 1: h0 of norm ~1e6, a spike W at scale 1e-3, γ = 0.9, zero drive; h* = 0. The
# Newton witness stopped at residual ~1e-14, i.e. ‖ĥ − h*‖ ≈ 9e-14, the size of the errors being
# scored, and the a-posteriori ratio read 2.10 (the solver's certified stop 1.0000077).
TRACK_4_SEED_1 = (
    ModelSpec(n_in=1, n_hidden=5, weight_scale=0.001, structure="spike", seed=2236,
              symmetric=True, spectral_norm=True, gamma=0.9, drive_scale=0.0,
              activation="tanh", dtype="float64", n_out=3),
    np.array([960253.66817316, -1170284.50869217, -1588414.66364218, -1474274.36948889,
              347559.31826269]),
    0.0,
)


def test_track_4_seed_1_banach_bounds_hold_once_the_witness_error_is_counted() -> None:
    for violation in (a_priori_violation, a_posteriori_violation, step_count_violation,
                      certified_stop_violation):
        assert violation(TRACK_4_SEED_1) <= 1.0, violation.__name__


def test_the_witness_error_bound_covers_the_true_error_where_h_star_is_known() -> None:
    """Zero drive and odd φ: h* = 0 exactly, so ‖ĥ‖ is the witness's true error."""
    spec, h0, _ = TRACK_4_SEED_1
    problem = as_numpy(spec.build())
    L = theory.lipschitz_certificate(problem.weight, "tanh")
    plain = theory.find_fixed_point(problem.weight, np.zeros(5), "tanh", h0=np.tanh(h0))
    star = theory.certified_fixed_point(problem.weight, np.zeros(5), "tanh", L,
                                        h0=np.tanh(h0))
    assert np.linalg.norm(plain.h) > 1e-14  # the unpolished witness was off at the scored scale
    assert np.linalg.norm(star.h) <= star.error_bound <= 1e-13


# The solver's certified stop is a bound on the *computed* iterate: without the rounding term
# ρ/(1 − L) a float32 solve stopped at its own tolerance can sit farther from h* than
# L/(1 − L)·‖h − h_prev‖ says.

@settings(max_examples=80, deadline=None, derandomize=True, database=None)
@given(st.sampled_from(["float32", "float64"]).flatmap(
    lambda dt: contractive_models(max_hidden=24, symmetric=None, dtype=dt)),
       st.sampled_from(["fixed_point", "anderson"]))
def test_the_certified_stop_bounds_the_computed_state_in_float32_and_float64(spec, solver):
    model = spec.build()
    x = spec.inputs(3, 1.0)
    h, stats = model.equilibrium(x, solver=solver)
    problem = as_numpy(model)
    L = theory.lipschitz_certificate(problem.weight, spec.activation)
    for row in range(3):
        drive = problem.drive(np.asarray(x[row], dtype=np.float64))[0]
        star = theory.certified_fixed_point(problem.weight, drive, spec.activation, L)
        error = np.linalg.norm(h[row].double().numpy() - star.h) - star.error_bound
        assert error <= float(stats.error_bound[row]), (error, float(stats.error_bound[row]))
    assert stats.error_bound.dtype == torch.float32 or spec.dtype == "float64"



# Track 14, seed 14: two SN models (γ = 0.9) whose −β phase at β = 0.5 is not a contraction.
def track_14_case(n_hidden: int, structure: str) -> ModelSpec:
    return ModelSpec(n_in=4, n_hidden=n_hidden, weight_scale=0.1, structure=structure, seed=382,
                     symmetric=True, spectral_norm=True, gamma=0.9, drive_scale=0.1,
                     activation="tanh", dtype="float64", n_out=3)


def test_track_14_seed_14_fd_of_the_surrogate_is_sixth_order_near_an_unstable_phase() -> None:
    """ρ = 1.02 at the −β equilibrium: one Richardson level (O(ε⁴)) left a gap of 3.6e-8 at
    ε = 1e-5, over the 1e-8 bound; the second level (O(ε⁶)) measures ~6e-11."""
    m = measure(track_14_case(3, "spike"))
    assert m["symmetric"]["radius"] > 1.0
    assert m["symmetric"]["fd"]["gap"] <= FD_TOL / 10


def test_track_14_seed_14_a_phase_without_equilibrium_is_counted_not_a_crash() -> None:
    """The −β phase stalls at residual 0.145: outside the envelope theorem's premise for the
    symmetric estimator, recorded with the solver's message; the one-sided one is scored."""
    m = measure(track_14_case(2, "gaussian"))
    assert not in_premise(m, "symmetric")
    assert "nudged(beta=-0.5)" in m["symmetric"]["outside_premise"]
    assert in_premise(m, "one_sided") and m["one_sided"]["fd"]["gap"] <= 1e-8


def test_track_20_seed_16_weight_quantizer_is_held_to_its_own_float32_peak() -> None:
    """b = 13, r = 1e-3, float32: the per-tensor range is fl32(r); held to the float64 r the
    grid was off by a relative u32 and the promise ratio read 1.22."""
    assert promise_ratio(weight_quantizer, (13, 0.001, "float32", [-0.0009824175824175824])) <= 1
