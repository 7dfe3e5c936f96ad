"""The Banach bounds along a computed trajectory of an L-contraction, scored as proven violations:

    a priori       e*_k ≤ L^k e*_0 + A_k,   A_k = Σ_{j≤k} L^{k−j} ρ_j
    a posteriori   e*_k ≤ (L‖h_k − h_{k−1}‖ + ρ_k) / (1 − L)

with e*_k = ‖h_k − h*‖ and ρ_k the rounding of the computed float64 step h_k = T(h_{k−1}) + r_k,
‖r_k‖ ≤ ρ_k (`theory.step_rounding`; both from e*_k ≤ L e*_{k−1} + ρ_k). h* is known only through
the Newton witness ĥ with its certified error δ* ≥ ‖ĥ − h*‖ (`theory.certified_fixed_point`, plus
the drive's rounding), so each ratio takes the true error at its smallest, ‖h_k − ĥ‖ − δ*, and
every bound at its largest: a ratio > 1 is a proven violation. Beside those two,
`step_count_violation` holds plain iteration to the steps the a-priori bound predicts to reach
tol, `certified_stop_violation` the solvers' certified stop (`stats.error_bound`) to the true
error. A case is (spec, h_0, x scale); `trajectory` measures each once for the four statistics
(track 4).
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

import theory

from .extract import as_numpy
from .search import MeasuredOnce
from .strategies import contractive_models, initial_states

STEPS = 400  # plain iterations per trajectory
EPS = np.finfo(np.float64).eps


@st.composite
def trajectories(draw: st.DrawFn, models: st.SearchStrategy | None = None):
    spec = draw(contractive_models(max_hidden=10) if models is None else models)
    h0 = draw(initial_states(spec.n_hidden))[0]
    x_scale = draw(st.sampled_from([0.0, 1.0, 10.0]))
    return spec, h0, x_scale


def witness(spec, x_scale: float, h0: np.ndarray):
    """(model, x, ĥ, δ*, L, problem): the Newton witness ĥ of the model's map and a certified
    bound δ* on ‖ĥ − h*‖ — its residual's share plus the drive Ux + b computed twice (numpy here,
    torch in the model: they differ by ≤ 2(n_in + 2)ε(‖|x||U|ᵀ‖ + ‖b‖), which moves h* by
    ≤ sup|φ′|·that/(1 − L))."""
    model = spec.build()
    x = spec.inputs(1, x_scale)
    problem = as_numpy(model)
    drive = problem.drive(x)[0]
    L = theory.lipschitz_certificate(problem.weight, spec.activation)
    star = theory.certified_fixed_point(problem.weight, drive, spec.activation, L,
                                        h0=np.tanh(h0))
    xs = np.atleast_2d(np.asarray(x, dtype=np.float64))[0]
    drive_error = 2 * (spec.n_in + 2) * EPS * (np.linalg.norm(np.abs(problem.U) @ np.abs(xs))
                                               + np.linalg.norm(problem.b))
    slope = theory.nonlinearity(spec.activation).sup_slope
    delta = star.error_bound + slope * drive_error / (1 - L)
    return model, x, star.h, delta, L, problem


def plain_iteration(case) -> dict:
    """Plain-iteration trajectory of the model; ĥ by Newton with its certified error δ*; L and
    ρ(J*) by scipy; ρ_k, the rounding of each computed step."""
    spec, h0, x_scale = case
    model, x, star, delta, L, problem = witness(spec, x_scale, h0)
    drive = problem.drive(x)[0]
    states = model.trajectory(x, torch.as_tensor(h0[None]), STEPS)[:, 0].numpy()
    J = theory.jacobian_at_equilibrium(star, problem.weight, drive, spec.activation)
    rounding = np.array([theory.step_rounding(h, problem.weight, drive, spec.activation)
                         for h in states[:-1]])
    return {
        "errors": np.linalg.norm(states - star, axis=1),
        "steps": np.linalg.norm(np.diff(states, axis=0), axis=1),
        "L": L,
        "rho": theory.spectral_radius(J),
        "witness_error": delta,
        "rounding": rounding,  # ρ_k for the step h_{k-1} -> h_k, k = 1..STEPS
    }


trajectory = MeasuredOnce(plain_iteration)  # four checks score the same trajectories


def proven_ratio(lower: np.ndarray | float, bound: np.ndarray | float) -> float:
    """max of lower/bound, where a zero bound counts only against a positive lower value."""
    lower, bound = np.broadcast_arrays(np.asarray(lower, float), np.asarray(bound, float))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(bound > 0, lower / np.where(bound > 0, bound, 1.0),
                         np.where(lower > 0, np.inf, 0.0))
    return max(float(np.max(ratio)) if ratio.size else 0.0, 0.0)


def accumulated_rounding(L: float, rounding: np.ndarray) -> np.ndarray:
    """A_k = Σ_{j≤k} L^{k−j} ρ_j (A_k = L·A_{k−1} + ρ_k), k = 1..: what the rounding of the
    computed steps adds to e*_k ≤ L^k e*_0 + A_k."""
    out = np.empty_like(rounding)
    total = 0.0
    for k, rho in enumerate(rounding):
        total = L * total + rho
        out[k] = total
    return out


def a_priori_violation(case, rate: str = "L") -> float:
    """max_k (e*_k lower) / (rate^k e*_0 upper + A_k) over k ≥ 1 (≤ 1 when the bound holds; > 1
    only for a proven violation)."""
    t = trajectory(case)
    r = t["L"] if rate == "L" else 0.9 * t["rho"]
    e, delta = t["errors"], t["witness_error"]
    k = np.arange(1, len(e))
    with np.errstate(under="ignore"):
        bound = np.power(r, k) * (e[0] + delta) + accumulated_rounding(t["L"], t["rounding"])
    return proven_ratio(e[1:] - delta, bound)


def a_posteriori_violation(case) -> float:
    """max_k (e*_k lower) / ((L‖h_k − h_{k−1}‖ + ρ_k)/(1 − L)) over k ≥ 1."""
    t = trajectory(case)
    e, s, L = t["errors"][1:], t["steps"], t["L"]
    bound = theory.a_posteriori_bound(L, s) + t["rounding"] / (1 - L)
    return proven_ratio(e - t["witness_error"], bound)


def step_count_violation(case, tol: float = 1e-8) -> float:
    """(first k with e*_k ≤ tol, at the latest) / (predicted k); ≤ 1 when the prediction holds.

    Predicted: the first k with L^k(‖h_1 − h_0‖ + ρ_1)/(1 − L) + A_k ≤ tol, the a-priori bound of
    the computed sequence (e*_0 ≤ (‖h_1 − h_0‖ + ρ_1)/(1 − L)). Reached: the first k where the
    measured error minus δ* is ≤ tol, never later than the true first k."""
    t = trajectory(case)
    L, rounding = t["L"], t["rounding"]
    e = t["errors"] - t["witness_error"]
    k = np.arange(1, len(e))
    with np.errstate(under="ignore"):
        bound = (np.power(L, k) * (t["steps"][0] + rounding[0]) / (1 - L)
                 + accumulated_rounding(L, rounding))
    below = np.flatnonzero(bound <= tol)
    if not below.size:
        return 0.0  # the trajectory is too short to test this prediction
    predicted = int(k[below[0]])
    reached = np.flatnonzero(e <= tol)
    actual = int(reached[0]) if reached.size else len(e)
    return actual / predicted


def certified_stop_violation(case) -> float:
    """max (true error, lower) / stats.error_bound for the model's solvers stopped at tol 1e-8:
    the model's certified stop (L‖h − h_prev‖ + ρ)/(1 − L), its own rounding ρ included."""
    spec, h0, x_scale = case
    model, x, star, delta, L, problem = witness(spec, x_scale, h0)
    worst = 0.0
    for solver in ("fixed_point", "anderson"):
        h, stats = model.equilibrium(x, torch.as_tensor(h0[None]), solver=solver, tol=1e-8)
        error = float(np.linalg.norm(h[0].numpy() - star)) - delta
        worst = max(worst, proven_ratio(error, float(stats.error_bound[0])))
    return worst
