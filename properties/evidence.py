"""Evidence: one measured value, the bound it is held to, and the verdict.

Every constructor decides `passed` from the value itself; a NaN or ∞ value never passes a
numeric bound, so a diverged measurement cannot slip through as a pass.

A measurement whose premise fails (an unconverged phase, a missing contraction) raises
`MeasurementFailed` with what it measured, the value and the bound it missed: a search records
it as a failed example (`properties.search`), a track as a failed check (`.evidence()`), never
as a crash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Evidence:
    name: str
    value: Any
    bound: str
    passed: bool
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        record = {"name": self.name, "value": self.value, "bound": self.bound,
                  "passed": bool(self.passed)}
        if self.details:
            record["details"] = self.details
        return record


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def at_most(name: str, value: float, bound: float, **details: Any) -> Evidence:
    """Passes iff value ≤ bound (and value is finite)."""
    value = float(value)
    return Evidence(name, value, f"<= {bound:.6g}", _finite(value) and value <= bound, details)


def at_least(name: str, value: float, bound: float, **details: Any) -> Evidence:
    """Passes iff value ≥ bound (and value is finite)."""
    value = float(value)
    return Evidence(name, value, f">= {bound:.6g}", _finite(value) and value >= bound, details)


def within(name: str, value: float, target: float, rel: float, **details: Any) -> Evidence:
    """Passes iff |value − target| ≤ rel·|target|."""
    value, target = float(value), float(target)
    ok = _finite(value) and _finite(target) and abs(value - target) <= rel * abs(target)
    return Evidence(name, value, f"within {rel:.3g} (relative) of {target:.6g}", ok,
                    {"target": target, **details})


def holds(name: str, condition: bool, bound: str, value: Any = None, **details: Any) -> Evidence:
    """A yes/no property; `bound` states what had to hold."""
    return Evidence(name, bool(condition) if value is None else value, bound, bool(condition),
                    details)


class MeasurementFailed(ValueError):
    """A measurement could not be made because its premise failed: `name` is the premise,
    `value` what was measured (a residual, a Lipschitz constant) and `bound` what it missed."""

    def __init__(self, name: str, value: float, bound: str, **details: Any) -> None:
        super().__init__(f"{name}: {value:.6g} (needs {bound})")
        self.name, self.value, self.bound, self.details = name, float(value), bound, details

    def evidence(self) -> Evidence:
        return Evidence(self.name, self.value, self.bound, False, self.details)


def require_converged(stats: Any, phase: str) -> None:
    """Raise `MeasurementFailed` naming `phase` and its max residual unless every sample of a
    solve (`SolverStats`: all_converged, max_residual, tol) converged."""
    if not stats.all_converged:
        raise MeasurementFailed(f"{phase} converged: max residual ||T(h) - h||",
                                stats.max_residual, f"<= tol {stats.tol:.3g}",
                                solver=stats.solver, steps=stats.steps)
