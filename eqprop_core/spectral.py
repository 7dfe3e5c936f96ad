"""Spectral normalization with a margin: W_eff = γ · W / σ̂(W), σ̂ ≥ σ_max(W), γ < 1.

Power iteration alone *under*-estimates σ_max, so dividing by it can leave ‖W_eff‖₂ > γ (and
PyTorch's stock `spectral_norm` targets γ = 1: non-expansive, never a contraction). Here σ̂ is
the exact σ_max computed in float64 (symmetric eigenvalues or singular values) times a small
factor covering LAPACK's backward error and the rounding of W / σ̂ in the model's dtype, so
σ_max(W_eff) ≤ γ holds after every update of W, in train and eval mode alike (there is no
stored state to go stale).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def rounding_margin(n: int, dtype: torch.dtype) -> float:
    """Relative inflation 4·√n·ε(dtype) of σ̂: ‖W ∘ (1 + δ)‖₂ ≤ (1 + √n·max|δ|)‖W‖₂."""
    return 4.0 * math.sqrt(max(n, 1)) * torch.finfo(dtype).eps


def certified_spectral_norm(weight: Tensor, *, symmetric: bool = False) -> Tensor:
    """σ̂ ≥ σ_max(weight), differentiable, as a float64 scalar tensor.

    `symmetric=True` promises weight = weightᵀ and uses eigvalsh (σ_max = max|λ|), which is
    cheaper than an SVD; the caller is responsible for the promise.
    """
    if weight.ndim != 2:
        raise ValueError(f"spectral norm needs a matrix, got shape {tuple(weight.shape)}")
    w64 = weight.to(torch.float64)
    if not torch.isfinite(w64).all():
        # No finite bound exists; +inf lets NaN weights propagate into the dynamics, where the
        # solver reports them as a measured divergence instead of LAPACK raising here.
        return w64.new_tensor(float("inf"))
    if symmetric:
        sigma = torch.linalg.eigvalsh(w64).abs().max()
    else:
        sigma = torch.linalg.matrix_norm(w64, ord=2)
    return sigma * (1.0 + rounding_margin(min(weight.shape), weight.dtype))


def spectrally_normalize(weight: Tensor, gamma: float, *, symmetric: bool = False) -> Tensor:
    """γ · weight / σ̂(weight) in weight's dtype, with σ_max of the result ≤ γ.

    A zero matrix stays zero (σ̂ is floored at the smallest normal number instead of 0); a
    matrix with NaN/∞ entries keeps them (NaN · 0), so the dynamics diverge visibly.
    """
    sigma = certified_spectral_norm(weight, symmetric=symmetric)
    sigma = sigma.clamp_min(torch.finfo(torch.float64).tiny)
    return (weight.to(torch.float64) * (gamma / sigma)).to(weight.dtype)
