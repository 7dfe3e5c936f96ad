"""tanh of complex states from their real parts (`activations.tanh_of_parts`): each part to a few
ulps of a long-double reference (the textbook 1 − tanh² form is not); poles fall back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eqprop_core.activations import get_activation, tanh_of_parts

PARTS_ULPS = 8  # measured ≤ 4 ulps per part in float32 and float64


def draws(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Real parts over ±12 (past float32's saturation), imaginary parts from 1e-9 to π/2
    (holomorphic EP's states have |Im| ~ |β|), and edge values."""
    g = torch.Generator().manual_seed(0)
    n = 100_000
    a = torch.randn(n, generator=g, dtype=torch.float64) * 4
    b = torch.logspace(-9, 0.19, n, dtype=torch.float64) * torch.sign(
        torch.randn(n, generator=g, dtype=torch.float64))
    edges_a = torch.tensor([0.0, 1e-30, -1e-30, 40.0, -40.0, 9.0, 0.3, 1e-6, 0.0])
    edges_b = torch.tensor([0.0, 1e-30, 1e-30, 0.1, -0.1, 1.5, 1.5707, 0.0, 1e-6])
    return (torch.cat([a, edges_a.double()]).to(dtype), torch.cat([b, edges_b.double()]).to(dtype))


def part_errors(got: torch.Tensor, ref: np.ndarray, eps: float) -> float:
    """The larger relative error of the two parts, in ulps (zero parts must be exact to the
    smallest normal number)."""
    worst = 0.0
    for mine, theirs in ((got.real.numpy(), ref.real), (got.imag.numpy(), ref.imag)):
        scale = np.maximum(np.abs(theirs), np.finfo(mine.dtype).tiny)
        worst = max(worst, float(np.max(np.abs(mine.astype(np.longdouble) - theirs) / scale)))
    return worst / eps


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_each_part_is_accurate_to_a_few_ulps(dtype: torch.dtype) -> None:
    a, b = draws(dtype)
    ref = np.tanh(a.numpy().astype(np.longdouble) + 1j * b.numpy().astype(np.longdouble))
    eps = torch.finfo(dtype).eps
    assert part_errors(tanh_of_parts(a, b), ref, eps) <= PARTS_ULPS
    # The check can fail: the same formula with sech²a = 1 − t² loses the imaginary part's
    # digits once t rounds towards ±1.
    t, u = torch.tanh(a), torch.tan(b)
    textbook = torch.complex(t * (1 + u * u), u * (1 - t * t)) / (1 + (t * u) ** 2)
    assert part_errors(textbook, ref, eps) > 100 * PARTS_ULPS


def test_it_agrees_with_tanh_of_the_complex_number() -> None:
    a, b = draws(torch.float64)
    assert torch.allclose(tanh_of_parts(a, b), torch.tanh(torch.complex(a, b)),
                          rtol=1e-13, atol=1e-300)


def test_a_pole_and_non_finite_input_fall_back_to_torch() -> None:
    a = torch.tensor([0.0, float("nan"), 0.5])
    b = torch.tensor([float(np.float32(np.pi / 2)), 0.1, float("inf")])
    got, want = tanh_of_parts(a, b), torch.tanh(torch.complex(a, b))
    assert torch.equal(torch.isnan(got), torch.isnan(want))
    finite = torch.isfinite(want)
    assert torch.allclose(got[finite], want[finite], rtol=1e-6)


def test_tanh_registers_it_and_sigmoid_keeps_the_complex_kernel() -> None:
    assert get_activation("tanh").phi_parts is tanh_of_parts
    assert get_activation("sigmoid").phi_parts is None
