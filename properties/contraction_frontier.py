"""Where uniqueness and convergence fail past L = 1 (track 7; the claim and the failure kinds are
in the track's docstring): `probe` runs plain iteration (the code under test) and Newton (theory)
from a seeded set of starts and classifies what one model showed; `frontier_row` summarizes a
sweep of the weight scale s through the certified boundary; `subcritical_failure` scores a drawn
model with L < 1 (≤ 1 iff unique, convergent and stable).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np
import torch
from hypothesis import strategies as st

import theory

from .extract import as_numpy
from .strategies import STRUCTURES, ModelSpec, initial_states

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


ALL_STRUCTURES = (*STRUCTURES, "negative_definite", "rotation")


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
