"""properties: evidence verdicts, property searches, strategies and profiles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import theory
from properties import (
    ModelSpec,
    as_numpy,
    at_least,
    at_most,
    contractive_models,
    find_example,
    holds,
    noncontractive_models,
    within,
    worst_case,
)
from properties.profiles import load_profile_from_env

NON_FINITE = [math.nan, math.inf, -math.inf]


# -- evidence ---------------------------------------------------------------------------------
@pytest.mark.parametrize("value", NON_FINITE)
def test_non_finite_values_never_pass(value: float) -> None:
    assert not at_most("x", value, 1.0).passed
    assert not at_least("x", value, 1.0).passed
    assert not within("x", value, 1.0, 0.5).passed
    assert not within("x", 1.0, value, 0.5).passed  # nor does a non-finite target


@given(bound=st.floats(-1e6, 1e6))
def test_nan_never_passes_any_bound(bound: float) -> None:
    assert not at_most("x", math.nan, bound).passed
    assert not at_least("x", math.nan, bound).passed


def test_at_most_and_at_least_are_inclusive_at_the_bound() -> None:
    assert at_most("x", 1.0, 1.0).passed and at_least("x", 1.0, 1.0).passed
    assert not at_most("x", math.nextafter(1.0, 2.0), 1.0).passed
    assert not at_least("x", math.nextafter(1.0, 0.0), 1.0).passed


def test_within_is_relative_to_the_target() -> None:
    assert within("x", 10.9, 10.0, 0.1).passed
    assert not within("x", 11.1, 10.0, 0.1).passed
    assert not within("x", 8.9, 10.0, 0.1).passed
    assert within("x", 0.0, 0.0, 0.1).passed and not within("x", 1e-300, 0.0, 0.1).passed


def test_holds_records_the_verdict() -> None:
    assert holds("x", True, "must hold").passed
    evidence = holds("x", False, "must hold", value=3)
    assert not evidence.passed and evidence.value == 3


def test_evidence_json_record() -> None:
    record = at_most("sigma", 0.5, 0.95, examples=12).to_json()
    assert record == {"name": "sigma", "value": 0.5, "bound": "<= 0.95", "passed": True,
                      "details": {"examples": 12}}
    assert at_least("cos", 0.99, 0.9999).to_json()["bound"] == ">= 0.9999"


# -- searches ---------------------------------------------------------------------------------
def test_worst_case_finds_and_shrinks_a_counterexample() -> None:
    outcome = worst_case(st.integers(0, 10_000), float, bound=10, max_examples=100, seed=0)
    assert outcome.falsified
    assert outcome.counterexample == "11"  # shrunk to the smallest integer > 10
    assert outcome.counterexample_value == 11.0
    assert outcome.worst >= 11.0
    assert outcome.details()["shrunk_counterexample"] == "11"


def test_worst_case_reports_the_worst_value_when_the_bound_holds() -> None:
    outcome = worst_case(st.integers(0, 100), float, bound=100, max_examples=100, seed=0)
    assert not outcome.falsified and outcome.counterexample_value is None
    assert outcome.worst == 100.0  # target() hunts up to the top of the range
    assert outcome.worst_example == "100"
    assert 1 <= outcome.examples <= 100


def test_worst_case_counts_nan_as_exceeding() -> None:
    outcome = worst_case(st.integers(0, 5), lambda n: math.nan if n >= 3 else 0.0, bound=1e9,
                         max_examples=50, seed=0)
    assert outcome.falsified and outcome.counterexample == "3"
    assert math.isnan(outcome.counterexample_value)


def test_worst_case_is_reproducible_from_its_seed() -> None:
    runs = [worst_case(st.floats(0, 1), lambda v: v, bound=2.0, max_examples=30, seed=4)
            for _ in range(2)]
    assert runs[0].worst == runs[1].worst and runs[0].examples == runs[1].examples


def test_find_example_returns_the_minimal_example() -> None:
    assert find_example(st.integers(0, 1000), lambda n: n > 5, max_examples=100, seed=0) == 6


def test_find_example_returns_none_when_impossible() -> None:
    assert find_example(st.integers(0, 10), lambda n: n > 100, max_examples=50, seed=0) is None


# -- strategies -------------------------------------------------------------------------------
@given(spec=contractive_models(max_hidden=10, symmetric=None))
def test_contractive_models_are_certified_contractions(spec) -> None:
    model = spec.build()
    L = theory.lipschitz_certificate(as_numpy(model).weight, spec.activation)
    assert L <= spec.gamma < 1
    assert model.lipschitz_certificate() < 1


@given(spec=noncontractive_models(max_hidden=10))
def test_noncontractive_models_have_the_drawn_norm(spec) -> None:
    weight = as_numpy(spec.build()).weight
    assert abs(theory.spectral_norm(weight) - spec.weight_scale) <= 1e-9 * spec.weight_scale
    assert theory.spectral_norm(weight) > 1.0  # no contraction certificate possible


def test_model_spec_rebuilds_the_same_model() -> None:
    spec = ModelSpec(n_in=3, n_hidden=5, weight_scale=1e3, structure="spike", seed=9)
    a, b = as_numpy(spec.build()), as_numpy(spec.build())
    assert np.array_equal(a.weight, b.weight) and np.array_equal(a.U, b.U)
    assert np.array_equal(spec.inputs(4).numpy(), spec.inputs(4).numpy())


# -- profiles ---------------------------------------------------------------------------------
def test_unknown_hypothesis_profile_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "turbo")
    with pytest.raises(ValueError, match="HYPOTHESIS_PROFILE='turbo'"):
        load_profile_from_env("dev")
