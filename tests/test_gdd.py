"""GDD (eqprop_core.gdd): EP's per-step nudged-phase updates against BPTT's per-step gradients.

The comparisons are held against closed forms (the linearization around h_*), against the
project's own EP and BPTT gradients (the per-step pieces must sum to them), and against a wrong
propagation (asymmetric W) that must fail.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eqprop_core import PhaseNotConverged, bptt_gradients, ep_gradients
from eqprop_core.gdd import (
    PrimitiveModel,
    StepUpdates,
    bptt_step_gradients,
    energy_model_problem,
    ep_step_updates,
    gdd_agreement,
    step_agreement,
)
from properties import ModelSpec

from .builders import build_model, inputs, random_symmetric

K = 25
LIMIT = 1e-20  # complex-step nudge: the β → 0 limit to round-off


def labels(batch: int, n_out: int = 3) -> torch.Tensor:
    return torch.as_tensor(np.random.default_rng(5).integers(0, n_out, batch))


def energy_problem(symmetric: bool = True, spectral_norm: bool = True, batch: int = 3):
    spec = ModelSpec(n_in=4, n_hidden=6, weight_scale=1.0, structure="gaussian", seed=3,
                     symmetric=symmetric, spectral_norm=spectral_norm, drive_scale=1.0)
    model = spec.build()
    x, y = spec.inputs(batch), spec.labels(batch)
    return model, x, y, energy_model_problem(model, x, y)


def primitive_problem(nonlinearity: str, batch: int = 3):
    model = PrimitiveModel.random(4, 6, 3, lipschitz=0.9, nonlinearity=nonlinearity, seed=2)
    x = inputs(batch)
    return model, x, model.problem(x, labels(batch))


def worst(agreements: dict) -> float:
    return max(a.relative_rmse for a in agreements.values())


def corrected(reference: StepUpdates, problem) -> StepUpdates:
    return reference.scaled_neurons(problem.neuron_scale)


@pytest.mark.parametrize("nonlinearity", ["identity", "tanh"])
def test_primitive_model_gdd_is_exact_in_the_limit(nonlinearity: str) -> None:
    _, _, problem = primitive_problem(nonlinearity)
    reference = bptt_step_gradients(problem, steps=K)
    limit = ep_step_updates(problem, beta=LIMIT, steps=K, estimator="complex_step")
    agreements = gdd_agreement(limit, reference)
    assert worst(agreements) <= 1e-12
    assert min(a.sign_agreement for a in agreements.values()) == 1.0
    assert float(reference.neurons.abs().max()) >= 1e-2  # a real signal, not 0 = 0


@pytest.mark.parametrize("nonlinearity", ["identity", "tanh"])
def test_primitive_model_symmetric_residual_falls_as_beta_squared(nonlinearity: str) -> None:
    _, _, problem = primitive_problem(nonlinearity)
    reference = bptt_step_gradients(problem, steps=K)
    r = [worst(gdd_agreement(ep_step_updates(problem, beta=b, steps=K), reference))
         for b in (1e-2, 1e-3)]
    assert abs(math.log10(r[0] / r[1]) - 2) <= 0.05
    one_sided = [worst(gdd_agreement(ep_step_updates(problem, beta=b, steps=K,
                                                     estimator="one_sided"), reference))
                 for b in (1e-2, 1e-3)]
    assert abs(math.log10(one_sided[0] / one_sided[1]) - 1) <= 0.05


def test_primitive_model_dynamics_are_the_gradient_of_its_primitive() -> None:
    model, x, _ = primitive_problem("tanh")
    h = torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    grad = torch.func.grad(lambda v: model.primitive(v, x).sum())(h)
    assert float((grad - model.step(h, x)).abs().max()) <= 1e-14


@pytest.mark.parametrize("nonlinearity", ["identity", "tanh"])
def test_primitive_model_contraction_bound_holds(nonlinearity: str) -> None:
    model, x, _ = primitive_problem(nonlinearity)
    L = model.contraction_bound()
    assert L == pytest.approx(0.9, rel=1e-12)
    g = torch.Generator().manual_seed(1)
    a = 3 * torch.randn(200, 6, dtype=torch.float64, generator=g)
    scales = torch.logspace(-6, 1, 200, dtype=torch.float64)[:, None]
    b = a + scales * torch.randn(200, 6, dtype=torch.float64, generator=g)
    xs = x[:1].expand(200, -1)
    ratio = (model.step(a, xs) - model.step(b, xs)).norm(dim=1) / (a - b).norm(dim=1)
    assert float(ratio.max()) <= L


def test_energy_model_weights_match_and_neurons_carry_D() -> None:
    _, _, _, problem = energy_problem()
    reference = bptt_step_gradients(problem, steps=K)
    limit = ep_step_updates(problem, beta=LIMIT, steps=K, estimator="complex_step")
    raw = gdd_agreement(limit, reference)
    for name in ("W", "U", "b"):
        assert raw[name].relative_rmse <= 1e-12
    assert gdd_agreement(limit, corrected(reference, problem))["neurons"].relative_rmse <= 1e-12
    g, D = reference.neurons, problem.neuron_scale
    predicted = float((g * (1 - D)).norm() / g.norm())
    assert predicted >= 0.05  # the driven model saturates: a deviation worth measuring
    assert abs(raw["neurons"].relative_rmse - predicted) <= 1e-12
    assert raw["neurons"].sign_agreement == 1.0


def test_energy_model_closed_form_of_both_sides() -> None:
    """ΔEP_s(t) → −(DW)^t D g and ∇BPTT_s(t) = (WD)^t g, ∇BPTT_b(t) = D(WD)^t g (NumPy)."""
    model, x, y, problem = energy_problem(batch=1)
    reference = bptt_step_gradients(problem, steps=K)
    limit = ep_step_updates(problem, beta=LIMIT, steps=K, estimator="complex_step")
    W = model.recurrent_weight().detach().numpy()
    D = np.diag(problem.neuron_scale[0].numpy())
    h = problem.free_state[0].numpy()
    p = np.exp(model.V.detach().numpy() @ h + model.c.detach().numpy())
    p /= p.sum()
    g = model.V.detach().numpy().T @ (p - np.eye(model.n_out)[int(y[0])])
    for t in range(K):
        bptt = np.linalg.matrix_power(W @ D, t) @ g
        ep = -np.linalg.matrix_power(D @ W, t) @ D @ g
        assert np.abs(reference.neurons[t, 0].numpy() - bptt).max() <= 1e-13
        assert np.abs(reference.parameters["b"][t, 0].numpy() - D @ bptt).max() <= 1e-13
        assert np.abs(limit.neurons[t, 0].numpy() - ep).max() <= 1e-13


def test_asymmetric_weights_break_gdd() -> None:
    _, _, _, problem = energy_problem(symmetric=False)
    reference = corrected(bptt_step_gradients(problem, steps=K), problem)
    for beta, estimator in ((LIMIT, "complex_step"), (1e-3, "symmetric")):
        agreements = gdd_agreement(ep_step_updates(problem, beta=beta, steps=K,
                                                   estimator=estimator), reference)
        assert min(agreements[k].relative_rmse for k in ("W", "U", "b")) >= 1e-2


def test_per_step_pieces_sum_to_the_project_gradients() -> None:
    """Σ_t −ΔEP_θ(t) over a long nudged phase = `ep_gradients`; Σ_t ∇BPTT_θ(t) over K steps from
    h_* = `bptt_gradients` (batch means; no SN, so the raw W gradient is W_eff's). EP's phases
    stop at residual 1e-12, so the two EP sides differ by ≲ 10·1e-12/β."""
    model = build_model(0.4 * random_symmetric(5) / np.linalg.norm(random_symmetric(5), 2))
    x, y = inputs(3), labels(3)
    problem = energy_model_problem(model, x, y)
    beta = 1e-2
    long = ep_step_updates(problem, beta=beta, steps=400)  # L ≤ 0.4: 0.4^400 of transient left
    ep = ep_gradients(model, x, y, beta=beta)
    bptt = bptt_step_gradients(problem, steps=K)
    reference = bptt_gradients(model, x, y, steps=K, h0=problem.free_state)
    for name in ("W", "U", "b"):
        summed = -long.parameters[name].sum(dim=0).mean(dim=0)
        assert float((summed - ep[name]).abs().max()) <= 10 * 1e-12 / beta
        summed = bptt.parameters[name].sum(dim=0).mean(dim=0)
        assert float((summed - reference[name]).abs().max()) <= 1e-13


def test_step_agreement_scores_sign_and_size() -> None:
    g = torch.tensor([[1.0, -2.0, 1e-9, 0.0]], dtype=torch.float64)
    exact = step_agreement(-g, g)
    assert exact.relative_rmse == 0.0 and exact.sign_agreement == 1.0 and exact.entries == 2
    flipped = step_agreement(g, g)
    assert flipped.relative_rmse == pytest.approx(2.0) and flipped.sign_agreement == 0.0
    half = step_agreement(-0.5 * g, g)
    assert half.relative_rmse == pytest.approx(0.5) and half.sign_agreement == 1.0


def test_bad_input_is_refused() -> None:
    model, x, y, problem = energy_problem()
    with pytest.raises(ValueError, match="steps"):
        ep_step_updates(problem, beta=1e-3, steps=0)
    with pytest.raises(ValueError, match="steps"):
        bptt_step_gradients(problem, steps=2.5)
    with pytest.raises(ValueError, match="beta"):
        ep_step_updates(problem, beta=0.0, steps=3)
    with pytest.raises(ValueError, match="beta"):
        ep_step_updates(problem, beta=float("nan"), steps=3)
    with pytest.raises(ValueError, match="estimator"):
        ep_step_updates(problem, beta=1e-3, steps=3, estimator="holomorphic")
    with pytest.raises(ValueError, match="labels"):
        energy_model_problem(model, x, torch.tensor([0, 1, 7]))
    with pytest.raises(PhaseNotConverged, match="residual"):
        energy_model_problem(model, x, y, max_steps=1)
    with pytest.raises(ValueError, match="lipschitz"):
        PrimitiveModel.random(2, 3, 2, lipschitz=1.0)
    with pytest.raises(ValueError, match="nonlinearity"):
        PrimitiveModel.random(2, 3, 2, lipschitz=0.5, nonlinearity="relu")
    with pytest.raises(ValueError, match="shapes differ"):
        step_agreement(torch.zeros(2, 3), torch.zeros(3, 2))
