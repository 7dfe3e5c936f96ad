"""Run a property over hypothesis-drawn examples and keep the evidence.

`worst_case` measures a statistic on every example, keeps the largest, hunts for larger ones
with `hypothesis.target`, and, when an example breaks the bound, keeps the *shrunk*
counterexample that hypothesis replays last. `find_example` returns the minimal example that
satisfies a condition (used by negative controls to exhibit the failure they expect).

A measurement that raises — `MeasurementFailed` (an unconverged phase with its residual, a
missing premise with its value), or any other error — is a failed example, not a crashed track:
the worst statistic becomes NaN (so every check on it fails) and the outcome lists each distinct
failure hypothesis found (type, message, its shrunk example, and the value and bound a
`MeasurementFailed` carries), also when hypothesis reports several at once (an ExceptionGroup).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
from hypothesis import given, target
from hypothesis.errors import HypothesisException, NoSuchExample, Unsatisfiable
from hypothesis.strategies import SearchStrategy

from .bounds import Bound
from .evidence import MeasurementFailed
from .profiles import draws_depend_only_on_seed, track_settings

EXAMPLE = "measured_example"  # the attribute `worst_case` puts on a measurement's exception


@dataclass
class SearchOutcome:
    """What a property search saw: example count, worst statistic, shrunk counterexample."""

    examples: int
    worst: float
    worst_example: str | None
    counterexample: str | None
    counterexample_value: float | None
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def falsified(self) -> bool:
        return self.counterexample is not None or bool(self.failures)

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {"examples": self.examples, "worst_example": self.worst_example}
        if self.counterexample is not None:
            out["shrunk_counterexample"] = self.counterexample
            out["counterexample_value"] = self.counterexample_value
        if self.failures:
            out["failures"] = self.failures
        return out


def _leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside an exception group (hypothesis's several failures), or `error`."""
    inner = getattr(error, "exceptions", None)
    if isinstance(inner, tuple):
        return [leaf for each in inner for leaf in _leaves(each)]
    return [error]


def _failure(error: BaseException) -> dict[str, Any]:
    """One failure as recorded: type, message, the shrunk example, a premise's value and bound."""
    out: dict[str, Any] = {"type": type(error).__name__, "message": str(error),
                           "example": getattr(error, EXAMPLE, None)}
    if isinstance(error, MeasurementFailed):
        out.update(check=error.name, value=error.value, bound=error.bound)
    return out


def measured_failures(error: Exception) -> list[dict[str, Any]] | None:
    """The distinct failures of a search that raised `error` (one, or an ExceptionGroup), each
    with its example — or None when something else than the measurement raised (a hypothesis
    error such as Unsatisfiable, which the caller must see)."""
    leaves = _leaves(error)
    if not all(hasattr(leaf, EXAMPLE) for leaf in leaves):
        return None
    return [_failure(leaf) for leaf in leaves]


def worst_case(
    strategy: SearchStrategy,
    measure: Callable[[Any], float],
    *,
    bound: float | Bound,
    max_examples: int,
    seed: int,
    hunt: bool = True,
) -> SearchOutcome:
    """Largest `measure(example)` over drawn examples; falsified if any exceeds `bound` (a
    number, or an upper `Bound`: a search hunts for the largest value).

    NaN counts as exceeding the bound. A measurement that raises (module doc) makes the worst
    statistic NaN and is listed in `failures`, with its shrunk example.
    """
    if isinstance(bound, Bound):
        if bound.comparator != "<=":
            raise ValueError(f"worst_case hunts the largest value, so its bound must be an "
                             f"upper one ('<='), not {bound.text!r}")
        bound = bound.limit
    seen: dict[str, Any] = {"n": 0, "worst": -math.inf, "worst_repr": None,
                            "fail_repr": None, "fail_value": None}

    def exceeds(value: float) -> bool:
        return not (value <= bound)  # True for NaN

    @track_settings(max_examples)
    @given(strategy)
    def prop(example: Any) -> None:
        try:
            value = float(measure(example))
        except Exception as error:
            if not isinstance(error, HypothesisException):  # assume() & co. steer the search
                setattr(error, EXAMPLE, repr(example))
            raise
        seen["n"] += 1
        if hunt and math.isfinite(value):
            target(value, label="measured statistic")
        if value > seen["worst"] or (math.isnan(value) and not math.isnan(seen["worst"])):
            seen["worst"], seen["worst_repr"] = value, repr(example)
        if exceeds(value):
            seen["fail_repr"], seen["fail_value"] = repr(example), value
            exceeded = AssertionError(f"{value} exceeds {bound}")
            setattr(exceeded, EXAMPLE, repr(example))
            raise exceeded

    counterexample, failures = None, []
    try:
        with draws_depend_only_on_seed():
            hypothesis.seed(seed)(prop)()
    except Exception as error:
        found = measured_failures(error)
        if found is None:
            raise
        # the last failing call is hypothesis's shrunk replay
        counterexample = seen["fail_repr"]
        if any(f["type"] != "AssertionError" for f in found):  # a measurement raised
            failures, seen["worst"] = found, math.nan
            counterexample = counterexample or found[0]["example"]
    return SearchOutcome(
        examples=seen["n"], worst=seen["worst"], worst_example=seen["worst_repr"],
        counterexample=counterexample,
        counterexample_value=seen["fail_value"] if seen["fail_repr"] else None,
        failures=failures,
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


@dataclass(frozen=True)
class Search:
    """One search of a track, as data: the check it records (`name`), the measure of a drawn
    case and the upper bound the worst case is held to; `hunt`: steer the draws towards larger
    values (`hypothesis.target`)."""

    name: str
    measure: Callable[[Any], float]
    bound: Bound
    hunt: bool = True

    def __post_init__(self) -> None:
        if self.bound.comparator != "<=":
            raise ValueError(f"search {self.name!r}: a search hunts the largest value, so its "
                             f"bound must be an upper one, not {self.bound.text!r}")

    def run(self, draws: SearchStrategy, *, max_examples: int, seed: int) -> SearchOutcome:
        """The worst case of `measure` over `draws`."""
        return worst_case(draws, self.measure, bound=self.bound, max_examples=max_examples,
                          seed=seed, hunt=self.hunt)


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
