"""Circular-convolution matrices, the FFT operator norm, and the convolutional EqProp model.

References are independent of the code under test: `theory.conv` builds the matrix by index
loops and takes scipy's singular values; torch's own conv2d with circular padding checks the
indexing convention; finite differences check every gradient.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits

import theory
from eqprop_core import bptt_gradients, ep_gradients
from eqprop_core.conv import (
    ConvEqProp,
    circular_conv_matrix,
    conv_operator_norm,
    conv_singular_values,
    reshaped_kernel_norm,
)
from properties import agreement, as_numpy
from theory import conv as witness
from theory.gradients import loss as witness_loss


@pytest.fixture(autouse=True)
def one_blas_thread():
    """scipy's many small factorizations: OpenBLAS threads cost ~10x on two shared cores."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


SHAPES = [  # (c_out, c_in, k_h, k_w, n)
    (1, 1, 1, 1, 4), (2, 3, 3, 3, 5), (3, 2, 5, 4, 6), (4, 4, 2, 2, 4), (1, 3, 5, 5, 12),
    (2, 1, 4, 1, 7),
]


def kernel(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    return torch.as_tensor(np.random.default_rng(seed).standard_normal(shape))


def torch_circular_conv(K: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """K ⋆ x by conv2d after circular padding (a_h before, k_h − 1 − a_h after)."""
    k_h, k_w = K.shape[2:]
    a_h, a_w = (k_h - 1) // 2, (k_w - 1) // 2
    return F.conv2d(F.pad(x, (a_w, k_w - 1 - a_w, a_h, k_h - 1 - a_h), mode="circular"), K)


# -- the dense matrix ------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
def test_dense_matrix_is_torch_circular_conv2d_and_the_loop_built_matrix(shape) -> None:
    c_out, c_in, k_h, k_w, n = shape
    K = kernel((c_out, c_in, k_h, k_w))
    M = circular_conv_matrix(K, n)
    x = torch.as_tensor(np.random.default_rng(1).standard_normal((3, c_in, n, n)))
    by_matrix = x.reshape(3, -1) @ M.T
    by_conv = torch_circular_conv(K, x).reshape(3, -1)
    assert float((by_matrix - by_conv).abs().max()) <= 1e-12 * float(by_conv.abs().max())
    # every entry an exact copy of one tap: identical to the loops, bit for bit
    assert np.array_equal(M.numpy(), witness.circular_conv_matrix(K.numpy(), n))


def test_loop_adjoint_is_the_transpose_of_the_kernel_to_matrix_map() -> None:
    K, G = kernel((2, 3, 3, 2)), np.random.default_rng(2).standard_normal((2 * 25, 3 * 25))
    lhs = float((witness.circular_conv_matrix(K.numpy(), 5) * G).sum())
    rhs = float((K.numpy() * witness.conv_matrix_adjoint(G, K.shape, 5)).sum())
    assert abs(lhs - rhs) <= 1e-12 * abs(lhs)


def test_autograd_pull_back_to_the_kernel_matches_finite_differences() -> None:
    K = kernel((2, 2, 3, 3)).requires_grad_(True)
    G = torch.as_tensor(np.random.default_rng(3).standard_normal((2 * 16, 2 * 16)))

    def f(k: torch.Tensor) -> torch.Tensor:  # a nonlinear scalar of the dense matrix
        return torch.tanh(circular_conv_matrix(k, 4) * G).sum()

    (grad,) = torch.autograd.grad(f(K), K)
    v = kernel(K.shape, seed=4)
    eps = 1e-6
    fd = (f(K.detach() + eps * v) - f(K.detach() - eps * v)) / (2 * eps)
    assert abs(float(fd) - float((grad * v).sum())) <= 1e-8 * float(grad.norm() * v.norm())


# -- the operator norm -----------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
def test_fft_norm_and_spectrum_equal_scipy_on_the_dense_matrix(shape) -> None:
    c_out, c_in, k_h, k_w, n = shape
    K = kernel((c_out, c_in, k_h, k_w), seed=sum(shape))
    reference = scipy.linalg.svdvals(witness.circular_conv_matrix(K.numpy(), n))
    certified = float(conv_operator_norm(K, n))
    assert reference[0] <= certified <= reference[0] * (1 + 1e-10)
    spectrum = np.sort(conv_singular_values(K, n).numpy().ravel())[::-1]
    assert spectrum.size == min(c_out, c_in) * n * n
    assert np.abs(spectrum - reference[:spectrum.size]).max() <= 1e-12 * reference[0]


def test_fft_norm_gradient_matches_finite_differences_of_scipy_norm() -> None:
    # σ_max of a real kernel's operator is doubly degenerate (frequencies ±(u, v)) yet
    # differentiable along real kernels: the pair moves together.
    K = kernel((2, 3, 3, 3), seed=5).requires_grad_(True)
    (grad,) = torch.autograd.grad(conv_operator_norm(K, 6), K)
    v, eps = kernel(K.shape, seed=6).numpy(), 1e-6
    base = K.detach().numpy()
    fd = (witness.conv_operator_norm(base + eps * v, 6)
          - witness.conv_operator_norm(base - eps * v, 6)) / (2 * eps)
    assert abs(fd - float((grad.numpy() * v).sum())) <= 1e-7 * np.linalg.norm(grad) * \
        np.linalg.norm(v)


def test_reshaped_norm_is_below_the_operator_norm_and_k_times_above() -> None:
    for seed, (c_out, c_in, k, n) in enumerate([(1, 1, 3, 8), (3, 2, 5, 9), (4, 4, 3, 4)]):
        K = kernel((c_out, c_in, k, k), seed=seed)
        sigma, reshaped = witness.conv_operator_norm(K.numpy(), n), float(reshaped_kernel_norm(K))
        assert reshaped <= sigma * (1 + 1e-12) and sigma <= k * reshaped * (1 + 1e-12)
        assert abs(reshaped - witness.reshaped_kernel_norm(K.numpy())) <= 1e-12 * reshaped


@pytest.mark.parametrize("k", [2, 3, 5])
def test_reshaped_norm_under_estimates_a_constant_kernel_by_exactly_k(k: int) -> None:
    K = torch.ones(1, 1, k, k, dtype=torch.float64)
    ratio = witness.conv_operator_norm(K.numpy(), 8) / float(reshaped_kernel_norm(K))
    assert abs(ratio - k) <= 1e-12 * k


# -- the model -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_fft_sn_certifies_the_contraction_and_reshaped_sn_does_not(dtype, scale) -> None:
    torch.manual_seed(0)
    model = ConvEqProp((1, 6, 6), (3, 2), 4, kernel_size=3, gamma=0.9, dtype=dtype)
    with torch.no_grad():
        model.W.mul_(scale)
    L = theory.lipschitz_certificate(as_numpy(model).weight, "tanh")
    assert L <= 0.9 <= model.lipschitz_certificate() * (1 + 1e-6)
    assert model.lipschitz_certificate() >= L
    reshaped = ConvEqProp((1, 6, 6), (3, 2), 4, kernel_size=3, gamma=0.9, sn="reshaped",
                          dtype=dtype)
    with torch.no_grad():
        reshaped.W.copy_(model.W)
    L_reshaped = theory.lipschitz_certificate(as_numpy(reshaped).weight, "tanh")
    assert L_reshaped > 0.9 * 1.2  # the reshaped norm under-estimates a 3x3 kernel here
    assert abs(reshaped.lipschitz_certificate() - L_reshaped) <= 1e-5 * L_reshaped


def test_w_eff_is_the_witness_block_matrix_and_parameters_are_kernels() -> None:
    torch.manual_seed(1)
    model = ConvEqProp((2, 5, 5), (2, 3), 4, kernel_size=3, input_kernel_size=2,
                       dtype=torch.float64)
    shapes = {k: tuple(p.shape) for k, p in model.named_parameters()}
    assert shapes == {"W": (3, 2, 3, 3), "U": (2, 2, 2, 2), "b": (125,), "V": (4, 75),
                      "c": (4,)}
    p = {k: v.detach().numpy() for k, v in model.named_parameters()}
    net = witness.conv_network(p["W"], p["U"], p["b"], p["V"], p["c"], image_size=5,
                               gamma=0.95)
    # equal up to the certified norm's margin (≤ 1e-12 relative in float64)
    weight = model.recurrent_weight().detach().numpy()
    assert np.abs(weight - net.weight).max() <= 1e-12 * np.abs(net.weight).max()
    assert np.array_equal(model.input_weight().detach().numpy(), net.U)
    assert np.array_equal(model.readout_weight().detach().numpy(), net.V)


@pytest.mark.parametrize("sn", ["fft", "off"])
def test_ep_gradients_reach_the_kernels(sn: str) -> None:
    torch.manual_seed(2)
    model = ConvEqProp((1, 5, 5), (2, 2), 3, kernel_size=3, sn=sn, dtype=torch.float64)
    if sn == "off":
        with torch.no_grad():
            model.W.mul_(0.5 / float(conv_operator_norm(model.W, 5)))
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 25, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (4,), generator=g)
    estimate = ep_gradients(model, x, y, beta=1e-4, tol=1e-14)
    reference = witness.conv_model_gradients(as_numpy(model), x, y, recurrent_kernel=model.W,
                                             input_kernel=model.U, image_size=5)
    assert agreement(estimate, reference).worst_relative_error <= 1e-6
    # the reference itself vs central differences of the witness's loss along the kernels
    p = {k: v.detach().numpy() for k, v in model.named_parameters()}
    v = {k: np.random.default_rng(8).standard_normal(p[k].shape) for k in ("W", "U")}
    eps = 1e-5

    def moved(step: float) -> float:
        net = witness.conv_network(p["W"] + step * v["W"], p["U"] + step * v["U"], p["b"],
                                   p["V"], p["c"], image_size=5,
                                   gamma=0.95 if sn == "fft" else None)
        return witness_loss(net, x, y)

    fd = (moved(eps) - moved(-eps)) / (2 * eps)
    projected = sum(float((reference[k] * v[k]).sum()) for k in v)
    scale = math.sqrt(sum(float((reference[k] ** 2).sum()) for k in v)) * \
        math.sqrt(sum(float((t**2).sum()) for t in v.values()))
    assert abs(fd - projected) <= 1e-6 * scale


def test_bptt_reference_differentiates_through_the_kernel_maps() -> None:
    torch.manual_seed(4)
    model = ConvEqProp((1, 4, 4), (2, 2), 3, kernel_size=3, gamma=0.5, dtype=torch.float64)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(4, 16, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (4,), generator=g)
    reference = witness.conv_model_gradients(as_numpy(model), x, y, recurrent_kernel=model.W,
                                             input_kernel=model.U, image_size=4)
    unrolled = bptt_gradients(model, x, y, steps=100)  # truncation ≤ L^100 = 0.5^100
    assert agreement(unrolled, reference).worst_relative_error <= 1e-9


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize("bad, n, match", [
    (torch.zeros(3, 3), 4, "4-D"),
    (torch.zeros(1, 1, 5, 3), 4, "exceeds the image size"),
    (torch.zeros(1, 0, 3, 3), 4, "empty"),
    (torch.zeros(1, 1, 3, 3), 0, "positive integer"),
    (torch.zeros(1, 1, 3, 3), 2.5, "positive integer"),
])
def test_bad_kernels_and_sizes_raise_value_errors(bad, n, match) -> None:
    for fn in (circular_conv_matrix, conv_operator_norm, conv_singular_values):
        with pytest.raises(ValueError, match=match):
            fn(bad, n)


def test_bad_model_arguments_raise_value_errors() -> None:
    with pytest.raises(ValueError, match="sn must be one of"):
        ConvEqProp(sn="power")
    with pytest.raises(ValueError, match="image_shape"):
        ConvEqProp((1, 8, 7))
    with pytest.raises(ValueError, match="channels"):
        ConvEqProp(channels=(4,))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kernel_size"):
        ConvEqProp((1, 4, 4), kernel_size=5)
    with pytest.raises(ValueError, match="4-D"):
        reshaped_kernel_norm(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="exceeds the image size"):
        witness.circular_conv_matrix(np.zeros((1, 1, 5, 5)), 4)
    with pytest.raises(ValueError, match="matrix shape"):
        witness.conv_matrix_adjoint(np.zeros((3, 3)), (1, 1, 2, 2), 4)


def test_non_finite_kernel_has_an_infinite_norm() -> None:
    K = torch.full((1, 1, 2, 2), float("nan"), dtype=torch.float64)
    assert math.isinf(float(conv_operator_norm(K, 4)))
