"""Track 30 — Event-driven (lazy) and asynchronous updates reach the same h*, and what they save.

Theorem (totally asynchronous convergence; Bertsekas & Tsitsiklis 1989, §6.2–6.3; restated in
`theory/asynchronous.py`). If T(h) = φ(W_eff h + Ux + b) is a contraction in a weighted max-norm
‖v‖_w = max_i |v_i|/w_i — for sup|φ′| = s that holds with L_w = s·max_i(|W_eff|w)_i/w_i < 1,
best w the Perron vector of |W_eff|, inf_w L_w = s·ρ(|W_eff|) — then every asynchronous or
partial-update schedule (any order, any subset, each neuron updated infinitely often) converges
to the unique h*. Along any run ‖h − h*‖_w ≤ ‖T(h) − h‖_w/(1 − L_w); a partial update never
increases ‖h − h*‖_w; one Gauss–Seidel sweep shrinks it by L_w. SN certifies the 2-norm only
(L₂ = s‖W_eff‖₂ ≤ γ), which does not imply any of this: ρ(|W|) ≥ ‖W‖₂ for symmetric W.

Group A (contraction and equilibrium): the claim is about which norm T contracts in and the
fixed point every schedule reaches — measured, like tracks 2–4, on hypothesis-drawn small models
in float64 against the scipy/NumPy witness; nothing is trained and no dataset is read.

Schemes (`eqprop_core.event_driven`): synchronous (plain iteration, n updates per round), lazy
(a neuron updates only when its pending change |φ(a_i) − h_i| exceeds θ; θ₀ = 0.1, halved
whenever no neuron exceeds it, floored at tol/√n), asynchronous Gauss–Seidel (random order per
sweep, cyclic, reversed). All maintain the pre-activations incrementally (a += δ_j W[:, j]), so
the work is proportional to the neuron updates made; all stop at ‖T(h) − h‖₂ ≤ 1e-12 (float64) —
the same fixed-point error, at which updates are counted.

Checks, on drawn SN models rescaled so that their Perron-weighted L_w ∈ {0.5, 0.8, 0.95}
(structures of `contractive_models`, symmetric and not, starts to 1e6 in norm):
(1) every scheme converges; (2) all schemes, orders and starts reach one h* (spread ≤ 1e-9),
equal to the Newton witness (`theory.find_fixed_point`) and to `solvers.fixed_point_iteration`
to ≤ 1e-9; (3) the accounting is exact: updates + skipped = rounds·n per sample, the neurons
that changed between recorded rounds of the lazy run are exactly the updates counted, and the
maintained pre-activations equal h W_effᵀ + d to round-off; (4) the max-norm Banach bounds
above hold at every recorded round (weights with margin, `theory.conditioned_weights`); (5) the
certificate itself: ‖T(a) − T(b)‖_w ≤ L_w‖a − b‖_w for w = 1 and Perron w, hunted by
hypothesis (with worst-row sign directions, so its tightness is reported); (6) symmetric SN
models with *no* max-norm certificate still converge under every scheme to the Newton h* —
a theorem of a different kind: the energy of track 8 descends under any partial update
h_S ← φ(a_S), E(h⁺) ≤ E(h) − ½Δ_Sᵀ(W_SS + I/s)Δ_S, and λ_min(W_SS) ≥ −‖W‖₂ ≥ −γ/s > −1/s.

Measured and reported (claims, not checks): the share of SN models that are max-norm
contractions, weighted and unweighted, on a stated grid (5 structures × symmetric or not ×
n ∈ {2, 4, 8}, two seeds each; full: n to 32, eight seeds), and a shrunk SN model that is not;
what lazy and Gauss–Seidel updates do on the SN models without the certificate — for asymmetric
W no theorem applies, and cyclic Gauss–Seidel can cycle forever on a 2-norm contraction: hypothesis
finds a minimal SN model whose cyclic sweep has Jacobian spectral radius > 1 at h* = 0 (scipy,
`theory.gauss_seidel_iteration_matrix`) and running it confirms the cycle; the share of neuron
updates the lazy scheme skips at equal fixed-point error, per model class of the drawn models
and on n = 32 models (full: also n = 128), plus Gauss–Seidel's saving; a plot of the residual
against neuron updates (synchronous, lazy, Gauss–Seidel) on a certified n = 32 model.

Negative control: W = [[0, −2], [−2, 0]] (mutual inhibition, no SN, L₂ = L_∞ = ρ(|W|) = 2:
not a contraction in any norm), x = 0, one start (½, ½): cyclic and reversed Gauss–Seidel
reach the two different fixed points (∓p, ±p), p = tanh(2p) ≈ 0.9575, so "same h*" must fail;
synchronous and lazy updates 2-cycle. Recorded beside it: a lazy scheme with a frozen threshold
(shrink = 1) stalls above the tolerance on a certified model.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch

from properties import Search, holds
from properties.asynchronous_convergence import (
    CENSUS_LABELS,
    CENSUS_ROUNDS,
    CYCLE_SWEEPS,
    TOL,
    census,
    certificate_pairs,
    certificate_quotient,
    certified_cases,
    certified_per_class,
    certified_plot_spec,
    certified_shares,
    converged_share,
    cyclic_counterexample,
    frozen_threshold_run,
    measure,
    mutual_inhibition,
    outcomes,
    saving_details,
    scale_savings,
    sn_census_cases,
    uncertified_sn_model,
)
from properties.bounds import at_least_bound, at_most_bound

from .procedures.event_driven import (
    census_note,
    control_note,
    outcomes_note,
    plot,
    saving_note,
    scale_note,
    search_note,
)
from .registry import track

NONE = at_most_bound(0.0, "checks (1), (3): every scheme converges and the accounting is exact, "
                          "so nothing may be counted")
AGREEMENT = at_most_bound(1e-9, "check (2): h* agreement; each solve's certified error is <= "
                                "TOL/(1 - L_2) <= 1e-10")
DRIFT = at_most_bound(1e-12, "check (3): the maintained pre-activations equal h W_eff^T + d to "
                             "round-off")
BANACH = at_most_bound(1.0, "check (4): each ratio is a max-norm Banach bound's left side over "
                            "its right side, > 1 a violation")
CERTIFICATE = at_most_bound(1 + 1e-9, "check (5): ||T(a) - T(b)||_w <= L_w ||a - b||_w, the "
                                      "quotient <= 1 (the 1e-9 allowance is not derived in the "
                                      "module)")
NO_EXTRA_WORK = at_least_bound(0.0, "TRACKS.md track 30: lazy updates never need more neuron "
                                    "updates than synchronous sweeps at equal error (saving >= 0)")
EVERY_MODEL = at_least_bound(1.0, "a share of models: the claim is stated for every model")
STALLED = at_least_bound(TOL, "a frozen threshold stalls above the tolerance every scheme stops "
                              "at")


# Hunting (hypothesis.target) draws new cases; it is spent where the margin is thin.
SEARCHES = (
    Search("unconverged solves (6 schemes/orders x 2 starts)", measure.metric("unconverged"),
           NONE, hunt=False),
    Search("max spread of h* over schemes, orders and starts", measure.metric("spread"),
           AGREEMENT, hunt=False),
    Search("max |h_scheme - h*_newton (theory)|", measure.metric("witness"), AGREEMENT),
    Search("max |h_scheme - h_fixed_point solver|", measure.metric("solver"), AGREEMENT,
           hunt=False),
    Search("accounting mismatches: updates+skipped vs rounds*n, changed neurons vs lazy updates",
           measure.metric("mismatch"), NONE, hunt=False),
    Search("max |maintained pre-activation - (h W^T + d)|", measure.metric("drift"), DRIFT,
           hunt=False),
    Search("max-norm a posteriori: max ||h_k-h*||_w / (||T(h_k)-h_k||_w/(1-L_w))",
           measure.metric("posterior"), BANACH),
    Search("partial updates never expand: max ||h_{k+1}-h*||_w / ||h_k-h*||_w (synchronous, "
           "lazy)", measure.metric("expansion"), BANACH, hunt=False),
    Search("Gauss-Seidel sweep contracts: max ||h_{k+1}-h*||_w / (L_w ||h_k-h*||_w)",
           measure.metric("sweep"), BANACH),
)


CERTIFICATE_SEARCH = Search("max-norm certificate: max ||T(a)-T(b)||_w / (L_w ||a-b||_w), w = 1 "
                            "and Perron", certificate_quotient, CERTIFICATE)


@track(30, "Event-driven updates", "A",
       "lazy and asynchronous updates reach the same h* when T is a weighted max-norm "
       "contraction (s*rho(|W|) < 1); skipped share measured at equal fixed-point error",
       model_reason="its checks rescale the suite's SN models to chosen max-norm certificates "
       "(s*rho(|W|) in {0.5, 0.8, 0.95}); a given model is not rescaled (tracks 2-6 certify "
       "its own contraction)",
       reference="the Newton h*, scipy's weighted max-norm certificate, exact update counts")
def run(ctx) -> None:
    n = ctx.examples(12, 150)
    cases = certified_cases()
    for search in SEARCHES:
        ctx.search(cases, search, n)
    rows = measure.values()
    ctx.note(search_note(n, rows))

    # Skipped updates at equal fixed-point error (both stop at the same residual).
    saving_lazy = [r["saving_lazy"] for r in rows if r["saving_lazy"] is not None]
    saving_gs = [r["saving_gauss_seidel"] for r in rows if r["saving_gauss_seidel"] is not None]
    ctx.check(AGREEMENT.check(
        "equal fixed-point error: max over models of lazy and synchronous |h - h*_newton|",
        max(max(r["error_lazy"], r["error_sync"]) for r in rows),
        median_error_lazy=float(np.median([r["error_lazy"] for r in rows])),
        median_error_synchronous=float(np.median([r["error_sync"] for r in rows]))))
    ctx.claim(
        NO_EXTRA_WORK.check("lazy updates never need more neuron updates than synchronous "
                            "sweeps at equal fixed-point error (min saving over drawn certified "
                            "models)", min(saving_lazy), **saving_details(rows, saving_lazy)),
        "TRACKS.md track 30 (measure the share of skipped updates at equal error)")
    ctx.note(saving_note(saving_lazy, saving_gs))

    scale_rows = scale_savings(ctx.by_profile((32,), (32, 128)))
    ctx.claim(
        EVERY_MODEL.check("n >= 32 SN models (gamma 0.95, 4 inputs each): lazy needs fewer "
                          "neuron updates than synchronous at equal error (share of models)",
                          float(np.mean([(r["saving_lazy"] or 0) > 0 and r["converged"]
                                         for r in scale_rows])),
                          models={r["class"]: r for r in scale_rows}),
        "TRACKS.md track 30 (measure the share of skipped updates at equal error)")
    ctx.note(scale_note(scale_rows))

    # The certificate, hunted (the tightest quotient is its tightness).
    ctx.search(certificate_pairs(), CERTIFICATE_SEARCH, ctx.examples(60, 600))

    # SN models: are they max-norm contractions, and what do asynchronous updates do then?
    grid = sn_census_cases(ctx.by_profile((2, 4, 8), (2, 4, 8, 16, 32)),
                           ctx.by_profile(2, 8), ctx.seed)
    seen = [census(case) for case in grid]
    sym_uncert = [r for r in seen if r["symmetric"] and not r["certified"]]
    asym_uncert = [r for r in seen if not r["symmetric"] and not r["certified"]]
    share, per_class = certified_shares(seen), certified_per_class(seen)

    m = ctx.examples(60, 600)
    counter = uncertified_sn_model(m, ctx.seed)
    ctx.claim(
        EVERY_MODEL.check("SN (L_2 <= gamma < 1) makes T a weighted max-norm contraction, so "
                          "asynchronous convergence is a theorem (share of drawn SN models)",
                          share["weighted (s*rho(|W|) < 1)"], shares=share, per_class=per_class,
                          shrunk_counterexample=repr(counter) if counter is not None else None),
        "issue 7 item 3 (state the contraction norm under which asynchronous updates converge)")
    ctx.note(census_note(seen, share))

    # Symmetric SN without the max-norm certificate: energy descent still forces convergence.
    sym_error = max((r[f"error_{label}"] for r in sym_uncert for label in CENSUS_LABELS),
                    default=0.0)
    ctx.check(AGREEMENT.check("symmetric SN models without max-norm certificate: max |h_scheme "
                              "- h*_newton| (lazy, Gauss-Seidel random and cyclic; inf = "
                              "unconverged)", sym_error, models=len(sym_uncert),
                              converged=converged_share(sym_uncert),
                              outcomes=outcomes(sym_uncert)))
    # Where a sweep's Jacobian at h* = 0 has ρ > 1 (scipy), cyclic Gauss–Seidel cannot
    # converge to the unique h*; hypothesis finds a minimal such SN model, the run confirms it.
    unstable, asym_counter, radius = cyclic_counterexample(m, ctx.seed)
    asym_share = (converged_share(asym_uncert)["gauss_seidel_cyclic"] if asym_uncert
                  else None)
    ctx.claim(
        holds("asymmetric SN models without max-norm certificate: every asynchronous "
              "schedule still converges (share converged, cyclic Gauss-Seidel; and no "
              "counterexample found)", asym_share == 1.0 and asym_counter is None,
              ">= 1 and no counterexample", value=asym_share,
              models=len(asym_uncert), converged=converged_share(asym_uncert),
              outcomes=outcomes(asym_uncert), rounds_allowed=CENSUS_ROUNDS,
              shrunk_counterexample=(repr(asym_counter) if asym_counter is not None
                                     else None),
              linearized_sweep_radius=radius,
              counterexample_search="hypothesis: an asymmetric SN model (drive 0) whose cyclic "
              "Gauss-Seidel sweep has Jacobian spectral radius > 1 at h* = 0 (scipy); confirmed "
              f"by running it: start 1/2, {CYCLE_SWEEPS} sweeps, no progress over the last "
              "half"),
        "issue 7 item 3 (what asynchronous updates do on SN models that are not max-norm "
        "contractions)",
        verdict="inconclusive" if asym_share is None and asym_counter is None else None)
    ctx.note(outcomes_note(sym_uncert, asym_uncert, asym_counter))

    # A frozen threshold (shrink = 1) cannot reach the tolerance.
    frozen_spec = certified_plot_spec()
    frozen = frozen_threshold_run(frozen_spec)
    ctx.check(STALLED.check("frozen threshold 1e-3 (shrink = 1) is falsified: residual stays "
                            "above the tolerance", frozen.max_residual,
                            stalled=bool(cast(torch.Tensor, frozen.stalled).all()),  # set
                            updates=int(frozen.updates.sum())))

    control = mutual_inhibition()
    ctx.note(control_note(control))
    ctx.negative_control(
        AGREEMENT.check("max spread of h* over Gauss-Seidel orders (W = [[0,-2],[-2,0]], x = 0, "
                        "one start)", control["spread"]),
        **{k: v for k, v in control.items() if k != "spread"})

    plot(ctx, frozen_spec)


