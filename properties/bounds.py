"""A bound is a value: the comparator, the number, and the reason it is that number.

A track declares each threshold once, as a module-level `Bound`, with the derivation that now
lives beside it rather than in a docstring three screens away:

    RATIO = at_most_bound(1.0, "a theorem's left side over its right: > 1 is a violation")

and hands the same object to the search (`worst_case(..., bound=RATIO)`) and to the evidence
(`RATIO.check(name, value)`), so the number the search hunts against and the number the record
states cannot drift apart. The JSON `bound` field (`RATIO.text`: "<= 1"), the claim texts and
the generated docs are rendered from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

from .evidence import Evidence

Comparator = Literal["<=", ">="]


@dataclass(frozen=True)
class Bound:
    """`value comparator limit` must hold; `reason` says why `limit` is what it is."""

    comparator: Comparator
    limit: float
    reason: str

    def __post_init__(self) -> None:
        if self.comparator not in ("<=", ">="):
            raise ValueError(f"comparator must be '<=' or '>=', not {self.comparator!r}")
        if not isinstance(self.limit, (int, float)) or math.isnan(self.limit):
            raise ValueError(f"limit must be a number, not {self.limit!r}")
        if not self.reason.strip():
            raise ValueError("a bound needs its reason: the derivation or the source of the "
                             "number")

    @property
    def text(self) -> str:
        """The bound as a record states it: '<= 1', '>= 0.95'."""
        return f"{self.comparator} {self.limit:.6g}"

    def __str__(self) -> str:
        return self.text

    def holds(self, value: float) -> bool:
        """Whether a measured value satisfies the bound (NaN and ±inf never do)."""
        value = float(value)
        if not math.isfinite(value):
            return False
        return value <= self.limit if self.comparator == "<=" else value >= self.limit

    def check(self, name: str, value: float, **details: Any) -> Evidence:
        """The evidence that `value` (the measurement called `name`) meets the bound."""
        value = float(value)
        return Evidence(name, value, self.text, self.holds(value), details)

    def scaled(self, factor: float, reason: str) -> Bound:
        """The same comparator at `factor` × the limit (a bound derived from this one)."""
        return Bound(self.comparator, self.limit * factor, reason)


@dataclass(frozen=True)
class RelativeBound:
    """`|value − target| <= rel·|target|`, the target known only when measured (a fitted slope
    held to its predicted order); `reason` says why `rel` is what it is."""

    rel: float
    reason: str

    def __post_init__(self) -> None:
        if not (isinstance(self.rel, (int, float)) and self.rel >= 0):
            raise ValueError(f"rel must be a number >= 0, not {self.rel!r}")
        if not self.reason.strip():
            raise ValueError("a bound needs its reason: the derivation or the source of the "
                             "number")

    def text(self, target: float) -> str:
        return f"within {self.rel:.3g} (relative) of {float(target):.6g}"

    def check(self, name: str, value: float, target: float, **details: Any) -> Evidence:
        """The evidence that `value` lies within `rel` of `target`."""
        value, target = float(value), float(target)
        ok = (math.isfinite(value) and math.isfinite(target)
              and abs(value - target) <= self.rel * abs(target))
        return Evidence(name, value, self.text(target), ok, {"target": target, **details})


def at_most_bound(limit: float, reason: str) -> Bound:
    """`value <= limit`, for `reason`."""
    return Bound("<=", float(limit), reason)


def at_least_bound(limit: float, reason: str) -> Bound:
    """`value >= limit`, for `reason`."""
    return Bound(">=", float(limit), reason)


def declared_bounds(module: ModuleType) -> dict[str, Bound | RelativeBound]:
    """The bounds a module declares at top level, by name, in declaration order (what the
    generated docs list for a track)."""
    return {name: value for name, value in vars(module).items()
            if isinstance(value, (Bound, RelativeBound)) and not name.startswith("_")}
