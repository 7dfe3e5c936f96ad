"""The nudged phases run as one batch of K·B states give the estimate of K phases run one
after another (to rounding), with the same per-phase statistics."""

from __future__ import annotations

import pytest
import torch

from eqprop_core.gradients import ep_gradients, weighted_grams
from eqprop_core.solvers import Outcome
from eqprop_core.variants import build


@pytest.mark.parametrize(("variant", "estimator", "points"), [
    ("standard", "symmetric", None), ("directed", "symmetric", None),
    ("holomorphic", "holomorphic", 4), ("holomorphic", "holomorphic", 3)])
def test_batched_nudges_give_the_sequential_estimate(variant: str, estimator: str,
                                                     points: int | None) -> None:
    model, _ = build(variant, 12, 24, 5, sn="recurrent", seed=3, dtype=torch.float64)
    x = torch.randn(9, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.arange(9) % 5
    kwargs = dict(beta=0.3, estimator=estimator, n_points=points, steps=(25, 8))
    batched = ep_gradients(model, x, y, **kwargs)
    sequential = ep_gradients(model, x, y, batch_nudges=False, **kwargs)
    for name, g in sequential.items():
        assert torch.allclose(batched[name], g, rtol=1e-12, atol=1e-14 * float(g.abs().max()))
    assert len(batched.nudged) == len(sequential.nudged) == len(batched.schedule.betas)
    for a, b in zip(batched.nudged, sequential.nudged):
        assert a.steps == b.steps and a.residual.shape == b.residual.shape == (9,)
        assert torch.allclose(a.residual, b.residual, rtol=1e-9)
        assert torch.equal(a.converged, b.converged) and a.diverged == b.diverged
    wrong = ep_gradients(model, x, y, **{**kwargs, "beta": 0.6})  # the check can fail
    assert max(float((wrong[k] - sequential[k]).norm()) for k in wrong) > 1e-6


def test_a_state_transform_keeps_the_phases_one_after_another() -> None:
    """Noise drawn per update: batching would change which draws each phase gets."""
    model, _ = build("standard", 6, 10, 3, seed=0, dtype=torch.float64)
    x, y = torch.randn(4, 6, dtype=torch.float64), torch.arange(4) % 3

    def noisy(seed: int):
        generator = torch.Generator().manual_seed(seed)
        return lambda h: h + 1e-3 * torch.randn(h.shape, generator=generator, dtype=h.dtype)

    a = ep_gradients(model, x, y, beta=0.2, steps=(10, 5), state_transform=noisy(0))
    b = ep_gradients(model, x, y, beta=0.2, steps=(10, 5), state_transform=noisy(0),
                     batch_nudges=False)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("nudged_steps", [1, 2])
def test_the_first_nudged_step_reuses_the_free_phase_product(nudged_steps: int) -> None:
    """The batched phases start from the free phase's last product h_free W_effᵀ (one product
    fewer per phase): the same estimate as the phases run one after another, even when a
    nudged phase is that single step."""
    model, _ = build("standard", 7, 16, 4, sn="recurrent", seed=2, dtype=torch.float64)
    x = torch.randn(6, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    y = torch.arange(6) % 4
    kwargs = dict(beta=0.25, estimator="symmetric", steps=(12, nudged_steps))
    batched = ep_gradients(model, x, y, **kwargs)
    sequential = ep_gradients(model, x, y, batch_nudges=False, **kwargs)
    for name, g in sequential.items():
        assert torch.allclose(batched[name], g, rtol=1e-12, atol=1e-14 * float(g.abs().max()))
    for a, b in zip(batched.nudged, sequential.nudged):
        assert a.steps == b.steps == nudged_steps
        assert torch.allclose(a.residual, b.residual, rtol=1e-9)
    # The W gradient is symmetric: the paired Gram product's antisymmetric part is removed by
    # the pull-back through W ↦ ½(W + Wᵀ).
    assert torch.allclose(batched["W"], batched["W"].T, rtol=0, atol=1e-15)


def test_weighted_grams_pair_opposite_weights_into_one_product() -> None:
    generator = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(5, 4, dtype=torch.float64, generator=generator) for _ in range(3))
    explicit = 0.7 * (a.T @ a) - 0.7 * (b.T @ b) + 0.2 * (c.T @ c)
    paired = weighted_grams([(a, 0.7), (c, 0.2), (b, -0.7)])
    assert not torch.allclose(paired, paired.T)  # the one product is not symmetric …
    assert torch.allclose(0.5 * (paired + paired.T), explicit, rtol=1e-13)  # … its part is
    unpaired = weighted_grams([(a, 0.7), (b, 0.7)])  # equal weights: two products, exact
    assert torch.equal(unpaired, 0.7 * (a.T @ a) + 0.7 * (b.T @ b))


@pytest.mark.parametrize(("estimator", "points", "batched"), [
    ("symmetric", None, True), ("symmetric", None, False), ("one_sided", None, True),
    ("holomorphic", 4, True)])
def test_unmeasured_nudged_phases_give_the_same_estimate_and_say_so(
        estimator: str, points: int | None, batched: bool) -> None:
    """What the trainer asks for: no closing residual of the nudged phases (one update of all
    their states fewer), the same estimate bit for bit, stats that do not claim convergence."""
    model, _ = build("standard", 7, 16, 4, sn="recurrent", seed=1, dtype=torch.float64)
    x = torch.randn(6, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y = torch.arange(6) % 4
    kwargs = dict(beta=0.25, estimator=estimator, n_points=points, steps=(12, 4),
                  batch_nudges=batched)
    measured = ep_gradients(model, x, y, **kwargs)
    unmeasured = ep_gradients(model, x, y, nudged_residuals=False, **kwargs)
    assert all(torch.equal(measured[k], unmeasured[k]) for k in measured)
    assert torch.equal(measured.free.residual, unmeasured.free.residual)
    assert all(bool(s.residual.isfinite().all()) for s in measured.nudged)
    for stats in unmeasured.nudged:
        assert bool(stats.residual.isnan().all()) and not bool(stats.converged.any())
        assert stats.outcome is Outcome.NOT_MEASURED and not stats.diverged
        assert "residual not measured" in stats.summary()
    assert not unmeasured.converged  # an unmeasured phase is not called converged


@pytest.mark.parametrize("kwargs", [dict(steps=None), dict(steps=(12, 4), on_unconverged="warn"),
                                    dict(steps=(12, 4), on_unconverged="raise")])
def test_unmeasured_nudged_phases_need_truncation_and_recording(kwargs: dict) -> None:
    model, _ = build("standard", 7, 16, 4, seed=1, dtype=torch.float64)
    with pytest.raises(ValueError, match="nudged_residuals=False"):
        ep_gradients(model, torch.zeros(3, 7, dtype=torch.float64), torch.arange(3), beta=0.25,
                     nudged_residuals=False, **kwargs)


def test_an_unmeasured_phase_still_marks_its_non_finite_rows() -> None:
    """Like a measured one (`solvers._finish`): residual inf on a non-finite row, so the split
    per phase and `diverged` see it; NaN (not measured) on the finite rows."""
    from eqprop_core.gradients import _Solve, _split_stats

    def blow_up_row_2(h: torch.Tensor) -> torch.Tensor:
        out = h + 1.0
        out[2] = float("inf")
        return out

    h, stats = _Solve("anderson", 1e-6, 10)(blow_up_row_2, torch.zeros(4, 3), 3, measured=False)
    assert stats.diverged and torch.isinf(stats.residual[2])
    assert bool(stats.residual[[0, 1, 3]].isnan().all()) and not bool(stats.converged.any())
    first, second = _split_stats(stats, 2)
    assert second.diverged and not first.diverged  # rows 0-1 finite, row 2 in the second half
    assert first.outcome is Outcome.NOT_MEASURED and second.outcome is Outcome.DIVERGED
    assert stats.outcome is Outcome.DIVERGED  # a divergence outranks an unmeasured residual
