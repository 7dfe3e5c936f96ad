"""Track 4 — Banach rate: the contraction bounds hold along every trajectory.

For an L-contraction T with fixed point h* (L by scipy, h* by the Newton witness in `theory`):

    a priori       ‖h_k − h*‖ ≤ L^k ‖h_0 − h*‖                     for all k
    a posteriori   ‖h_k − h*‖ ≤ L/(1 − L) · ‖h_k − h_{k−1}‖          for all k ≥ 1
    step count     k ≤ ⌈log(tol(1 − L)/‖h_1 − h_0‖) / log L⌉ to reach ‖h_k − h*‖ ≤ tol

measured on plain iteration of the model's own map (float64, starts up to 1e6 in norm), and the
solvers' certified stop: `stats.error_bound` ≥ the true error, for plain iteration and Anderson.

A ratio > 1 is scored only as a *proven* violation. The true error e*_k = ‖h_k − h*‖ is known
within ±δ* of the measured ‖h_k − ĥ‖, δ* the witness's own certified error
(`theory.certified_fixed_point`: ‖ĥ − h*‖ ≤ (‖ĥ − T(ĥ)‖ + ρ)/(1 − L), plus the drive's
rounding), so the numerator is ‖h_k − ĥ‖ − δ* and every h* inside a bound is taken at its
largest. The iterates are computed in float64, h_k = T(h_{k−1}) + r_k with ‖r_k‖ ≤ ρ_k
(`theory.step_rounding`), and the theorems for the computed sequence read
    a priori       e*_k ≤ L^k e*_0 + max_j ρ_j / (1 − L)
    a posteriori   e*_k ≤ (L‖h_k − h_{k−1}‖ + ρ_k) / (1 − L)
(from e*_k ≤ L e*_{k−1} + ρ_k), so ρ/(1 − L) is each bound's allowance: derived, not tuned.

Negative control: a wrong rate — 0.9·ρ(J*), below the true asymptotic rate — is claimed as L;
the a-priori bound with it is falsified by a drawn trajectory.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

import theory
from properties import (
    MeasuredOnce,
    as_numpy,
    at_most,
    contractive_models,
    initial_states,
    worst_case,
)
from properties.system_checks import Witnessed, banach_violation

from .plots import line_plot
from .premises import contraction_premise, describe_models, system_premises
from .registry import on_system, track

STEPS = 400
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


def proven_ratio(lower: np.ndarray, bound: np.ndarray) -> float:
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


@track(4, "Banach rate", "A",
       "||h_k - h*|| <= L^k ||h_0 - h*|| and <= L/(1-L) ||h_k - h_{k-1}|| along trajectories",
       model_requires=())
def run(ctx) -> None:
    n = ctx.examples(40, 400)
    models = ctx.models(contractive_models(max_hidden=10))
    if contraction_premise(ctx, models, n):
        certify_rates(ctx, models, n)
    else:
        ctx.note("Banach bounds not evaluated: they are theorems for L < 1 only")
    control(ctx, n)


def certify_rates(ctx, models: st.SearchStrategy, n: int) -> None:
    """The a-priori, a-posteriori, step-count and certified-stop checks over `models`."""
    checks = {
        "a priori: max ||h_k-h*|| / (L^k ||h_0-h*||)": a_priori_violation,
        "a posteriori: max ||h_k-h*|| / (L/(1-L) ||h_k-h_{k-1}||)": a_posteriori_violation,
        "step count: actual / predicted steps to 1e-8": step_count_violation,
        "solver certified stop: max true error / stats.error_bound": certified_stop_violation,
    }
    for name, measure in checks.items():
        out = worst_case(trajectories(models), measure, bound=1.0, max_examples=n,
                         seed=ctx.seed)
        ctx.check(at_most(name, out.worst, 1.0, **out.details()))
    ctx.note(f"{describe_models(ctx, n)} and starts (up to 1e6 in norm), {STEPS} plain "
             "iterations each; h* by the Newton witness, L by scipy")


def control(ctx, n: int) -> None:
    """A wrong rate (0.9 ρ(J*)) claimed as L is falsified, on the suite's own models; plot."""
    wrong = worst_case(trajectories(), lambda c: a_priori_violation(c, rate="0.9rho"),
                       bound=1.0, max_examples=n, seed=ctx.seed)
    ctx.negative_control(
        at_most("a priori bound with the wrong rate 0.9 rho(J*)", wrong.worst, 1.0,
                **wrong.details()),
    )

    example = trajectory.values()[0]
    for t in trajectory.values():  # plot the slowest-converging trajectory seen
        if t["rho"] > example["rho"]:
            example = t
    e = example["errors"]
    k = np.arange(len(e))
    keep = e > example["witness_error"]  # below it the witness cannot resolve the error
    line_plot(
        ctx.artifact_path("banach.png"),
        {
            "measured ||h_k - h*||": (k[keep], e[keep]),
            "a priori L^k ||h_0 - h*||": (k[keep], example["L"] ** k[keep] * e[0]),
            "a posteriori L/(1-L) ||h_k - h_{k-1}||": (
                k[1:][keep[1:]], theory.a_posteriori_bound(example["L"],
                                                            example["steps"][keep[1:]])),
            "wrong rate (0.9 rho)^k ||h_0 - h*||": (k[keep], (0.9 * example["rho"]) ** k[keep]
                                                     * e[0]),
        },
        title=f"Banach bounds, L = {example['L']:.3f}, rho(J*) = {example['rho']:.3f}",
        xlabel="iteration k", ylabel="error",
    )


@on_system(4, requires=("lipschitz",))
def certify_system(ctx) -> None:
    """With the System's claimed L < 1, its plain iterates obey Banach's a priori bound
    ‖h_k − h*‖ ≤ L^k ‖h_0 − h*‖ and a posteriori bound ‖h_k − h*‖ ≤ L/(1 − L)‖h_k − h_{k−1}‖
    (h* the witness's Newton solution). Control: L' = ρ(J*)/2 is falsified by the same iterates
    (they contract at ρ(J*) asymptotically)."""
    w = Witnessed(ctx.system, ctx.seed)
    L = ctx.system.claimed_lipschitz()
    ctx.check(at_most("claimed L = lipschitz(params) < 1 (Banach's premise)", L, 1 - 1e-12))
    if not system_premises(ctx, w):
        return
    if not L < 1:
        return
    count, steps = ctx.examples(6, 30), ctx.examples(300, 1000)
    out = banach_violation(ctx.system, w, L, count, steps)
    ctx.check(at_most("a priori: max ||h_k - h*|| / (L^k ||h_0 - h*||)", out["a_priori"], 1.0,
                      claimed=L, starts=count, steps=steps))
    ctx.check(at_most("a posteriori: max ||h_k - h*|| / (L/(1-L) ||h_k - h_k-1||)",
                      out["a_posteriori"], 1.0))
    wrong = 0.5 * float(w.rho.max())
    bad = banach_violation(ctx.system, w, wrong, count, steps)
    ctx.negative_control(at_most("a priori bound with L' = rho(J*)/2", bad["a_priori"], 1.0),
                         wrong_L=wrong)
