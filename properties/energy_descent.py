"""The Hopfield energy along synchronous updates of a symmetric model (track 8; the theorem is
in the track's docstring and `theory/energy.py`): its largest rise, the shortfall against the
guaranteed decrease ½Δᵀ(W + I/s)Δ, ∇E at the model's h*, and `model.energy` against
`theory.energy`; the asymmetric models and the W = −1.5·I 2-cycle where the theorem's
conditions fail.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

import theory

from .extract import as_numpy
from .strategies import ModelSpec, contractive_models, initial_states

STEPS = 30  # synchronous updates per trajectory


BATCH = 4  # trajectories (one input each) per drawn model


CONDITIONED = 1e-5  # component i is evaluated by φ⁻¹ when 1 − h*_i² ≥ this


STATE_CLIP = 15.0  # |z| ≤ 15: tanh(z) stays below 1 − 1e-13, inside the open box


def symmetric_models() -> st.SearchStrategy[ModelSpec]:
    """The suite's models for the checks: contractive symmetric SN, hidden ≤ 10."""
    return contractive_models(max_hidden=10, symmetric=True)


@st.composite
def symmetric_cases(draw: st.DrawFn, models: st.SearchStrategy) -> tuple[ModelSpec, np.ndarray]:
    """A drawn model and BATCH starts z for it (h_0 = tanh z)."""
    spec = draw(models)
    return spec, draw(initial_states(spec.n_hidden, batch=BATCH))


@st.composite
def asymmetric_cases(draw: st.DrawFn) -> tuple[ModelSpec, np.ndarray]:
    """Skew-dominated W (n ≥ 2) under SN: ‖W‖₂ ≤ γ < 1 keeps λ_min(½(W + Wᵀ)) > −1/s, so
    symmetry is the only condition of the theorem that fails."""
    spec = ModelSpec(
        n_in=draw(st.integers(1, 4)), n_hidden=draw(st.integers(2, 8)),
        weight_scale=draw(st.sampled_from([1.0, 10.0])), structure="rotation",
        seed=draw(st.integers(0, 2**16)), symmetric=False, spectral_norm=True,
        gamma=draw(st.sampled_from([0.5, 0.95, 0.99])),
        drive_scale=draw(st.sampled_from([0.0, 0.1, 1.0, 3.0])),
    )
    return spec, draw(initial_states(spec.n_hidden, batch=BATCH))


def trajectory(model, x: torch.Tensor, z: np.ndarray) -> np.ndarray:
    """[h_0, …, h_STEPS] of synchronous updates by `model.step`: (STEPS + 1, B, n)."""
    h0 = torch.tanh(torch.as_tensor(np.clip(z, -STATE_CLIP, STATE_CLIP), dtype=model.dtype))
    return model.trajectory(x, h0, STEPS).numpy()


def theory_energies(states: np.ndarray, weight: np.ndarray, drive: np.ndarray) -> np.ndarray:
    """E(h_k) per step and row by `theory.energy`: (STEPS + 1, B)."""
    return np.array([[theory.energy(h[b], weight, drive[b], "tanh") for b in range(len(h))]
                     for h in states])


def max_rise(energies: np.ndarray) -> float:
    """max_k [E(h_{k+1}) − E(h_k)] / (1 + |E(h_k)|) over steps and rows."""
    return float(np.max((energies[1:] - energies[:-1]) / (1 + np.abs(energies[:-1]))))


def descent_metrics(case: tuple[ModelSpec, np.ndarray]) -> dict[str, float]:
    spec, z = case
    model = spec.build()
    problem = as_numpy(model)
    x = spec.inputs(BATCH)
    drive = problem.drive(x)
    states = trajectory(model, x, z)
    with torch.no_grad():
        model_E = np.stack([model.energy(torch.as_tensor(h), x).numpy() for h in states])
    theory_E = theory_energies(states, problem.weight, drive)
    scale = 1 + np.abs(model_E[:-1])
    promised = np.array([[theory.guaranteed_decrease(states[k + 1, b] - states[k, b],
                                                     problem.weight, "tanh")
                          for b in range(BATCH)] for k in range(STEPS)])
    shortfall = (promised - (model_E[:-1] - model_E[1:])) / scale

    h_star: torch.Tensor | np.ndarray  # the solve's tensor, then its NumPy copy
    h_star, _ = model.equilibrium(x)
    h_star = h_star.numpy()
    conditioned = 1 - h_star**2 >= CONDITIONED
    gradient, saturated_residual = 0.0, 0.0
    for b in range(BATCH):
        with np.errstate(divide="ignore"):  # arctanh(±1) = ±inf on saturated components only
            g = theory.energy_gradient(h_star[b], problem.weight, drive[b], "tanh")
        gradient = max(gradient, float(np.linalg.norm(g[conditioned[b]])))
        image = theory.fixed_point_map(h_star[b], problem.weight, drive[b], "tanh")
        saturated = np.abs(image - h_star[b])[~conditioned[b]]
        saturated_residual = max(saturated_residual, float(saturated.max(initial=0.0)))
    return {
        "rise": max_rise(model_E),
        "shortfall": float(shortfall.max()),
        "gradient": gradient,
        "saturated_residual": saturated_residual,
        "saturated_share": float(1 - conditioned.mean()),
        "agreement": float(np.max(np.abs(model_E - theory_E) / (1 + np.abs(theory_E)))),
        "total_decrease": float(np.max(model_E[0] - model_E[-1])),
        "lambda_min_margin": float(np.linalg.eigvalsh(problem.weight).min() + 1.0),
    }


def asymmetric_rise(case: tuple[ModelSpec, np.ndarray]) -> tuple[float, dict]:
    """Largest relative rise of the energy built from the asymmetric W along model.step."""
    spec, z = case
    model = spec.build()
    problem = as_numpy(model)
    x = spec.inputs(BATCH)
    states = trajectory(model, x, z)
    energies = theory_energies(states, problem.weight, problem.drive(x))
    rises = energies[1:] - energies[:-1]
    k, b = np.unravel_index(np.argmax(rises / (1 + np.abs(energies[:-1]))), rises.shape)
    return max_rise(energies), {
        "step": int(k), "row": int(b), "E_k": float(energies[k, b]),
        "E_k_plus_1": float(energies[k + 1, b]), "absolute_rise": float(rises[k, b]),
        "asymmetry": float(np.linalg.norm(problem.weight - problem.weight.T)
                           / np.linalg.norm(problem.weight + problem.weight.T)),
        "L": theory.lipschitz_certificate(problem.weight, "tanh"),
        "lambda_min_sym_plus_1_over_s": float(
            np.linalg.eigvalsh(0.5 * (problem.weight + problem.weight.T)).min() + 1.0),
        "energy_trace": energies[:, b].round(8).tolist(),
    }


def negative_definite_cycle(seed: int) -> dict:
    """Symmetric W = −1.5·I, zero drive: λ_min(W) = −1.5 < −1/s, so the theorem says nothing;
    synchronous updates grow into the 2-cycle ±h_c (tanh(1.5h_c) = h_c) and E rises."""
    spec = ModelSpec(n_in=1, n_hidden=2, weight_scale=1.0, structure="diagonal", seed=seed,
                     spectral_norm=False, drive_scale=0.0)
    model = spec.build()
    with torch.no_grad():
        model.W.copy_(-1.5 * torch.eye(2, dtype=model.dtype))
    x = spec.inputs(1)
    z = 0.05 * np.random.default_rng(seed).standard_normal((1, 2))
    states = trajectory(model, x, z)
    with torch.no_grad():
        energies = np.array([float(model.energy(torch.as_tensor(h), x)[0]) for h in states])
    problem = as_numpy(model)
    promised = [theory.guaranteed_decrease(states[k + 1, 0] - states[k, 0], problem.weight,
                                           "tanh") for k in range(STEPS)]
    return {
        "lambda_min_W": float(np.linalg.eigvalsh(problem.weight).min()),
        "max_relative_rise": max_rise(energies[:, None]),
        "total_rise": float(energies[-1] - energies[0]),
        "period_2_return": float(np.linalg.norm(states[-1, 0] - states[-3, 0])),
        "step_on_cycle": float(np.linalg.norm(states[-1, 0] - states[-2, 0])),
        "cycle": states[-2:, 0].round(6).tolist(),
        "guaranteed_decrease_min": float(min(promised)),
        "energies": energies,
    }


def search_details(metric: str, seen: list[dict[str, float]]) -> dict:
    """What the rise and gradient checks record beside the search, from every case measured."""
    if metric == "gradient":
        return {"conditioned_if": f"1 - h*_i^2 >= {CONDITIONED:g}",
                "max_saturated_share": max(m["saturated_share"] for m in seen),
                "max_saturated_residual": max(m["saturated_residual"] for m in seen)}
    if metric == "rise":
        return {"steps": STEPS, "trajectories_per_model": BATCH,
                "min_total_decrease": min(m["total_decrease"] for m in seen),
                "max_total_decrease": max(m["total_decrease"] for m in seen),
                "min_lambda_min_plus_1_over_s": min(m["lambda_min_margin"] for m in seen)}
    return {}
