"""Hardware non-idealities (`eqprop_core.hardware`): quantizer grid and rounding, noise
statistics, complex states, weight fake-quantization, and that the ideal transforms change
nothing in EP's gradients."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from eqprop_core import LoopedMLP, ep_gradients
from eqprop_core.hardware import (
    compose,
    fake_quantize,
    neuron_noise,
    quantization_levels,
    quantization_step,
    quantize,
    quantize_states,
    quantize_weights,
)

ESTIMATORS = ("one_sided", "symmetric", "holomorphic")


def small_problem(seed: int = 0) -> tuple[LoopedMLP, torch.Tensor, torch.Tensor]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LoopedMLP(6, 8, 3, dtype=torch.float64)
        x = torch.randn(5, 6, dtype=torch.float64)
    return model, x, torch.tensor([0, 1, 2, 1, 0])


# -- the state quantizer ----------------------------------------------------------------------
def test_int8_grid_has_255_symmetric_levels_with_step_1_over_127():
    assert quantization_levels(8) == 127
    assert quantization_step(8) == pytest.approx(1 / 127, rel=0, abs=1e-18)
    v = torch.linspace(-1.2, 1.2, 200_001, dtype=torch.float64)
    q = quantize(v, 8)
    codes = q / quantization_step(8)
    assert torch.max(torch.abs(codes - torch.round(codes))) <= 1e-9  # on the grid
    assert torch.unique(q).numel() == 255
    assert float(q.max()) == pytest.approx(1.0, abs=1e-15)
    assert float(q.min()) == pytest.approx(-1.0, abs=1e-15)
    assert torch.equal(quantize(-v, 8), -q)  # symmetric


def test_rounding_is_to_nearest_with_error_at_most_half_a_step():
    step = quantization_step(6)
    v = torch.linspace(-1, 1, 100_001, dtype=torch.float64)
    assert float(torch.max(torch.abs(quantize(v, 6) - v))) <= step / 2 + 1e-15
    probes = torch.tensor([0.3, 0.7, -0.7, 1.49, 1.51], dtype=torch.float64) * step
    expected = torch.tensor([0.0, 1.0, -1.0, 1.0, 2.0], dtype=torch.float64) * step
    assert torch.allclose(quantize(probes, 6), expected, rtol=0, atol=1e-15)


def test_values_beyond_the_range_saturate_and_range_rescales_the_grid():
    assert torch.equal(quantize(torch.tensor([5.0, -7.0]), 4), torch.tensor([1.0, -1.0]))
    assert quantization_step(4, range=2.0) == pytest.approx(2 / 7)
    q = quantize(torch.tensor([1.9, 3.0], dtype=torch.float64), 4, range=2.0)
    assert torch.allclose(q, torch.tensor([2.0, 2.0], dtype=torch.float64))


def test_two_bits_is_ternary():
    v = torch.linspace(-1, 1, 1001)
    assert set(torch.unique(quantize(v, 2)).tolist()) == {-1.0, 0.0, 1.0}


def test_complex_states_are_quantized_part_by_part():
    h = torch.complex(torch.tensor([0.30, -0.62], dtype=torch.float64),
                      torch.tensor([0.003, 0.9], dtype=torch.float64))
    q = quantize_states(8)(h)
    assert q.is_complex()
    assert torch.equal(q.real, quantize(h.real, 8))
    assert torch.equal(q.imag, quantize(h.imag, 8))
    # Δ/2 = 1/254 ≈ 0.0039: an imaginary part of 0.003 is rounded away, 0.9 → 114/127
    assert torch.allclose(q.imag, torch.tensor([0.0, 114 / 127], dtype=torch.float64),
                          rtol=0, atol=1e-15)


# -- neuron noise -----------------------------------------------------------------------------
def test_noise_has_the_requested_std_and_zero_mean():
    std, n = 0.05, 200_000
    h = torch.zeros(n, dtype=torch.float64)
    draw = neuron_noise(std, torch.Generator().manual_seed(0))(h)
    # sampling error of the std is std/√(2n) = 8e-5; of the mean std/√n = 1.1e-4
    assert abs(float(draw.std()) - std) <= 4 * std / math.sqrt(2 * n)
    assert abs(float(draw.mean())) <= 4 * std / math.sqrt(n)


def test_complex_noise_is_independent_with_the_requested_std_in_both_parts():
    std, n = 0.02, 200_000
    h = torch.zeros(n, dtype=torch.complex128)
    draw = neuron_noise(std, torch.Generator().manual_seed(1))(h)
    for part in (draw.real, draw.imag):
        assert abs(float(part.std()) - std) <= 4 * std / math.sqrt(2 * n)
    correlation = float(torch.corrcoef(torch.stack([draw.real, draw.imag]))[0, 1])
    assert abs(correlation) <= 4 / math.sqrt(n)


def test_noise_is_fresh_at_every_call_and_reproducible_from_the_generator():
    h = torch.zeros(1000, dtype=torch.float64)
    first = neuron_noise(0.1, torch.Generator().manual_seed(3))
    a, b = first(h), first(h)
    assert not torch.equal(a, b)
    again = neuron_noise(0.1, torch.Generator().manual_seed(3))
    assert torch.equal(again(h), a) and torch.equal(again(h), b)


def test_zero_noise_returns_the_state_and_draws_nothing():
    generator = torch.Generator().manual_seed(5)
    before = generator.get_state().clone()
    h = torch.randn(4, 3)
    assert neuron_noise(0.0, generator)(h) is h
    assert torch.equal(generator.get_state(), before)


def test_compose_applies_left_to_right():
    h = torch.tensor([0.0], dtype=torch.float64)
    shift = neuron_noise(0.0)  # identity, to check composition order with a real transform

    def add(value: float):
        return lambda t: t + value

    step = quantization_step(4)
    # noise-like shift then quantize: 0.6Δ → Δ; quantize then shift: 0 + 0.6Δ
    assert float(compose(add(0.6 * step), quantize_states(4))(h)) == pytest.approx(step)
    assert float(compose(quantize_states(4), add(0.6 * step))(h)) == pytest.approx(0.6 * step)
    assert compose(shift)(h) is h
    assert compose()(h) is h


# -- the ideal transforms leave EP unchanged --------------------------------------------------
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_zero_noise_and_empty_composition_give_bit_identical_ep_gradients(estimator):
    model, x, y = small_problem()
    # A transform keeps the nudged phases one after another (batch_nudges applies without
    # one), so the ideal run it must equal bit for bit is that path too.
    ideal = ep_gradients(model, x, y, beta=0.1, estimator=estimator, steps=(30, 10),
                         batch_nudges=False)
    for transform in (neuron_noise(0.0, torch.Generator().manual_seed(0)), compose()):
        hooked = ep_gradients(model, x, y, beta=0.1, estimator=estimator, steps=(30, 10),
                              state_transform=transform)
        for name in ideal:
            assert torch.equal(hooked[name], ideal[name]), name


def test_fine_states_barely_move_the_gradient_and_ternary_states_break_it():
    model, x, y = small_problem(1)
    ideal = ep_gradients(model, x, y, beta=0.2, steps=(40, 20))

    def relative(transform) -> float:
        g = ep_gradients(model, x, y, beta=0.2, steps=(40, 20), state_transform=transform)
        num = sum(float((g[k] - ideal[k]).norm() ** 2) for k in ("W", "U", "b"))
        den = sum(float(ideal[k].norm() ** 2) for k in ("W", "U", "b"))
        return math.sqrt(num / den)

    # 16 bits: Δ = 3e-5, so the state error Δ/2 over a nudge move ~β·0.1 is ~1e-3
    assert relative(quantize_states(16)) <= 1e-2
    assert relative(quantize_states(2)) >= 0.5


# -- weights ----------------------------------------------------------------------------------
def test_fake_quantize_puts_the_matrix_on_a_per_tensor_grid_with_a_straight_through_vjp():
    M = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    q = fake_quantize(M, 4)
    scale = float(M.detach().abs().max()) / 7
    codes = q.detach() / scale
    assert torch.max(torch.abs(codes - torch.round(codes))) <= 1e-12
    assert float(codes.abs().max()) == pytest.approx(7.0)
    assert float(torch.max(torch.abs(q.detach() - M.detach()))) <= scale / 2 + 1e-15
    upstream = torch.randn(7, 5, dtype=torch.float64)
    (grad,) = torch.autograd.grad(q, M, upstream)
    assert torch.equal(grad, upstream)
    zero = torch.zeros(3, 3)
    assert torch.equal(fake_quantize(zero, 8), zero)


def test_quantize_weights_quantizes_what_the_dynamics_use_and_removes_cleanly():
    model, x, y = small_problem(2)
    float_weight = model.recurrent_weight().detach().clone()
    with quantize_weights(model, 6) as quantized:
        assert quantized is model
        W = model.recurrent_weight().detach()
        for matrix in (W, model.input_weight().detach(), model.readout_weight().detach()):
            codes = matrix / (matrix.abs().max() / 31)
            assert torch.max(torch.abs(codes - torch.round(codes))) <= 1e-9
        assert torch.equal(W, W.T)  # rounding keeps the symmetric W_eff symmetric
        assert float((W - float_weight).abs().max()) <= float(float_weight.abs().max()) / 62
        assert copy.deepcopy(model).weight_bits == 6
        with pytest.raises(ValueError, match="already has 6-bit"):
            quantize_weights(model, 8)
    assert type(model) is LoopedMLP and not hasattr(model, "weight_bits")
    assert torch.equal(model.recurrent_weight().detach(), float_weight)


def test_ep_with_quantized_weights_reaches_the_raw_parameters_straight_through():
    model, x, y = small_problem(3)
    ideal = ep_gradients(model, x, y, beta=0.1, steps=(40, 20))
    handle = quantize_weights(model, 16)
    fine = ep_gradients(model, x, y, beta=0.1, steps=(40, 20))
    handle.remove()
    handle.remove()  # idempotent
    for name in ideal:
        error = float((fine[name] - ideal[name]).norm() / ideal[name].norm())
        assert error <= 1e-3, name
    with quantize_weights(model, 3):
        coarse = ep_gradients(model, x, y, beta=0.1, steps=(40, 20))
    assert float((coarse["W"] - ideal["W"]).norm() / ideal["W"].norm()) >= 1e-2


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [1, 0, -8, 33, 8.0, True, "8", None])
def test_bad_bits_raise(bits):
    with pytest.raises(ValueError, match="bits"):
        quantize_states(bits)
    with pytest.raises(ValueError, match="bits"):
        quantize_weights(small_problem()[0], bits)
    with pytest.raises(ValueError, match="bits"):
        fake_quantize(torch.ones(2, 2), bits)


@pytest.mark.parametrize("std", [-0.1, math.nan, math.inf, True, "0.1", None])
def test_bad_std_raises(std):
    with pytest.raises(ValueError, match="std"):
        neuron_noise(std)


@pytest.mark.parametrize("limit", [0.0, -1.0, math.nan, math.inf, True])
def test_bad_range_raises(limit):
    with pytest.raises(ValueError, match="range"):
        quantize_states(8, range=limit)


def test_compose_refuses_a_non_callable_and_quantize_weights_a_foreign_module():
    with pytest.raises(ValueError, match="transform 1"):
        compose(quantize_states(8), 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="effective_weight"):
        quantize_weights(torch.nn.Linear(2, 2), 8)
