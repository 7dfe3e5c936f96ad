"""Models with exactly specified weights, so a test states the matrix whose behaviour it checks."""

from __future__ import annotations

import numpy as np
import torch

from eqprop_core import LoopedMLP


def build_model(
    weight: np.ndarray,
    *,
    n_in: int = 4,
    n_out: int = 3,
    drive_scale: float = 0.5,
    symmetric: bool = True,
    spectral_norm: bool = False,
    gamma: float = 0.95,
    dtype: torch.dtype = torch.float64,
    seed: int = 0,
) -> LoopedMLP:
    """LoopedMLP whose raw W is `weight` (n, n), U ~ drive_scale·N(0, 1/n_in), b = 0."""
    weight = np.asarray(weight, dtype=np.float64)
    n = weight.shape[0]
    model = LoopedMLP(n_in, n, n_out, symmetric=symmetric, spectral_norm=spectral_norm,
                      gamma=gamma, dtype=dtype)
    rng = np.random.default_rng(seed)
    U = drive_scale * rng.standard_normal((n, n_in)) / np.sqrt(n_in)
    with torch.no_grad():
        model.W.copy_(torch.as_tensor(weight, dtype=dtype))
        model.U.copy_(torch.as_tensor(U, dtype=dtype))
        model.b.zero_()
    return model


def random_symmetric(n: int, seed: int = 0) -> np.ndarray:
    """A + Aᵀ for Gaussian A: eigenvalues of both signs, spread over the spectrum."""
    a = np.random.default_rng(seed).standard_normal((n, n))
    return a + a.T


def inputs(batch: int, n_in: int = 4, *, seed: int = 1,
           dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A reproducible (batch, n_in) standard-normal input batch."""
    return torch.as_tensor(np.random.default_rng(seed).standard_normal((batch, n_in)),
                           dtype=dtype)


def slow_contraction() -> tuple[LoopedMLP, torch.Tensor]:
    """Symmetric SN model (γ = 0.95) with a small drive, so h* ≈ 0 and ρ(J*) ≈ 0.92–0.95."""
    model = build_model(random_symmetric(16), spectral_norm=True, gamma=0.95, drive_scale=0.05)
    return model, inputs(4)
