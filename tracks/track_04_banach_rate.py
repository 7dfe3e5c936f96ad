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
The measurements along a trajectory: `properties.banach_bounds`.

Negative control: a wrong rate — 0.9·ρ(J*), below the true asymptotic rate — is claimed as L;
the a-priori bound with it is falsified by a drawn trajectory.
"""

from __future__ import annotations

from properties import Search, at_most_bound, contractive_models
from properties.banach_bounds import (
    STEPS,
    a_posteriori_violation,
    a_priori_violation,
    certified_stop_violation,
    step_count_violation,
    trajectories,
    trajectory,
)
from properties.system_checks import Witnessed, banach_violation

from .plots import draw
from .premises import contraction_premise, describe_models, system_premises
from .procedures.banach_rate import banach_figure, slowest
from .registry import on_system, track

RATIO = at_most_bound(1.0, "each check is a theorem's left side over its right side, with the "
                           "witness's certified error and the float64 rounding allowance "
                           "derived in the module docstring: a ratio > 1 is a proven violation")
CONTRACTION = at_most_bound(1 - 1e-12, "Banach's premise: the claimed L is a contraction "
                                       "constant, L < 1")
SEARCHES = (
    Search("a priori: max ||h_k-h*|| / (L^k ||h_0-h*||)", a_priori_violation, RATIO),
    Search("a posteriori: max ||h_k-h*|| / (L/(1-L) ||h_k-h_{k-1}||)", a_posteriori_violation,
           RATIO),
    Search("step count: actual / predicted steps to 1e-8", step_count_violation, RATIO),
    Search("solver certified stop: max true error / stats.error_bound",
           certified_stop_violation, RATIO),
)
WRONG_RATE = Search("a priori bound with the wrong rate 0.9 rho(J*)",
                    lambda c: a_priori_violation(c, rate="0.9rho"), RATIO)


@track(4, "Banach rate", "A",
       "||h_k - h*|| <= L^k ||h_0 - h*|| and <= L/(1-L) ||h_k - h_{k-1}|| along trajectories",
       model_requires=(),
       reference=("h* by the Newton witness (`theory.certified_fixed_point`, with its certified "
                  "error) and L by scipy"))
def run(ctx) -> None:
    n = ctx.examples(40, 400)
    models = ctx.models(contractive_models(max_hidden=10))
    if contraction_premise(ctx, models, n):
        for spec in SEARCHES:
            ctx.search(trajectories(models), spec, n)
        ctx.note(f"{describe_models(ctx, n)} and starts (up to 1e6 in norm), {STEPS} plain "
                 "iterations each; h* by the Newton witness, L by scipy")
    else:
        ctx.note("Banach bounds not evaluated: they are theorems for L < 1 only")
    # Control, on the suite's own models: a wrong rate 0.9 ρ(J*) claimed as L is falsified.
    wrong = WRONG_RATE.run(trajectories(), max_examples=n, seed=ctx.seed)
    ctx.negative_control(RATIO.check(WRONG_RATE.name, wrong.worst, **wrong.details()))
    draw(ctx.artifact_path("banach.png"), banach_figure(slowest(trajectory.values())))


@on_system(4, requires=("lipschitz",))
def certify_system(ctx) -> None:
    """With the System's claimed L < 1, its plain iterates obey Banach's a priori bound
    ‖h_k − h*‖ ≤ L^k ‖h_0 − h*‖ and a posteriori bound ‖h_k − h*‖ ≤ L/(1 − L)‖h_k − h_{k−1}‖
    (h* the witness's Newton solution). Control: L' = ρ(J*)/2 is falsified by the same iterates
    (they contract at ρ(J*) asymptotically)."""
    w = Witnessed(ctx.system, ctx.seed)
    L = ctx.system.claimed_lipschitz()
    ctx.check(CONTRACTION.check("claimed L = lipschitz(params) < 1 (Banach's premise)", L))
    if not system_premises(ctx, w):
        return
    if not L < 1:
        return
    count, steps = ctx.examples(6, 30), ctx.examples(300, 1000)
    out = banach_violation(ctx.system, w, L, count, steps)
    ctx.check(RATIO.check("a priori: max ||h_k - h*|| / (L^k ||h_0 - h*||)", out["a_priori"],
                          claimed=L, starts=count, steps=steps))
    ctx.check(RATIO.check("a posteriori: max ||h_k - h*|| / (L/(1-L) ||h_k - h_k-1||)",
                          out["a_posteriori"]))
    wrong = 0.5 * float(w.rho.max())
    bad = banach_violation(ctx.system, w, wrong, count, steps)
    ctx.negative_control(RATIO.check("a priori bound with L' = rho(J*)/2", bad["a_priori"]),
                         wrong_L=wrong)
