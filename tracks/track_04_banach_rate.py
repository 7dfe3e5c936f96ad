"""Track 4 — Banach rate: the contraction bounds hold along every trajectory.

For an L-contraction T with fixed point h* (L by scipy, h* by the Newton witness in `theory`):

    a priori       ‖h_k − h*‖ ≤ L^k ‖h_0 − h*‖                     for all k
    a posteriori   ‖h_k − h*‖ ≤ L/(1 − L) · ‖h_k − h_{k−1}‖          for all k ≥ 1
    step count     k ≤ ⌈log(tol(1 − L)/‖h_1 − h_0‖) / log L⌉ to reach ‖h_k − h*‖ ≤ tol

measured on plain iteration of the model's own map (float64, starts up to 1e6 in norm), and the
solvers' certified stop: `stats.error_bound` ≥ the true error, for plain iteration and Anderson.
Errors below 1e-13 are float64 noise and are not scored; each bound gets an absolute round-off
allowance of 64·ε·√n·(1 + ‖h*‖) ≈ 1.4e-14·√n (see `round_off`).

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

from .plots import line_plot
from .premises import contraction_premise, describe_models
from .registry import track

FLOOR = 1e-13  # errors at or below this are float64 round-off, not convergence
STEPS = 400
EPS = np.finfo(np.float64).eps


def round_off(n: int, h_star: np.ndarray) -> float:
    """Absolute allowance 64·ε·√n·(1 + ‖h*‖) for computing an error norm in float64.

    The bounds are exact theorems and are tight for nearly linear maps, so a measured ratio can
    exceed 1 by round-off alone; the allowance is absolute, so any real violation (an error far
    above 1e-14) is still scored in full.
    """
    return 64 * EPS * np.sqrt(n) * (1 + np.linalg.norm(h_star))

@st.composite
def trajectories(draw: st.DrawFn, models: st.SearchStrategy | None = None):
    spec = draw(contractive_models(max_hidden=10) if models is None else models)
    h0 = draw(initial_states(spec.n_hidden))[0]
    x_scale = draw(st.sampled_from([0.0, 1.0, 10.0]))
    return spec, h0, x_scale


def plain_iteration(case) -> dict:
    """Plain-iteration trajectory of the model, h* by Newton, L and ρ(J*) by scipy."""
    spec, h0, x_scale = case
    model = spec.build()
    x = spec.inputs(1, x_scale)
    problem = as_numpy(model)
    drive = problem.drive(x)[0]
    star = theory.find_fixed_point(problem.weight, drive, spec.activation,
                                   h0=np.tanh(h0)).h
    states = model.trajectory(x, torch.as_tensor(h0[None]), STEPS)[:, 0].numpy()
    J = theory.jacobian_at_equilibrium(star, problem.weight, drive, spec.activation)
    return {
        "errors": np.linalg.norm(states - star, axis=1),
        "steps": np.linalg.norm(np.diff(states, axis=0), axis=1),
        "L": theory.lipschitz_certificate(problem.weight, spec.activation),
        "rho": theory.spectral_radius(J),
        "slack": round_off(spec.n_hidden, star),
    }


trajectory = MeasuredOnce(plain_iteration)  # four checks score the same trajectories


def a_priori_violation(case, rate: str = "L") -> float:
    """max_k ‖h_k − h*‖ / (rate^k ‖h_0 − h*‖) over scored k (≤ 1 when the bound holds)."""
    t = trajectory(case)
    r = t["L"] if rate == "L" else 0.9 * t["rho"]
    e = t["errors"]
    if e[0] <= FLOOR:
        return 0.0
    k = np.arange(len(e))
    scored = (e > FLOOR) & (k >= 1)  # k = 0 holds with equality by definition
    with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
        ratio = e[scored] / (np.power(r, k[scored]) * e[0] + t["slack"])
    return float(np.nanmax(ratio)) if ratio.size else 0.0


def a_posteriori_violation(case) -> float:
    """max_k ‖h_k − h*‖ / (L/(1 − L)·‖h_k − h_{k−1}‖) over scored k ≥ 1."""
    t = trajectory(case)
    e, s = t["errors"][1:], t["steps"]
    scored = e > FLOOR
    if not scored.any():
        return 0.0
    bound = theory.a_posteriori_bound(t["L"], s[scored])
    return float(np.max(e[scored] / (bound + t["slack"])))


def step_count_violation(case, tol: float = 1e-8) -> float:
    """(first k with ‖h_k − h*‖ ≤ tol) / (a-priori predicted k); ≤ 1 when the prediction holds."""
    t = trajectory(case)
    e = t["errors"]
    predicted = theory.steps_to_tolerance(t["L"], t["steps"][0], tol)
    reached = np.flatnonzero(e <= tol)
    actual = int(reached[0]) if reached.size else len(e)
    if actual > predicted and predicted >= len(e) - 1:
        return 0.0  # the trajectory is too short to test this prediction
    return actual / max(predicted, 1) if actual else 0.0


def certified_stop_violation(case) -> float:
    """max true error / stats.error_bound for the model's solvers stopped at tol 1e-8."""
    spec, h0, x_scale = case
    model = spec.build()
    x = spec.inputs(1, x_scale)
    problem = as_numpy(model)
    star = theory.find_fixed_point(problem.weight, problem.drive(x)[0], spec.activation,
                                   h0=np.tanh(h0)).h
    worst = 0.0
    for solver in ("fixed_point", "anderson"):
        h, stats = model.equilibrium(x, torch.as_tensor(h0[None]), solver=solver, tol=1e-8)
        error = float(np.linalg.norm(h[0].numpy() - star))
        bound = float(stats.error_bound[0])
        if error > FLOOR:
            worst = max(worst, error / (bound + round_off(spec.n_hidden, star)))
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
    keep = e > FLOOR
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
