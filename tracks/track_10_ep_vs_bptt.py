"""Track 10 — EP vs BPTT: EP agrees with autograd through a long unrolled trajectory, and that
BPTT reference agrees with the scipy implicit gradient.

BPTT (`eqprop_core.bptt_gradients`, a REFERENCE, never EqProp) differentiates ℒ = mean CE(V h_T
+ c, y) through T synchronous updates h_{t+1} = φ(W_eff h_t + Ux + b) from h_0 = 0. On an
L-contraction (L = ‖W_eff‖₂·sup|φ′|, `model.lipschitz_certificate()`) both the forward state
error ‖h_T − h*‖ ≤ L^T‖h*‖ ≤ L^T√n and the tail of the backward Neumann series Σ_{k≥T} (J*ᵀ)^k
(≤ L^T/(1 − L)) vanish geometrically, so BPTT → the implicit gradient. Here

    T = ⌈log(ε(1 − L)/√n) / log L⌉,   ε = 1e-12,

which makes L^T√n/(1 − L) ≤ 1e-12: the truncation is ≤ 1e-12 on the O(1) scale of the
per-sample gradients (T ≈ 600 for γ = 0.95; `properties.bptt_truncation`).

Checks (hypothesis-drawn symmetric `gradient_models`, with and without SN; batch 4):
(1) BPTT(T) vs `theory.implicit_gradients`: worst per-parameter relative error ≤ 1e-9. Why: the
    truncation is ≤ 1e-12 on the per-sample scale, round-off over T steps ≈ T·1e-16 ≈ 1e-13,
    and a per-parameter gradient can be ~1e-3 of that scale after the batch mean and SN's
    projection cancel (measured worst 7e-11 over 600 drawn and hunted models).
(2) symmetric EP at β = 1e-5 (phases solved to residual 1e-14) vs BPTT(T): worst per-parameter
    relative error ≤ 1e-5 and (3) worst 1 − cosine ≤ 1e-9 — track 9's bounds
    (`properties.tolerances`), for the same reason (EP's bias c_θβ² with c_θ ≤ 9e3 measured,
    round-off ≤ 7e-8; BPTT itself is exact to check (1)'s 1e-9).

Negative control: BPTT truncated too short. With T ∈ {2, …, 5} the unrolled state has not
reached h* and the backward pass sums only T terms of the Neumann series, so check (1) must
fail; hypothesis finds and shrinks a model and a T where it does, and the measured error is
recorded beside L^T (the Banach rate that governs it). This control was chosen over "asymmetric
EP vs BPTT" because it exercises the check that is new in this track — that the unrolled
reference is converged — and shows the reference itself is not trusted blindly. The plot shows
BPTT-vs-implicit error against T for a typical SN model, with the L^T reference line.

Under `--model` (symmetric, standard parametrization): checks (1)–(3) run on the user's model;
it must pass the premise "certified L < 1" (`tracks.premises`; no Banach T exists otherwise),
recorded as a check; a model that fails it gets no checks (1)–(3). The control and the plot
stay on the suite's models.
"""

from __future__ import annotations

from collections.abc import Callable

from properties import (
    MeasuredOnce,
    ModelSpec,
    Search,
    agreement,
    at_most_bound,
    find_example,
    gradient_models,
    holds,
)
from properties import system_witness as witness
from properties.bptt_truncation import (
    TRUNCATION,
    UnrolledProblem,
    banach_ranges,
    bptt_vs_implicit,
    ep_vs_bptt,
    ep_vs_bptt_cosine_gap,
    truncated_cases,
    truncated_error,
)
from properties.system_checks import Witnessed, bptt_steps, relative_errors
from properties.tolerances import AGREEMENT_TOL, COSINE_TOL, SMALL_BETA

from .premises import describe_models, record_estimator_agreement, refuses_model, system_premises
from .procedures.ep_vs_bptt import truncation_figure
from .registry import on_system, track

BPTT_AGREEMENT = at_most_bound(
    1e-9, "BPTT(T) vs implicit, worst per-parameter relative error: the truncation is <= 1e-12 "
          "on the per-sample scale, round-off over T steps ~ T*1e-16 ~ 1e-13, and a "
          "per-parameter gradient can be ~1e-3 of that scale after the batch mean and SN's "
          "projection cancel (measured worst 7e-11 over 600 drawn and hunted models)")
EP_AGREEMENT = at_most_bound(
    AGREEMENT_TOL, "track 9's bound (properties.tolerances): EP's bias c_theta*beta^2 with "
                   "c_theta <= 9e3 measured and round-off <= 7e-8, against a BPTT exact to 1e-9")
EP_COSINE = at_most_bound(
    COSINE_TOL, "track 9's bound (properties.tolerances): a relative error eps bounds "
                "1 - cos <= eps^2/2 = 5e-11, with headroom")
SYSTEM_BPTT_AGREEMENT = at_most_bound(
    1e-7, "the System entry's figure for two converged references (BPTT until state and "
          "adjoint converge, the witness's implicit gradient); the source states no derivation")
SEARCHES = (  # checks (1)-(3): (name, measure of an UnrolledProblem, bound)
    (f"BPTT (T from the Banach bound, eps={TRUNCATION:g}) vs implicit: worst per-parameter "
     "relative error", bptt_vs_implicit, BPTT_AGREEMENT),
    (f"symmetric EP at beta={SMALL_BETA:g} vs BPTT: worst per-parameter relative error",
     ep_vs_bptt, EP_AGREEMENT),
    (f"symmetric EP at beta={SMALL_BETA:g} vs BPTT: worst per-parameter 1 - cosine",
     ep_vs_bptt_cosine_gap, EP_COSINE),
)


def certify(ctx, strategy, problems: MeasuredOnce, n: int) -> None:
    """Checks (1)-(3) over `strategy`'s models (the suite's, or the user's under --model), each
    measure taken on this run's solved problems."""
    def solved(measure: Callable[[UnrolledProblem], float]) -> Callable[[ModelSpec], float]:
        return lambda spec: measure(problems(spec))

    (name, measure, bound), *rest = SEARCHES
    out = ctx.search(strategy, Search(name, solved(measure), bound), n,
                     details=lambda: banach_ranges(problems.values()))
    seen = problems.values()  # the models of check (1), for the note
    ep_out, _ = [ctx.search(strategy, Search(name, solved(measure), bound), n)
                 for name, measure, bound in rest]
    drawn = describe_models(ctx, len(seen), "drawn models")
    ranges = banach_ranges(seen)["steps_range"]
    ctx.note(f"{drawn}, T = {ranges[0]}..{ranges[1]} unrolled steps: BPTT "
             f"matches the scipy implicit gradient to {out.worst:.1e} and symmetric EP at beta "
             f"= {SMALL_BETA:g} matches BPTT to {ep_out.worst:.1e} (worst parameter, relative)")


@track(10, "EP vs BPTT", "B",
       "BPTT through T >= log(eps(1-L)/sqrt n)/log L unrolled steps equals the scipy implicit "
       "gradient to 1e-9, and symmetric EP at beta = 1e-4 agrees with it as with the implicit one",
       model_requires=("symmetric", "standard_parametrization"),
       reference=("BPTT by autograd through a trajectory long enough for its truncation to be ≤ "
                  "1e-12, itself checked against the scipy implicit gradient"))
def run(ctx) -> None:
    n = ctx.examples(20, 300)
    strategy = ctx.models(gradient_models())
    problems = MeasuredOnce(UnrolledProblem)
    # Without a Banach T the checks cannot run; the failed premise is the result.
    if not refuses_model(ctx, strategy, "checks (1)-(3) not run"):
        if ctx.model is not None and not problems(ctx.model).lipschitz < 1:
            # scipy's L < 1, but the model's own σ̂ is not
            ctx.check(holds("the model's own certificate L < 1 (BPTT's truncation T is picked "
                            "from it)", False, "L < 1", value=problems(ctx.model).lipschitz))
        else:
            certify(ctx, strategy, problems, n)

    # Control: BPTT truncated after 2..5 steps is not the gradient at equilibrium.
    found = find_example(truncated_cases(),
                         lambda c: truncated_error(problems(c[0]), c[1]) > BPTT_AGREEMENT.limit,
                         max_examples=ctx.examples(20, 100), seed=ctx.seed)
    error, details = 0.0, {}
    if found is not None:
        spec, steps = found
        p = problems(spec)
        error = truncated_error(p, steps)
        details = {"model": repr(spec), "steps": steps, "lipschitz": p.lipschitz,
                   "L_to_the_T": p.lipschitz**steps, "banach_steps": p.steps,
                   "relative_error": agreement(p.bptt(steps), p.implicit).relative_error}
        ctx.note(f"control: BPTT through only T = {steps} steps (L = {p.lipschitz:.3g}, L^T = "
                 f"{p.lipschitz**steps:.2e}) misses the implicit gradient by {error:.2e}; the "
                 f"Banach bound asks for T = {p.steps}")
    ctx.negative_control(
        BPTT_AGREEMENT.check("BPTT truncated to 2..5 steps vs implicit: worst per-parameter "
                             "relative error (shrunk example)", error, **details))
    truncation_figure(ctx)


@on_system(10, requires=("ep_gradient",))
def certify_system(ctx) -> None:
    """The System's own ep_gradient (at β and β/2, extrapolated to β → 0 as in track 9) against
    BPTT through the System's T_0 unrolled from init_state for K steps (until both the state
    and the adjoint have converged: `bptt_steps`), and BPTT against the implicit gradient (the
    two references agree). Control: planted faults fail against BPTT."""
    w = Witnessed(ctx.system, ctx.seed)
    if not system_premises(ctx, w):
        return
    steps = bptt_steps(w)
    reference = witness.bptt_gradient(ctx.system, w.x, w.y, steps, w.params)
    ctx.check(SYSTEM_BPTT_AGREEMENT.check("witness: BPTT (K steps) vs implicit, relative error",
                                          relative_errors(reference, w.implicit)["all"],
                                          steps=steps))
    record_estimator_agreement(ctx, w, reference, "BPTT", with_cosine=False)
