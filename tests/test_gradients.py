"""EP gradient estimators, the BPTT reference and the scipy implicit gradient: unit tests.

Each test states a number and a bound that a wrong sign, a missing factor ½, a dropped chain rule
or a silently accepted bad input would violate. The independent reference is
`theory.implicit_gradients` (scipy, float64), never the code under test.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given

import theory
from eqprop_core import (
    EPGradients,
    EquilibriumNotConverged,
    PhaseNotConverged,
    bptt_gradients,
    ep_gradients,
    nudge_schedule,
    nudge_surrogate,
)
from properties import ModelSpec, agreement, as_numpy, fitted_slope, gradient_models

from .builders import build_model, random_symmetric


def spec(**changes) -> ModelSpec:
    base = ModelSpec(n_in=3, n_hidden=6, weight_scale=0.8, structure="gaussian", seed=1)
    return base.with_(**changes)


def problem(s: ModelSpec, batch: int = 4):
    return s.build(), s.inputs(batch), s.labels(batch)


def implicit(model, x, y) -> dict[str, np.ndarray]:
    return theory.implicit_gradients(as_numpy(model), x, y)


# -- the estimate has the parameters' keys, shapes and dtype ------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("estimator", ["one_sided", "symmetric", "holomorphic"])
def test_keys_shapes_and_dtypes_match_named_parameters(dtype: str, estimator: str) -> None:
    model, x, y = problem(spec(dtype=dtype))
    grads = ep_gradients(model, x, y, beta=0.05, estimator=estimator)
    assert isinstance(grads, EPGradients)
    params = dict(model.named_parameters())
    assert list(grads) == list(params)
    for name, p in params.items():
        assert grads[name].shape == p.shape and grads[name].dtype == p.dtype
        assert torch.isfinite(grads[name]).all()
        assert p.grad is None  # the estimator never touches .grad


# -- agreement with the independent implicit gradient --------------------------------------------
@pytest.mark.parametrize("spectral_norm", [True, False])
def test_symmetric_ep_matches_implicit_gradient_at_small_beta(spectral_norm: bool) -> None:
    model, x, y = problem(spec(spectral_norm=spectral_norm))
    a = agreement(ep_gradients(model, x, y, beta=1e-4), implicit(model, x, y))
    assert a.worst_relative_error <= 1e-6, a.relative_error
    assert a.worst_cosine >= 1 - 1e-10


def test_holomorphic_eight_points_is_exact_at_finite_radius() -> None:
    model, x, y = problem(spec())
    grads = ep_gradients(model, x, y, beta=0.2, estimator="holomorphic", n_points=8)
    assert agreement(grads, implicit(model, x, y)).worst_relative_error <= 1e-6


@pytest.mark.parametrize(("estimator", "order"), [("one_sided", 1), ("symmetric", 2)])
def test_bias_falls_at_the_estimators_order(estimator: str, order: int) -> None:
    model, x, y = problem(spec())
    reference = implicit(model, x, y)
    betas = [0.004, 0.008, 0.016, 0.032]
    errors = [agreement(ep_gradients(model, x, y, beta=b, estimator=estimator),
                        reference).relative_error["U"] for b in betas]
    assert abs(fitted_slope(betas, errors) - order) <= 0.1


def test_holomorphic_with_one_and_two_points_equals_one_sided_and_symmetric() -> None:
    model, x, y = problem(spec())
    for n, real in ((1, "one_sided"), (2, "symmetric")):
        complex_path = ep_gradients(model, x, y, beta=0.03, estimator="holomorphic", n_points=n)
        real_path = ep_gradients(model, x, y, beta=0.03, estimator=real)
        assert agreement(complex_path, real_path).worst_relative_error <= 1e-8


def test_readout_gradient_is_exact_at_the_free_state() -> None:
    model, x, y = problem(spec())
    a = agreement(ep_gradients(model, x, y, beta=0.3, estimator="one_sided"),
                  implicit(model, x, y), keys=["V", "c"])
    assert a.worst_relative_error <= 1e-10  # no β in V, c: exact whatever the nudge


def test_asymmetric_model_is_biased_even_as_beta_vanishes() -> None:
    model, x, y = problem(spec(symmetric=False))
    reference = implicit(model, x, y)
    small, smaller = (agreement(ep_gradients(model, x, y, beta=b), reference)
                      for b in (1e-3, 1e-4))
    assert small.worst_relative_error >= 0.05
    assert smaller.worst_relative_error >= 0.9 * small.worst_relative_error  # not shrinking


@given(gradient_models(max_hidden=6))
def test_implicit_gradient_equals_long_bptt(s: ModelSpec) -> None:
    """Two references, two methods: scipy's implicit solve vs autograd through 2000 steps
    (L ≤ 0.95, so truncation ≤ 0.95^2000 ≈ 1e-45)."""
    model, x, y = problem(s, batch=3)
    a = agreement(bptt_gradients(model, x, y, steps=2000), implicit(model, x, y))
    assert a.worst_relative_error <= 1e-8, a.relative_error


def test_pull_back_through_sn_matches_finite_differences_of_the_parametrization() -> None:
    """theory.pull_back_to_raw (hand-derived) vs central differences of W ↦ W_eff."""
    model = build_model(random_symmetric(5, seed=3), spectral_norm=True, gamma=0.9)
    rng = np.random.default_rng(0)
    G, direction = rng.standard_normal((5, 5)), rng.standard_normal((5, 5))
    raw = theory.pull_back_to_raw(as_numpy(model), G)
    W = model.W.detach()
    eps = 1e-6
    with torch.no_grad():
        dW = torch.as_tensor(direction)
        plus, minus = model.effective_weight(W + eps * dW), model.effective_weight(W - eps * dW)
    numeric = float(((plus - minus) / (2 * eps)).numpy().ravel() @ G.ravel())
    assert math.isclose(float(raw.ravel() @ direction.ravel()), numeric, rel_tol=1e-7)


# -- the finite-nudge surrogate ------------------------------------------------------------------
@pytest.mark.parametrize("estimator", ["one_sided", "symmetric"])
def test_finite_beta_update_is_the_surrogate_gradient(estimator: str) -> None:
    model, x, y = problem(spec())
    grads = ep_gradients(model, x, y, beta=0.5, estimator=estimator)
    surrogate = nudge_surrogate(model, x, y, beta=0.5, estimator=estimator, unroll=300)
    autograd = dict(zip([n for n, _ in model.named_parameters()],
                        torch.autograd.grad(surrogate, list(model.parameters()))))
    assert agreement(grads, autograd, keys=["W", "U", "b"]).worst_relative_error <= 1e-9


# -- bad input gets a clear error ------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"beta": 0.0}, "non-zero"),
    ({"beta": float("nan")}, "finite"),
    ({"beta": float("inf")}, "finite"),
    ({"beta": True}, "finite real"),
    ({"beta": 0.1, "estimator": "holomorphic", "n_points": 0}, "n_points"),
    ({"beta": 0.1, "estimator": "holomorphic", "n_points": 2.5}, "n_points"),
    ({"beta": 0.1, "n_points": 4}, "holomorphic estimator only"),
    ({"beta": 0.1, "estimator": "two_sided"}, "unknown estimator"),
    ({"beta": 0.1, "steps": (30,)}, "steps"),
    ({"beta": 0.1, "steps": (30, 0)}, "steps"),
    ({"beta": 0.1, "on_unconverged": "ignore"}, "on_unconverged"),
])
def test_bad_arguments_raise_a_value_error_naming_them(kwargs: dict, message: str) -> None:
    model, x, y = problem(spec())
    with pytest.raises(ValueError, match=message):
        ep_gradients(model, x, y, **kwargs)


@pytest.mark.parametrize(("labels", "message"), [
    (torch.tensor([0, 1, 3, 0]), r"\[0, 3\)"),
    (torch.tensor([0, -1, 2, 0]), r"\[0, 3\)"),
    (torch.tensor([0.0, 1.0, 2.0, 0.0]), "integer"),
    (torch.tensor([0, 1]), "shape"),
])
def test_bad_labels_are_refused(labels: torch.Tensor, message: str) -> None:
    model, x, _ = problem(spec())
    with pytest.raises(ValueError, match=message):
        ep_gradients(model, x, labels, beta=0.1)


def test_non_finite_inputs_are_refused() -> None:
    model, x, y = problem(spec())
    x[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        ep_gradients(model, x, y, beta=0.1)


def unconverging() -> tuple:
    """W = −3I without SN, small drive: synchronous updates 2-cycle, the free phase cannot
    converge (h* is unstable: ρ(J*) ≈ 3)."""
    model = build_model(-3 * np.eye(4), spectral_norm=False, drive_scale=0.5)
    return model, torch.zeros(2, 4, dtype=torch.float64), torch.tensor([0, 1])


def test_unconverged_free_phase_is_refused_with_its_residual() -> None:
    model, x, y = unconverging()
    with pytest.raises(PhaseNotConverged, match=r"free phase .*max residual \d"):
        ep_gradients(model, x + 0.1, y, beta=0.1, solver="fixed_point", max_steps=50)


def test_unconverged_phase_can_be_accepted_with_a_warning_or_recorded() -> None:
    model, x, y = unconverging()
    with pytest.warns(EquilibriumNotConverged, match="unconverged phase"):
        ep_gradients(model, x + 0.1, y, beta=0.1, solver="fixed_point", max_steps=50,
                     on_unconverged="warn")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        recorded = ep_gradients(model, x + 0.1, y, beta=0.1, solver="fixed_point",
                                max_steps=50, on_unconverged="record")
    assert not recorded.converged and recorded.max_residual > 1e-3


def test_truncated_ep_records_its_residual_instead_of_refusing() -> None:
    model, x, y = problem(spec())
    grads = ep_gradients(model, x, y, beta=0.1, steps=(3, 2))
    assert grads.free.steps == 3 and [s.steps for s in grads.nudged] == [2, 2]
    assert not grads.converged and grads.free.max_residual > 1e-6


def test_surrogate_and_bptt_refuse_bad_arguments() -> None:
    model, x, y = problem(spec())
    with pytest.raises(ValueError, match="symmetric=True"):
        nudge_surrogate(problem(spec(symmetric=False))[0], x, y, beta=0.5)
    with pytest.raises(ValueError, match="non-zero"):
        nudge_surrogate(model, x, y, beta=0.0)
    with pytest.raises(ValueError, match="unroll"):
        nudge_surrogate(model, x, y, beta=0.5, unroll=-1)
    with pytest.raises(ValueError, match="steps"):
        bptt_gradients(model, x, y, steps=0)
    with pytest.raises(ValueError, match="labels"):
        bptt_gradients(model, x, torch.tensor([0, 1, 2, 7]), steps=5)


def test_nudge_schedule_weights_sum_to_zero_so_constants_cancel() -> None:
    for estimator, n in (("one_sided", None), ("symmetric", None), ("holomorphic", 5)):
        s = nudge_schedule(estimator, 0.1, n)
        assert abs(sum(s.weights) + s.free_weight) <= 1e-12
        # Σ w_k β_k = 1: the combination differentiates a linear function exactly.
        assert abs(sum(w * b for w, b in zip(s.weights, s.betas)) - 1) <= 1e-12
