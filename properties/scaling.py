"""One-sided EP's bias is O(β), symmetric EP's O(β²): ĝ(β) − g* = aβ + O(β²), resp. cβ² + O(β⁴),
and the window of β where those leading terms rule, per model.

Theorem (Taylor expansion of β ↦ ∂E/∂θ(h_β) at β = 0, `eqprop_core/gradients.py`): log‖ĝ(β) − g*‖
against log β has slope 1 (one-sided) and 2 (symmetric) while β is in the asymptotic regime. How
far that regime reaches is model-dependent (the nudge is amplified by ‖(I − J*)⁻¹‖·‖V‖; leading
coefficients cancel across the batch): with a, c the relative bias coefficients read at a probe
(a = rel₁(β₀)/β₀ at β₀ = 1e-4, c = rel₂(β₀)/β₀² at β₀ = 1e-3), the one-sided relative error is
aβ + cβ² + … (its β² coefficient is the symmetric estimator's leading one: both are f‴/6 for
f(β) = ∂E/∂θ(h_β)) and the symmetric one cβ² + O(β⁴). The scales κ₁ = max(a, c/a) (one-sided)
and κ₂ = max(a, √c) (symmetric; its β⁴ term is not measured, and a — the amplification of the
nudge — sets the higher terms' scale) bound where the known terms stay small: βκ₁ ≤ ρ keeps the
one-sided bias ≤ ρ and its β² term ≤ ρ of its β term, βκ₂ ≤ ρ the symmetric bias ≤ ρ² and βa ≤ ρ.
`ScalingProblem.window` is 4 log-spaced β in [top/10, top], top = min(0.3, ρ/κ), ρ = 0.01.

The error fitted is the relative error of the energy-parameter gradient (W, U, b concatenated)
against `theory.implicit_gradients`: the readout V, c is exact at every β and carries no β law,
and a single parameter's leading coefficient can nearly cancel across the batch, bending that
parameter's line without any change of the estimator's order, while the concatenated error's
leading coefficient vanishes only if all of them do.
"""

from __future__ import annotations

import math

import numpy as np

from eqprop_core import ep_gradients

from .bounds import at_most_bound
from .gradients import ENERGY_PARAMETERS, GradientProblem, fitted_slope, flat

STATED_BETAS = np.geomspace(1e-3, 0.3, 8)  # issue 3's range; its top, 0.3, caps every window
ORDERS = {"one_sided": 1.0, "symmetric": 2.0}
PROBE_BETAS = {"one_sided": 1e-4, "symmetric": 1e-3}  # β₀: where ĉ = rel(β₀)/β₀^p is read
REGIME = 0.01  # ρ: a window ends at βκ = ρ, where the neglected terms reach 1% of the leading
WINDOW_POINTS = 4
# Issue 3's tolerances on a fitted log-log slope, |slope - order| (tracks 11 and 15).
ONE_SIDED_SLOPE = at_most_bound(
    0.1, "issue 3 acceptance: one-sided EP's fitted slope within 1 +- 0.1 (track 11 measured "
         "within 0.004 of the order in each model's asymptotic window, ~900 drawn and hunted "
         "models)")
SYMMETRIC_SLOPE = at_most_bound(
    0.15, "issue 3 acceptance: symmetric EP's fitted slope within 2 +- 0.15 (track 11 measured "
          "within 0.004 of the order in each model's asymptotic window, ~900 drawn and hunted "
          "models)")


def energy_error(problem: GradientProblem, beta: float, estimator: str) -> float:
    """‖ĝ − g*‖/‖g*‖ over W, U, b concatenated."""
    est, ref = problem.ep(float(beta), estimator), problem.implicit
    e = np.concatenate([flat(est[k]) for k in ENERGY_PARAMETERS])
    r = np.concatenate([flat(ref[k]) for k in ENERGY_PARAMETERS])
    return float(np.linalg.norm(e - r) / np.linalg.norm(r))


class ScalingProblem(GradientProblem):
    """A GradientProblem with its asymptotic window and its sweeps."""

    def coefficient(self, estimator: str) -> float:
        """ĉ = rel(β₀)/β₀^p, the leading coefficient of the estimator's relative bias."""
        beta = PROBE_BETAS[estimator]
        return energy_error(self, beta, estimator) / beta ** ORDERS[estimator]

    def radius(self, estimator: str) -> float:
        """κ, the inverse β-scale on which the estimator's neglected terms grow, from a and c
        (the one-sided and symmetric ĉ). The one-sided relative error is aβ + cβ² + … (its β²
        coefficient is the symmetric one's leading coefficient: both are f‴/6 for f(β) =
        ∂E/∂θ(h_β)), so κ₁ = max(a, c/a) keeps its bias ≤ ρ and its β² term ≤ ρ of its β term
        when βκ₁ ≤ ρ. The symmetric one is cβ² + O(β⁴) with a fourth-order term not measured
        here; κ₂ = max(a, √c) keeps its bias ≤ ρ² and βa — the amplification of the nudge,
        which sets the higher terms' scale — ≤ ρ."""
        a, c = self.coefficient("one_sided"), self.coefficient("symmetric")
        return max(a, c / a) if estimator == "one_sided" else max(a, math.sqrt(c))

    def window(self, estimator: str) -> np.ndarray:
        """WINDOW_POINTS log-spaced β in [top/10, top], top = min(0.3, ρ/κ)."""
        top = min(float(STATED_BETAS[-1]), REGIME / self.radius(estimator))
        return np.geomspace(top / 10, top, WINDOW_POINTS)

    def errors(self, betas: np.ndarray, estimator: str) -> list[float]:
        return [energy_error(self, b, estimator) for b in betas]

    def slope(self, betas: np.ndarray, estimator: str) -> float:
        return fitted_slope(betas, self.errors(betas, estimator))

    def window_slope(self, estimator: str) -> float:
        return self.slope(self.window(estimator), estimator)

    def parameter_slopes(self, betas: np.ndarray, estimator: str) -> dict[str, float]:
        return {k: fitted_slope(betas, [self.error(float(b), estimator).relative_error[k]
                                        for b in betas]) for k in ENERGY_PARAMETERS}

    def floor_ratio(self, estimator: str) -> float:
        """‖ĝ(tol) − ĝ(tol/10)‖/‖ĝ(tol) − g*‖ (W, U, b) at the smallest β of the estimator's
        window: the solve's share of the fitted error (tightening the tolerance 10× moves an
        estimate by about its own solver error)."""
        beta = float(self.window(estimator)[0])
        fitted = self.ep(beta, estimator)
        tighter = ep_gradients(self.model, self.x, self.y, beta=beta, estimator=estimator,
                               tol=self.tol / 10, on_unconverged="record")
        a = np.concatenate([flat(fitted[k]) for k in ENERGY_PARAMETERS])
        t = np.concatenate([flat(tighter[k]) for k in ENERGY_PARAMETERS])
        r = np.concatenate([flat(self.implicit[k]) for k in ENERGY_PARAMETERS])
        return float(np.linalg.norm(a - t) / np.linalg.norm(a - r))


# Track 11's statistics over the drawn models.
def deviation(slope: float, estimator: str) -> float:
    return abs(slope - ORDERS[estimator])


def value_range(values: np.ndarray, mask: np.ndarray) -> list[float] | None:
    """[min, max] of the masked values (None when the mask selects nothing)."""
    return [float(values[mask].min()), float(values[mask].max())] if mask.any() else None


def window_ranges(seen: list[ScalingProblem], estimator: str) -> dict[str, list[float]]:
    """The window slopes, window tops, bias coefficients and scales kappa over the models seen."""
    slopes = [p.window_slope(estimator) for p in seen]
    tops = [float(p.window(estimator)[-1]) for p in seen]
    coefficients = [p.coefficient(estimator) for p in seen]
    return {"slope_range": [min(slopes), max(slopes)], "window_top_range": [min(tops), max(tops)],
            "bias_coefficient_range": [min(coefficients), max(coefficients)],
            "kappa_range": [min(p.radius(estimator) for p in seen),
                            max(p.radius(estimator) for p in seen)]}


def mislabeled_slope(p: ScalingProblem) -> float:
    """The control's statistic: the one-sided estimator's slope on the symmetric window."""
    return p.slope(p.window("symmetric"), "one_sided")


def stated_details(seen: list[ScalingProblem], estimator: str, slopes: np.ndarray,
                   meets: np.ndarray) -> dict:
    """The stated figure's account over the drawn models: the share meeting it, the range of
    slopes, the worst model (its slope, per-parameter slopes, window top), and the relative
    error at β = 0.3 and the scale κ of the models meeting vs failing it."""
    worst = seen[int(np.argmax(np.abs(slopes - ORDERS[estimator])))]
    at_top = np.array([energy_error(p, STATED_BETAS[-1], estimator) for p in seen])
    kappa = np.array([p.radius(estimator) for p in seen])
    return dict(share_meeting=float(meets.mean()),
                draws=len(slopes), slope_range=[float(slopes.min()), float(slopes.max())],
                worst_model=repr(worst.spec), worst_model_slope=worst.slope(STATED_BETAS,
                                                                            estimator),
                worst_model_parameter_slopes=worst.parameter_slopes(STATED_BETAS, estimator),
                worst_model_window_top=float(worst.window(estimator)[-1]),
                relative_error_at_beta_0_3={"meeting": value_range(at_top, meets),
                                            "failing": value_range(at_top, ~meets)},
                kappa={"meeting": value_range(kappa, meets),
                       "failing": value_range(kappa, ~meets)})
