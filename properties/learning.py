"""What the witness measures on a model while it trains: scipy spectra of the matrix the dynamics
actually apply, read off the dynamics themselves.

The matrix is *measured*, not taken from the model's own account: for one update
T(h) = φ(W_eff h + U_eff x + b) at x = 0, the Jacobian at h = 0 is diag(φ′(b)) W_eff, so

    W_dyn = diag(φ′(b))⁻¹ · ∂T/∂h |_{h=0, x=0}

(float64 copy of the model, autograd of a single step — a measurement of what `step` does). Its
σ_max by `scipy.linalg.svdvals` is the effective ‖W‖₂; a raw, pre-normalization parameter is never
reported as the dynamics' norm (the write-up's Lipschitz column mixed the two).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import scipy.linalg
import torch

from eqprop_core import LoopedMLP
from theory.activations import nonlinearity
from theory.banach import steps_to_tolerance
from theory.spectra import spectral_norm


def dynamics_matrix(model: LoopedMLP) -> np.ndarray:
    """W_dyn (n_hidden, n_hidden): the linear map inside one update of the dynamics, measured."""
    probe = copy.deepcopy(model).double()
    zero_x = torch.zeros(1, probe.n_in, dtype=torch.float64)
    zero_h = torch.zeros(1, probe.n_hidden, dtype=torch.float64)
    with torch.enable_grad():
        jacobian = torch.autograd.functional.jacobian(
            lambda h: probe.step(h, zero_x)[0], zero_h)[:, 0, :]
    slope = nonlinearity(probe.activation.name).slope(probe.b.detach().numpy())
    if np.min(slope) < 1e-8:
        raise ValueError("a bias saturates φ (φ′(b) < 1e-8): W_dyn cannot be read at h = 0")
    return jacobian.detach().numpy() / slope[:, None]


def raw_norm(model: LoopedMLP) -> float:
    """σ_max of the raw parameter W (symmetrized for a symmetric model) — *not* the dynamics'
    norm under SN; recorded only to show the difference."""
    W = model.W.detach().double().cpu().numpy()
    return spectral_norm(0.5 * (W + W.T) if model.symmetric else W)


def jacobian_radius(model: LoopedMLP, weight: np.ndarray, x: torch.Tensor,
                    h: torch.Tensor) -> float:
    """max over samples of ρ(diag(φ′(a)) W_dyn), a = W_dyn h + U_eff x + b, by scipy.eigvals."""
    with torch.no_grad():
        drive = model.input_drive(model.validate_input(x)).double().cpu().numpy()
    states = h.detach().double().cpu().numpy()
    slope = nonlinearity(model.activation.name).slope(states @ weight.T + drive)
    return float(max(np.max(np.abs(scipy.linalg.eigvals(s[:, None] * weight))) for s in slope))


def spectrum_monitor(model: LoopedMLP, weight: np.ndarray | None = None) -> dict[str, Any]:
    """Trainer monitor: scipy's σ_max of W_dyn, its certificate L = σ·sup|φ′| and the raw σ
    (`weight` is W_dyn when the caller has measured it already)."""
    weight = dynamics_matrix(model) if weight is None else weight
    sigma = spectral_norm(weight)
    return {"sigma_scipy": sigma,
            "lipschitz_scipy": sigma * nonlinearity(model.activation.name).sup_slope,
            "sigma_raw": raw_norm(model)}


def banach_convergence(model: LoopedMLP, x: torch.Tensor, tol: float, *,
                       lipschitz: float | None = None) -> dict[str, Any]:
    """Does plain iteration from h = 0 meet the residual `tol` within the Banach step count?

    With L = σ_max(W_dyn)·sup|φ′| < 1 (scipy; or the `lipschitz` a caller *claims*), after
    k* = min{k : L^k/(1 − L)·‖T(0)‖ ≤ tol/(1 + L)} updates ‖h_k − h*‖ ≤ tol/(1 + L), hence
    ‖T(h_k) − h_k‖ ≤ (1 + L)‖h_k − h*‖ ≤ tol for every sample. Runs the map in float64.
    """
    weight = dynamics_matrix(model)
    measured = spectral_norm(weight) * nonlinearity(model.activation.name).sup_slope
    L = measured if lipschitz is None else lipschitz
    if not L < 1:
        return {"lipschitz": L, "measured_lipschitz": measured, "steps": None, "share": 0.0,
                "max_residual": None}
    probe = copy.deepcopy(model).double()
    with torch.no_grad():
        T = probe.update_map(x.flatten(1).double())
        h = T(torch.zeros(x.shape[0], probe.n_hidden, dtype=torch.float64))
        first = float(torch.linalg.vector_norm(h, dim=1).max())
        steps = steps_to_tolerance(L, first, tol / (1 + L))
        for _ in range(max(steps - 1, 0)):
            h = T(h)
        residual = torch.linalg.vector_norm(T(h) - h, dim=1)
    return {"lipschitz": L, "measured_lipschitz": measured, "steps": max(steps, 1),
            "share": float((residual <= tol).double().mean()),
            "max_residual": float(residual.max())}
