"""Spectral quantities by scipy in float64: σ_max, ρ, Lipschitz certificates, J* at h*."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from .activations import nonlinearity

Array = np.ndarray


def spectral_norm(matrix: Array) -> float:
    """‖A‖₂ = σ_max(A) by `scipy.linalg.svdvals` in float64."""
    a = np.asarray(matrix, dtype=np.float64)
    if a.size == 0:
        return 0.0
    return float(scipy.linalg.svdvals(a)[0])


def spectral_radius(matrix: Array) -> float:
    """ρ(A) = max |λ(A)| by `scipy.linalg.eigvals` in float64."""
    a = np.asarray(matrix, dtype=np.float64)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(scipy.linalg.eigvals(a))))


def lipschitz_certificate(weight: Array, activation: str) -> float:
    """L = ‖W‖₂ · sup|φ′|: ‖T(a) − T(b)‖₂ ≤ L‖a − b‖₂ for T(h) = φ(Wh + c), any c."""
    return spectral_norm(weight) * nonlinearity(activation).sup_slope


def jacobian_at_equilibrium(h_star: Array, weight: Array, drive: Array, activation: str) -> Array:
    """J* = ∂T/∂h at h*: diag(φ′(a*)) W with a* = W h* + drive. h_star, drive: (n,)."""
    w = np.asarray(weight, dtype=np.float64)
    pre = w @ np.asarray(h_star, dtype=np.float64) + np.asarray(drive, dtype=np.float64)
    return nonlinearity(activation).slope(pre)[:, None] * w
