"""Track 8 — Energy descent: synchronous updates with symmetric W descend the Hopfield energy.

Theorem (Marcus & Westervelt 1989; restated in `theory/energy.py`). Let W be symmetric,
a = Ux + b, φ increasing with s = sup φ′, and

    E(h) = Σ_i G(h_i) − ½ hᵀWh − hᵀa,   G′ = φ⁻¹  (so G″ = 1/φ′(φ⁻¹(h)) ≥ 1/s),

on the open box φ(ℝ)ⁿ. For the synchronous update h⁺ = φ(Wh + a) and Δ = h⁺ − h,

    E(h⁺) ≤ E(h) − ½ Δᵀ(W + I/s)Δ,

because G(h) ≥ G(h⁺) + G′(h⁺)(h − h⁺) + (h − h⁺)²/(2s) with G′(h⁺) = Wh + a. Hence E decreases
along every trajectory whenever λ_min(W) > −1/s, strictly until h is a fixed point; SN with
γ < 1 guarantees it (λ_min ≥ −‖W‖₂ ≥ −γ/s). At a fixed point ∇E(h*) = φ⁻¹(h*) − Wh* − a = 0.

Checks, over hypothesis-drawn contractive symmetric models (SN, every structure, drives up to 3)
and starts h_0 = tanh(z) with z drawn (zeros, Gaussian, corners, norms up to 1e6, clipped to
|z| ≤ 15 so that h_0 lies inside the open box in float64), 30 steps of `model.step`:
(1) monotone descent: max_k [E(h_{k+1}) − E(h_k)]/(1 + |E(h_k)|) ≤ 1e-12 (round-off), energies by
`model.energy`; (2) the guaranteed decrease: max_k [½Δ_kᵀ(W + I/s)Δ_k − (E(h_k) − E(h_{k+1}))]/
(1 + |E(h_k)|) ≤ 1e-12 with the bound by `theory.guaranteed_decrease`; (3) ∇E(h*) = 0:
‖theory.energy_gradient(h*)‖ ≤ 1e-9 at `model.equilibrium`, on the components where φ⁻¹ is
conditioned well enough to evaluate it (1 − h*_i² ≥ 1e-5; a saturated h*_i rounds to within an
ulp of ±1, where one ulp moves arctanh by more than 1e-9 — those components are checked as
|h*_i − φ(Wh* + a)_i| instead); (4) `model.energy` agrees with the independent `theory.energy`
to ≤ 1e-10 relative (to 1 + |E|).

Negative control: an asymmetric, skew-dominated W ("rotation", n ≥ 2) under SN, so that ‖W‖₂ < 1
and symmetry is the only condition of the theorem that fails. The dynamics are no
longer a gradient flow of any energy, and the energy built from W (`theory.energy`, whose
quadratic form sees only ½(W + Wᵀ)) must rise somewhere along some trajectory: hypothesis finds
and shrinks one, and the increase is recorded. Recorded beside it: symmetric W = −1.5·I
(λ_min < −1/s) 2-cycles and its energy rises on the way — the theorem's condition matters.

Under `--model` (symmetric W_eff; tanh, which the starts and the conditioning rule assume): the
checks hold the user's model fixed and draw the starts. SN is not required — the theorem needs
λ_min(W_eff) > −1/s, recorded with check (1) — but (3) needs `model.equilibrium` to converge.
The control stays on the suite's models.
"""

from __future__ import annotations

from properties import MeasuredOnce, Search, at_most_bound, find_example
from properties.energy_descent import (
    BATCH,
    STEPS,
    asymmetric_cases,
    asymmetric_rise,
    descent_metrics,
    negative_definite_cycle,
    search_details,
    symmetric_cases,
    symmetric_models,
)
from properties.system_checks import Witnessed, energy_ascent, energy_stationarity

from .premises import system_premises
from .procedures.energy_descent import energy_figure
from .registry import on_system, track

DESCENT = at_most_bound(1e-12, "the theorem: E never rises along synchronous updates; 1e-12 is "
                               "the round-off allowance on E differences, relative to the "
                               "energy's scale (1 + |E|)")
GRADIENT = at_most_bound(1e-9, "grad E(h*) = 0 at a fixed point, evaluated on the components "
                               "where phi^-1 is well conditioned (1 - h*_i^2 >= 1e-5)")
ENERGY_AGREEMENT = at_most_bound(1e-10, "model.energy and the independent theory.energy are "
                                        "the same function: agreement to 1e-10 relative to "
                                        "1 + |E|")
STATIONARY = at_most_bound(1.0, "grad_h E(h*) = 0 up to what h*'s Newton correction and "
                                "float64 rounding allow through the Hessian "
                                "(properties.system_checks.stationarity)")
SEARCHES = (  # (metric of descent_metrics, bound, check); one trajectory per case for all four
    ("rise", DESCENT, "monotone descent: max_k (E_k+1 - E_k)/(1 + |E_k|)"),
    ("shortfall", DESCENT,
     "guaranteed decrease: max_k (1/2 D^T(W + I/s)D - (E_k - E_k+1))/(1 + |E_k|)"),
    ("gradient", GRADIENT, "max ||grad E(h*)|| (theory) at model.equilibrium"),
    ("agreement", ENERGY_AGREEMENT, "max |model.energy - theory.energy|/(1 + |E|)"),
)


@track(8, "Energy descent", "A",
       "synchronous updates with symmetric W and lambda_min(W) > -1/s descend E by at least "
       "1/2 D^T(W + I/s)D per step; grad E(h*) = 0", model_requires=("symmetric",),
       reference=("`theory.energy` (an independent NumPy energy) and its gradient at the model's "
                  "equilibrium"))
def run(ctx) -> None:
    if ctx.model is not None and ctx.model.activation != "tanh":
        ctx.skip(f"{ctx.model!r} uses {ctx.model.activation!r}: track 8's starts (tanh(z)), "
                 "energy and conditioning rule are written for tanh")
    n = ctx.examples(30, 300)
    cases = symmetric_cases(ctx.models(symmetric_models()))
    measured = MeasuredOnce(descent_metrics)  # the four searches share one trajectory per case
    worst = {}
    for metric, bound, name in SEARCHES:
        spec = Search(name, measured.metric(metric), bound)
        worst[metric] = ctx.search(cases, spec, n, details=lambda m=metric: search_details(
            m, measured.values())).worst
    drawn = (f"{n} drawn symmetric SN models" if ctx.model is None
             else f"{ctx.model!r} x {len(measured.seen)} drawn start batches")
    ctx.note(f"{drawn} x {BATCH} starts x {STEPS} steps: worst relative "
             f"rise {worst['rise']:.2e}, worst shortfall vs guaranteed decrease "
             f"{worst['shortfall']:.2e}, worst ||grad E(h*)|| {worst['gradient']:.2e}, worst "
             f"model/theory energy gap {worst['agreement']:.2e}")

    # Control: asymmetric W — the energy built from W must rise somewhere.
    found = find_example(asymmetric_cases(), lambda c: asymmetric_rise(c)[0] > DESCENT.limit,
                         max_examples=ctx.examples(100, 500), seed=ctx.seed)
    rise, where = asymmetric_rise(found) if found is not None else (0.0, {})
    cycle = negative_definite_cycle(ctx.seed)
    ctx.negative_control(
        DESCENT.check("monotone descent of E built from an asymmetric W (shrunk example)", rise,
                      **where),
        shrunk_counterexample=None if found is None else {"model": repr(found[0]),
                                                           "starts_z": found[1].tolist()},
        symmetric_W_minus_1_5_I={k: v for k, v in cycle.items() if k != "energies"},
    )
    if found is not None:
        ctx.note(f"control: {found[0]!r}, starts {found[1].tolist()}: E rises by "
                 f"{where['absolute_rise']:.3e} from step {where['step']} to {where['step'] + 1} "
                 f"(relative {rise:.3e}; asymmetry {where['asymmetry']:.3g}, L {where['L']:.3g})")
    ctx.note(f"W = -1.5 I (lambda_min = -1.5 < -1/s): 2-cycle {cycle['cycle']}, E rises by "
             f"{cycle['total_rise']:.3e} on the way; guaranteed decrease goes negative "
             f"({cycle['guaranteed_decrease_min']:.3e})")

    energy_figure(ctx.artifact_path("energy.png"), ctx.seed, cycle["energies"],
                  where["energy_trace"] if found is not None else None)


@on_system(8, requires=("energy",))
def certify_system(ctx) -> None:
    """The System's energy is stationary at the witness's h* (∇_h E = 0 on the units T_0 does
    not pin, up to what h*'s Newton correction and float64 rounding allow through ∇²E:
    `properties.system_checks.stationarity`) and its own step descends it along every drawn
    trajectory. Control: the same trajectories ascend −E. Descent needs no contraction (for a
    Hopfield-type energy, λ_min(W_eff) > −1/s), so only Newton's h*, not ρ(J*) < 1, is a premise."""
    w = Witnessed(ctx.system, ctx.seed)
    if not system_premises(ctx, w, attracting=False):
        return
    st_ = energy_stationarity(ctx.system, w)
    ctx.check(STATIONARY.check("max |grad_h E(h*)_i| / what h*'s error and float64 allow "
                               "(free units)", st_["ratio"], **st_))
    count, steps = ctx.examples(6, 30), ctx.examples(200, 1000)
    up = energy_ascent(ctx.system, w, count, steps)
    ctx.check(DESCENT.check("max E(h_k+1) - E(h_k) along T_0, / max(1, |E(h_0)|)",
                            up["relative_increase"], **up))
    bad = energy_ascent(ctx.system, w, count, steps,
                        energy=lambda h, x, p: -ctx.system.energy(h, x, p))
    ctx.negative_control(DESCENT.check("-E is descended too", bad["relative_increase"]))
