"""The energy E(h) = Σ G(h_i) − ½hᵀW_eff h − hᵀ(Ux + b), G′ = φ⁻¹, of a symmetric LoopedMLP.

Checked against theory.energy (NumPy/scipy), at and off the equilibrium, and along the dynamics.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import theory
from eqprop_core import LoopedMLP, get_activation
from properties import as_numpy

from .builders import build_model, inputs, random_symmetric


def model_and_states(activation: str = "tanh") -> tuple[LoopedMLP, torch.Tensor, torch.Tensor]:
    model = build_model(random_symmetric(10, seed=2), spectral_norm=True, drive_scale=1.0)
    if activation != "tanh":
        model = LoopedMLP(4, 10, 3, activation=activation, dtype=torch.float64)
    x = inputs(5)
    rng = np.random.default_rng(7)
    low = 0.02 if activation == "sigmoid" else -0.98
    h = torch.as_tensor(rng.uniform(low, 0.98, (5, 10)))
    return model, x, h


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_energy_matches_theory(activation: str) -> None:
    model, x, h = model_and_states(activation)
    numpy_model = as_numpy(model)
    drive = numpy_model.drive(x)
    expected = [theory.energy(row, numpy_model.weight, d, activation)
                for row, d in zip(h.numpy(), drive, strict=True)]
    measured = model.energy(h, x).detach().numpy()
    assert np.abs(measured - expected).max() <= 1e-12 * max(1.0, np.abs(expected).max())


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_energy_gradient_matches_theory_off_equilibrium(activation: str) -> None:
    model, x, h = model_and_states(activation)
    numpy_model = as_numpy(model)
    drive = numpy_model.drive(x)
    expected = np.stack([theory.energy_gradient(row, numpy_model.weight, d, activation)
                         for row, d in zip(h.numpy(), drive, strict=True)])
    measured = model.energy_gradient(h, x).detach().numpy()
    assert np.abs(measured - expected).max() <= 1e-12
    assert np.abs(expected).max() >= 1e-2  # off equilibrium the gradient is not zero


def test_energy_gradient_vanishes_at_the_fixed_point() -> None:
    model, x, _ = model_and_states()
    h_star, stats = model.equilibrium(x)
    assert stats.max_residual <= 1e-12
    assert float(model.energy_gradient(h_star, x).detach().abs().max()) <= 1e-10


def test_energy_gradient_is_the_autograd_gradient_of_the_energy() -> None:
    model, x, h = model_and_states()
    h = h.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.energy(h, x).sum(), h)
    assert float((grad - model.energy_gradient(h, x)).detach().abs().max()) <= 1e-12


def test_synchronous_dynamics_descend_the_energy_by_the_guaranteed_amount() -> None:
    """E(h⁺) ≤ E(h) − ½Δᵀ(W + I/s)Δ for symmetric W with L < 1 (theory/energy.py)."""
    model, x, _ = model_and_states()
    numpy_model = as_numpy(model)
    h = torch.zeros(5, 10, dtype=torch.float64)
    decreases = 0
    for _ in range(30):
        h_next = model.step(h, x).detach()
        before, after = model.energy(h, x).detach(), model.energy(h_next, x).detach()
        delta = (h_next - h).numpy()
        for i in range(5):
            guaranteed = theory.guaranteed_decrease(delta[i], numpy_model.weight, "tanh")
            assert guaranteed >= 0
            assert float(after[i]) <= float(before[i]) - guaranteed + 1e-12
            decreases += guaranteed > 1e-8
        h = h_next
    assert decreases >= 5  # the guarantee was non-trivial on some steps


def test_energy_of_an_asymmetric_model_is_refused() -> None:
    model = LoopedMLP(3, 4, 2, symmetric=False)
    h, x = torch.zeros(1, 4), torch.zeros(1, 3)
    with pytest.raises(ValueError, match="symmetric=True"):
        model.energy(h, x)
    with pytest.raises(ValueError, match="symmetric=True"):
        model.energy_gradient(h, x)


def test_energy_refuses_a_state_of_the_wrong_shape() -> None:
    model = LoopedMLP(3, 4, 2)
    with pytest.raises(ValueError, match=r"\(1, 4\), got \(1, 3\)"):
        model.energy(torch.zeros(1, 3), torch.zeros(1, 3))


def test_tanh_primitive_is_finite_at_the_boundary() -> None:
    G = get_activation("tanh").primitive_of_inverse
    values = G(torch.tensor([-1.0, 1.0, 0.0], dtype=torch.float64))
    assert bool(torch.isfinite(values).all())
    assert abs(float(values[0]) - math.log(2)) <= 1e-15
    assert abs(float(values[1]) - math.log(2)) <= 1e-15
    assert float(values[2]) == 0.0


def test_sigmoid_primitive_is_finite_at_the_boundary() -> None:
    G = get_activation("sigmoid").primitive_of_inverse
    values = G(torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64))
    assert float(values[0]) == 0.0 and float(values[1]) == 0.0
    assert abs(float(values[2]) + math.log(2)) <= 1e-15


def test_energy_at_a_saturated_state_is_finite() -> None:
    model = LoopedMLP(3, 4, 2, dtype=torch.float64)
    h = torch.tensor([[1.0, -1.0, 0.5, 1.0]], dtype=torch.float64)
    assert bool(torch.isfinite(model.energy(h, torch.zeros(1, 3))).all())


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_activation_pieces_are_consistent(activation: str) -> None:
    act = get_activation(activation)
    a = torch.linspace(-4, 4, 81, dtype=torch.float64)
    h = act.phi(a)
    assert float((act.inverse(h) - a).abs().max()) <= 1e-10  # φ⁻¹(φ(a)) = a
    a_grad = a.clone().requires_grad_(True)
    (slope,) = torch.autograd.grad(act.phi(a_grad).sum(), a_grad)
    assert float((slope - act.derivative(a)).abs().max()) <= 1e-14
    assert float(act.derivative(a).max()) <= act.max_slope
    assert float(act.derivative(a).max()) >= 0.99 * act.max_slope
    h_in = h[5:-5].clone().requires_grad_(True)  # G′ = φ⁻¹ away from the boundary
    (dG,) = torch.autograd.grad(act.primitive_of_inverse(h_in).sum(), h_in)
    assert float((dG - act.inverse(h_in.detach())).abs().max()) <= 1e-10


def test_unknown_activation_lookup_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"'softplus'; choose one of \['sigmoid', 'tanh'\]"):
        get_activation("softplus")
