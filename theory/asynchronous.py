"""Max-norm contraction certificates: when asynchronous (chaotic) iteration is a theorem.

Theorem (totally asynchronous convergence; Chazan & Miranker 1969, Bertsekas 1983, Bertsekas &
Tsitsiklis, *Parallel and Distributed Computation*, 1989, §6.2–6.3). Let T: ℝⁿ → ℝⁿ be a
contraction with modulus L < 1 in a weighted max-norm ‖v‖_w = max_i |v_i|/w_i (w > 0). Then every
asynchronous iteration — any neuron updated at any time, in any order, from arbitrarily stale
values of the others, as long as each neuron is updated infinitely often and old values are
eventually discarded — converges to the unique fixed point h* of T. The reason is that the boxes
{h : ‖h − h*‖_w ≤ L^k ‖h_0 − h*‖_w} are nested and each is mapped into the next *coordinate by
coordinate*; no such box structure exists for a 2-norm ball, and a 2-norm contraction alone does
not imply it (Gauss–Seidel on a 2-norm contraction can diverge).

For T(h) = φ(Wh + d) with s = sup|φ′| and any d,

    |T(a)_i − T(b)_i| ≤ s Σ_j |W_ij| |a_j − b_j| ≤ s (|W| w)_i ‖a − b‖_w,

so T is a ‖·‖_w-contraction with L_w = s · max_i (|W| w)_i / w_i. With w = 1 this is
L_∞ = s‖|W|‖_∞ = s · max absolute row sum. The best weights give inf_w L_w = s·ρ(|W|)
(Perron–Frobenius, Collatz–Wielandt); the Perron vector of |W| + δ11ᵀ (strictly positive)
attains L_w ≤ s·ρ(|W| + δ11ᵀ) ≤ s(ρ(|W|) + nδ). Spectral normalization bounds ‖W‖₂ only;
ρ(W) ≤ ‖W‖₂ ≤ ρ(|W|) for symmetric W, so an SN model can fail the max-norm certificate.

Consequences used by track 30, for any h and any partial update of a subset S of neurons:
    ‖h − h*‖_w ≤ ‖T(h) − h‖_w / (1 − L_w)                  (a posteriori, residual form)
    ‖h⁺ − h*‖_w ≤ ‖h − h*‖_w  for h⁺_S = T(h)_S, h⁺_{¬S} = h_{¬S}   (non-expansion)
    one Gauss–Seidel sweep (each neuron once, any order) contracts ‖· − h*‖_w by L_w.

NumPy/SciPy only: this module is the independent witness and imports nothing of eqprop_core.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from .activations import nonlinearity
from .spectra import spectral_norm, spectral_radius

Array = np.ndarray

PERRON_REGULARIZATION = 1e-12  # δ relative to max|W_ij|: keeps the Perron vector strictly positive


def _square(weight: Array) -> Array:
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(f"weight must be a square (n, n) matrix, got shape {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("weight contains non-finite values (NaN or ±inf)")
    return w


def _positive_weights(weights: Array, n: int) -> Array:
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},), got {w.shape}")
    if not (np.isfinite(w).all() and (w > 0).all()):
        raise ValueError(f"weights must be finite and > 0, got min {w.min()!r}")
    return w


def weighted_max_norm(v: Array, weights: Array | None = None) -> Array:
    """‖v‖_w = max_i |v_i| / w_i over the last axis (w = 1: the max-norm ‖v‖_∞)."""
    v = np.asarray(v, dtype=np.float64)
    if weights is None:
        return np.max(np.abs(v), axis=-1)
    return np.max(np.abs(v) / _positive_weights(weights, v.shape[-1]), axis=-1)


def max_norm_lipschitz(weight: Array, activation: str, weights: Array | None = None) -> float:
    """L_w = sup|φ′| · max_i (|W| w)_i / w_i: ‖T(a) − T(b)‖_w ≤ L_w ‖a − b‖_w for T = φ(W· + d).

    weights None: w = 1, L_∞ = sup|φ′| · ‖|W|‖_∞ (the largest absolute row sum).
    """
    w = _square(weight)
    s = nonlinearity(activation).sup_slope
    if w.size == 0:
        return 0.0
    if weights is None:
        return float(s * np.max(np.abs(w).sum(axis=1)))
    v = _positive_weights(weights, w.shape[0])
    return float(s * np.max((np.abs(w) @ v) / v))


def perron_weights(weight: Array, delta: float | None = None) -> Array:
    """The Perron vector of |W| + δ11ᵀ, scaled to max 1: strictly positive weights w.

    δ defaults to 1e-12·max|W_ij|, so that max_i (|W|w)_i/w_i ≤ ρ(|W|) + nδ is within round-off
    of the infimum ρ(|W|) over all weightings (Perron–Frobenius); found by `scipy.linalg.eig`.
    """
    w = np.abs(_square(weight))
    n = w.shape[0]
    if n == 0:
        return np.ones(0)
    scale = float(w.max())
    if delta is None:
        delta = PERRON_REGULARIZATION * scale
    if not (isinstance(delta, (int, float)) and math.isfinite(delta) and delta >= 0):
        raise ValueError(f"delta must be a finite number >= 0, got {delta!r}")
    if scale == 0.0:
        return np.ones(n)
    values, vectors = scipy.linalg.eig(w + delta * np.ones((n, n)))
    v = np.abs(vectors[:, int(np.argmax(values.real))].real)
    v = v / v.max()
    # Round-off can leave an entry at 0 when δ ≪ ε·‖|W|‖; any positive floor is still a valid
    # weighting (the certificate is recomputed from it, not assumed).
    return np.maximum(v, np.finfo(np.float64).tiny ** 0.5)


def conditioned_weights(weight: Array, activation: str) -> tuple[Array, float]:
    """(w, L_w): Perron weights of |W| + δ11ᵀ with δ = (1 − sρ)/(2ns), where sρ = s·ρ(|W|) < 1.

    Then L_w ≤ s(ρ(|W|) + nδ) = (1 + sρ)/2 < 1 and w_i ≥ δ/ρ(|W| + δ11ᵀ): a certificate with
    margin whose weights stay away from 0, so round-off in ‖·‖_w stays near ε/min w.
    ValueError when sρ ≥ 1 (no weighting makes T a max-norm contraction).
    """
    w = _square(weight)
    s = nonlinearity(activation).sup_slope
    s_rho = s * spectral_radius(np.abs(w))
    if not s_rho < 1:
        raise ValueError(f"no weighted max-norm contraction: sup|phi'|*rho(|W|) = {s_rho!r} >= 1")
    n = max(w.shape[0], 1)
    weights = perron_weights(w, delta=(1 - s_rho) / (2 * n * s))
    return weights, max_norm_lipschitz(w, activation, weights)


@dataclass(frozen=True)
class MaxNormCertificate:
    """Lipschitz moduli of T(h) = φ(Wh + d) in three norms, all by NumPy/SciPy (float64).

    l_2: s‖W‖₂ (what SN certifies); l_inf: s‖|W|‖_∞ (w = 1); l_weighted: s·max_i(|W|w)_i/w_i
    with the Perron `weights`; rho_abs: ρ(|W|), so s·rho_abs = inf over weightings.
    """

    l_2: float
    l_inf: float
    l_weighted: float
    rho_abs: float
    sup_slope: float
    weights: Array

    @property
    def certified(self) -> bool:
        """Asynchronous convergence is a theorem: L_w < 1 in the Perron-weighted max-norm."""
        return self.l_weighted < 1

    @property
    def certified_unweighted(self) -> bool:
        return self.l_inf < 1

    def summary(self) -> dict[str, float | bool]:
        return {"l_2": self.l_2, "l_inf": self.l_inf, "l_weighted": self.l_weighted,
                "s_rho_abs": self.sup_slope * self.rho_abs, "certified": self.certified,
                "certified_unweighted": self.certified_unweighted}


def max_norm_certificate(weight: Array, activation: str) -> MaxNormCertificate:
    """The certificate of `weight` (n, n) under `activation`: see `MaxNormCertificate`."""
    w = _square(weight)
    s = nonlinearity(activation).sup_slope
    weights = perron_weights(w)
    return MaxNormCertificate(
        l_2=spectral_norm(w) * s,
        l_inf=max_norm_lipschitz(w, activation),
        l_weighted=max_norm_lipschitz(w, activation, weights),
        rho_abs=spectral_radius(np.abs(w)),
        sup_slope=s,
        weights=weights,
    )


def residual_error_bound(L: float, residual: Array | float) -> Array:
    """‖h − h*‖ ≤ ‖T(h) − h‖ / (1 − L) for an L-contraction in the norm the residual is in."""
    if not (isinstance(L, (int, float)) and math.isfinite(L) and 0 <= L < 1):
        raise ValueError(f"the residual bound needs 0 <= L < 1, got L = {L!r}")
    return np.asarray(residual, dtype=np.float64) / (1 - L)


def gauss_seidel_iteration_matrix(weight: Array, order: Array | None = None) -> Array:
    """G = (I − L)⁻¹U: one Gauss–Seidel sweep of the linear map h ↦ Wh, visiting `order`.

    With P the permutation to visiting order, PWPᵀ = L + U (L strictly lower, U the rest), a
    sweep maps the error e to Pᵀ(I − L)⁻¹U P e. For T(h) = φ(Wh + d) with φ′(a*) = 1 at h*
    (tanh, d = 0, h* = 0) this is the sweep's Jacobian at h*: ρ(G) > 1 makes h* unstable for
    that schedule although T itself may be a 2-norm contraction.
    """
    w = _square(weight)
    n = w.shape[0]
    p = np.arange(n) if order is None else np.asarray(order)
    if sorted(p.tolist()) != list(range(n)):
        raise ValueError(f"order must be a permutation of 0..{n - 1}, got {p.tolist()}")
    permuted = w[np.ix_(p, p)]
    lower = np.tril(permuted, -1)
    sweep = scipy.linalg.solve_triangular(np.eye(n) - lower, permuted - lower, lower=True)
    back = np.empty(n, dtype=int)
    back[p] = np.arange(n)
    return sweep[np.ix_(back, back)]
