"""Planted bugs that the tracks used to miss, or caught only by crashing: each new check must
fail on its planted bug and pass on the real code (issue 14, item 9)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import strategies as st

from eqprop_core import LoopedMLP, hardware
from eqprop_core.variants import SN_MODES, build, get_variant, sn_flags
from properties import MeasurementFailed, require_converged, worst_case
from properties import gradients as property_gradients
from properties.gradients import GradientProblem, gradient_models
from properties.matched_initialization import initialization_evidence
from properties.quantizer_promise import quantizer_promise_evidence
from tracks.context import TrackContext
from tracks.premises import records_failed_premise


# -- (a) matched initialization, from the seed alone ------------------------------------------
def planted_build(bug: str):
    """`variants.build` with one realistic bug."""

    def builder(variant, n_in, n_hidden, n_out, *, sn="recurrent", seed=0, **_):
        chosen, flags = get_variant(variant), sn_flags(sn)

        def model() -> LoopedMLP:
            return LoopedMLP(n_in, n_hidden, n_out, symmetric=chosen.symmetric, **flags)

        if bug == "global rng":  # draws from whatever state the caller left
            return model(), None
        if bug == "reseeds the caller":  # right numbers, but the caller's RNG is reset
            torch.manual_seed(seed)
            return model(), None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed({"seed per SN arm": seed + SN_MODES.index(sn),
                               "seed ignored": 0}[bug])
            return model(), None

    return builder


INIT_CHECKS = ("same across arms", "differs across seeds", "independent of global state",
               "leaves global state")


def init_verdicts(builder) -> dict[str, bool]:
    return dict(zip(INIT_CHECKS, (e.passed for e in initialization_evidence(3, builder))))


def test_build_passes_every_initialization_check() -> None:
    evidence = initialization_evidence(3)
    assert all(e.passed and e.value == 0 for e in evidence), [e.to_json() for e in evidence]


@pytest.mark.parametrize("bug, failing", [
    # drawing from the caller's generator also advances it
    ("global rng", {"same across arms", "independent of global state", "leaves global state"}),
    ("seed per SN arm", {"same across arms"}),
    ("seed ignored", {"differs across seeds"}),
    ("reseeds the caller", {"leaves global state"}),
])
def test_each_planted_build_bug_fails_its_check(bug: str, failing: set[str]) -> None:
    verdicts = init_verdicts(planted_build(bug))
    assert {name for name, passed in verdicts.items() if not passed} == failing


# -- (b) the quantizers' own promise ----------------------------------------------------------
def planted_quantize(rounder=torch.round, clamp: bool = True, levels=None):
    """`hardware.quantize` with the rounding, the clamp or the level count replaced."""

    def quantize(values, bits, range=1.0):
        Q = levels(bits) if levels else 2 ** (bits - 1) - 1
        if values.is_complex():
            return torch.complex(quantize(values.real, bits, range),
                                 quantize(values.imag, bits, range))
        k = rounder(values / (range / Q))
        return (torch.clamp(k, -Q, Q) if clamp else k) * (range / Q)

    return quantize


def truncating_fake_quantize(matrix, bits):
    scale = float(matrix.detach().abs().max()) / (2 ** (bits - 1) - 1)
    return torch.trunc(matrix / scale) * scale


PROMISE_CHECKS = ("state error", "state mean", "weight error", "weight mean")


def promise_verdicts() -> dict[str, tuple[float, bool]]:
    return dict(zip(PROMISE_CHECKS, ((e.value, e.passed)
                                     for e in quantizer_promise_evidence(0, 60))))


def test_the_quantizers_keep_their_promise() -> None:
    verdicts = promise_verdicts()
    assert all(passed for _, passed in verdicts.values()), verdicts
    assert verdicts["state error"][0] > 0.99  # the half-way points are drawn: the bound is tight


@pytest.mark.parametrize("patch, failing", [
    ({"quantize": planted_quantize(torch.floor)}, set(PROMISE_CHECKS)),
    ({"quantize": planted_quantize(torch.trunc)}, set(PROMISE_CHECKS)),
    ({"quantize": planted_quantize(clamp=False)}, {"state error"}),
    ({"quantize": planted_quantize(levels=lambda b: 2 ** b - 1)},
     {"state error", "weight error"}),
    ({"fake_quantize": truncating_fake_quantize}, {"weight error", "weight mean"}),
])
def test_each_planted_quantizer_bug_fails_its_check(monkeypatch, patch, failing) -> None:
    for name, planted in patch.items():
        monkeypatch.setattr(hardware, name, planted)
    verdicts = promise_verdicts()
    assert {name for name, (_, passed) in verdicts.items() if not passed} == failing
    if "state mean" in failing:  # truncation: |mean error| ~ Delta/2, far beyond the bound
        assert verdicts["state mean"][0] > 10


# -- (c) failed premises and several failures are recorded, not crashed ---------------------
def premise_or_crash(x: int) -> float:
    if x > 50:
        raise MeasurementFailed("phase converged: max residual", x * 1e-3, "<= tol 1e-12")
    if x < -50:
        raise ZeroDivisionError("planted")
    return float(x)


def test_a_failed_premise_in_a_search_is_a_nan_with_its_value_and_shrunk_example() -> None:
    out = worst_case(st.integers(0, 100), premise_or_crash, bound=1e9, max_examples=100, seed=0)
    assert math.isnan(out.worst) and out.falsified
    (failure,) = out.failures
    assert failure["type"] == "MeasurementFailed" and failure["example"] == "51"
    assert failure["value"] == pytest.approx(0.051) and failure["bound"] == "<= tol 1e-12"
    assert out.details()["failures"] == out.failures


def test_several_distinct_failures_are_each_named_not_an_exception_group() -> None:
    out = worst_case(st.integers(-100, 100), premise_or_crash, bound=30, max_examples=200,
                     seed=0)
    kinds = {f["type"]: f["example"] for f in out.failures}
    assert kinds == {"MeasurementFailed": "51", "ZeroDivisionError": "-51",
                     "AssertionError": "31"}
    assert math.isnan(out.worst) and out.counterexample == "31"


def test_hypothesis_errors_of_the_search_itself_still_propagate() -> None:
    from hypothesis import assume
    from hypothesis.errors import Unsatisfiable

    def rejected(x: int) -> float:
        assume(False)
        return 0.0

    with pytest.raises(Unsatisfiable):
        worst_case(st.integers(), rejected, bound=1.0, max_examples=5, seed=0)


def test_a_solver_that_stops_early_fails_the_gradient_search_with_its_residual(monkeypatch):
    """Planted: the phases stop after 2 updates. Before, PhaseNotConverged crashed the search."""
    real = property_gradients.ep_gradients
    monkeypatch.setattr(property_gradients, "ep_gradients",
                        lambda *a, **k: real(*a, **{**k, "max_steps": 2}))
    out = worst_case(gradient_models(max_hidden=4),
                     lambda spec: GradientProblem(spec).error(0.01).worst_relative_error,
                     bound=1e-3, max_examples=3, seed=0)
    assert math.isnan(out.worst)
    (failure,) = out.failures
    assert failure["type"] == "MeasurementFailed" and "free phase" in failure["check"]
    assert failure["value"] > 1e-14 and failure["example"].startswith("ModelSpec(")


def test_an_unconverged_phase_outside_a_search_is_the_tracks_failed_check() -> None:
    model = LoopedMLP(3, 4, 2, dtype=torch.float64)
    _, stats = model.equilibrium(torch.ones(2, 3, dtype=torch.float64), tol=1e-300,
                                 max_steps=2)

    @records_failed_premise
    def run(ctx: TrackContext) -> None:
        require_converged(stats, "free phase")
        ctx.note("not reached")

    ctx = TrackContext(number=99, name="planted")
    run(ctx)
    (check,) = ctx.checks
    assert not check.passed and check.value == stats.max_residual > 0
    assert check.bound == "<= tol 1e-300" and "not reached" not in ctx.notes


def test_build_is_the_real_one_here() -> None:  # the planted builders never leak
    a, _ = build("standard", 4, 5, 2, seed=1)
    b, _ = build("directed", 4, 5, 2, sn="all", seed=1)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
