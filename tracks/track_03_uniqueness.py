"""Track 3 — Fixed-point uniqueness: with L < 1 every start reaches the same h*.

For hypothesis-drawn spectrally normalized models and batches of starts (zeros, Gaussian, huge
norms ~1e6, corners ±1 and ±1e3), plain iteration and Anderson are run to a float64 residual of
1e-12 from every start. Checks: every solve converged; the spread max_{i,j} ‖h_i − h_j‖ over
starts is ≤ 1e-9 (the certified error of each is ≤ L/(1 − L)·1e-12 ≤ 1e-10); the two solvers
agree; and the NumPy/SciPy Newton solver in `theory` (a different algorithm) lands on the same
h* to ≤ 1e-9.

Negative control: W = 2I, x = 0, tanh (no SN, L = 2) has the three fixed points per coordinate
h ∈ {−0.9575, 0, +0.9575}; starts on both sides and at the origin find several distinct fixed
points, each verified by the Newton witness, so "unique" must fail.
"""

from __future__ import annotations

from properties import (
    MeasuredOnce,
    Search,
    at_least_bound,
    at_most_bound,
    contractive_models,
)
from properties.fixed_point_uniqueness import (
    model_and_starts,
    two_identity_fixed_points,
    uniqueness_metrics,
)
from properties.system_checks import Amplified, Witnessed, amplifying_factor, uniqueness

from .premises import contraction_premise, describe_models, system_premises
from .registry import on_system, track

ALL_CONVERGED = at_most_bound(0.0, "every solve converged: the claims are about converged h*")
AGREEMENT = at_most_bound(1e-9, "each solve's certified error is <= L/(1 - L)·1e-12 <= 1e-10, "
                                "so any two h* (starts, solvers, Newton) lie within 1e-9")
UNIQUE = at_most_bound(1, "uniqueness: one fixed point")
THREE_ROOTS = at_least_bound(3, "tanh(2h) = h has the three roots h in {-0.9575, 0, +0.9575}")
WITHIN_RESIDUAL_BOUND = at_most_bound(1.0, "each solve's distance to the witness's h* within "
                                           "the first-order bound of its residual: a ratio > 1 "
                                           "is a second fixed point or a failed solve")


measure = MeasuredOnce(uniqueness_metrics)  # the four metric searches share one solve per case
SEARCHES = (
    Search("unconverged solves (anderson + fixed_point)", measure.metric("unconverged"),
           ALL_CONVERGED),
    Search("max spread of h* over starts", measure.metric("spread"), AGREEMENT),
    Search("max |h*_anderson - h*_fixed_point|", measure.metric("solvers"), AGREEMENT),
    Search("max |h*_anderson - h*_newton (theory)|", measure.metric("witness"), AGREEMENT),
)


@track(3, "Fixed-point uniqueness", "A",
       "with L < 1 all starts (huge norms, corners) reach one h*; solvers and Newton agree",
       model_requires=(),
       reference=("the NumPy/SciPy Newton solver in `theory`, a different algorithm, and the spread"
                  " over starts"))
def run(ctx) -> None:
    n = ctx.examples(25, 250)
    models = ctx.models(contractive_models(max_hidden=10))
    contraction_premise(ctx, models, n)
    cases = model_and_starts(models)
    for spec in SEARCHES:
        ctx.search(cases, spec, n)
    ctx.note(f"{describe_models(ctx, n)} x 6 starts each (zeros, Gaussian, "
             "1e6-norm, corners), float64, tol 1e-12")

    control = two_identity_fixed_points()
    fixed_points, stable, counts = control.fixed_points, control.stable, control.counts
    ctx.note("control W = 2I, x = 0: distinct fixed points found: "
             + ", ".join(f"n={d}: {c}" for d, c in counts.items())
             + f"; n=1: {[round(float(p[0]), 6) for p in fixed_points[1]]}")
    ctx.negative_control(
        UNIQUE.check("number of distinct fixed points (W = 2I, x = 0, n = 1)", counts[1]),
        fixed_points={f"n={d}": [p.tolist() for p in pts] for d, pts in fixed_points.items()},
        spectral_radius_at_each={f"n={d}": r for d, r in stable.items()},
        counts={f"n={d}": c for d, c in counts.items()},
    )
    ctx.check(THREE_ROOTS.check("control finds all 3 fixed points of tanh(2h) = h in 1-D",
                                counts[1]))


@on_system(3, requires=())
def certify_system(ctx) -> None:
    """From every drawn start (the System's init_state, Gaussian ×1/×10/×1e3 of the state's
    scale, corners), Newton and the System's own plain iteration reach the witness's h*, to
    within the first-order bound of their residuals. Control: the System's map over-relaxed
    (T' = h + a(T − h), same fixed points, ρ(J') ≥ 3) does not converge from those starts."""
    w = Witnessed(ctx.system, ctx.seed)
    if not system_premises(ctx, w):
        return
    count, steps = ctx.examples(8, 40), ctx.examples(3000, 20000)
    out = uniqueness(ctx.system, w, count, max_steps=steps)
    ctx.check(WITHIN_RESIDUAL_BOUND.check(
        "Newton from every start reaches h*: max distance / its residual bound",
        out["newton_ratio"], spread=out["spread"], starts=count))
    ctx.check(WITHIN_RESIDUAL_BOUND.check(
        "plain iteration from every start reaches h*: max distance / bound",
        out["iteration_ratio"], max_steps=out["max_iteration_steps"]))
    ctx.note(f"{ctx.system!r}: {count} starts x {w.x.shape[0]} samples reach one h* (spread "
             f"{out['spread']:.3g}); plain iteration took up to {out['max_iteration_steps']} "
             "steps")
    a = amplifying_factor(w)
    bad = uniqueness(Amplified(ctx.system, a), w, 2, max_steps=200, newton=False)
    ctx.negative_control(WITHIN_RESIDUAL_BOUND.check("over-relaxed map: plain iteration "
                                                     "reaches h*", bad["iteration_ratio"]),
                         over_relaxation=a)
