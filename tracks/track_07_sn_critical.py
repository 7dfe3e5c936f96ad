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

from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch
from hypothesis import strategies as st

import theory
from properties import (
    ModelSpec,
    Search,
    as_numpy,
    at_least_bound,
    at_most_bound,
    find_example,
    holds,
    initial_states,
    noncontractive_models,
)
from properties.strategies import STRUCTURES

from .plots import plt, save_figure
from .registry import track

TOL = 1e-10  # the solver's stop: residual ‖T(h_k) − h_k‖ ≤ TOL
# The solver stops on h_k's residual but returns h_{k+1} = T(h_k), whose residual can exceed TOL
# by up to ‖J*‖₂ (> 1 without SN even where ρ(J*) < 1); a start counts as converged when the
# returned residual is ≤ CONVERGED.
CONVERGED = 10 * TOL
BUDGET = 1000  # plain-iteration steps per solve at sweep points (L ≥ 1 has no Banach count)
MAX_EXTENSION = 30_000  # most extra steps granted to a slow but locally stable solve
NEWTON_STEPS = 30  # where Newton converges at all here, it takes ≤ 27 steps (mostly 4–8)
ROUNDING = 1e-9  # L < 1 − ROUNDING is "certified"; s = 1.0 gives L = 1 ± 1 ulp
CLUSTER = 1e-3  # fixed points closer than this are one; distinct ones off a bifurcation are far
FIXED_POINT_RESIDUAL = 1e-9  # theory residual a candidate must meet to count as a fixed point
CYCLE_RETURN = 1e-9  # ‖h_{k+2} − h_k‖ below this …
CYCLE_STEP = 1e-2  # … while ‖h_{k+1} − h_k‖ stays above this: a 2-cycle (at L = 1 exactly,
#                    critical slowing makes ‖h_{k+2} − h_k‖ ~ ‖h_k − h*‖³: not a cycle)

FAMILIES = {  # family -> (ModelSpec.structure, symmetric)
    "psd_spike": ("spike", True),
    "negative_definite": ("negative_definite", True),
    "rotation": ("rotation", False),
}
DRIVES = {"zero drive": 0.0, "drive x0.5": 0.5, "drive x2": 2.0}  # ModelSpec.drive_scale
ALL_STRUCTURES = (*STRUCTURES, "negative_definite", "rotation")
S_CERT = 1.0 / theory.nonlinearity("tanh").sup_slope  # the certified boundary: L = 1

NO_SUBCRITICAL_FAILURE = at_most_bound(0, "sufficiency (Banach): no sweep point with L < 1 "
                                          "fails")
SUBCRITICAL = at_most_bound(1.0, "max(residual/tol, fixed-point spread/1e-3, rho(J*)) is <= 1 "
                                 "iff the model is unique, convergent and stable")
FRONTIER = at_least_bound(S_CERT, "L < 1 is sufficient, so the measured failure frontier lies "
                                  "at or beyond the certified boundary s_cert = 1/sup|phi'|")
NOT_NECESSARY = at_least_bound(S_CERT, "SN is not necessary: unique, convergent dynamics "
                                       "beyond the certified boundary s_cert = 1/sup|phi'|")

# One character per sweep point in the frontier table, in order of precedence.
MARKS = {"endpoint_not_a_fixed_point": "x", "multiple_fixed_points": "M", "period_2": "2",
         "not_converged": "o", "unstable_fixed_point": "u", "ok": "."}


def seeded_starts(n: int, seed: int, gaussian: int = 4) -> np.ndarray:
    """Starts (S, n): zero, up to 8 distinct ±1 corners, Gaussian, then tiny (1e-3) and huge
    (1e6) rescalings of the Gaussian ones — last, so Newton can skip them (`newton_starts`)."""
    rng = np.random.default_rng(seed)
    corners = np.unique(np.where(rng.standard_normal((8, n)) < 0, -1.0, 1.0), axis=0)
    g = rng.standard_normal((gaussian, n))
    return np.concatenate([np.zeros((1, n)), corners, g, 1e-3 * g[:2], 1e6 * g[2:]])


def newton_starts(starts: np.ndarray) -> np.ndarray:
    """The starts Newton runs from: all but the 1e-3 / 1e6 rescalings (Newton's first step from
    a saturated start lands on a corner's image, and a tiny start is the zero start)."""
    norms = np.linalg.norm(starts, axis=1)
    return starts[(norms == 0) | ((norms > 1e-2) & (norms < 1e3))]


@dataclass
class Probe:
    """What one model showed from a set of starts (one input x for all starts)."""

    lipschitz: float
    fixed_points: list[np.ndarray]
    rho: list[float]
    converged: int
    period_2: int
    starts: int
    residual: float  # max final residual of plain iteration
    spread: float  # max distance between verified fixed-point candidates
    unverified: int  # converged plain-iteration endpoints that theory rejects
    cycle: list[np.ndarray] = field(default_factory=list)
    cycle_return: float | None = None  # ‖T(T(p)) − p‖ by theory for the cycle point p

    @property
    def failures(self) -> list[str]:
        kinds = []
        if self.unverified:
            kinds.append("endpoint_not_a_fixed_point")
        if len(self.fixed_points) != 1:
            kinds.append("multiple_fixed_points")
        if self.period_2:
            kinds.append("period_2")
        if self.converged < self.starts:
            kinds.append("not_converged")
        if not self.rho or max(self.rho) >= 1.0:
            kinds.append("unstable_fixed_point")
        return kinds

    @property
    def certified(self) -> bool:
        """L < 1 beyond rounding: the region where Banach promises everything."""
        return self.lipschitz < 1 - ROUNDING

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def mark(self) -> str:
        return next((MARKS[k] for k in MARKS if k in self.failures), ".")

    def summary(self) -> dict:
        return {
            "L": self.lipschitz, "fixed_points": [p.round(6).tolist() for p in self.fixed_points],
            "rho_J_star": self.rho, "converged_starts": f"{self.converged}/{self.starts}",
            "period_2_starts": self.period_2, "max_residual": self.residual,
            "cycle": [p.round(6).tolist() for p in self.cycle],
            "cycle_return_by_theory": self.cycle_return, "failures": self.failures,
        }


def probe(spec: ModelSpec, starts: np.ndarray, budget: int = BUDGET, *,
          patient: bool = True) -> Probe:
    """Plain iteration (code under test) and Newton (theory) from every start, for one input.

    `patient`: a start still moving after `budget` steps toward a lone fixed point with
    ρ(J*) < 1 gets more steps (off where the budget is a Banach step count, which must suffice).
    """
    model = spec.build()
    problem = as_numpy(model)
    act = spec.activation
    x = spec.inputs(1).expand(len(starts), -1)
    drive = problem.drive(spec.inputs(1))[0]
    h: torch.Tensor | np.ndarray  # the solve's tensor, then its NumPy copy
    h1: torch.Tensor | np.ndarray
    rho: float | list[float]  # ρ(J*) of the lone root, then of every distinct point
    h, stats = model.equilibrium(x, torch.as_tensor(starts, dtype=model.dtype),
                                 solver="fixed_point", tol=TOL, max_steps=budget)

    def is_fixed_point(p: np.ndarray) -> bool:
        gap = p - theory.fixed_point_map(p, problem.weight, drive, act)
        return bool(np.linalg.norm(gap) <= FIXED_POINT_RESIDUAL)

    newton = [theory.find_fixed_point(problem.weight, drive, act, h0=s0, max_iter=NEWTON_STEPS)
              for s0 in newton_starts(starts)]
    roots = theory.distinct_points(
        [r.h for r in newton if r.converged and is_fixed_point(r.h)], CLUSTER)
    if patient and stats.max_residual > CONVERGED and len(roots) == 1:
        # Slow is not failure: near ρ(J*) = 1 the linear rate ρ(J*) needs more than the budget.
        # Continue for twice the steps that rate needs to bring the residual down to TOL.
        rho = theory.spectral_radius(theory.jacobian_at_equilibrium(roots[0], problem.weight,
                                                                    drive, act))
        if rho < 1 - 1e-6:
            needed = np.log(TOL / stats.max_residual) / np.log(rho)
            extra = int(min(MAX_EXTENSION, 2 * max(needed, 0) + 100))
            h, stats = model.equilibrium(x, h, solver="fixed_point", tol=TOL, max_steps=extra)
    with torch.no_grad():
        h1 = model.step(h, x)
        h2 = model.step(h1, x)
    h, h1 = h.numpy(), h1.numpy()
    step1 = np.linalg.norm(h1 - h, axis=1)
    step2 = np.linalg.norm(h2.numpy() - h, axis=1)
    converged = stats.residual.numpy() <= CONVERGED
    period_2 = ~converged & (step2 <= CYCLE_RETURN) & (step1 >= CYCLE_STEP)

    endpoints = [h[i] for i in np.flatnonzero(converged)]
    unverified = sum(not is_fixed_point(p) for p in endpoints)
    candidates = [p for p in endpoints if is_fixed_point(p)]
    candidates += [r.h for r in newton if r.converged and is_fixed_point(r.h)]
    distinct = theory.distinct_points(candidates, CLUSTER)
    if candidates:
        stacked = np.stack(candidates)
        spread = np.linalg.norm(stacked[:, None] - stacked[None], axis=-1).max()
    else:
        spread = np.inf
    rho = [theory.spectral_radius(theory.jacobian_at_equilibrium(p, problem.weight, drive, act))
           for p in distinct]
    cycle, cycle_return = [], None
    if period_2.any():
        i = np.flatnonzero(period_2)[0]
        cycle = [h[i], h1[i]]
        image = theory.fixed_point_map(h[i], problem.weight, drive, act)
        image = theory.fixed_point_map(image, problem.weight, drive, act)
        cycle_return = float(np.linalg.norm(image - h[i]))
    return Probe(
        lipschitz=theory.lipschitz_certificate(problem.weight, act), fixed_points=distinct,
        rho=rho, converged=int(converged.sum()), period_2=int(period_2.sum()),
        starts=len(starts), residual=float(stats.residual.max()), spread=float(spread),
        unverified=int(unverified), cycle=cycle, cycle_return=cycle_return,
    )


# -- (1) sufficiency on hypothesis-drawn models with L < 1 ------------------------------------
@st.composite
def subcritical_cases(draw: st.DrawFn) -> tuple[ModelSpec, np.ndarray]:
    """Models with L < 1 of every structure (SN with γ < 1, or no SN with ‖W‖₂ < 1) + starts."""
    spectral_norm = draw(st.booleans())
    scale = (draw(st.sampled_from([1e-3, 1.0, 10.0, 1e3])) if spectral_norm
             else draw(st.floats(0.05, 0.99)))
    spec = ModelSpec(
        n_in=draw(st.integers(1, 4)), n_hidden=draw(st.integers(1, 8)), weight_scale=scale,
        structure=draw(st.sampled_from(ALL_STRUCTURES)), seed=draw(st.integers(0, 2**16)),
        symmetric=draw(st.booleans()), spectral_norm=spectral_norm,
        gamma=draw(st.sampled_from([0.5, 0.9, 0.99])),
        drive_scale=draw(st.sampled_from([0.0, 0.1, 1.0, 3.0])),
    )
    return spec, draw(initial_states(spec.n_hidden, batch=4))


def banach_budget(spec: ModelSpec, starts: np.ndarray) -> int:
    """Steps after which the a-priori bound L^k/(1 − L)·‖h_1 − h_0‖ is ≤ TOL, plus one."""
    problem = as_numpy(spec.build())
    drive = problem.drive(spec.inputs(1))[0]
    L = theory.lipschitz_certificate(problem.weight, spec.activation)
    first = max(np.linalg.norm(theory.fixed_point_map(s, problem.weight, drive, spec.activation)
                               - s) for s in starts)
    return theory.steps_to_tolerance(L, cast(float, first), TOL) + 1  # np.float64: a float


def subcritical_failure(case: tuple[ModelSpec, np.ndarray]) -> float:
    """max(residual/TOL, spread/CLUSTER, max ρ(J*)) — ∞ if a converged endpoint is not a fixed
    point by theory: ≤ 1 iff unique, convergent and stable."""
    spec, drawn = case
    starts = np.concatenate([seeded_starts(spec.n_hidden, spec.seed, gaussian=2), drawn])
    p = probe(spec, starts, budget=banach_budget(spec, starts), patient=False)
    if p.unverified:
        return np.inf
    return max(p.residual / TOL, p.spread / CLUSTER, max(p.rho, default=np.inf))


SUBCRITICAL_SEARCH = Search(
    "drawn L < 1 models: max(residual/tol, fixed-point spread/1e-3, rho(J*))",
    subcritical_failure, SUBCRITICAL)


# -- (3) and the control: models without SN ----------------------------------------------------
def probe_spec(spec: ModelSpec) -> Probe:
    return probe(spec, seeded_starts(spec.n_hidden, spec.seed))


def unique_and_convergent(spec: ModelSpec) -> bool:
    return probe_spec(spec).ok


def frontier_row(family: str, drive: str, spec: ModelSpec, grid: np.ndarray,
                 probes: list[Probe], s_cert: float) -> dict:
    """One row of the frontier table: first failing s of each kind vs the certified s_cert."""

    def first(kind: str | None) -> float | None:
        hit = [float(s) for s, p in zip(grid, probes)
               if (not p.ok if kind is None else kind in p.failures)]
        return hit[0] if hit else None

    s_fail = first(None)
    fail_probe = probes[list(grid).index(s_fail)] if s_fail is not None else None
    ok_above = [float(s) for s, p in zip(grid, probes) if p.ok and not p.certified]
    return {
        "label": f"{family}, {drive}, n={spec.n_hidden}, seed={spec.seed}",
        "family": family, "drive": drive, "n_hidden": spec.n_hidden, "seed": spec.seed,
        "drive_norm": float(np.linalg.norm(as_numpy(spec.build()).drive(spec.inputs(1)))),
        "s_cert": s_cert,
        "s_fail": s_fail,
        "last_ok_below_fail": max((float(s) for s, p in zip(grid, probes)
                                   if p.ok and (s_fail is None or s < s_fail)), default=None),
        "kinds_at_fail": fail_probe.failures if fail_probe else [],
        "first_multiple_fixed_points": first("multiple_fixed_points"),
        "first_period_2": first("period_2"),
        "first_not_converged": first("not_converged"),
        "first_rho_ge_1": first("unstable_fixed_point"),
        "largest_ok_s_with_L_ge_1": max(ok_above, default=None),
        "status_by_s": "".join(p.mark for p in probes),
        "max_rho_by_s": [max(p.rho, default=np.nan) for p in probes],
        "fail_point": fail_probe.summary() if fail_probe else None,
        "first_cycle_point": next(({"s": float(s), **p.summary()} for s, p in zip(grid, probes)
                                   if p.cycle), None),
    }


def plot_frontier(path, grid: np.ndarray, rows: list[dict], s_cert: float) -> None:
    """Left: failure kind at each (row, s). Right: max ρ(J*) over the fixed points vs s."""
    colors = {".": "C2", "M": "C3", "2": "C1", "o": "C4", "u": "C7", "x": "k"}
    labels = {".": "unique + convergent", "M": "several fixed points", "2": "2-cycle",
              "o": "no convergence", "u": "rho(J*) >= 1", "x": "endpoint not a fixed point"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, max(4.2, 1.5 + 0.16 * len(rows))))
    seen = set()
    for i, row in enumerate(rows):
        for s, mark in zip(grid, row["status_by_s"]):
            left.plot(s, i, "s", color=colors[mark], ms=6,
                      label=None if mark in seen else labels[mark])
            seen.add(mark)
        right.plot(grid, row["max_rho_by_s"], ".-", label=row["label"])
    for ax in (left, right):
        ax.axvline(s_cert, color="k", ls="--", lw=1)
        ax.set_xlabel("s = ||W_eff||_2  (L = s * sup|phi'|)")
    left.set_yticks(range(len(rows)), [r["label"] for r in rows], fontsize=7)
    left.set_ylim(-0.5, len(rows) + 1.5)
    left.set_title("what fails where (dashed: certified boundary L = 1)", fontsize=9)
    left.legend(fontsize=7, loc="upper center", ncol=3)
    right.axhline(1.0, color="0.5", lw=1)
    right.set_ylabel("max rho(J*) over fixed points")
    right.set_title("spectral radius of J* at the fixed points", fontsize=9)
    right.legend(fontsize=6, loc="upper left")
    save_figure(fig, path)


@track(7, "When SN is critical", "A",
       "L < 1 suffices for a unique, convergent equilibrium; the measured failure frontier "
       "lies at or beyond L = 1 for every family",
       model_reason="it maps where uniqueness and convergence fail across families of weight "
       "scales, a study of the suite's own model families rather than a property of one "
       "model (tracks 2-6 certify a given model's contraction and its consequences)")
def run(ctx) -> None:
    s_cert = S_CERT
    fine = 0.1 if ctx.quick else 0.05  # step through the frontier region; coarser past s = 2
    grid = np.round(np.concatenate([np.arange(0.5, 2.0 + 1e-9, fine),
                                    np.arange(2.25, 3.0 + 1e-9, 0.25)]), 3)
    sizes = (4,) if ctx.quick else (2, 4, 8)
    seeds = (ctx.seed,) if ctx.quick else (ctx.seed, ctx.seed + 1, ctx.seed + 2)

    rows: list[dict] = []
    subcritical_failures: list[dict] = []
    subcritical_points = 0
    for family, (structure, symmetric) in FAMILIES.items():
        for drive_label, drive_scale in DRIVES.items():
            for n in sizes:
                for seed in seeds:
                    spec = ModelSpec(n_in=3, n_hidden=n, weight_scale=1.0, structure=structure,
                                     seed=seed, symmetric=symmetric, spectral_norm=False,
                                     drive_scale=drive_scale)
                    starts = seeded_starts(n, seed)
                    probes = [probe(spec.with_(weight_scale=float(s)), starts) for s in grid]
                    subcritical_points += sum(p.certified for p in probes)
                    for s, p in zip(grid, probes):
                        if p.certified and not p.ok:
                            subcritical_failures.append({"family": family, "drive": drive_label,
                                                         "s": s, **p.summary()})
                    rows.append(frontier_row(family, drive_label, spec, grid, probes, s_cert))

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

    path = ctx.artifact_path("frontier.png")
    if path is not None:
        plot_frontier(path, grid, rows, s_cert)

