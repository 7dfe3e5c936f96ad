"""Run a property over hypothesis-drawn examples and keep the evidence.

`worst_case` measures a statistic on every example, keeps the largest, hunts for larger ones
with `hypothesis.target`, and, when an example breaks the bound, keeps the *shrunk*
counterexample that hypothesis replays last. `find_example` returns the minimal example that
satisfies a condition (used by negative controls to exhibit the failure they expect).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hypothesis
from hypothesis import given, target
from hypothesis.errors import NoSuchExample, Unsatisfiable
from hypothesis.strategies import SearchStrategy

from .profiles import draws_depend_only_on_seed, track_settings


@dataclass
class SearchOutcome:
    """What a property search saw: example count, worst statistic, shrunk counterexample."""

    examples: int
    worst: float
    worst_example: str | None
    counterexample: str | None
    counterexample_value: float | None

    @property
    def falsified(self) -> bool:
        return self.counterexample is not None

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {"examples": self.examples, "worst_example": self.worst_example}
        if self.counterexample is not None:
            out["shrunk_counterexample"] = self.counterexample
            out["counterexample_value"] = self.counterexample_value
        return out


def worst_case(
    strategy: SearchStrategy,
    measure: Callable[[Any], float],
    *,
    bound: float,
    max_examples: int,
    seed: int,
    hunt: bool = True,
) -> SearchOutcome:
    """Largest `measure(example)` over drawn examples; falsified if any exceeds `bound`.

    NaN counts as exceeding the bound.
    """
    seen: dict[str, Any] = {"n": 0, "worst": -math.inf, "worst_repr": None,
                            "fail_repr": None, "fail_value": None}

    def exceeds(value: float) -> bool:
        return not (value <= bound)  # True for NaN

    @track_settings(max_examples)
    @given(strategy)
    def prop(example: Any) -> None:
        value = float(measure(example))
        seen["n"] += 1
        if hunt and math.isfinite(value):
            target(value, label="measured statistic")
        if value > seen["worst"] or (math.isnan(value) and not math.isnan(seen["worst"])):
            seen["worst"], seen["worst_repr"] = value, repr(example)
        if exceeds(value):
            seen["fail_repr"], seen["fail_value"] = repr(example), value
            raise AssertionError(f"{value} exceeds {bound}")

    counterexample = None
    try:
        with draws_depend_only_on_seed():
            hypothesis.seed(seed)(prop)()
    except AssertionError:
        counterexample = seen["fail_repr"]  # the last failing call is hypothesis's shrunk replay
    return SearchOutcome(
        examples=seen["n"], worst=seen["worst"], worst_example=seen["worst_repr"],
        counterexample=counterexample,
        counterexample_value=seen["fail_value"] if counterexample else None,
    )


def find_example(
    strategy: SearchStrategy, condition: Callable[[Any], bool], *, max_examples: int, seed: int
) -> Any | None:
    """The minimal example satisfying `condition` that hypothesis finds, or None."""
    try:
        with draws_depend_only_on_seed():
            return hypothesis.find(strategy, condition, settings=track_settings(max_examples),
                                   random=random.Random(seed))
    except (NoSuchExample, Unsatisfiable):
        return None


class MeasuredOnce:
    """Measure each drawn case once, however many searches look at it.

    Searches over the same strategy with the same seed draw the same cases, so a track that
    scores several metrics of one expensive measurement (a solve, a trajectory) wraps it here
    and each later search looks the case up by its repr.
    """

    def __init__(self, measure: Callable[[Any], Any]) -> None:
        self.measure = measure
        self.seen: dict[str, Any] = {}

    def __call__(self, case: Any) -> Any:
        key = repr(case)
        if key not in self.seen:
            self.seen[key] = self.measure(case)
        return self.seen[key]

    def metric(self, name: str) -> Callable[[Any], float]:
        """A measure for `worst_case`: one entry of the measured dict."""
        return lambda case: self(case)[name]

    def values(self) -> list[Any]:
        return list(self.seen.values())
