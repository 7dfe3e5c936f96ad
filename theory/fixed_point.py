"""A NumPy fixed-point finder for h = φ(Wh + a), used to cross-check the torch solvers.

Newton's method on F(h) = h − φ(Wh + a), with Jacobian I − diag(φ′(Wh + a))W solved by
`scipy.linalg.solve`, backtracking on ‖F‖ and a plain-iteration fallback where Newton stalls.
It converges quadratically near a regular root, which makes it a different algorithm from the
ones under test (plain iteration and Anderson), not a copy of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from .activations import nonlinearity

Array = np.ndarray


@dataclass
class NumpyFixedPoint:
    h: Array
    residual: float
    iterations: int
    converged: bool


def fixed_point_map(h: Array, weight: Array, drive: Array, activation: str) -> Array:
    """T(h) = φ(Wh + drive) for one state h (n,)."""
    return nonlinearity(activation).phi(weight @ h + drive)


def find_fixed_point(
    weight: Array, drive: Array, activation: str, h0: Array | None = None, *,
    tol: float = 1e-14, max_iter: int = 200,
) -> NumpyFixedPoint:
    """Root of F(h) = h − φ(Wh + drive) from h0 (default 0); residual = ‖F(h)‖₂."""
    w = np.asarray(weight, dtype=np.float64)
    a = np.asarray(drive, dtype=np.float64)
    act = nonlinearity(activation)
    h = np.zeros(w.shape[0]) if h0 is None else np.asarray(h0, dtype=np.float64).copy()
    eye = np.eye(w.shape[0])

    def residual_of(v: Array) -> Array:
        return v - act.phi(w @ v + a)

    F = residual_of(h)
    norm = float(np.linalg.norm(F))
    for it in range(1, max_iter + 1):
        if norm <= tol:
            return NumpyFixedPoint(h, norm, it - 1, True)
        jac = eye - act.slope(w @ h + a)[:, None] * w
        try:
            step = scipy.linalg.solve(jac, -F)
        except (scipy.linalg.LinAlgError, ValueError):
            step = -F  # singular Jacobian: a plain fixed-point step instead
        t = 1.0
        while t > 1e-8:
            trial = h + t * step
            F_trial = residual_of(trial)
            n_trial = float(np.linalg.norm(F_trial))
            if n_trial < norm:
                break
            t *= 0.5
        else:
            trial = act.phi(w @ h + a)  # Newton stalled: plain iteration
            F_trial = residual_of(trial)
            n_trial = float(np.linalg.norm(F_trial))
        h, F, norm = trial, F_trial, n_trial
    return NumpyFixedPoint(h, norm, max_iter, norm <= tol)


EPS = float(np.finfo(np.float64).eps)


def step_rounding(h: Array, weight: Array, drive: Array, activation: str) -> float:
    """ρ ≥ ‖fl(T(h)) − T(h)‖₂ for T(h) = φ(Wh + a) evaluated in float64.

    The product Wh + a has entrywise error ≤ γ_{n+1}(|W||h| + |a|), γ_m = mε/(1 − mε) ≤ (m+1)ε/…
    (taken as (n + 2)ε); φ is s-Lipschitz (s = sup|φ′|) and its library evaluation adds ≤ 2 ulp,
    so ρ = (n + 2)ε·s·(‖|W||h|‖₂ + ‖a‖₂) + 2ε‖φ(Wh + a)‖₂ + ε‖h‖₂ (the last for forming
    h − T(h)).
    """
    w = np.asarray(weight, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    a = np.asarray(drive, dtype=np.float64)
    act = nonlinearity(activation)
    n = w.shape[1]
    products = np.linalg.norm(np.abs(w) @ np.abs(h)) + np.linalg.norm(a)
    value = np.linalg.norm(act.phi(w @ h + a))
    return float((n + 2) * EPS * act.sup_slope * products + 2 * EPS * value
                 + EPS * np.linalg.norm(h))


@dataclass
class CertifiedFixedPoint:
    """ĥ with ‖ĥ − h*‖₂ ≤ error_bound, h* the unique fixed point of an L-contraction."""

    h: Array
    error_bound: float
    residual: float


def certified_fixed_point(
    weight: Array, drive: Array, activation: str, lipschitz: float, h0: Array | None = None,
    *, polish_steps: int = 4,
) -> CertifiedFixedPoint:
    """The Newton witness ĥ and a rigorous bound on its own error, for L = `lipschitz` < 1.

    ‖ĥ − h*‖ ≤ ‖ĥ − T(ĥ)‖ + ‖T(ĥ) − T(h*)‖ ≤ ‖ĥ − T(ĥ)‖ + L‖ĥ − h*‖, so
        ‖ĥ − h*‖ ≤ (‖ĥ − fl(T(ĥ))‖ + ρ) / (1 − L),  ρ = `step_rounding`(ĥ).
    A check that measures ‖h_k − ĥ‖ knows the true error only within ± this bound. ĥ is Newton's
    root (`find_fixed_point`) polished by up to `polish_steps` further Newton steps, keeping the
    iterate of smallest residual, so the bound sits near rounding level.
    """
    if not 0 <= lipschitz < 1:
        raise ValueError(f"certified_fixed_point needs 0 <= L < 1, got L = {lipschitz!r}")
    w = np.asarray(weight, dtype=np.float64)
    a = np.asarray(drive, dtype=np.float64)
    act = nonlinearity(activation)
    h = find_fixed_point(w, a, activation, h0).h
    eye = np.eye(w.shape[0])

    def residual_norm(v: Array) -> float:
        return float(np.linalg.norm(v - act.phi(w @ v + a)))

    best, best_residual = h, residual_norm(h)
    for _ in range(polish_steps):
        F = h - act.phi(w @ h + a)
        try:
            h = h + scipy.linalg.solve(eye - act.slope(w @ h + a)[:, None] * w, -F)
        except (scipy.linalg.LinAlgError, ValueError):
            break
        r = residual_norm(h)
        if not r < best_residual:
            break
        best, best_residual = h, r
    bound = (best_residual + step_rounding(best, w, a, activation)) / (1 - lipschitz)
    return CertifiedFixedPoint(best, bound, best_residual)


def iterate_map(
    h0: Array, weight: Array, drive: Array, activation: str, steps: int
) -> Array:
    """Trajectory [h_0, T(h_0), …, T^steps(h_0)] of plain iteration: (steps + 1, n)."""
    w = np.asarray(weight, dtype=np.float64)
    a = np.asarray(drive, dtype=np.float64)
    phi = nonlinearity(activation).phi
    out = np.empty((steps + 1, w.shape[0]))
    out[0] = h0
    for k in range(steps):
        out[k + 1] = phi(w @ out[k] + a)
    return out


def distinct_points(points: list[Array], tol: float) -> list[Array]:
    """The points up to `tol` (2-norm): each joins the first kept point within tol, else is kept.

    Used to count distinct fixed points reached from many starts.
    """
    kept: list[Array] = []
    for p in points:
        if all(np.linalg.norm(p - q) > tol for q in kept):
            kept.append(p)
    return kept
