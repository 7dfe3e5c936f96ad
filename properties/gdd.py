"""GDD measured (track 12): EP's per-step nudged-phase updates against BPTT's per-step
gradients at the mirrored steps, per drawn model.

A case is a `PrimitiveSpec` (primitive-function dynamics h_{t+1} = ∂Φ/∂h) or a `ModelSpec` (the
tanh energy model); `gdd_metrics` measures everything track 12's checks need of one: the β → 0
limit of the relative RMSE ‖ΔEP + ∇BPTT‖/‖∇BPTT‖ (a complex-step nudge i·1e-20; D-corrected
neurons and the parameters), the raw neuron deviation against its prediction ‖(I − D)∇‖/‖∇‖, and
the local β² slope of the finite-β residual above its round-off scale. `sweep` and `describe`
give the residual per β and the per-step curves of one representative model. The derivations:
`eqprop_core.gdd` and track 12's module docstring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from eqprop_core.gdd import (
    PrimitiveModel,
    RecurrentProblem,
    StepUpdates,
    bptt_step_gradients,
    energy_model_problem,
    ep_step_updates,
    gdd_agreement,
)

from .gradients import fitted_slope
from .strategies import ModelSpec

STEPS = 30  # K: nudged steps / unrolled BPTT steps from h_*
BATCH = 2  # samples per drawn model (compared per sample)
LIMIT_NUDGE = 1e-20  # complex-step nudge i·1e-20: bias O(1e-40), no cancellation
SLOPE_LADDER = (1e-1, 1e-2, 1e-3)  # the local β² slope: a decade pair of these (see `local_slope`)
ABOVE_ROUNDOFF = 100.0  # a residual counts as truncation when ≥ 100× its round-off scale
PLOT_BETA = 1e-3  # finite β of the per-step curves
SWEEP_BETAS = tuple(10.0 ** (k / 2) for k in range(-12, 0))  # 1e-6 … 10^-0.5, half decades
FIT_RANGE = (1e-3, 0.1)  # fitted slopes of the sweep: above the round-off floor
PARAMETERS = ("W", "U", "b")


@dataclass(frozen=True)
class PrimitiveSpec:
    """A `PrimitiveModel` described by numbers (so a counterexample reads and rebuilds)."""

    n_in: int
    n_hidden: int
    lipschitz: float
    drive_scale: float
    nonlinearity: str
    seed: int
    n_out: int = 3

    def build(self) -> PrimitiveModel:
        return PrimitiveModel.random(self.n_in, self.n_hidden, self.n_out,
                                     lipschitz=self.lipschitz, drive_scale=self.drive_scale,
                                     nonlinearity=self.nonlinearity, seed=self.seed)

    def inputs(self, batch: int) -> torch.Tensor:
        rng = np.random.default_rng(self.seed + 1)
        return torch.as_tensor(rng.standard_normal((batch, self.n_in)))

    def labels(self, batch: int) -> torch.Tensor:
        return torch.as_tensor(np.random.default_rng(self.seed + 2).integers(0, self.n_out, batch))


@st.composite
def primitive_models(draw: st.DrawFn) -> PrimitiveSpec:
    """Quadratic (identity ρ) and tanh-ρ primitives, certified L ∈ {0.5, 0.9}, drives up to 3
    (the linear model's h_* = (I − W)⁻¹d then reaches |h| ~ 100: saturated readouts whose β²
    term sinks below round-off, which `local_slope` has to handle)."""
    return PrimitiveSpec(
        n_in=draw(st.integers(1, 5)), n_hidden=draw(st.integers(2, 8)),
        lipschitz=draw(st.sampled_from([0.5, 0.9])),
        drive_scale=draw(st.sampled_from([0.1, 0.5, 1.0, 3.0])),
        nonlinearity=draw(st.sampled_from(["identity", "tanh"])),
        seed=draw(st.integers(0, 2**16)),
    )


def problem_of(spec: ModelSpec | PrimitiveSpec) -> RecurrentProblem:
    x, y = spec.inputs(BATCH), spec.labels(BATCH)
    if isinstance(spec, PrimitiveSpec):
        return spec.build().problem(x, y)
    return energy_model_problem(spec.build(), x, y)


def corrected(reference: StepUpdates, problem: RecurrentProblem) -> StepUpdates:
    """BPTT's neuron gradients seen through D (identity for the primitive model)."""
    return reference.scaled_neurons(problem.neuron_scale)


def limit_residual(problem: RecurrentProblem) -> float:
    """Check (3)'s statistic alone: max relative RMSE of the β → 0 updates (parameters and
    D-corrected neurons) against −∇BPTT."""
    reference = corrected(bptt_step_gradients(problem, steps=STEPS), problem)
    limit = ep_step_updates(problem, beta=LIMIT_NUDGE, steps=STEPS, estimator="complex_step")
    return max(a.relative_rmse for a in gdd_agreement(limit, reference).values())


def roundoff_scale(problem: RecurrentProblem, target: StepUpdates) -> float:
    """ρ with round-off part of the relative residual ≈ ρ/β: one ulp of each of the 2(K + 1)
    nudged states, ε‖h_*‖√(2(K + 1)), divided by β and by ‖∇BPTT_s‖ (measured at β = 1e-6,
    where round-off dominates, the residual is 0.05–1.5 ρ/β over 600 drawn models)."""
    eps = float(torch.finfo(torch.float64).eps)
    return (eps * math.sqrt(2 * (STEPS + 1)) * float(torch.linalg.vector_norm(problem.free_state))
            / float(torch.linalg.vector_norm(target.neurons)))


def local_slope(residual: list[float], roundoff: float) -> tuple[float, tuple | None]:
    """log10 r(10β)/r(β) for the smallest decade pair of SLOPE_LADDER whose smaller β still has
    r(β) ≥ ABOVE_ROUNDOFF·ρ/β (a truncation term, not round-off); (nan, None) when even r(0.01)
    is at the round-off level (exact at every β tried)."""
    for k in range(len(SLOPE_LADDER) - 1, 0, -1):
        small, large = SLOPE_LADDER[k], SLOPE_LADDER[k - 1]
        if residual[k] >= ABOVE_ROUNDOFF * roundoff / small:
            slope = math.log(residual[k - 1] / residual[k]) / math.log(large / small)
            return slope, (large, small)
    return math.nan, None


def predicted_deviation(reference: StepUpdates, problem: RecurrentProblem) -> float:
    """Theory's raw neuron deviation ‖(I − D)∇BPTT_s‖/‖∇BPTT_s‖ (0 for the primitive model)."""
    g = reference.neurons
    return float(torch.linalg.vector_norm((1 - problem.neuron_scale) * g)
                 / torch.linalg.vector_norm(g))


def gdd_metrics(problem: RecurrentProblem) -> dict[str, Any]:
    """Everything the checks need of one model: the β → 0 limit against BPTT (D-corrected
    neurons and parameters), the raw neuron deviation vs its prediction, and the β² slope."""
    reference = bptt_step_gradients(problem, steps=STEPS)
    target = corrected(reference, problem)
    limit = ep_step_updates(problem, beta=LIMIT_NUDGE, steps=STEPS, estimator="complex_step")
    exact = gdd_agreement(limit, target)
    raw = gdd_agreement(limit, reference)["neurons"]
    predicted = predicted_deviation(reference, problem)
    residual = [max(a.relative_rmse for a in gdd_agreement(
        ep_step_updates(problem, beta=beta, steps=STEPS), target).values())
        for beta in SLOPE_LADDER]
    slope, pair = local_slope(residual, roundoff_scale(problem, target))
    return {
        "limit": max(a.relative_rmse for a in exact.values()),
        "limit_parameters": max(exact[k].relative_rmse for k in PARAMETERS),
        "limit_sign": min(a.sign_agreement for a in exact.values()),
        "slope": slope, "slope_error": 0.0 if pair is None else abs(slope - 2),
        "slope_betas": pair, "at_roundoff": pair is None,
        "raw": raw.relative_rmse, "raw_sign": raw.sign_agreement,
        "raw_gap": abs(raw.relative_rmse - predicted), "predicted": predicted,
        "raw_sign_disagreement": 1 - raw.sign_agreement,
        "free_residual": problem.residual,
    }


def slope_pairs(seen: list[dict]) -> dict[str, int]:
    """How many drawn models had their β² slope taken on which decade pair."""
    return {"slope_on_0.01_0.001": sum(m["slope_betas"] == SLOPE_LADDER[1:] for m in seen),
            "slope_on_0.1_0.01": sum(m["slope_betas"] == SLOPE_LADDER[:2] for m in seen),
            "at_roundoff_for_all_beta": sum(m["at_roundoff"] for m in seen)}


def sweep(problem: RecurrentProblem, estimator: str = "symmetric") -> dict[str, list[float]]:
    """Relative RMSE vs −∇BPTT (raw and D-corrected neurons, each parameter) per β."""
    reference = bptt_step_gradients(problem, steps=STEPS)
    target = corrected(reference, problem)
    out: dict[str, list[float]] = {"raw neurons": [], "neurons": [], **{k: [] for k in PARAMETERS}}
    for beta in SWEEP_BETAS:
        ep = ep_step_updates(problem, beta=beta, steps=STEPS, estimator=estimator)
        out["raw neurons"].append(gdd_agreement(ep, reference)["neurons"].relative_rmse)
        for k, a in gdd_agreement(ep, target).items():
            out[k].append(a.relative_rmse)
    return out


def slope_in_fit_range(errors: list[float]) -> float:
    keep = [i for i, b in enumerate(SWEEP_BETAS)
            if FIT_RANGE[0] * (1 - 1e-9) <= b <= FIT_RANGE[1] * (1 + 1e-9)]
    return fitted_slope([SWEEP_BETAS[i] for i in keep], [errors[i] for i in keep])


def describe(problem: RecurrentProblem) -> dict:
    """Per-quantity limit agreement and the per-step curves at PLOT_BETA for one model."""
    reference = bptt_step_gradients(problem, steps=STEPS)
    limit = ep_step_updates(problem, beta=LIMIT_NUDGE, steps=STEPS, estimator="complex_step")
    return {
        "reference": reference,
        "finite": ep_step_updates(problem, beta=PLOT_BETA, steps=STEPS),
        "exact": gdd_agreement(limit, corrected(reference, problem)),
        "raw": gdd_agreement(limit, reference)["neurons"],
        "predicted": predicted_deviation(reference, problem),
        "D": problem.neuron_scale,
    }
