"""Two computations of one L-contraction whose unit roundoffs sum to u_a + u_b differ by at most
stated tolerances: in W_eff (SN's dtype-dependent margin), the free state h_0, the logits and each
symmetric EP gradient block.

The setting (track 24): one LoopedMLP (tanh, symmetric W, SN) drawn in float32, its float64 twin
and every (device, dtype) variant cast from the same raw parameters; symmetric EP at
β = min(0.1, (1 − L)/‖V‖₂²) (`contractive_nudge`: the certified contraction L_β ≤ (1 + L)/2),
every phase run for the fixed number of plain updates K with L_β^K ≤ u(float32) (`phase_steps`,
`ep_gradients(steps=(K_free, K_nudged))`, the same computation in both dtypes); the reference is
the CPU float64 computation (`compare_computations`).

Tolerances, stated before measuring. u_a + u_b is the sum of the two computations' unit
roundoffs (u = ε/2: 5.96e-8 in float32, 1.11e-16 in float64); n, n_in, n_out the widths,
B the batch, L = ‖W_eff‖₂ (tanh: sup φ′ = 1), L_β = L + |β|‖V‖₂²/2 (‖diag p − ppᵀ‖₂ ≤ ½).

• W_eff. Each dtype's SN divides by σ̂ = σ(S)(1 + m(dtype)), m = 4√n·ε(dtype)
  (`eqprop_core.spectral.rounding_margin`): the two models differ *by design* by the factor
  (1 + m_a)/(1 + m_b), plus rounding — of S = ½(W + Wᵀ) (u), of the final cast (u) and of
  σ(S) through the rounded S (≤ r·u, r = ‖|S|‖₂/‖S‖₂) — and LAPACK's n·ε64. So, entrywise,

      |W_eff,a − W_eff,b| / |W_eff,b| ≤ a := |m_a − m_b| + (2 + r)(u_a + u_b) + 2n·ε64.

• One evaluation of the update map. A pre-activation sums M terms (the free map:
  M = n + n_in + 1; the nudged map adds the label drive, the n_out softmax terms and the
  scaling of V: M_β = M + n_out + 2) of magnitudes ρ_i = Σ_j|W_ij| + Σ_j|U_ij||x_j| + |b_i|
  (|h| ≤ 1 for tanh), plus 2ν_i with ν_i = |β|·max_k|V_ki| in the nudged map. Its rounding is
  taken as √M·u·ρ_i (the statistical estimate of Wilkinson and Higham, √M in place of the
  worst-case M), tanh adds ≤ 4u·|h_i| (2 ulp, CUDA's tanhf bound), and the softmax's
  relative error 2ζ + (n_out + 4)u, ζ = u√(n + 1)·max_k(Σ_j|V_kj| + |c_k|), enters
  through ν:

      R_0 = u(√M‖ρ‖₂ + 4√n),   R_β = u(√M_β‖ρ + 2ν‖₂ + ‖ν‖₂(2√(n+1)·max_k ρ_z,k + n_out + 4)
                                           + 4√n),   ρ_z,k = Σ_j|V_kj| + |c_k|.

• States. Two computations of maps that are L-contractions, differing per evaluation by at
  most R (both roundings) plus ‖ΔW_eff‖₂√n (the models' difference), started at the same
  h: e_{k+1} ≤ L e_k + R + ‖ΔW_eff‖₂√n, so for every k (Banach; the nudged phases start
  from the free state, whose error is smaller)

      ‖Δh_0‖₂ ≤ tol_h = (R_0 + ‖ΔW_eff‖₂√n)/(1 − L),
      ‖Δh_±β‖₂ ≤ E = (R_β + ‖ΔW_eff‖₂√n)/(1 − L_β),

  with ‖ΔW_eff‖₂ ≤ a·‖|W_eff|‖₂ from the entrywise bound.
• Logits z = h Vᵀ + c:  ‖Δz‖₂ ≤ tol_z = ‖V‖₂·tol_h + u√(n + 1)‖ρ_z‖₂.
• EP gradients. Symmetric EP's G_W = −(1/4βB)Σ_b(h₊h₊ᵀ − h₋h₋ᵀ), G_U = −(1/B)Σ_b c_b x_bᵀ,
  G_b = −(1/B)Σ_b c_b with c_b = (h₊ − h₋)/2β, and the readout's G_V = (1/B)Σ_b(p_b − y_b)h_bᵀ,
  G_c = (1/B)Σ_b(p_b − y_b) at h_0 (‖Δp‖ ≤ ½‖Δz‖). Propagating the state bounds:

      ‖ΔG_W‖_F ≤ mean_b E(2√n + E)/2|β|,   ‖ΔG_U‖_F ≤ mean_b (E + 2u√n)‖x_b‖/|β|,
      ‖ΔG_b‖ ≤ mean_b (E + 2u√n)/|β|,   ‖ΔG_V‖_F ≤ mean_b (½tol_z√n + √2·tol_h),
      ‖ΔG_c‖ ≤ mean_b ½tol_z,

  each plus the rounding of its own batch sum (u(√B + 2)n/2|β|, u√B√n·max‖x_b‖/|β|,
  u√B√n/|β|, u(n_out + 4 + √B)√(2n), u(n_out + 4 + √B)√2). The gradients are compared for the
  effective parameters (W_eff, U, b, V, c): EP is run on a copy without SN whose raw W is the
  float32 W_eff (`properties.sn_pullback.without_sn`), in both dtypes — the same numbers, so
  ΔW_eff = 0.
  The raw-W gradient adds SN's pull-back, whose float32 sensitivity runs through the
  eigenvector of σ(S) (1/eigengap); its measured difference is recorded, not checked.

Recorded beside the state check: the first-order response of h* to the two W_eff,
Δh ≈ (I − D W)⁻¹ D ΔW_eff h* with D = diag(1 − h*²) (scipy), i.e. how much of the
float32–float64 difference SN's dtype-dependent margin explains, and the remainder.

The bounds are worst case in everything but the √M per evaluation (|h| ≤ 1, absolute row
sums, errors aligned over every step), so they sit far above the measured differences; each
is also checked to be *informative*: below the norm of the quantity it bounds, so a zero,
stale or garbage answer would fail it. The same tolerances, with u of the variant's dtype,
hold CUDA against the CPU (float32 matmuls must stay IEEE float32: TF32 would break them, and
the flags are recorded).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
import torch

from eqprop_core import LoopedMLP, ep_gradients
from eqprop_core.spectral import rounding_margin

from .sn_pullback import without_sn

MAX_BETA = 0.1  # the nudge's cap, track 23's
REFERENCE = ("cpu", torch.float64)  # the computation every variant is held against
GRADIENT_KEYS = ("W", "U", "b", "V", "c")  # the effective parameters compared


def unit_roundoff(dtype: torch.dtype) -> float:
    """u = ε/2: |fl(x) − x| ≤ u|x| for round-to-nearest in this dtype."""
    return torch.finfo(dtype).eps / 2


def sn_entry_bound(S: np.ndarray, dtype_a: torch.dtype, dtype_b: torch.dtype) -> float:
    """a: max_ij |W_eff,a − W_eff,b|/|W_eff,b| for SN computed in two dtypes from the same
    S = ½(W + Wᵀ) (module doc): |m_a − m_b| + (2 + r)(u_a + u_b) + 2n·ε64."""
    n = S.shape[0]
    spectral = np.linalg.norm(S, 2)
    r = np.linalg.norm(np.abs(S), 2) / spectral if spectral > 0 else 1.0
    margins = abs(rounding_margin(n, dtype_a) - rounding_margin(n, dtype_b))
    u = unit_roundoff(dtype_a) + unit_roundoff(dtype_b)
    return float(margins + (2 + r) * u + 2 * n * np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Tolerances:
    """Stated bounds on the difference of two computations (module doc), per sample or block."""

    state: np.ndarray  # (B,) ‖Δh_0‖₂
    logits: np.ndarray  # (B,) ‖Δz‖₂
    gradients: dict[str, float]  # ‖ΔG_θ‖_F per effective parameter
    lipschitz: float
    nudged_lipschitz: float


def rounding_tolerances(params: Mapping[str, np.ndarray], x: np.ndarray, *, beta: float,
                        u: float, model_gap: float = 0.0) -> Tolerances:
    """Tolerances for two computations of the same model whose unit roundoffs sum to `u`.

    params: the float64 effective parameters W (n, n), U (n, n_in), b (n,), V (n_out, n), c
    (n_out,); x (B, n_in); model_gap: a bound on ‖W_eff,a − W_eff,b‖₂ (0 when both use the same
    numbers)."""
    if not (math.isfinite(beta) and beta != 0):
        raise ValueError(f"beta must be finite and non-zero, got {beta!r}")
    if not (math.isfinite(u) and u > 0):
        raise ValueError(f"u must be a positive unit roundoff, got {u!r}")
    W, U, b, V, c = (np.asarray(params[k], dtype=np.float64) for k in GRADIENT_KEYS)
    x = np.asarray(x, dtype=np.float64)
    n, n_in, n_out, batch = W.shape[0], U.shape[1], V.shape[0], x.shape[0]
    beta = abs(beta)
    L = float(np.linalg.norm(W, 2)) + model_gap
    norm_V = float(np.linalg.norm(V, 2))
    L_beta = L + beta * norm_V ** 2 / 2
    if not L_beta < 1:
        raise ValueError(f"no certified contraction: L = {L:.4g}, L_beta = {L_beta:.4g} at "
                         f"beta = {beta:.3g}")
    rho = np.abs(W).sum(axis=1) + np.abs(x) @ np.abs(U).T + np.abs(b)  # (B, n)
    rho_z = np.abs(V).sum(axis=1) + np.abs(c)  # (n_out,)
    nu = beta * np.abs(V).max(axis=0)  # (n,)
    m_free, m_nudged = n + n_in + 1, n + n_in + n_out + 3
    root_n = math.sqrt(n)
    drift = model_gap * root_n
    r_free = u * (math.sqrt(m_free) * np.linalg.norm(rho, axis=1) + 4 * root_n)
    r_nudged = u * (math.sqrt(m_nudged) * np.linalg.norm(rho + 2 * nu, axis=1)
                    + np.linalg.norm(nu) * (2 * math.sqrt(n + 1) * rho_z.max() + n_out + 4)
                    + 4 * root_n)
    tol_h = (r_free + drift) / (1 - L)
    tol_z = norm_V * tol_h + u * math.sqrt(n + 1) * np.linalg.norm(rho_z)
    E = (r_nudged + drift) / (1 - L_beta)
    x_norm = np.linalg.norm(x, axis=1)
    sum_b = math.sqrt(batch)
    combined = (E + 2 * u * root_n) / beta
    gradients = {
        "W": float(np.mean(E * (2 * root_n + E)) / (2 * beta) + u * (sum_b + 2) * n / (2 * beta)),
        "U": float(np.mean(combined * x_norm) + u * sum_b * root_n * x_norm.max() / beta),
        "b": float(np.mean(combined) + u * sum_b * root_n / beta),
        "V": float(np.mean(0.5 * tol_z * root_n + math.sqrt(2) * tol_h)
                   + u * (n_out + 4 + sum_b) * math.sqrt(2 * n)),
        "c": float(np.mean(0.5 * tol_z) + u * (n_out + 4 + sum_b) * math.sqrt(2)),
    }
    return Tolerances(tol_h, tol_z, gradients, L, L_beta)


def contractive_nudge(params: Mapping[str, np.ndarray], cap: float = MAX_BETA) -> float:
    """β = min(cap, (1 − L)/‖V‖₂²): L_β = L + β‖V‖₂²/2 ≤ (1 + L)/2, half the free margin."""
    L = float(np.linalg.norm(params["W"], 2))
    spread = float(np.linalg.norm(params["V"], 2)) ** 2
    return min(cap, (1 - L) / spread) if spread > 0 else cap


def phase_steps(L: float, u: float) -> int:
    """K with L^K ≤ u: a phase of K plain updates ends at the dtype's rounding floor."""
    if not 0 < L < 1:
        raise ValueError(f"L must lie in (0, 1) for a contraction, got {L!r}")
    if not 0 < u < 1:
        raise ValueError(f"u must lie in (0, 1), got {u!r}")
    return max(1, math.ceil(math.log(u) / math.log(L)))


def as_array(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def effective_parameters(model: LoopedMLP) -> dict[str, np.ndarray]:
    with torch.no_grad():
        return {"W": as_array(model.recurrent_weight()), "U": as_array(model.input_weight()),
                "b": as_array(model.b), "V": as_array(model.readout_weight()),
                "c": as_array(model.c)}


@dataclass(frozen=True)
class Computation:
    """What one (device, dtype) variant computed: W_eff, h_0, logits and EP gradients (raw
    parameters of the SN model, effective parameters of its no-SN copy)."""

    weight: np.ndarray
    state: np.ndarray
    logits: np.ndarray
    raw_gradients: dict[str, np.ndarray]
    effective_gradients: dict[str, np.ndarray]


def compute(model: LoopedMLP, clone: LoopedMLP, x: torch.Tensor, y: torch.Tensor, *,
            beta: float, steps: tuple[int, int], device: str, dtype: torch.dtype) -> Computation:
    """The SN model and its no-SN copy (`clone`: raw W = the float32 W_eff), both cast to
    (device, dtype), through the same EP code."""
    variant = copy.deepcopy(model).to(device=device, dtype=dtype)
    clone = copy.deepcopy(clone).to(device=device, dtype=dtype)
    xv, yv = x.to(device=device, dtype=dtype), y.to(device)
    raw = ep_gradients(variant, xv, yv, beta=beta, steps=steps, on_unconverged="record")
    effective = ep_gradients(clone, xv, yv, beta=beta, steps=steps, on_unconverged="record")
    with torch.no_grad():
        logits = variant.readout(raw.free_state)
        weight = variant.recurrent_weight()
    return Computation(as_array(weight), as_array(raw.free_state), as_array(logits),
                       {k: as_array(v) for k, v in raw.items()},
                       {k: as_array(v) for k, v in effective.items()})


def compare_computations(model: LoopedMLP, x: torch.Tensor, y: torch.Tensor,
                         device: str, dtype: torch.dtype) -> dict[str, Any]:
    """Measured differences and stated tolerances of one variant against the CPU float64
    reference; ratios measured/tolerance (≤ 1 to pass) and tolerance/‖quantity‖ (< 1: the
    tolerance is informative). `model` is the float32 draw every variant is cast from."""
    if model.dtype != torch.float32:
        raise ValueError(f"model must be the float32 draw, got dtype {model.dtype}")
    ref_model = copy.deepcopy(model).to(dtype=torch.float64)
    params = effective_parameters(ref_model)
    beta = contractive_nudge(params)
    u_f32 = unit_roundoff(torch.float32)
    L = float(np.linalg.norm(params["W"], 2))
    L_beta = L + beta * float(np.linalg.norm(params["V"], 2)) ** 2 / 2
    steps = (phase_steps(L, u_f32), phase_steps(L_beta, u_f32))
    clone = without_sn(model)  # W = the float32 W_eff: every variant gets the same numbers
    ref = compute(model, clone, x, y, beta=beta, steps=steps, device=REFERENCE[0],
                  dtype=REFERENCE[1])
    got = compute(model, clone, x, y, beta=beta, steps=steps, device=device, dtype=dtype)

    S = 0.5 * (as_array(model.W) + as_array(model.W).T)
    entry_bound = sn_entry_bound(S, dtype, REFERENCE[1])
    nonzero = ref.weight != 0
    entry_gap = float(np.max(np.abs(got.weight - ref.weight)[nonzero]
                             / np.abs(ref.weight)[nonzero]))
    gap_2 = entry_bound * float(np.linalg.norm(np.abs(ref.weight), 2))
    u = unit_roundoff(dtype) + unit_roundoff(REFERENCE[1])
    x64 = as_array(x)
    end_to_end = rounding_tolerances(params, x64, beta=beta, u=u, model_gap=gap_2)
    same_numbers = rounding_tolerances(
        effective_parameters(copy.deepcopy(clone).to(torch.float64)), x64, beta=beta, u=u)
    state_gap = np.linalg.norm(got.state - ref.state, axis=1)
    explained = margin_response(ref.state, ref.weight, got.weight) if dtype != REFERENCE[1] \
        else np.zeros_like(ref.state)
    remainder = np.linalg.norm(got.state - ref.state - explained, axis=1)
    logit_gap = np.linalg.norm(got.logits - ref.logits, axis=1)
    grad_gap = {k: float(np.linalg.norm(got.effective_gradients[k] - ref.effective_gradients[k]))
                for k in GRADIENT_KEYS}
    grad_norm = {k: float(np.linalg.norm(ref.effective_gradients[k])) for k in GRADIENT_KEYS}
    raw_relative = {k: float(np.linalg.norm(got.raw_gradients[k] - ref.raw_gradients[k])
                             / max(float(np.linalg.norm(ref.raw_gradients[k])), 1e-300))
                    for k in GRADIENT_KEYS}
    state_norm = np.linalg.norm(ref.state, axis=1)
    logit_norm = np.linalg.norm(ref.logits, axis=1)
    return {
        "beta": beta, "steps": list(steps), "lipschitz": L, "nudged_lipschitz": L_beta,
        "weight": {"measured": entry_gap, "bound": entry_bound},
        "state": {"measured": float(state_gap.max()), "tolerance": float(end_to_end.state.max()),
                  "ratio": float(np.max(state_gap / end_to_end.state)),
                  "informative": float(np.max(end_to_end.state / state_norm)),
                  "sn_margin_response": float(np.linalg.norm(explained, axis=1).max()),
                  "remainder_after_response": float(remainder.max())},
        "logits": {"measured": float(logit_gap.max()),
                   "tolerance": float(end_to_end.logits.max()),
                   "ratio": float(np.max(logit_gap / end_to_end.logits)),
                   "informative": float(np.max(end_to_end.logits / logit_norm))},
        "gradients": {"measured": grad_gap, "tolerance": same_numbers.gradients,
                      "norm": grad_norm,
                      "ratio": max(grad_gap[k] / same_numbers.gradients[k]
                                   for k in GRADIENT_KEYS),
                      "informative": max(same_numbers.gradients[k] / grad_norm[k]
                                         for k in GRADIENT_KEYS),
                      "raw_relative_difference": raw_relative},
    }


def margin_response(state: np.ndarray, weight: np.ndarray, other: np.ndarray) -> np.ndarray:
    """First-order change of h* = tanh(W h* + Ux + b) when W_eff becomes `other` (scipy):
    Δh = (I − D W)⁻¹ D ΔW h*, D = diag(1 − h*²), per sample (rows of `state`)."""
    delta = other - weight
    out = np.empty_like(state)
    for i, h in enumerate(state):
        slope = 1 - h ** 2
        out[i] = scipy.linalg.solve(np.eye(h.size) - slope[:, None] * weight,
                                    slope * (delta @ h))
    return out
