"""Track 9 — EP vs the implicit gradient: symmetric-nudge EP converges to the scipy gradient.

Theorem (Scellier & Bengio 2017; `eqprop_core/gradients.py`). For a symmetric W_eff and the
total energy F(h, β) = E(h) + βℓ(h), the symmetric estimator

    ĝ(β) = (1/2β)[∂E/∂θ(h_β) − ∂E/∂θ(h_−β)] = dℒ/dθ + c_θ β² + O(β⁴),

where dℒ/dθ is the implicit-differentiation gradient g* (I − J*)ᵀλ = ∂ℓ/∂h, computed here by
`theory.implicit_gradients` (scipy, Newton equilibria, hand-derived SN chain rule — nothing of
the code under test but the weights). The readout V, c is outside E: its gradient is explicit at
h_0 and exact for every β.

Checks (hypothesis-drawn `gradient_models`, symmetric, with and without SN; batch 4; every phase
solved to residual ≤ 1e-14, so the state error ≤ 1e-14/(1 − L) ≤ 2e-13 and the round-off of an
estimate is ≈ 2e-13/β on the O(1) scale of the partials):
(1) at β = 1e-5 the worst per-parameter relative error ‖ĝ − g*‖/‖g*‖ ≤ 1e-5 and
(2) the worst per-parameter 1 − cosine ≤ 1e-9. Why β and bounds: the bias c_θβ² is model-
    dependent with a heavy tail (the nudge is amplified by ‖(I − J*)⁻¹‖·‖V‖, per-sample terms
    cancel in the batch mean, SN's projection cancels most of the raw-W gradient). Measured over
    ~1500 drawn and hunted models, c_θ = rel/β² ≤ 9e3 (e.g. a γ = 0.95 model whose U-gradient
    has norm 20), so a fixed β = 1e-4 would leave biases up to 9e-5; at β = 1e-5 the bias is
    ≤ 9e-7 and the bound 1e-5 admits c_θ ≤ 1e5, while the round-off measured there (Anderson vs
    plain iteration, an over-estimate) is ≤ 7e-8, over 100× below the bound. An estimator off by a
    constant bias ≥ 1e-5 (a wrong sign, a missing ½, a dropped SN term, W's asymmetry) fails
    it. A relative error ε bounds 1 − cos ≤ ε²/2 = 5e-11, hence (2) with headroom
    (`properties.tolerances`, shared with tracks 10 and 16).
(3) readout V, c: relative error ≤ 1e-10 (exact up to the 1e-14 solve).
(4) the directional derivative of ℒ = mean CE(model(x), y) along a random unit direction v of
    all raw parameters, by central differences of `model.forward` re-solved to residual 1e-14:
    D_v ℒ ≈ [ℒ(θ + εv) − ℒ(θ − εv)]/2ε with ε = 1e-5, the step that balances truncation
    ε²/6·|D³ℒ| against the loss's round-off (~1e-15)/ε (measured: ε = 1e-3, 1e-4, 1e-5 agree with
    ⟨g*, v⟩ to 1e-4, 1e-6, 1e-8 relative — the ε² law —, ε = 1e-6 is already round-off bound).
    Checks, with and without SN, in the gradient-check form (absolute, in units of the gradient
    norm, because a random v can be nearly orthogonal to the gradient, where an error relative
    to D_v ℒ itself explodes): |D_v ℒ − ⟨g*, v⟩| ≤ 1e-6·‖g*‖ — the scipy reference is the
    derivative of what `model.forward` computes, SN parametrization included (measured worst
    6e-8 over 600 hunted draws) — and (5) |D_v ℒ − ⟨ĝ(1e-5), v⟩| ≤ 1e-5·‖ĝ‖, which (1) and (4)
    imply (|⟨ĝ − g*, v⟩| ≤ ‖ĝ − g*‖) and which tests EP against the model directly
    (`properties.directional_derivative`).

Stated figures, recorded as claims (holds / REFUTED with the share of draws meeting them, the
worst value and the shrunk counterexample): TRACKS.md "cosine ≥ 0.9999 and relative error
≤ 1e-3 at β = 0.01"; issue 3 "symmetric β = 1e-3: rel ≤ 1e-4 and cosine ≥ 0.99999 for every
parameter; one-sided β = 1e-3: rel ≤ 1e-2"; issue 3 "D_v ℒ by finite differences agrees with
⟨ĝ(β = 1e-3), v⟩ to ≤ 1e-4 relative, with and without SN". They are fixed-β figures for a bias
whose constant is model-dependent, so the share and the counterexample are the result.

Negative control: an asymmetric W (symmetric=False, ‖W − Wᵀ‖/‖W + Wᵀ‖ ≥ 0.3). EP in its vector-
field form propagates the error through W where backprop uses Wᵀ; the bias does not vanish as
β → 0, so check (1) must fail. Hypothesis finds and shrinks such a model; the bias at β = 1e-5
and 1e-3 (nearly equal: it is not O(β²)) is recorded.

Under `--model` (symmetric W_eff, standard parametrization: the witness redoes W ↦ W_eff): the
checks and stated figures run on the user's model (the directional checks in its own arm, SN or
no SN); the control stays on the suite's asymmetric models.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from properties import (
    GradientProblem,
    MeasuredOnce,
    ModelSpec,
    Search,
    at_least_bound,
    at_most_bound,
    find_example,
    worst_case,
)
from properties.directional_derivative import FD_STEP, FD_TOL
from properties.gradients import ENERGY_PARAMETERS
from properties.symmetric_ep import (
    asymmetric_bias,
    asymmetric_models,
    directional_metrics,
    readout_error,
    small_beta_cosine_gap,
    small_beta_error,
    symmetric_problems,
)
from properties.system_checks import FD_AGREEMENT, Witnessed, witness_fd_agreement
from properties.tolerances import AGREEMENT_TOL, COSINE_TOL, SMALL_BETA

from .premises import record_estimator_agreement, refuses_model, system_premises
from .procedures.stated_figures import record_stated_figure
from .registry import on_system, track

BATCH = 4  # samples per drawn model; the batch mean is what every estimator estimates

AGREEMENT = at_most_bound(AGREEMENT_TOL,
                          "at beta = 1e-5 the bias c_theta beta^2 is <= 9e-7 (c_theta <= 9e3 "
                          "measured) and the round-off <= 7e-8; 1e-5 admits c_theta <= 1e5 "
                          "while a constant bias >= 1e-5 fails (properties.tolerances)")
COSINE = at_most_bound(COSINE_TOL, "a relative error eps bounds 1 - cos <= eps^2/2 = 5e-11; "
                                   "1e-9 with headroom (properties.tolerances)")
READOUT = at_most_bound(1e-10, "the readout V, c is outside E: its gradient is explicit at h_0, "
                               "exact up to the 1e-14 solve")
FD_AGREES = at_most_bound(FD_TOL, "the scipy reference is the derivative of what model.forward "
                                  "computes, SN included; central differences at eps = 1e-5 "
                                  "(measured worst 6e-8 over 600 hunted draws)")
WITNESS_FD = at_most_bound(FD_AGREEMENT, "in units of ||g||: the implicit gradient is exact to "
                                         "the Newton residual (properties.system_checks)")
DIRECTIONAL = (  # (metric of directional_metrics, bound, check), each per arm
    ("fd_vs_implicit", FD_AGREES, f"finite-difference D_v L (eps={FD_STEP:g}) vs <implicit "
     "gradient, v>: worst |difference| / ||g*||"),
    ("fd_vs_ep", AGREEMENT, f"finite-difference D_v L (eps={FD_STEP:g}) vs <EP(beta="
     f"{SMALL_BETA:g}), v>: worst |difference| / ||EP||"),
)
# Stated figures (recorded as claims)
TRACKS_RELATIVE = at_most_bound(1e-3, "TRACKS.md track 9: relative error <= 1e-3 at beta = 0.01")
TRACKS_COSINE = at_least_bound(0.9999, "TRACKS.md track 9: cosine >= 0.9999 at beta = 0.01")
ISSUE_RELATIVE = at_most_bound(1e-4, "issue 3 acceptance: symmetric beta = 1e-3, rel <= 1e-4 "
                                     "for every parameter")
ISSUE_COSINE = at_least_bound(0.99999, "issue 3 acceptance: symmetric beta = 1e-3, cosine >= "
                                       "0.99999 for every parameter")
ISSUE_ONE_SIDED = at_most_bound(1e-2, "issue 3 acceptance: one-sided beta = 1e-3, rel <= 1e-2")
ISSUE_DIRECTIONAL = at_most_bound(1e-4, "issue 3 acceptance: D_v L by finite differences agrees "
                                        "with <EP(beta = 1e-3), v> to <= 1e-4 relative, with and "
                                        "without SN")
STATED = (  # (claim, source, bound, beta, estimator, statistic of GradientProblem.error)
    ("symmetric EP at beta=0.01: worst per-parameter relative error", "TRACKS.md track 9",
     TRACKS_RELATIVE, 1e-2, "symmetric", "worst_relative_error"),
    ("symmetric EP at beta=0.01: worst per-parameter cosine", "TRACKS.md track 9",
     TRACKS_COSINE, 1e-2, "symmetric", "worst_cosine"),
    ("symmetric EP at beta=1e-3: worst per-parameter relative error", "issue 3 acceptance",
     ISSUE_RELATIVE, 1e-3, "symmetric", "worst_relative_error"),
    ("symmetric EP at beta=1e-3: worst per-parameter cosine", "issue 3 acceptance",
     ISSUE_COSINE, 1e-3, "symmetric", "worst_cosine"),
    ("one-sided EP at beta=1e-3: worst per-parameter relative error", "issue 3 acceptance",
     ISSUE_ONE_SIDED, 1e-3, "one_sided", "worst_relative_error"),
)


def asymmetric_control(ctx, problems: MeasuredOnce) -> None:
    """Control: asymmetric W — EP's limit is not the gradient; check (1) must fail."""
    found = find_example(asymmetric_models(),
                         lambda s: small_beta_error(problems(s)) > AGREEMENT.limit,
                         max_examples=ctx.examples(30, 200), seed=ctx.seed)
    details: dict[str, Any] = {}
    bias = 0.0
    if found is not None:
        p = problems(found)
        bias = p.error(SMALL_BETA).worst_relative_error
        details = {"model": repr(found), **asymmetric_bias(p)}
        ctx.note(f"control: asymmetric W (asymmetry {p.asymmetry:.3g}): EP's relative bias "
                 f"{bias:.3g} at beta = {SMALL_BETA:g} and "
                 f"{p.error(1e-3).worst_relative_error:.3g} at 1e-3 — it does not shrink with "
                 f"beta ({found!r})")
    ctx.negative_control(
        AGREEMENT.check(f"asymmetric W: EP at beta={SMALL_BETA:g} vs implicit, worst "
                        "per-parameter relative error (shrunk example)", bias, **details))


@track(9, "EP vs implicit gradient", "B",
       "symmetric-nudge EP converges to the scipy implicit gradient (bias O(beta^2)); the "
       "readout gradient is exact; a finite-difference directional derivative of model(x) agrees",
       model_requires=("symmetric", "standard_parametrization"),
       reference=("the scipy implicit gradient (`theory.implicit_gradients`: Newton equilibria, (I "
                  "− J*)ᵀλ = ∂ℓ/∂h) and finite differences of the re-solved loss"))
def run(ctx) -> None:
    n = ctx.examples(20, 300)
    strategy = ctx.models(symmetric_problems())
    # The directional checks run per arm, SN and no SN; a fixed model is its own only arm.
    arms = ({"SN": symmetric_problems(True), "no SN": symmetric_problems(False)}
            if ctx.model is None else
            {("SN" if ctx.model.spectral_norm else "no SN"): strategy})
    problems = MeasuredOnce(GradientProblem)  # each drawn model built and solved once per run
    directional = MeasuredOnce(lambda spec: directional_metrics(problems(spec)))
    # EP's theorem is about the unique, attracting equilibrium of a contraction: on any other
    # fixed point the solvers find, an agreement would certify nothing.
    if refuses_model(ctx, strategy, "checks (1)-(5) not run"):
        asymmetric_control(ctx, problems)
        return

    out = worst_case(strategy, lambda s: small_beta_error(problems(s)), bound=AGREEMENT,
                     max_examples=n, seed=ctx.seed)
    seen = [p.spec for p in problems.values()]  # the first search's draws
    constants = [problems(s).error(SMALL_BETA, keys=ENERGY_PARAMETERS).worst_relative_error
                 / SMALL_BETA**2 for s in seen]
    ctx.check(AGREEMENT.check(f"symmetric EP at beta={SMALL_BETA:g} vs implicit: worst "
                              "per-parameter relative error", out.worst,
                              max_bias_constant_rel_over_beta2=max(constants),
                              sn_share=float(np.mean([s.spectral_norm for s in seen])),
                              **out.details()))
    ctx.search(strategy, Search(f"symmetric EP at beta={SMALL_BETA:g} vs implicit: worst "
                                "per-parameter 1 - cosine",
                                lambda s: small_beta_cosine_gap(problems(s)), COSINE), n)
    readout = ctx.search(strategy, Search("readout V, c (explicit at h_0) vs implicit: worst "
                                          "relative error", lambda s: readout_error(problems(s)),
                                          READOUT), n)

    for metric, bound, name in DIRECTIONAL:
        outs = {arm: worst_case(models, directional.metric(metric), bound=bound,
                                max_examples=n // 2, seed=ctx.seed)
                for arm, models in arms.items()}
        worst_arm = max(outs, key=lambda k: outs[k].worst)
        ctx.check(bound.check(f"{name}, {' and '.join(arms)}", outs[worst_arm].worst,
                              worst_arm=worst_arm, per_arm={k: a.worst for k, a in outs.items()},
                              **outs[worst_arm].details()))
    fd_quality = max(m["fd_vs_implicit"] for m in directional.values())
    drawn = (f"{len(seen)} drawn symmetric models (hunting the worst)" if ctx.model is None
             else repr(ctx.model))
    ctx.note(f"{drawn}: symmetric EP at beta = "
             f"{SMALL_BETA:g} is within {out.worst:.2e} (relative, worst parameter) of the scipy "
             f"implicit gradient; bias constants rel/beta^2 up to {max(constants):.3g}; "
             f"readout exact to {readout.worst:.1e}; FD directional derivatives agree with "
             f"the implicit gradient to {fd_quality:.1e} of ||g||")

    # Stated figures: claims over the draws of the first search (share) + a shrinking search.
    m = ctx.examples(10, 100)
    for name, source, bound, beta, estimator, statistic in STATED:
        def measure(spec: ModelSpec, b: float = beta, e: str = estimator,
                    k: str = statistic) -> float:
            return getattr(problems(spec).error(b, e), k)

        record_stated_figure(ctx, name, source, strategy, seen, measure, bound, max_examples=m)
    for arm, models in arms.items():
        arm_seen = [problems.seen[key].spec for key in directional.seen
                    if problems.seen[key].spec.spectral_norm == (arm == "SN")]
        record_stated_figure(
            ctx, f"FD D_v L vs <EP(beta=1e-3), v>: worst relative error ({arm})",
            "issue 3 acceptance", models, arm_seen,
            directional.metric("stated"), ISSUE_DIRECTIONAL, max_examples=m,
            smallest_projection_g_dot_v_over_norm_g=min(
                directional(s)["projection"] for s in arm_seen))

    asymmetric_control(ctx, problems)


@on_system(9, requires=("ep_gradient",))
def certify_system(ctx) -> None:
    """The System's own ep_gradient against the witness's implicit gradient λᵀ∂T_0/∂θ (+∂ℒ/∂θ),
    per parameter, at β = AGREEMENT_BETA[estimator] and β/2 extrapolated to β → 0 (EP's own
    O(βᵖ) bias removed, whatever the model makes its coefficient; an O(1) error or a floor of
    unconverged phases stays: `properties.system_checks.estimator_agreement`), the errors at β
    recorded beside; the witness itself agrees with finite differences of the re-solved ℒ(θ).
    Control: the user's estimate with planted faults (−g, 2g, its largest block dropped) fails
    the same check."""
    w = Witnessed(ctx.system, ctx.seed)
    if not system_premises(ctx, w):
        return
    reference = w.implicit
    fd = witness_fd_agreement(w, ctx.examples(2, 6))
    ctx.check(WITNESS_FD.check("witness: implicit gradient vs FD of the re-solved loss, max "
                               "|<g,v> - FD| / ||g||", fd.disagreement, fd_error=fd.fd_error,
                               one_sided_jump=fd.kink))
    if fd.disagreement > WITNESS_FD.limit and fd.kink > fd.disagreement:
        ctx.note(f"L(theta) has a kink at these parameters: its one-sided derivatives differ by "
                 f"{fd.kink:.3g} ||g|| (a repeated top singular value under spectral "
                 "normalization does this), so no gradient exists for the estimate to agree with")
    record_estimator_agreement(ctx, w, reference, "implicit")
