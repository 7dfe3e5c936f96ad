"""Slopes of the registered activations, measured from φ alone.

Every Lipschitz certificate of the suite is L = ‖W_eff‖₂ · sup|φ′|, with sup|φ′| the constant an
activation declares (`Activation.max_slope`). Here it is measured, not trusted: the secant

    s(a, b) = |φ(a) − φ(b)| / |a − b|

never exceeds sup|φ′| (mean value theorem) and approaches it near the steepest point; the
declared derivative φ′ matches the central difference [φ(a + ε) − φ(a − ε)] / 2ε.

Rounding (float64, unit roundoff u = 2^-53): φ(a) − φ(b) carries an absolute error ≤ 4u·max|φ|
≤ 4u (|φ| ≤ 1 for tanh and the sigmoid), so with |a − b| ≥ 1e-3 the secant's relative error is
≤ 4u/1e-3 < 1e-12. The central difference with ε = 1e-5 errs by ≤ sup|φ‴|ε²/6 + 2u/ε·… ≤ 3.4e-11
+ 2.3e-11 (sup|φ‴| = 2 for tanh, 1/8 for the sigmoid).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import strategies as st

from eqprop_core.activations import ACTIVATIONS

FD_STEP = 1e-5
MIN_GAP = 1e-3


@dataclass(frozen=True)
class SlopePair:
    """Two pre-activations a, b = a + gap of the activation `activation`."""

    activation: str
    a: float
    gap: float

    @property
    def b(self) -> float:
        return self.a + self.gap


@st.composite
def slope_pairs(draw: st.DrawFn, activations: tuple[str, ...] = tuple(ACTIVATIONS)) -> SlopePair:
    """Pairs of pre-activations in [-6, 6], `MIN_GAP` to 3 apart, for each activation."""
    return SlopePair(draw(st.sampled_from(activations)),
                     draw(st.floats(-6.0, 6.0, allow_nan=False)),
                     draw(st.floats(MIN_GAP, 3.0, allow_nan=False)))


def _phi(case: SlopePair, a: float) -> float:
    return float(ACTIVATIONS[case.activation].phi(torch.tensor(a, dtype=torch.float64)))


def secant_over_max_slope(case: SlopePair, *, claimed: float | None = None) -> float:
    """s(a, b) / sup|φ′|, with sup|φ′| the declared one unless `claimed` replaces it."""
    slope = ACTIVATIONS[case.activation].max_slope if claimed is None else claimed
    return abs(_phi(case, case.a) - _phi(case, case.b)) / case.gap / slope


def derivative_error(case: SlopePair) -> float:
    """|φ′(a) − central difference at a|, the declared derivative against φ itself."""
    derivative = float(ACTIVATIONS[case.activation].derivative(
        torch.tensor(case.a, dtype=torch.float64)))
    central = (_phi(case, case.a + FD_STEP) - _phi(case, case.a - FD_STEP)) / (2 * FD_STEP)
    return abs(derivative - central)
