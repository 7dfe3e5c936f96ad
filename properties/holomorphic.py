"""ĝ_N(|β|) = Re (1/N) Σ_k f(β_k)/β_k on the circle β_k = |β|e^{2πik/N} equals a_1 + a_{N+1}|β|^N
+ …: the N-point holomorphic EP estimator's error falls as |β|^N, and the |β| window where that
law can be read on one model.

Here f(β) = ∂E/∂θ(h_β) − ∂E/∂θ(h_0) = Σ_{m≥1} a_m β^m for the energy parameters θ ∈ {W, U, b},
a_1 = dℒ/dθ (Laborieux & Zenke 2022); `HolomorphicProblem.holomorphic_error` is the relative
error of `ep_gradients(estimator="holomorphic")` (complex nudges, complex128 states, phases
solved to residual 1e-14) against the scipy implicit gradient, the worst of W, U, b.

The window (`error_law`) lies on the grid |β| = 10^{k/4}, k = −20..0, between two limits that
hide the law. Below, round-off: the estimator divides a state exact to ~1e-14 by |β| (relative
floor ≤ 2e-14/|β| over 80 draws), so a window point needs an error ≥ max(1e-9, 1e-11/|β|).
Above, the next aliased term a_{2N+1}|β|^{2N}, which grows as (|β|/R)^N relative to the leading
one, R the model's radius of the β-expansion; the error alone does not tell how close |β| is to
R, so the window is anchored on the round-off side: from the smallest clear |β| upward, at most
4 points (a factor 5.6 in |β|) while the error stays ≤ 1e-2, at least 3 to fit a slope.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import torch

import theory
from eqprop_core import LoopedMLP, PhaseNotConverged, ep_gradients

from .extract import as_numpy
from .gradients import ENERGY_PARAMETERS, agreement, fitted_slope
from .search import MeasuredOnce
from .strategies import ModelSpec

BATCH = 4  # samples per model
TOL = 1e-14  # residual of every free and nudged phase (Anderson reaches it in ~25 steps)
GRID = tuple(10 ** (k / 4) for k in range(-20, 1))  # |β| from 1e-5 to 1, 4 per decade
WINDOW_TOP = 1e-2  # a window point never has a relative error above this
WINDOW_BOTTOM = 1e-9  # absolute lower edge of the error window
FLOOR_MARGIN = 1e-11  # and error ≥ 1e-11/|β|: ≥ 500× the measured floor ≤ 2e-14/|β|
START = 4  # |β| = 1e-4: where the scan for N = 1 starts
MAX_POINTS = 4  # window points fitted (a factor 10^{3/4} = 5.6 in |β|)
MIN_POINTS = 3


@dataclass
class HolomorphicProblem:
    """A drawn model, its batch and the scipy implicit gradient it is measured against."""

    spec: ModelSpec
    model: LoopedMLP = field(init=False)
    x: torch.Tensor = field(init=False)
    y: torch.Tensor = field(init=False)
    reference: dict[str, np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        self.model = self.spec.build()
        self.x, self.y = self.spec.inputs(BATCH), self.spec.labels(BATCH)
        self.reference = theory.implicit_gradients(as_numpy(self.model), self.x, self.y)

    def error(self, estimate: dict) -> float:
        return agreement(estimate, self.reference, keys=ENERGY_PARAMETERS).worst_relative_error

    def holomorphic_error(self, radius: float, n: int) -> float:
        """Relative error of the N-point complex estimator at |β| (NaN: a phase diverged)."""
        try:
            return self.error(ep_gradients(self.model, self.x, self.y, beta=radius,
                                           estimator="holomorphic", n_points=n, tol=TOL))
        except PhaseNotConverged:
            return math.nan

    def real_circle_error(self, radius: float, n: int) -> float:
        """Track 13's control, the real-valued stand-in for the circle: one-sided EP quotients at
        the real nudges |β|cos(2πk/N), averaged over the k with a non-zero nudge. Σ_k cos(2πk/N)
        = 0 cancels the O(β) term, Σ_k cos²(2πk/N) ≠ 0 keeps the O(β²) one, whatever N."""
        nudges = [radius * math.cos(2 * math.pi * k / n) for k in range(n)]
        nudges = [b for b in nudges if abs(b) > 1e-12 * radius]
        total = {key: 0.0 for key in ENERGY_PARAMETERS}
        for b in nudges:
            g = ep_gradients(self.model, self.x, self.y, beta=b, estimator="one_sided", tol=TOL)
            for key in ENERGY_PARAMETERS:
                total[key] = total[key] + g[key] / len(nudges)
        return self.error(total)


@dataclass
class ErrorLaw:
    """The errors seen while locating the asymptotic window, and the slope fitted in it."""

    seen: dict[float, float]
    window: list[float]  # ascending |β|

    @property
    def slope(self) -> float:
        if len(self.window) < MIN_POINTS:
            return math.nan
        return fitted_slope(self.window, [self.seen[b] for b in self.window])

    @property
    def bottom(self) -> int:
        """Grid index of the window's smallest |β| (where the next order's scan starts)."""
        return GRID.index(self.window[0]) if self.window else START


def above_floor(radius: float, error: float) -> bool:
    return error >= max(WINDOW_BOTTOM, FLOOR_MARGIN / radius)  # False for NaN


def in_window(radius: float, error: float) -> bool:
    return above_floor(radius, error) and error <= WINDOW_TOP


def error_law(error_at: Callable[[float], float], start: int) -> ErrorLaw:
    """Scan GRID from `start` for the window (module doc): down while the error stays clear of
    the floor, or up until it is; then up while it stays inside, at most MAX_POINTS."""
    seen: dict[float, float] = {}

    def clear(i: int) -> bool:
        if GRID[i] not in seen:
            seen[GRID[i]] = error_at(GRID[i])
        return above_floor(GRID[i], seen[GRID[i]])

    i = start
    if clear(i):
        while i > 0 and clear(i - 1):
            i -= 1
    else:
        while i + 1 < len(GRID) and not clear(i):
            i += 1
    window: list[float] = []
    while i < len(GRID) and len(window) < MAX_POINTS and clear(i) and seen[GRID[i]] <= WINDOW_TOP:
        window.append(GRID[i])
        i += 1
    return ErrorLaw(seen, window)


def window_range(law: ErrorLaw) -> tuple[float, float] | None:
    """(smallest, largest) |β| of the window, rounded for the JSON."""
    return (float(f"{law.window[0]:.4g}"), float(f"{law.window[-1]:.4g}")) if law.window else None


def error_laws(problem: HolomorphicProblem, orders: tuple[int, ...]) -> dict[int, ErrorLaw]:
    """The window and slope for each N; N's scan starts at N−1's window bottom (windows move up
    in |β| with N: the error (|β|/R)^N clears a fixed floor at larger |β| as N grows)."""
    laws: dict[int, ErrorLaw] = {}
    start = START
    for n in orders:
        laws[n] = error_law(cast(Callable[[float], float],  # a lambda with defaults, for mypy
                                 lambda r, n=n: problem.holomorphic_error(r, n)), start)
        start = laws[n].bottom
    return laws


# Track 13's measurements per drawn model.
ORDERS = (1, 2, 3, 4)  # the slopes, checked on every draw
REDUCTION_BETA = 0.1
CLAIM_BETA, CLAIM_POINTS = 0.2, 8
CONTROL_ORDER = 4


def measure(spec: ModelSpec) -> dict:
    problem = HolomorphicProblem(spec)
    laws = error_laws(problem, ORDERS)
    slopes = {n: law.slope for n, law in laws.items()}
    deviations = [abs(s - n) if math.isfinite(s) else math.inf for n, s in slopes.items()]
    reduce_to = {1: "one_sided", 2: "symmetric"}
    reduction = 0.0
    for n, estimator in reduce_to.items():
        complex_ = ep_gradients(problem.model, problem.x, problem.y, beta=REDUCTION_BETA,
                                estimator="holomorphic", n_points=n, tol=TOL)
        real = ep_gradients(problem.model, problem.x, problem.y, beta=REDUCTION_BETA,
                            estimator=estimator, tol=TOL)
        reduction = max(reduction, agreement(complex_, real).worst_relative_error)
    control = control_law(problem, laws)
    return {
        "slope_deviation": max(deviations),
        "slopes": slopes,
        "windows": {n: window_range(law) for n, law in laws.items()},
        "reduction": reduction,
        "claim_error": problem.holomorphic_error(CLAIM_BETA, CLAIM_POINTS),
        "control_slope": control.slope,
        "control_window": window_range(control),
    }


def control_law(problem: HolomorphicProblem, laws: dict[int, ErrorLaw]) -> ErrorLaw:
    """The control's window and slope: the real cos-modulated nudges at N = CONTROL_ORDER,
    scanned from the N = 2 window's bottom (`laws` holds N = 1, 2 at least)."""
    return error_law(lambda r: problem.real_circle_error(r, CONTROL_ORDER), laws[2].bottom)


def measure_control(spec: ModelSpec) -> dict:
    """`measure`'s control entries alone (the N = 1, 2 scans it starts from, then the control):
    the control on the suite's models when the checks run on a user's model."""
    problem = HolomorphicProblem(spec)
    control = control_law(problem, error_laws(problem, ORDERS[:2]))
    return {"control_slope": control.slope, "control_window": window_range(control)}


def claim_error(measured: MeasuredOnce) -> Callable[[ModelSpec], float]:
    """N = 8 at |β| = 0.2: the value `measure` already took for a drawn model, else (models the
    shrinker tries) one estimate, without the slope scans."""
    def error(spec: ModelSpec) -> float:
        if repr(spec) in measured.seen:
            return measured.seen[repr(spec)]["claim_error"]
        return HolomorphicProblem(spec).holomorphic_error(CLAIM_BETA, CLAIM_POINTS)
    return error
