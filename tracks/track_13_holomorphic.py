"""Track 13 — True holomorphic EP: the N-point Cauchy estimator's error falls as |β|^N.

Theorem (Laborieux & Zenke 2022). For the energy parameters θ ∈ {W, U, b} let
f(β) = ∂E/∂θ(h_β) − ∂E/∂θ(h_0), h_β the equilibrium of the map nudged by β. Where the nudged
equilibrium depends analytically on β (near β = 0 on a contraction), f(β) = Σ_{m≥1} a_m β^m with
a_1 = dℒ/dθ. The N-point estimator on the circle β_k = |β|e^{2πik/N}, k = 0..N−1,

    ĝ_N(|β|) = Re (1/N) Σ_k f(β_k)/β_k = a_1 + a_{N+1}|β|^N + a_{2N+1}|β|^{2N} + …,

keeps only the coefficients a_{1+jN} (Σ_k e^{2πik(m−1)/N} = N if N divides m − 1, else 0), so
its error is O(|β|^N): N = 1 is one-sided EP, N = 2 symmetric EP, and large N is exact at finite
|β|. It needs *complex* nudges and complex128 states: `ep_gradients(estimator="holomorphic")`.

Measured on hypothesis-drawn float64 models (`gradient_models`: SN or not, symmetric, hidden
≤ 8, batch 4) against the scipy implicit gradient (`theory.implicit_gradients`, Newton at 1e-14),
every phase solved to residual 1e-14: the relative error of W, U, b (the worst of the three;
V and c are explicit at h_0 and exact) on the grid |β| = 10^{k/4}, k = −20..0.

Where the law is measured (the |β| window). Two things hide it. Below it is round-off: each
phase's state is exact to ~1e-14, and the estimator divides by |β|. Over 80 draws the relative
floor was ≤ 2e-14/|β|. Above it is the non-asymptotic regime: the next aliased term
a_{2N+1}|β|^{2N} grows, relative to the leading one, as (|β|/R)^N, where R is the radius of the
β-expansion. R depends on the model: one-sided errors at |β| = 1e-3 run from 2e-4 to 3e-2 across
draws. So no fixed |β| range serves all models: a range fitted to one draw sits in the floor of
another, especially at large N, where the error moves by N decades per decade of |β|. The
relative error alone does not tell how close |β| is to R either. On one draw
(ModelSpec(n_hidden=4, weight_scale=100, 'spike', seed=4, drive 0.1)), N = 4 at a relative error
of 6e-3 already had a local slope of 4.5. So the window is anchored on the round-off side. It
starts at the smallest grid |β| whose error is ≥ 1e-9 and ≥ 1e-11/|β| (≥ 500× the floor) and
goes upward, at most 4 points (a factor 5.6 in |β|), while the error stays ≤ 1e-2. At least 3
points are needed to fit. There |β| is as small as round-off allows, and so is (|β|/R)^N.
The estimator, the window and its scan: `properties.holomorphic`.

Checks:
(1) the fitted slope of log error vs log |β| in that window is N ± 0.3 for N = 1, 2, 3, 4 on
    every draw (the issue's tolerance; measured deviations ≤ 3e-3 over 80 draws, 2 seeds), and
    N = 8 on the plotted model;
(2) holomorphic N = 1 equals one-sided EP and N = 2 equals symmetric EP (|β| = 0.1) to 1e-11
    relative: the schedule reduces as the theorem says (complex states vs real ones, so the
    two solves differ by their tolerance over |β|, not by one ulp).
Claim (issue 3 acceptance): N = 8 at |β| = 0.2 has relative error ≤ 1e-6 — a fixed-|β| figure,
so it holds on a draw iff 0.2 is well inside that draw's radius R; recorded with the share of
draws meeting it, the worst value and the shrunk counterexample.

Negative control: the write-up's "Holomorphic" model was real-valued (a sine-modulated gain; its
code trained by backprop, with no nudge at all, so it has no |β| law of any kind). Its faithful
EP stand-in is the same circle in real arithmetic: the nudges are the real parts
β_k = |β|cos(2πk/N) (a cos-modulated real nudge gain), each used in a one-sided difference
quotient [∂E/∂θ(h_{β_k}) − ∂E/∂θ(h_0)]/β_k, averaged over the k with β_k ≠ 0. For N ≥ 2,
Σ_k cos(2πk/N) = 0 cancels the O(β) term, but Σ_k cos²(2πk/N) ≠ 0 for every N, so its error is
O(β²) whatever N: for N = 4 it *is* symmetric EP. The track's own slope measurement, applied
to it at N = 4, must find a slope far from 4 (it finds 2): the |β|^N law needs complex states.

Under `--model` (symmetric, standard parametrization): checks (1), (2), the claim and the plotted
N = 8 check run on the user's model; the control runs on the suite's draws (`measure_control`).
"""

from __future__ import annotations

import numpy as np

from properties import (
    MeasuredOnce,
    ModelSpec,
    Search,
    at_most_bound,
    gradient_models,
    holds,
    worst_case,
)
from properties.holomorphic import (
    CLAIM_BETA,
    CLAIM_POINTS,
    CONTROL_ORDER,
    ORDERS,
    REDUCTION_BETA,
    claim_error,
    measure,
    measure_control,
)

from .premises import describe_models, refuses_model
from .procedures.holomorphic import account, plot
from .registry import track

SLOPE = at_most_bound(
    0.3, "issue 3 acceptance: fitted slope N +- 0.3 (measured deviations <= 3e-3 over 80 draws, "
         "2 seeds)")
REDUCTION = at_most_bound(
    1e-11, "N = 1 vs one-sided, N = 2 vs symmetric: complex states vs real ones, so the two "
           "solves differ by their tolerance over |beta| (~tol/|beta| over ||g||), not by one ulp")
CLAIM = at_most_bound(1e-6, "issue 3 acceptance: N = 8 at |beta| = 0.2 has relative error <= 1e-6")
CONTROL_HUNT = SLOPE.scaled(
    -1, "the control's own search (under --model) over -|slope - 4| of the real nudges, against "
        "check (1)'s tolerance")


def real_nudge_control(ctx, seen: list[dict], n: int, plotted_slope: float | None
                       ) -> list[float]:
    """Control: the real-valued stand-in measured exactly like the holomorphic estimator, on the
    suite's models (`seen`; under --model, a search of its own over the draws the checks would
    make). Returns the control slopes."""
    controls = seen
    if ctx.model is not None:
        suite = MeasuredOnce(measure_control)
        worst_case(gradient_models(),
                   lambda spec: -abs(suite(spec)["control_slope"] - CONTROL_ORDER),
                   bound=CONTROL_HUNT, max_examples=n, seed=ctx.seed, hunt=False)
        controls = suite.values()
    control_slopes = [m["control_slope"] for m in controls]
    closest = min(control_slopes, key=lambda s: abs(s - CONTROL_ORDER))
    ctx.negative_control(
        holds(f"real cos-modulated nudges (seed's real-valued 'holomorphic'), N = "
              f"{CONTROL_ORDER}: fitted slope within {SLOPE.limit} of {CONTROL_ORDER} "
              "(draw closest to it)", abs(closest - CONTROL_ORDER) <= SLOPE.limit,
              f"|slope - {CONTROL_ORDER}| <= {SLOPE.limit}", value=closest),
        slopes=control_slopes, windows=[m["control_window"] for m in controls],
        plotted_model_slope=plotted_slope)
    return control_slopes


@track(13, "True holomorphic EP", "B",
       "complex nudges |beta| e^{2 pi i k/N}: the N-point estimator's error falls as |beta|^N",
       model_requires=("symmetric", "standard_parametrization"),
       reference=("the scipy implicit gradient, against which the error of the N-point Cauchy "
                  "estimator is fitted in |β|"))
def run(ctx) -> None:
    n = ctx.examples(4, 40)
    cases = ctx.models(gradient_models())
    measured = MeasuredOnce(measure)
    # The |β|^N law is about EP at the unique, attracting equilibrium of a contraction.
    if refuses_model(ctx, cases, "the |beta|^N law was not measured"):
        real_nudge_control(ctx, [], n, None)
        return
    slope_spec = Search("max over draws and N = 1..4 of |fitted slope - N| (log error vs log "
                        "|beta|, window from max(1e-9, 1e-11/|beta|) up to 1e-2 in error)",
                        measured.metric("slope_deviation"), SLOPE, hunt=False)
    slope = slope_spec.run(cases, max_examples=n, seed=ctx.seed)
    seen = measured.values()
    per_order = {f"N={k}": [m["slopes"][k] for m in seen] for k in ORDERS}
    windows = {f"N={k}": [m["windows"][k] for m in seen] for k in ORDERS}
    evidence = SLOPE.check(slope_spec.name, slope.worst, slopes=per_order, windows=windows,
                           **slope.details())
    ctx.check(evidence)
    ctx.claim(evidence, source="issue 3 acceptance (fitted slope N +- 0.3, N = 1..4)")

    ctx.search(cases, Search(f"holomorphic N=1 vs one-sided and N=2 vs symmetric at |beta| = "
                             f"{REDUCTION_BETA:g}: worst relative difference",
                             measured.metric("reduction"), REDUCTION, hunt=False), n)

    # Claim: N = 8 at |β| = 0.2 — share of the drawn models, shrunk counterexample.
    errors = [m["claim_error"] for m in seen]
    share = float(np.mean([e <= CLAIM.limit for e in errors]))
    claim = worst_case(cases, claim_error(measured), bound=CLAIM, max_examples=n,
                       seed=ctx.seed, hunt=False)
    ctx.claim(CLAIM.check(f"holomorphic N={CLAIM_POINTS} at |beta| = {CLAIM_BETA:g}: worst "
                          "relative error over draws", claim.worst, share_of_draws_meeting=share,
                          median=float(np.median(errors)), **claim.details()),
              source="issue 3 acceptance")

    typical = ctx.model or ModelSpec(n_in=3, n_hidden=8, weight_scale=1.0, structure="gaussian",
                                     seed=ctx.seed, gamma=0.95, drive_scale=1.0)
    plotted = plot(ctx, typical)
    ctx.check(SLOPE.check("plotted model: |fitted slope - 8| for N = 8", abs(plotted["N=8"] - 8),
                          model=repr(typical), slopes=plotted))

    control_slopes = real_nudge_control(ctx, seen, n, plotted["control"])

    account(ctx, describe_models(ctx, len(seen), "drawn models"), seen, windows, typical,
            plotted, share, errors, CLAIM.limit, claim.worst, control_slopes)
