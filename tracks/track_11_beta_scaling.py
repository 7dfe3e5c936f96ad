"""Track 11 — β scaling law: one-sided EP's bias is O(β), symmetric EP's is O(β²).

Theorem (Taylor expansion of β ↦ ∂E/∂θ(h_β) at β = 0, `eqprop_core/gradients.py`):

    one-sided   ĝ(β) − g* = a β + O(β²),     symmetric   ĝ(β) − g* = c β² + O(β⁴),

so log‖ĝ(β) − g*‖ against log β has slope 1 and 2 while β is in the asymptotic regime. How far
that regime reaches is model-dependent: `properties.scaling` derives each model's window from its
relative bias coefficients a (one-sided, read at β₀ = 1e-4) and c (symmetric, at β₀ = 1e-3) —
the scales κ₁ = max(a, c/a) and κ₂ = max(a, √c), a window ending where βκ = ρ. Measured
a ∈ 0.04..44, c ∈ 1e-3..5e3, κ₁ up to 270; near a relative error of 0.1–1 the error saturates
and the line bends.

Which error is fitted: the relative error of the energy-parameter gradient (W, U, b concatenated)
against `theory.implicit_gradients`. The readout V, c is exact at every β (track 9) and carries
no β law; a single parameter's leading coefficient can nearly cancel across the batch, bending
that parameter's line without any change of the estimator's order (measured: a b-gradient whose
error dips through zero near β = 4e-3), while the concatenated error's leading coefficient
vanishes only if all of them do. Per-parameter slopes are recorded beside it. (The window, the
coefficients and the sweeps: `properties.scaling`, which track 15 uses too.)

Checks (hypothesis-drawn symmetric `gradient_models`, batch 4, phases solved to residual 1e-14), in
each estimator's asymptotic window on each model — 4 log-spaced β in [top/10, top], top = min(0.3,
ρ/κ), ρ = 0.01 —: (1) the fitted one-sided slope is within 1 ± 0.1 and (2) the symmetric slope
within 2 ± 0.15 (issue 3's tolerances; measured over ~900 drawn and hunted models: within 0.004 of
the order, where windows from the predicted bias alone, ignoring c/a and a, let slopes stray by
0.13 and 0.43); (3, 4) the solver's round-off does not bend the line: at the window's smallest β,
solving the phases to residual 1e-15 instead of 1e-14 moves the estimate by ≤ 0.1 of the error
being fitted. That floor, ≈ 2e-13/β on the O(1) scale of the partials, grows as β shrinks and would
flatten the line; a relative change δ of the first of 4 points spread over a decade moves the
least-squares slope by 0.39δ, so ≤ 0.04 — inside both tolerances (measured worst 5e-3: one-sided
windows reach down to β ≈ 4e-6 on models whose first-order coefficient is small next to the second,
κ₁ = c/a ≤ 270). Plain iteration stopped at 1e-14 is itself ~10× less accurate than Anderson there,
so a plain-vs-Anderson comparison would measure the plain solver, not the floor.

Stated figures (issue 3 acceptance), recorded as claims: over β ∈ [1e-3, 0.3] (8 log-spaced
points) the fitted slopes are 1 ± 0.1 (one-sided) and 2 ± 0.15 (symmetric). They hold on a model
only if the whole range lies in its asymptotic regime; on the others the higher-order terms take
over inside the range (relative errors up to ~2 at β = 0.3 on failing models) and the line
bends. Recorded: the share of drawn models meeting each figure, the worst slope and its model
(the worst drawn model, not a shrunk one: each evaluation is a 16-solve sweep), and the κ
and β = 0.3 errors of the models meeting vs failing it — the measured why.

Negative control: an estimator labelled symmetric but computed one-sided, put through check (2)
(the model's window, slope held to 2 ± 0.15); on the drawn model where its slope comes closest
to 2 it still misses. The plot shows error vs β on the stated grid for a typical model and for
the model with the worst stated-range slope, both estimators, fitted slopes in the legend.

Under `--model` (symmetric, standard parametrization): the checks and stated figures run on the
user's model; the control runs on the suite's models, in a search of its own that hunts the draw
where the mislabeled estimator's slope comes closest to 2.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np

from properties import (
    MeasuredOnce,
    ModelSpec,
    RelativeBound,
    Search,
    at_most_bound,
    gradient_models,
    worst_case,
)
from properties.scaling import (
    ONE_SIDED_SLOPE,
    ORDERS,
    REGIME,
    STATED_BETAS,
    SYMMETRIC_SLOPE,
    ScalingProblem,
    deviation,
    mislabeled_slope,
    stated_details,
    window_ranges,
)
from properties.system_checks import (
    BIAS_ORDERS,
    Witnessed,
    beta_sweep,
    gradient_diagnosis,
    sweep_betas,
)

from .premises import describe_models, refuses_model, system_premises
from .procedures.beta_scaling import scaling_figure
from .registry import on_system, track

SLOPE = {"one_sided": ONE_SIDED_SLOPE, "symmetric": SYMMETRIC_SLOPE}
FLOOR_RATIO = at_most_bound(
    0.1, "||g(tol) - g(tol/10)|| / fitted error at the window's smallest beta: a relative change "
         "delta of the first of 4 points over a decade moves the least-squares slope by "
         "0.39 delta, so <= 0.04, inside both slope tolerances")
MISLABELED_HUNT = SYMMETRIC_SLOPE.scaled(
    -1, "the control's own search hunts -|slope - 2| of the mislabeled estimator: the draw "
        "where it comes closest to 2, against check (2)'s tolerance")
SYSTEM_SLOPE = {e: RelativeBound(tol / order, f"the System's {e} slope: {order:g} +- {tol:g} "
                                 "(issue 3's tolerances, properties.system_checks.BIAS_ORDERS), "
                                 "relative to the order")
                for e, (order, tol) in BIAS_ORDERS.items()}


def mislabeled_control(ctx, seen: list[ScalingProblem], n: int) -> None:
    """Control: "symmetric" that is really one-sided, through check (2) — its errors on the
    symmetric estimator's window. On the suite's models: those drawn for the checks (`seen`),
    or under --model a search of its own that hunts the one where it comes closest to 2."""
    suite = seen
    if ctx.model is not None:
        drawn = MeasuredOnce(ScalingProblem)
        worst_case(gradient_models(),
                   lambda spec: -deviation(mislabeled_slope(drawn(spec)), "symmetric"),
                   bound=MISLABELED_HUNT, max_examples=n, seed=ctx.seed)
        suite = drawn.values()
    mislabeled = [deviation(mislabeled_slope(p), "symmetric") for p in suite]
    closest = suite[int(np.argmin(mislabeled))]
    ctx.negative_control(
        SYMMETRIC_SLOPE.check("one-sided estimator labelled symmetric: |fitted slope - 2| in "
                              "the asymptotic window (the drawn model where it comes closest)",
                              min(mislabeled), model=repr(closest.spec),
                              slope=mislabeled_slope(closest),
                              window=closest.window("symmetric").tolist()))


@track(11, "beta scaling law", "B",
       "the relative error of one-sided EP falls as beta^1 and of symmetric EP as beta^2 where the "
       "bias is small (asymptotic regime), clear of the solver's round-off floor",
       model_requires=("symmetric", "standard_parametrization"),
       reference=("the scipy implicit gradient, against which the fitted slope of log error vs log "
                  "β is read"))
def run(ctx) -> None:
    n = ctx.examples(10, 100)
    strategy = ctx.models(gradient_models())
    problems = MeasuredOnce(ScalingProblem)
    # The β laws are about EP at the unique, attracting equilibrium of a contraction.
    if refuses_model(ctx, strategy, "the beta laws were not measured"):
        mislabeled_control(ctx, [], n)
        return

    for estimator in ORDERS:
        def window_deviation(spec: ModelSpec, estimator: str = estimator) -> float:
            return deviation(problems(spec).window_slope(estimator), estimator)

        ctx.search(strategy, Search(
            f"{estimator} EP: |fitted slope - {ORDERS[estimator]:g}| in the asymptotic window "
            f"(beta*kappa <= {REGIME:g})", window_deviation, SLOPE[estimator]), n,
            details=lambda estimator=estimator: window_ranges(problems.values(), estimator))
    for estimator in ORDERS:
        ctx.search(strategy, Search(
            f"{estimator} EP: solver round-off / fitted error at the window's smallest beta "
            "(tol 1e-14 vs 1e-15)",
            cast(Callable[[Any], float],  # lambda with defaults
                 lambda spec, e=estimator: problems(spec).floor_ratio(e)), FLOOR_RATIO), n)
    seen = problems.values()
    ranges = {e: (min(p.window_slope(e) for p in seen), max(p.window_slope(e) for p in seen))
              for e in ORDERS}
    drawn = describe_models(ctx, len(seen), "drawn models")
    ctx.note(f"{drawn}: in each model's asymptotic window the fitted slopes "
             f"are one-sided {ranges['one_sided'][0]:.3f}..{ranges['one_sided'][1]:.3f}, "
             f"symmetric {ranges['symmetric'][0]:.3f}..{ranges['symmetric'][1]:.3f}")

    # Stated figures: slopes over [1e-3, 0.3], on every model drawn above.
    stated = {e: np.array([p.slope(STATED_BETAS, e) for p in seen]) for e in ORDERS}
    worst_model = {}
    for estimator, slopes in stated.items():
        dev = np.abs(slopes - ORDERS[estimator])
        worst_model[estimator] = seen[int(np.argmax(dev))]
        ctx.claim(SLOPE[estimator].check(f"{estimator} EP: |fitted slope - {ORDERS[estimator]:g}| "
                                         "over beta in [1e-3, 0.3] (8 points)", float(dev.max())),
                  source="issue 3 acceptance",
                  **stated_details(seen, estimator, slopes, dev <= SLOPE[estimator].limit))

    mislabeled_control(ctx, seen, n)

    scaling_figure(ctx, worst_model["symmetric"], stated,
                   {e: bound.limit for e, bound in SLOPE.items()})


@on_system(11, requires=("ep_gradient",))
def certify_system(ctx) -> None:
    """The System's own ep_gradient error against the implicit gradient (over the parameters
    EP estimates: those of the energy) falls as β^p: fitted log–log slope 1 ± 0.1 (one-sided),
    2 ± 0.15 (symmetric) over each estimator's asymptotic window, the lowest decade of β with
    error ≤ 0.05 above 100× its floor, on β = 10^(−k/4), k = 2..20, continued downward (to
    1e-8) until the floor is reached. When it does not, the note says what the numbers show:
    the floor, the slope, the free phase's residual and distance to the Newton h*. Control: the
    other estimator's errors held to this one's order (one-sided held to slope 2, or symmetric
    to slope 1) miss it."""
    w = Witnessed(ctx.system, ctx.seed)
    if not system_premises(ctx, w):
        return
    sweeps = {e: beta_sweep(w, e, sweep_betas(ctx.quick), w.implicit)
              for e in ctx.system.estimators}
    for estimator, sweep in sweeps.items():
        slope, span = sweep.slope()
        ctx.check(SYSTEM_SLOPE[estimator].check(
            f"{estimator}: fitted slope of log error vs log beta", slope, BIAS_ORDERS[estimator][0],
            window=span, floor=sweep.floor(), errors=sweep.all_errors(), betas=sweep.betas))
        ctx.note(gradient_diagnosis(w, estimator, sweep.floor(), sweep.best()[0], sweep))
    first = next(iter(sweeps))
    wrong = "symmetric" if first == "one_sided" else "one_sided"
    slope, span = sweeps[first].slope()
    ctx.negative_control(SYSTEM_SLOPE[wrong].check(f"{first} errors held to the {wrong} order",
                                                   slope, BIAS_ORDERS[wrong][0], window=span))
