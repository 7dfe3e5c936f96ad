"""Bounds as values (issue 18): the record's bound field, the verdict and the search all come
from one declared object."""

from __future__ import annotations

import math
import types

import pytest
from hypothesis import strategies as st

from properties import (
    Bound,
    RelativeBound,
    Search,
    at_least,
    at_least_bound,
    at_most,
    at_most_bound,
    declared_bounds,
    within,
    worst_case,
)


@pytest.mark.parametrize("limit", [0, 1.0, 1e-9, 1 + 1e-9, 0.95, 1.5, 3, 2.5e-4])
@pytest.mark.parametrize("value", [0.0, 0.5, 0.95, 1.0, 1 + 2e-9, 2.0, math.nan, math.inf])
def test_a_bound_renders_and_decides_as_the_number_did(limit: float, value: float) -> None:
    upper, lower = at_most_bound(limit, "r"), at_least_bound(limit, "r")
    assert upper.check("x", value, k=1).to_json() == at_most("x", value, limit, k=1).to_json()
    assert lower.check("x", value).to_json() == at_least("x", value, limit).to_json()


def test_a_relative_bound_renders_and_decides_as_within() -> None:
    for value, target in [(1.1, 1.0), (1.3, 1.0), (math.nan, 1.0), (2.0, -2.0)]:
        assert (RelativeBound(0.2, "r").check("s", value, target, n=3).to_json()
                == within("s", value, target, 0.2, n=3).to_json())


@pytest.mark.parametrize("args", [("<", 1.0, "r"), ("<=", math.nan, "r"), ("<=", 1.0, " ")])
def test_a_malformed_bound_is_a_value_error(args: tuple) -> None:
    with pytest.raises(ValueError):
        Bound(*args)
    with pytest.raises(ValueError):
        RelativeBound(-1.0, "r")


def test_a_search_takes_the_declared_bound_and_fails_past_it() -> None:
    bound = at_most_bound(0.5, "half")
    spec = Search("x itself", float, bound)
    ok = spec.run(st.floats(0, 0.4), max_examples=20, seed=1)
    bad = spec.run(st.floats(0, 1), max_examples=50, seed=1)
    assert not ok.falsified and ok.worst <= 0.4
    assert bad.falsified and bad.counterexample_value > 0.5
    assert worst_case(st.floats(0, 1), float, bound=bound, max_examples=50,
                      seed=1).worst == bad.worst
    with pytest.raises(ValueError, match="upper"):
        Search("x", float, at_least_bound(0.5, "lower"))


def test_declared_bounds_lists_a_modules_top_level_bounds() -> None:
    module = types.ModuleType("track_99_example")
    module.RATIO = at_most_bound(1.0, "a theorem's two sides: > 1 is a violation")
    module.SLOPE = RelativeBound(0.15, "the fitted order's stated tolerance")
    module._PRIVATE = at_least_bound(0.5, "not part of the track's declaration")
    module.LIMIT = 1.0  # a number, not a bound
    found = declared_bounds(module)
    assert list(found) == ["RATIO", "SLOPE"]
    assert found["RATIO"].text == "<= 1" and "violation" in found["RATIO"].reason
