"""The golden reference's comparison (track 23): max |torch − golden| per quantity on a drawn
float64 model, β capped for a certified nudged contraction.

`compare(case)` measures, for one (model, β, N) case of `golden_cases`, the largest entrywise
difference between the torch code under test and `theory.golden` (written from the definitions)
for the free and nudged phases, the one-sided, symmetric and holomorphic EP gradients and the
implicit gradient (autograd through K steps from h_0 vs `theory.implicit_gradients`); every phase
is solved to ‖T_β(h) − h‖₂ ≤ TOL on both sides. `perturbed_gap` is the negative control's
measure (torch with U[0, 0] + PERTURBATION) and `sign_slip_gap` a negated estimate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from eqprop_core import bptt_gradients, ep_gradients, nudged_map
from eqprop_core.gradients import phases
from eqprop_core.solvers import get_solver
from theory import golden, implicit_gradients

from .evidence import MeasurementFailed, require_converged
from .extract import as_numpy
from .gradients import gradient_models
from .strategies import ModelSpec

TOL = 1e-14  # residual ‖T_β(h) − h‖₂ both sides solve every phase to
TRUNCATION = 1e-14  # relative truncation error of the Neumann series behind the torch implicit
MAX_UNROLL = 2000
BATCH = 4
BETAS = (0.05, 0.1, 0.5)
POINTS = (1, 2, 3, 4, 8)
PERTURBATION = 1e-8  # the negative control's shift of U[0, 0]


@st.composite
def golden_cases(draw: st.DrawFn) -> tuple[ModelSpec, float, int]:
    """(model, β, holomorphic N): symmetric and asymmetric, SN on and off."""
    spec = draw(gradient_models(symmetric=draw(st.booleans())))
    return spec, draw(st.sampled_from(BETAS)), draw(st.sampled_from(POINTS))


def max_abs(a: object, b: object) -> float:
    """max |a − b| over entries (complex states compared as complex numbers)."""
    a = a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)
    return float(np.max(np.abs(a - np.asarray(b)), initial=0.0))


def gradient_gap(estimate: dict, reference: dict) -> float:
    return max(max_abs(estimate[k], reference[k]) for k in reference)


def contractive_beta(model, beta: float) -> float:
    """β capped so that every nudged map is a certified contraction with half the free margin:
    Lip(T_β) ≤ L + s|β|‖V‖₂²/2 ≤ (1 + L)/2 (‖diag p − ppᵀ‖₂ ≤ ½, s = sup φ′). Beyond it h_β
    need not be unique (e.g. β = −0.5 makes F_β non-convex), and two correct solvers may then
    land on different roots — a disagreement about the question, not the code."""
    L = model.lipschitz_certificate()
    V = model.V.detach().double().cpu().numpy()
    spread = model.activation.max_slope * np.linalg.norm(V, 2) ** 2
    return min(beta, (1 - L) / spread) if spread > 0 else beta


def unroll_steps(model) -> int:
    """K with L^K/(1 − L) ≤ TRUNCATION: the Neumann series of the implicit gradient, cut at K."""
    L = model.lipschitz_certificate()
    if not L < 1:
        raise MeasurementFailed("unrolled implicit gradient: certified contraction L", L, "< 1")
    if L == 0:
        return 1
    return min(MAX_UNROLL, max(1, math.ceil(math.log(TRUNCATION * (1 - L)) / math.log(L))))


def torch_nudged_states(model, x, y, h_free, betas) -> dict:
    """h_β by the torch code: T_β from `nudged_map` (complex β: the complex128 phases), solved
    by Anderson from the torch free state, as `ep_gradients` does."""
    out = {}
    for beta in betas:
        if isinstance(beta, complex):
            T = phases(model, x, y, torch.complex128).nudged_map(beta)
            start = h_free.to(torch.complex128)
        else:
            T, start = nudged_map(model, x, y, beta), h_free
        h, stats = get_solver("anderson")(T, start, tol=TOL, max_steps=5000)
        require_converged(stats, f"torch nudged phase beta={beta}")
        out[beta] = h
    return out


def compare(case: tuple[ModelSpec, float, int]) -> dict[str, float]:
    """max |torch − golden| for each quantity of the module doc, on one drawn case."""
    spec, beta, n_points = case
    model = spec.build()
    net = as_numpy(model)
    x, y = spec.inputs(BATCH), spec.labels(BATCH)
    beta = contractive_beta(model, beta)
    h_free, stats = model.equilibrium(x, tol=TOL, max_steps=5000)
    require_converged(stats, "torch free phase")
    out = {"free": max_abs(h_free, golden.free_phase(net, x)), "nudged": 0.0}
    residuals = [stats.max_residual]
    for estimator in ("one_sided", "symmetric", "holomorphic"):
        points = n_points if estimator == "holomorphic" else None
        reference = golden.ep_gradients(net, x, y, beta=beta, estimator=estimator,
                                        n_points=points, tol=TOL)
        estimate = ep_gradients(model, x, y, beta=beta, estimator=estimator, n_points=points,
                                tol=TOL)
        residuals.append(estimate.max_residual)
        out[estimator] = gradient_gap(estimate, reference)
        states = torch_nudged_states(model, x, y, h_free, reference.betas)
        out["nudged"] = max(out["nudged"], *(max_abs(states[b], reference.nudged_states[b])
                                              for b in reference.betas))
    steps = unroll_steps(model)
    implicit = implicit_gradients(net, x, y)
    out["implicit"] = gradient_gap(bptt_gradients(model, x, y, steps=steps, h0=h_free),
                                   implicit)
    out["unroll_steps"] = steps
    out["beta"] = beta
    out["max_torch_residual"] = max(residuals)
    out["gradient_scale"] = max(float(np.max(np.abs(v))) for v in implicit.values())
    return out


def perturbed_gap(case: tuple[ModelSpec, float, int]) -> float:
    """Negative control: torch runs a model with U[0, 0] + 1e-8, golden the original one."""
    spec, beta, _ = case
    net = as_numpy(spec.build())  # a separate model: as_numpy's arrays share torch's memory
    model = spec.build()
    x, y = spec.inputs(BATCH), spec.labels(BATCH)
    beta = contractive_beta(model, beta)
    with torch.no_grad():
        model.U[0, 0] += PERTURBATION
    h_free, _ = model.equilibrium(x, tol=TOL, max_steps=5000)
    estimate = ep_gradients(model, x, y, beta=beta, estimator="symmetric", tol=TOL)
    reference = golden.ep_gradients(net, x, y, beta=beta, estimator="symmetric", tol=TOL)
    return max(max_abs(h_free, reference.free_state), gradient_gap(estimate, reference))


def sign_slip_gap(seed: int) -> float:
    """A convention slip on a typical model: torch's estimate negated (−∇ instead of ∇)."""
    spec = ModelSpec(n_in=3, n_hidden=6, weight_scale=1.0, structure="gaussian", seed=seed)
    model = spec.build()
    x, y = spec.inputs(BATCH), spec.labels(BATCH)
    estimate = ep_gradients(model, x, y, beta=0.1, tol=TOL)
    reference = golden.ep_gradients(as_numpy(model), x, y, beta=0.1, tol=TOL)
    return gradient_gap({k: -v for k, v in estimate.items()}, reference)


def quantity_details(key: str, seen: Callable[[], list[dict[str, Any]]]) -> dict[str, Any]:
    """What a quantity's check records beside its search, from the cases `seen()` measured."""
    if key == "implicit":
        return {"unroll_steps_range": [min(m["unroll_steps"] for m in seen()),
                                       max(m["unroll_steps"] for m in seen())],
                "truncation_bound": TRUNCATION}
    if key == "free":
        return {"tol": TOL, "smallest_beta": min(m["beta"] for m in seen()),
                "max_torch_residual": max(m["max_torch_residual"] for m in seen()),
                "max_gradient_entry": max(m["gradient_scale"] for m in seen())}
    return {}
