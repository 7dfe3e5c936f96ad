"""Track 7 — When SN is critical (open question 4): where uniqueness and convergence really fail.

Claim. L = ‖W_eff‖₂·sup|φ′| < 1 is *sufficient* for one fixed point that plain iteration reaches
from every start (Banach), but not necessary. With s = ‖W_eff‖₂ (no SN) swept through the
certified boundary s_cert = 1/sup|φ′| (= 1 for tanh), three families lose contraction in three
different ways:

  psd_spike          symmetric, PSD-dominated (rank-1 spike): a pitchfork, so extra fixed points
                     appear once the top eigenvalue of J* passes +1;
  negative_definite  symmetric W ≺ 0: E is strictly convex, so the fixed point stays unique, but
                     synchronous updates flip into a 2-cycle once an eigenvalue of J* passes −1;
  rotation           asymmetric, skew-dominated: complex eigenvalues of J* leave the unit circle
                     and the iteration oscillates (quasi-periodically) around the unique h*;

each with input drive 0 and with drawn nonzero drives (ModelSpec.drive_scale 0.5 and 2). At each
s, from one seeded set of starts (zero, ±1 corners, Gaussian, norms 1e-3 and 1e6), for one input:

  * plain iteration (solver "fixed_point", 1000 steps; where the one fixed point has ρ(J*) < 1 a
    slow start gets 2·log(tol/r)/log ρ(J*) more steps — slow is not failure);
  * Newton (`theory.find_fixed_point`) from the same starts (less the tiny/huge rescalings);
  * the distinct fixed points among both, each verified by theory (‖h − φ(Wh + a)‖ ≤ 1e-9) and
    clustered at 1e-3, with ρ(J*) by scipy at each;
  * a period-2 test ‖h_{k+2} − h_k‖ ≤ 1e-9 while ‖h_{k+1} − h_k‖ ≥ 1e-2 (cycle re-verified by
    theory: ‖T(T(p)) − p‖).

A sweep point *fails* when there is more than one fixed point, a start does not converge, a
converged endpoint is not a fixed point by theory, or ρ(J*) ≥ 1 at a fixed point. Since
J* = diag(φ′(a*))W, a drive that saturates the units keeps ρ(J*) < 1 well past L = 1: the
frontier moves out with the drive, and SN is critical where the units sit near φ′ = sup φ′.

Checks: (1) sufficiency: no failure at any sweep point with L < 1, nor for hypothesis-drawn
models with L < 1 of every structure (SN or not, symmetric or not), whose plain iteration must
converge within the Banach a-priori step count; (2) the measured failure frontier s_fail is
≥ s_cert in every family; (3) SN is not necessary: the largest s with L ≥ 1 at which the dynamics
were still unique and convergent (value; gap = value − s_cert), with a shrunk hypothesis example
(no SN, L > 1) of the same.

Negative control: "a unique, convergent equilibrium at every scale without SN" — hypothesis finds
and shrinks a model without SN (‖W‖₂ > 1) with several fixed points or a cycle; its fixed points
(and cycle) are recorded, with the sweep's 2-cycle and oscillation examples beside it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import theory
from properties import (
    Search,
    at_least_bound,
    at_most_bound,
    find_example,
    holds,
    noncontractive_models,
)
from properties.contraction_frontier import (
    MARKS,
    TOL,
    probe_spec,
    subcritical_cases,
    subcritical_failure,
    unique_and_convergent,
)

from .plots import draw
from .procedures.sn_critical import frontier_figure, frontier_sweep
from .registry import track

S_CERT = 1.0 / theory.nonlinearity("tanh").sup_slope  # the certified boundary: L = 1

NO_SUBCRITICAL_FAILURE = at_most_bound(0, "sufficiency (Banach): no sweep point with L < 1 "
                                          "fails")
SUBCRITICAL = at_most_bound(1.0, "max(residual/tol, fixed-point spread/1e-3, rho(J*)) is <= 1 "
                                 "iff the model is unique, convergent and stable")
FRONTIER = at_least_bound(S_CERT, "L < 1 is sufficient, so the measured failure frontier lies "
                                  "at or beyond the certified boundary s_cert = 1/sup|phi'|")
NOT_NECESSARY = at_least_bound(S_CERT, "SN is not necessary: unique, convergent dynamics "
                                       "beyond the certified boundary s_cert = 1/sup|phi'|")


SUBCRITICAL_SEARCH = Search(
    "drawn L < 1 models: max(residual/tol, fixed-point spread/1e-3, rho(J*))",
    subcritical_failure, SUBCRITICAL)


@track(7, "When SN is critical", "A",
       "L < 1 suffices for a unique, convergent equilibrium; the measured failure frontier "
       "lies at or beyond L = 1 for every family",
       model_reason="it maps where uniqueness and convergence fail across families of weight "
       "scales, a study of the suite's own model families rather than a property of one "
       "model (tracks 2-6 certify a given model's contraction and its consequences)",
       reference=("scipy's certificates and the Newton witness's fixed points and cycles, swept "
                  "across the certified boundary"))
def run(ctx) -> None:
    s_cert = S_CERT
    fine = ctx.by_profile(0.1, 0.05)  # step through the frontier region; coarser past s = 2
    grid = np.round(np.concatenate([np.arange(0.5, 2.0 + 1e-9, fine),
                                    np.arange(2.25, 3.0 + 1e-9, 0.25)]), 3)
    sizes = ctx.by_profile((4,), (2, 4, 8))
    seeds = ctx.by_profile((ctx.seed,), (ctx.seed, ctx.seed + 1, ctx.seed + 2))

    rows, subcritical_failures, subcritical_points = frontier_sweep(grid, sizes, seeds, s_cert)

    # (1) sufficiency: nothing fails with L < 1.
    ctx.check(NO_SUBCRITICAL_FAILURE.check("sweep: failing points with L < 1",
                                           len(subcritical_failures),
                                           points_with_L_below_1=subcritical_points,
                                           failures=subcritical_failures[:5]))
    drawn = ctx.search(subcritical_cases(), SUBCRITICAL_SEARCH, ctx.examples(40, 400),
                       details=lambda: {"residual_tol": TOL,
                                        "budget": "Banach a-priori step count"})

    # (2) the failure frontier is at or beyond the certified boundary in every family.
    frontier = min(r["s_fail"] if r["s_fail"] is not None else grid[-1] for r in rows)
    table = [{k: v for k, v in r.items() if k != "max_rho_by_s"} for r in rows]
    ctx.check(FRONTIER.check("min over families of the failure frontier s_fail", frontier,
                             s_cert=s_cert, grid=grid.tolist(),
                             legend={v: k for k, v in MARKS.items()}, frontier_table=table))

    # (3) SN is sufficient, not necessary: unique + convergent dynamics with L >= 1.
    largest = max((r["largest_ok_s_with_L_ge_1"] or -np.inf) for r in rows)
    where = [f"{r['label']}: {r['largest_ok_s_with_L_ge_1']}" for r in rows
             if r["largest_ok_s_with_L_ge_1"] is not None]
    found = find_example(noncontractive_models(max_hidden=8), unique_and_convergent,
                         max_examples=ctx.examples(60, 300), seed=ctx.seed)
    found_details: dict[str, Any] = {"shrunk_example": repr(found)}
    if found is not None:
        p = probe_spec(found)
        found_details.update(example_L=p.lipschitz, **{f"example_{k}": v for k, v in
                                                       p.summary().items() if k != "L"})
        largest = max(largest, p.lipschitz)
    ctx.check(NOT_NECESSARY.check("largest s with L >= 1 where the dynamics stayed unique and "
                                  "convergent", largest, gap=largest - s_cert, per_row=where,
                                  counterexample_to="L >= 1 implies non-uniqueness or "
                                  "non-convergence", **found_details))

    for r in rows:
        ctx.note(f"{r['label']:<42s} s_fail={r['s_fail']} ({','.join(r['kinds_at_fail'])}) "
                 f"| {r['status_by_s']}")
    ctx.note(f"grid s = {grid[0]:g}..2 step {fine:g}, then 2.25..{grid[-1]:g} step 0.25; s_cert = "
             f"{s_cert:g}; marks " + ", ".join(f"{v}={k}" for k, v in MARKS.items()))
    ctx.note(f"{drawn.examples} drawn L < 1 models: worst score {drawn.worst:.4f} (<= 1 passes); "
             f"SN not necessary up to s = {largest:.3g} (gap {largest - s_cert:.3g}); shrunk "
             f"L > 1 example that works: {found!r}")

    # Negative control: without SN, some scale breaks uniqueness or convergence.
    broken = find_example(noncontractive_models(max_hidden=8),
                          lambda spec: not unique_and_convergent(spec),
                          max_examples=ctx.examples(60, 300), seed=ctx.seed)
    witness = probe_spec(broken) if broken is not None else None
    control = witness.summary() if witness is not None else {}
    cycles = {r["label"]: r["first_cycle_point"] for r in rows if r["first_cycle_point"]}
    oscillations = {r["label"]: r["fail_point"] for r in rows
                    if r["family"] == "rotation" and r["fail_point"]}
    ctx.negative_control(
        holds("unique, convergent equilibrium at every scale without SN (shrunk example)",
              witness is None or witness.ok,
              "no model without SN has several fixed points or a cycle", value=repr(broken)),
        shrunk_counterexample=repr(broken), **control,
        sweep_2_cycles=dict(list(cycles.items())[:2]),
        sweep_oscillations=dict(list(oscillations.items())[:2]),
    )
    if broken is not None:
        ctx.note(f"control: {broken!r} -> {len(control['fixed_points'])} fixed point(s) "
                 f"{control['fixed_points']}, rho(J*) {np.round(control['rho_J_star'], 4)}, "
                 f"failures {control['failures']}")

    draw(ctx.artifact_path("frontier.png"), frontier_figure(grid, rows, s_cert))

