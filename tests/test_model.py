"""LoopedMLP: shapes, the matrix the dynamics use, spectral normalization, input validation.

SN claim under test: σ_max(W_eff) ≤ γ by scipy (float64, independent of the code) for any raw
W, including after raw updates of size 1e3, in train and eval mode, in float32 and float64.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given

from eqprop_core import LoopedMLP
from eqprop_core.spectral import rounding_margin
from properties import contractive_models

DTYPES = [torch.float32, torch.float64]


def sigma_max(weight: torch.Tensor) -> float:
    return float(scipy.linalg.svdvals(weight.detach().double().numpy())[0])


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().abs().max())


# -- shapes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_shapes_of_forward_equilibrium_and_stats(dtype: torch.dtype) -> None:
    model = LoopedMLP(5, 7, 3, dtype=dtype)
    x = torch.randn(4, 5, dtype=dtype)
    h, stats = model.equilibrium(x)
    assert tuple(h.shape) == (4, 7)
    assert h.dtype == dtype
    assert tuple(stats.residual.shape) == (4,)
    assert tuple(stats.converged.shape) == (4,)
    assert tuple(model(x).shape) == (4, 3)
    assert tuple(model(x[0]).shape) == (1, 3)  # a single (n_in,) sample is a batch of one
    assert tuple(model.recurrent_weight().shape) == (7, 7)
    assert tuple(model.energy(h, x).shape) == (4,)


def test_parameter_shapes() -> None:
    model = LoopedMLP(5, 7, 3)
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    assert shapes == {"W": (7, 7), "U": (7, 5), "b": (7,), "V": (3, 7), "c": (3,)}


# -- the recurrent weight ---------------------------------------------------------------------
@pytest.mark.parametrize("spectral_norm", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_recurrent_weight_is_exactly_symmetric(spectral_norm: bool, dtype: torch.dtype) -> None:
    model = LoopedMLP(3, 9, 2, symmetric=True, spectral_norm=spectral_norm, dtype=dtype)
    with torch.no_grad():
        model.W.mul_(100.0)
    w = model.recurrent_weight()
    assert max_abs_diff(w, w.T) == 0.0


def test_asymmetric_model_keeps_an_asymmetric_weight() -> None:
    model = LoopedMLP(3, 9, 2, symmetric=False, spectral_norm=True)
    w = model.recurrent_weight()
    assert max_abs_diff(w, w.T) > 1e-3


@pytest.mark.parametrize("symmetric", [True, False])
def test_spectral_norm_off_leaves_the_weight_unchanged(symmetric: bool) -> None:
    model = LoopedMLP(3, 9, 2, symmetric=symmetric, spectral_norm=False, dtype=torch.float64)
    with torch.no_grad():
        model.W.mul_(50.0)  # ‖W‖₂ far above 1: SN would have to rescale it
    expected = 0.5 * (model.W + model.W.T) if symmetric else model.W
    assert max_abs_diff(model.recurrent_weight(), expected) == 0.0
    assert sigma_max(model.recurrent_weight()) > 5.0


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_hidden", [1, 8, 64])
def test_sn_bound_after_huge_raw_updates(
    mode: str, symmetric: bool, dtype: torch.dtype, n_hidden: int
) -> None:
    gamma = 0.95
    model = LoopedMLP(3, n_hidden, 2, symmetric=symmetric, gamma=gamma, dtype=dtype)
    model.train(mode == "train")
    rng = np.random.default_rng(n_hidden)
    for update in range(3):  # several large updates, σ re-measured after each
        with torch.no_grad():
            model.W.add_(torch.as_tensor(1e3 * rng.standard_normal(model.W.shape), dtype=dtype))
            if update == 2:  # a dominant rank-1 spike on top
                u = torch.as_tensor(rng.standard_normal(n_hidden), dtype=dtype)
                model.W.add_(1e3 * torch.outer(u, u))
        sigma = sigma_max(model.recurrent_weight())
        assert sigma <= gamma
        # ... and SN keeps the margin it promises instead of over-shrinking.
        assert sigma >= gamma * (1 - 10 * rounding_margin(n_hidden, dtype))


@given(spec=contractive_models(max_hidden=16, symmetric=None))
def test_sn_bound_for_drawn_models(spec) -> None:
    model = spec.build()
    assert sigma_max(model.recurrent_weight()) <= spec.gamma


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("spectral_norm", [True, False])
def test_lipschitz_certificate_bounds_scipy_sigma(symmetric: bool, spectral_norm: bool) -> None:
    model = LoopedMLP(3, 12, 2, symmetric=symmetric, spectral_norm=spectral_norm,
                      dtype=torch.float32)
    with torch.no_grad():
        model.W.mul_(30.0)
    sigma = sigma_max(model.recurrent_weight())
    certificate = model.lipschitz_certificate()
    assert certificate >= sigma  # tanh: sup|φ′| = 1
    assert certificate <= sigma * (1 + 1e-5)


def test_lipschitz_certificate_scales_with_sigmoid_slope() -> None:
    model = LoopedMLP(3, 6, 2, activation="sigmoid", gamma=0.9, dtype=torch.float64)
    assert abs(model.lipschitz_certificate() - 0.25 * 0.9) <= 1e-12


def test_state_dict_round_trip_keeps_the_bound() -> None:
    model = LoopedMLP(3, 10, 2, symmetric=False, dtype=torch.float32)
    with torch.no_grad():
        model.W.mul_(1e3)
    fresh = LoopedMLP(3, 10, 2, symmetric=False, dtype=torch.float32)
    fresh.load_state_dict(model.state_dict())
    assert max_abs_diff(fresh.recurrent_weight(), model.recurrent_weight()) == 0.0
    assert sigma_max(fresh.recurrent_weight()) <= 0.95


# -- constructor validation -------------------------------------------------------------------
def ends_with_value(value: object) -> str:
    return rf"got {re.escape(repr(value))}$"


@pytest.mark.parametrize("gamma", [0, 1, 1.5, -0.1, math.nan, math.inf])
def test_gamma_outside_open_unit_interval_is_refused(gamma: float) -> None:
    with pytest.raises(ValueError, match=ends_with_value(gamma)):
        LoopedMLP(3, 4, 2, gamma=gamma)


@pytest.mark.parametrize("n_hidden", [0, -3, 2.5, True, "3"])
def test_bad_n_hidden_is_refused(n_hidden: object) -> None:
    with pytest.raises(ValueError, match=r"n_hidden .*" + ends_with_value(n_hidden)):
        LoopedMLP(3, n_hidden, 2)  # type: ignore[arg-type]


@pytest.mark.parametrize("n_hidden", [math.inf, math.nan])
def test_non_finite_n_hidden_is_refused_naming_it(n_hidden: float) -> None:
    with pytest.raises(ValueError, match=r"n_hidden .*" + ends_with_value(n_hidden)):
        LoopedMLP(3, n_hidden, 2)  # type: ignore[arg-type]


def test_unknown_activation_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown activation 'relu'"):
        LoopedMLP(3, 4, 2, activation="relu")


def test_unsupported_dtype_is_refused() -> None:
    with pytest.raises(ValueError, match=r"torch\.float16"):
        LoopedMLP(3, 4, 2, dtype=torch.float16)


# -- input validation -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "reported"), [((2, 4), (2, 4)), ((2, 2), (2, 2)), ((2, 3, 1), (2, 3, 1)),
                            ((4,), (1, 4))],
)
def test_wrong_input_shape_is_refused(shape: tuple[int, ...], reported: tuple[int, ...]) -> None:
    model = LoopedMLP(3, 4, 2)
    with pytest.raises(ValueError, match=r"\(batch, 3\).*" + ends_with_value(reported)):
        model.equilibrium(torch.zeros(shape))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_input_is_refused(bad: float) -> None:
    model = LoopedMLP(3, 4, 2)
    x = torch.zeros(2, 3)
    x[1, 2] = bad
    with pytest.raises(ValueError, match="non-finite"):
        model(x)


def test_non_finite_initial_state_is_refused() -> None:
    model = LoopedMLP(3, 4, 2)
    h0 = torch.zeros(2, 4)
    h0[0, 0] = math.nan
    with pytest.raises(ValueError, match="non-finite"):
        model.equilibrium(torch.zeros(2, 3), h0)


def test_initial_state_of_wrong_shape_is_refused() -> None:
    model = LoopedMLP(3, 4, 2)
    with pytest.raises(ValueError, match=r"\(2, 4\), got \(2, 5\)"):
        model.equilibrium(torch.zeros(2, 3), torch.zeros(2, 5))


def test_trajectory_is_repeated_step() -> None:
    model = LoopedMLP(3, 5, 2, dtype=torch.float64)
    x = torch.randn(4, 3, dtype=torch.float64)
    h = torch.randn(4, 5, dtype=torch.float64)
    states = model.trajectory(x, h, 6)
    assert states.shape == (7, 4, 5)
    with torch.no_grad():
        for k in range(6):
            h = model.step(h, x)
            assert float((states[k + 1] - h).abs().max()) <= 1e-15


@pytest.mark.parametrize("steps", [-1, 2.5, True])
def test_trajectory_refuses_bad_steps(steps: object) -> None:
    model = LoopedMLP(3, 5, 2)
    with pytest.raises(ValueError, match="steps"):
        model.trajectory(torch.zeros(1, 3), torch.zeros(1, 5), steps)  # type: ignore[arg-type]
