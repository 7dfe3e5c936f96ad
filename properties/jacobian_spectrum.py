"""J* = diag(φ′(a*)) W_eff at the model's h*, against its spectrum and its finite differences
(track 5): the reference h* (Anderson vs scipy's Newton), ρ(J*)/‖J*‖₂, ‖J*‖₂/L, the gap between
scipy's J* and a central finite-difference Jacobian of `model.step`; and the strongly driven
models (mean φ′(a*) ≤ 0.1) on which the wrong Jacobian J = W_eff mispredicts the rate.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
from hypothesis import strategies as st

from .contraction_rate import (
    MIN_RHO,
    RATE_TOLERANCE,
    Equilibrium,
    RateFit,
    convergence_rate,
    equilibrium_of,
)
from .strategies import ModelSpec, contractive_models, initial_states

STRONG_DRIVE = 0.1  # the control's model: mean φ′(a*) ≤ 0.1


FD_STEP = 1e-5


# -- hypothesis cases -------------------------------------------------------------------------
def models_and_starts(models: st.SearchStrategy) -> st.SearchStrategy:
    """(model, start) pairs: each drawn model with hypothesis-drawn starts of its width."""
    return models.flatmap(lambda spec: st.tuples(st.just(spec), initial_states(spec.n_hidden)))


def reference_disagreement(spec: ModelSpec) -> float:
    """max |h*_torch − h*_scipy|."""
    return equilibrium_of(spec).newton_gap


def radius_over_norm(spec: ModelSpec) -> float:
    eq = equilibrium_of(spec)
    return eq.rho / eq.norm if eq.norm > 0 else 0.0


def norm_over_certificate(spec: ModelSpec) -> float:
    eq = equilibrium_of(spec)
    return eq.norm / eq.lipschitz


@torch.no_grad()
def finite_difference_jacobian(eq: Equilibrium, eps: float = FD_STEP) -> np.ndarray:
    """[T(h* + εe_j) − T(h* − εe_j)] / 2ε for every unit vector e_j, by `model.step`: (n, n)."""
    n = eq.h_star.shape[0]
    h_star = torch.as_tensor(eq.h_star, dtype=eq.weight.dtype)
    shifts = eps * torch.eye(n, dtype=eq.weight.dtype)
    columns = (eq.step(h_star + shifts) - eq.step(h_star - shifts)) / (2 * eps)
    return columns.numpy().T  # row j of `columns` is ∂T/∂h_j: column j of J


def finite_difference_gap(spec: ModelSpec) -> float:
    eq = equilibrium_of(spec)
    return float(np.max(np.abs(finite_difference_jacobian(eq) - eq.jacobian)))


# -- negative control -------------------------------------------------------------------------
driven_models = st.tuples(
    contractive_models(gamma=0.99), st.sampled_from([2.0, 3.0, 5.0]), st.integers(0, 2**16),
).map(lambda t: (t[0].with_(drive_scale=t[1]), t[2]))


def gaussian_start(spec: ModelSpec, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(spec.n_hidden)


def wrong_jacobian_falsified(case: tuple[ModelSpec, int]) -> bool:
    """Strongly driven (mean φ′(a*) ≤ 0.1), and the rate is off ρ(W_eff) by more than 5%."""
    spec, seed = case
    eq = equilibrium_of(spec)
    if eq.slopes.mean() > STRONG_DRIVE or eq.rho < MIN_RHO:
        return False
    fit = convergence_rate(eq, gaussian_start(spec, seed))
    return fit is not None and abs(fit.rate - eq.rho_weight) > RATE_TOLERANCE * eq.rho_weight


def wrong_jacobian_rates(spec: ModelSpec, seed: int) -> tuple[Equilibrium, RateFit, dict]:
    """The control's case (one that `wrong_jacobian_falsified`): its equilibrium, the measured
    rate from the Gaussian start, and what is recorded — ρ(J*), ρ(W_eff), the rate's deviation
    from each, and the slopes φ′(a*)."""
    eq = equilibrium_of(spec)
    # not None: the case passed wrong_jacobian_falsified, which needs this same fit
    fit = cast(RateFit, convergence_rate(eq, gaussian_start(spec, seed)))
    return eq, fit, dict(
        model=repr(spec), start_seed=seed, rho_J_star=eq.rho, rho_W_eff=eq.rho_weight,
        measured_rate=fit.rate, deviation_from_rho_J_star=abs(fit.rate - eq.rho) / eq.rho,
        deviation_from_rho_W=abs(fit.rate - eq.rho_weight) / eq.rho_weight,
        mean_phi_prime=float(eq.slopes.mean()), max_phi_prime=float(eq.slopes.max()),
    )
