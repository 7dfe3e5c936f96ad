"""Bad numerical input to eqprop_core's API (issue 14, item 8): each case gets a ValueError naming
the value, a recorded outcome, or the right answer — never a traceback or a silent wrong number."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize
import torch

from eqprop_core import LoopedMLP, ep_gradients, nudge_surrogate
from eqprop_core.data import load_dataset
from eqprop_core.event_driven import event_driven_equilibrium
from eqprop_core.gradients import nudged_map
from eqprop_core.train import train
from eqprop_core.variants import build
from properties.fixed_model import FixedModel
from tracks.run import run_track


def small_model(**flags) -> tuple[LoopedMLP, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = LoopedMLP(3, 5, 2, dtype=torch.float64, gamma=0.5, **flags)
    x = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    return model, x, torch.tensor([0, 1, 0, 1])


def beta_floor(model: LoopedMLP, tol: float) -> float:
    """beta_min = max(tol, eps) / (sup|phi'| sqrt(2) ||V_eff||_2), or 1/f_max without a readout
    (`smallest_usable_beta`'s derivation, recomputed here with numpy)."""
    V = model.readout_weight().detach().numpy()
    force = model.activation.max_slope * math.sqrt(2) * np.linalg.norm(V, 2)
    overflow = 1 / np.finfo(np.float64).max
    return max(max(tol, np.finfo(np.float64).eps) / force, overflow) if force else overflow


# -- beta too small for the dtype -------------------------------------------------------------
@pytest.mark.parametrize("estimator", ["one_sided", "symmetric", "holomorphic"])
@pytest.mark.parametrize("beta", [1e-20, -1e-20, 5e-324])
def test_beta_below_the_floor_is_refused_naming_beta_and_the_floor(estimator, beta) -> None:
    model, x, y = small_model()
    floor = beta_floor(model, 1e-12)
    assert 1e-13 < floor < 1e-11  # tol 1e-12 over sup|phi'| sqrt(2) ||V||_2 of order 1
    message = re.escape(f"beta={beta!r}") + r".*smallest usable \|beta\| is " + re.escape(
        f"{floor:.3g}")
    with pytest.raises(ValueError, match=message):
        ep_gradients(model, x, y, beta=beta, estimator=estimator)


def test_the_floor_is_where_the_nudge_drowns_in_the_tolerance() -> None:
    """Below beta_min the nudged map moves no state by more than the tolerance (the derivation),
    so EP is noise there (0 or 1e7x measured on the old code); 1e4 x above it the estimate is
    the gradient to 1e-3."""
    model, x, y = small_model()
    tol = 1e-12
    floor = beta_floor(model, tol)
    free, nudged = nudged_map(model, x, y, 0.0), nudged_map(model, x, y, 0.999 * floor)
    states = torch.randn(200, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    moved = max(float(torch.linalg.vector_norm(nudged(h) - free(h), dim=1).max()) for h in states)
    assert moved <= tol
    reference = ep_gradients(model, x, y, beta=1e-4)["W"]
    estimate = ep_gradients(model, x, y, beta=1e4 * floor)["W"]
    assert float((estimate - reference).norm() / reference.norm()) < 1e-3


def test_truncated_phases_and_the_surrogate_use_the_same_floor() -> None:
    model, x, y = small_model()
    eps = torch.finfo(torch.float64).eps
    with pytest.raises(ValueError, match=re.escape(f"{beta_floor(model, eps):.3g}")):
        ep_gradients(model, x, y, beta=1e-20, steps=(30, 10))
    ep_gradients(model, x, y, beta=1e-12, steps=(30, 10))  # above eps's floor: accepted
    with pytest.raises(ValueError, match="beta=1e-20.*smallest usable"):
        nudge_surrogate(model, x, y, beta=1e-20)


def test_a_zero_readout_is_refused_only_where_one_over_beta_overflows() -> None:
    """V_eff = 0: no nudge force at any beta, so the floor is only 1/beta finite; the readout's
    gradient (exact, at h_0) is the same at every accepted beta."""
    model, x, y = small_model()
    with torch.no_grad():
        model.V.zero_()
    assert beta_floor(model, 1e-12) == 1 / torch.finfo(torch.float64).max
    tiny, usual = (ep_gradients(model, x, y, beta=b, estimator="one_sided") for b in (1e-300, 0.1))
    assert all(torch.equal(tiny[k], usual[k]) for k in "Vc")
    with pytest.raises(ValueError, match="beta=5e-324.*smallest usable"):
        ep_gradients(model, x, y, beta=5e-324, estimator="one_sided")


@pytest.mark.parametrize("beta", [0, 0.0, float("nan"), float("inf"), -float("inf")])
def test_zero_and_non_finite_beta_are_refused(beta) -> None:
    model, x, y = small_model()
    with pytest.raises(ValueError, match="beta"):
        ep_gradients(model, x, y, beta=beta)


# -- inputs -----------------------------------------------------------------------------------
def test_empty_batch_is_refused_naming_its_shape() -> None:
    model, _, y = small_model()
    empty = torch.zeros(0, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=re.escape("empty batch of shape (0, 3)")):
        model.equilibrium(empty)
    with pytest.raises(ValueError, match=re.escape("(0, 3)")):
        ep_gradients(model, empty, y[:0], beta=0.1)


def test_complex_input_is_refused_not_cast_to_real() -> None:
    model, x, y = small_model()
    with pytest.raises(ValueError, match="x must be real, got dtype torch.complex128"):
        model.equilibrium(x.to(torch.complex128))
    with pytest.raises(ValueError, match="x must be real"):
        ep_gradients(model, x + 1j, y, beta=0.1, estimator="holomorphic")
    # the holomorphic path itself (complex states, real x) is unaffected
    assert ep_gradients(model, x, y, beta=0.1, estimator="holomorphic").converged


# -- huge starts ------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["anderson", "fixed_point", "damped"])
@pytest.mark.parametrize("start", [1e300, 1e308])
def test_a_contraction_converges_from_a_huge_start(solver, start) -> None:
    """h0 = 1e300 (or ±1e308, whose pre-activation overflows to inf and tanh(inf) = 1): the
    residual ||T(h0) - h0|| overflows, T(h0) is finite, and the solve goes on to h*."""
    model, x, _ = small_model()
    h0 = torch.full((4, 5), start, dtype=torch.float64)
    h0[:, ::2] *= -1
    h, stats = model.equilibrium(x, h0, solver=solver)
    assert stats.all_converged and not stats.diverged, stats.summary()
    assert stats.steps > 1 and math.isinf(stats.residual_trace[0])
    W = model.recurrent_weight().detach().numpy()
    drive = model.input_drive(x).detach().numpy()
    for row, d in zip(h.numpy(), drive):
        witness = scipy.optimize.fsolve(lambda v, d=d: np.tanh(W @ v + d) - v, np.zeros(5),
                                        xtol=1e-14)
        assert np.abs(row - witness).max() < 1e-11


def test_event_driven_schemes_converge_from_a_huge_start() -> None:
    model, x, _ = small_model()
    h0 = torch.full((4, 5), 1e300, dtype=torch.float64)
    reference, _ = model.equilibrium(x)
    for scheme in ("synchronous", "lazy", "asynchronous"):
        h, stats = event_driven_equilibrium(model, x, h0, scheme=scheme)
        assert stats.all_converged, stats.summary()
        assert float((h - reference).abs().max()) < 1e-11


# -- solver options ---------------------------------------------------------------------------
def test_unknown_solver_option_is_a_value_error_naming_it_and_the_choices() -> None:
    model, x, y = small_model()
    choices = re.escape("['memory', 'mixing', 'regularization']")
    with pytest.raises(ValueError, match=f"unknown option 'foo' for solver 'anderson'.*{choices}"):
        model.equilibrium(x, solver="anderson", foo=1)
    with pytest.raises(ValueError, match=re.escape("'memroy' for solver 'anderson'")):
        ep_gradients(model, x, y, beta=0.1, memroy=3)
    with pytest.raises(ValueError, match=re.escape("'memory' for solver 'fixed_point'; it "
                                                   "accepts ['damping']")):
        model.equilibrium(x, solver="fixed_point", memory=3)
    with pytest.raises(ValueError, match="unknown option 'foo' for scheme 'lazy'"):
        event_driven_equilibrium(model, x, foo=1)
    model.equilibrium(x, solver="anderson", memory=3)  # a known option still works


# -- training ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0).subset(100, 50, seed=0)


def test_an_overflowing_learning_rate_is_a_recorded_divergence(digits) -> None:
    """lr = 1e38 in float32: Adam's first step lr/(1 - 0.9) = 1e39 is beyond float32 (torch
    raised RuntimeError inside the optimizer); the run records the divergence instead."""
    model, rule = build("standard", 64, 8, 10, seed=0)
    run = train(model, rule, digits, epochs=1, lr=1e38, progress=False)
    assert run.outcome == "diverged" and len(run.history) == 1
    assert run.divergence["step_size"] == pytest.approx(1e39)
    assert "overflows torch.float32" in run.divergence["reason"]


@pytest.mark.parametrize("lr", [float("nan"), -1e-3, 0.0, float("inf"), True, "0.1"])
def test_bad_learning_rates_are_refused_naming_lr(digits, lr) -> None:
    model, rule = build("standard", 64, 8, 10, seed=0)
    with pytest.raises(ValueError, match=re.escape(f"lr must be a positive finite number, got "
                                                   f"{lr!r}")):
        train(model, rule, digits, epochs=1, lr=lr, progress=False)


# -- track 2 on degenerate but valid models ---------------------------------------------------
def scaled_recurrence(factor: float) -> FixedModel:
    torch.manual_seed(7)
    model = LoopedMLP(5, 10, 3, spectral_norm=False, dtype=torch.float64)
    with torch.no_grad():
        model.W.mul_(factor)
    return FixedModel(model, f"W x {factor:g}")


@pytest.mark.parametrize("factor", [0.0, 1e-300])
def test_track_2_certifies_a_zero_or_tiny_recurrent_weight(factor, tmp_path: Path) -> None:
    """W = 0: L = 0 and T is constant, so the bound is attained (ratio 1) and the certificates
    agree exactly (old code: ZeroDivisionError). W x 1e-300: W(a - b) vanished against the drive
    and the tightness hunt read 0 (old code: a false failure); in the unit 1/||W_eff|| it is
    resolved and reaches 0.9 L."""
    record = run_track(2, model=scaled_recurrence(factor), out_dir=tmp_path).record
    checks = {c["name"]: c for c in record["checks"]}
    assert record["status"] == "pass", [c["name"] for c in record["checks"] if not c["passed"]]
    agree = checks["|model certificate / scipy certificate - 1|"]["value"]
    tight = checks["tightness: best ratio found / L"]["value"]
    if factor == 0:
        assert agree == 0.0 and tight == 1.0
    else:
        assert agree < 1e-12 and 0.9 <= tight <= 1.0
