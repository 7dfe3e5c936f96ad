"""Comparisons over seeds: confidence intervals, Welch's t-test and three-valued verdicts.

A stated figure is held to an interval measured over independent seeds, never to a single run:

    mean ± t_{0.975, n−1} · s / √n                             (one arm, `mean_ci`)
    Δ = mean(a) − mean(b),  Δ ± t_{0.975, ν} · √(s_a²/n_a + s_b²/n_b)   (Welch, `welch`)

with ν the Welch–Satterthwaite degrees of freedom; the t-statistic, ν, p and the interval are
scipy's (`scipy.stats.ttest_ind(equal_var=False)`). The verdict on a claim is one of

    confirmed      the interval says what the claim says
    refuted        the interval excludes what the claim says
    inconclusive   the interval is too wide to decide (it contains both readings)

and each verdict carries the sentence that justifies it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.stats

CONFIRMED, REFUTED, INCONCLUSIVE = "confirmed", "refuted", "inconclusive"


def _finite_values(values: Sequence[float], label: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{label}: need a non-empty 1-D sequence of numbers, got {values!r}")
    return array


@dataclass(frozen=True)
class Interval:
    """mean and its two-sided confidence interval [low, high] over n values (NaN when n < 2)."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        return 0.5 * (self.high - self.low)

    def to_json(self) -> dict[str, float | int]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}


def mean_ci(values: Sequence[float], level: float = 0.95) -> Interval:
    """Mean of `values` and its t-interval; a NaN value (a failed run) makes every field NaN."""
    array = _finite_values(values, "mean_ci")
    mean = float(array.mean())
    if array.size < 2 or not np.isfinite(array).all():
        return Interval(mean, math.nan, math.nan, int(array.size))
    half = float(scipy.stats.t.ppf(0.5 + level / 2, array.size - 1)
                 * array.std(ddof=1) / math.sqrt(array.size))
    return Interval(mean, mean - half, mean + half, int(array.size))


def paired_difference(a: Sequence[float], b: Sequence[float],
                      level: float = 0.95) -> Interval:
    """Mean of a − b over paired cells (same seed, same initialization) and its t-interval."""
    a_, b_ = _finite_values(a, "paired_difference"), _finite_values(b, "paired_difference")
    if a_.shape != b_.shape:
        raise ValueError(f"paired_difference: {a_.size} vs {b_.size} values cannot be paired")
    return mean_ci(a_ - b_, level)


@dataclass(frozen=True)
class PairedClassifierTest:
    """Exact one-sided McNemar test that classifier B is more accurate than A on the same items.

    Of the n test items, `a_only` are right for A alone and `b_only` for B alone (the discordant
    pairs, d = a_only + b_only). Under H0 (equal accuracy) each discordant item is B's with
    probability ½, so p = P(Bin(d, ½) ≥ b_only) (scipy's exact binomial test); items both get
    right or wrong carry no information about the difference.
    """

    a_only: int
    b_only: int
    n: int
    p_value: float


def mcnemar_b_better(a_correct: Sequence[bool], b_correct: Sequence[bool]
                     ) -> PairedClassifierTest:
    """The exact one-sided McNemar test of 'B beats A' from per-item correctness."""
    a_, b_ = np.asarray(a_correct, dtype=bool), np.asarray(b_correct, dtype=bool)
    if a_.shape != b_.shape or a_.ndim != 1:
        raise ValueError(f"mcnemar_b_better: shapes {a_.shape} and {b_.shape} cannot be paired")
    a_only, b_only = int((a_ & ~b_).sum()), int((b_ & ~a_).sum())
    d = a_only + b_only
    p = 1.0 if d == 0 else float(scipy.stats.binomtest(b_only, d, 0.5,
                                                         alternative="greater").pvalue)
    return PairedClassifierTest(a_only, b_only, int(a_.size), p)


@dataclass(frozen=True)
class WelchTest:
    """Welch's unequal-variance t-test of mean(a) − mean(b): the difference, its interval, the
    statistic t, the Welch–Satterthwaite ν and the two-sided p (all from scipy)."""

    difference: float
    low: float
    high: float
    t: float
    df: float
    p: float
    n_a: int
    n_b: int

    def to_json(self) -> dict[str, float | int]:
        return {"difference": self.difference, "low": self.low, "high": self.high, "t": self.t,
                "df": self.df, "p": self.p, "n_a": self.n_a, "n_b": self.n_b}


def welch(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> WelchTest:
    """Welch's t-test and interval of mean(a) − mean(b).

    Both arms constant (zero variance): the interval collapses to the difference itself and
    p is 0 when it differs from zero, 1 otherwise (scipy returns NaN there). Fewer than two
    values in an arm, or a NaN value: NaN interval and p — every verdict is then inconclusive.
    """
    a_, b_ = _finite_values(a, "welch"), _finite_values(b, "welch")
    difference = float(a_.mean() - b_.mean())
    nan = math.nan
    if min(a_.size, b_.size) < 2 or not (np.isfinite(a_).all() and np.isfinite(b_).all()):
        return WelchTest(difference, nan, nan, nan, nan, nan, int(a_.size), int(b_.size))
    # Equal values up to float rounding (100·0.1 ≠ 10 exactly) count as constant: scipy's
    # moments lose all precision there.
    scale = 1e-12 * max(1.0, float(np.abs(a_).max()), float(np.abs(b_).max()))
    if a_.std(ddof=1) <= scale and b_.std(ddof=1) <= scale:
        p = 0.0 if difference != 0 else 1.0
        return WelchTest(difference, difference, difference, math.copysign(math.inf, difference)
                         if difference else 0.0, nan, p, int(a_.size), int(b_.size))
    with warnings.catch_warnings():
        # One arm constant up to rounding: its variance is ~0 and contributes nothing to the
        # Welch standard error; scipy's "precision loss" warning about that arm is moot.
        warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
        result = scipy.stats.ttest_ind(a_, b_, equal_var=False)
    interval = result.confidence_interval(level)
    return WelchTest(difference, float(interval.low), float(interval.high),
                     float(result.statistic), float(result.df), float(result.pvalue),
                     int(a_.size), int(b_.size))


@dataclass(frozen=True)
class Verdict:
    """A three-valued verdict on a claim and the sentence that justifies it."""

    verdict: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"verdict": self.verdict, "reason": self.reason}


def _undecidable(low: float, high: float) -> Verdict | None:
    if not (math.isfinite(low) and math.isfinite(high)):
        return Verdict(INCONCLUSIVE, "no interval (fewer than 2 finite values per arm)")
    return None


def effect_verdict(low: float, high: float, claimed: float, unit: str = "") -> Verdict:
    """A claimed effect Δ against the interval [low, high] of the measured one.

    confirmed: the interval excludes 0 and contains the claimed Δ; refuted: it excludes the
    claimed Δ (whichever side 0 is on — an effect of the right sign but a different size refutes
    the stated size); inconclusive: it contains both 0 and the claimed Δ.
    """
    undecided = _undecidable(low, high)
    if undecided:
        return undecided
    span = f"95% CI [{low:+.3g}, {high:+.3g}]{unit}"
    if not low <= claimed <= high:
        side = "above 0" if low > 0 else "below 0" if high < 0 else "containing 0"
        return Verdict(REFUTED, f"{span} excludes the claimed {claimed:+.3g}{unit} ({side})")
    if low > 0 or high < 0:
        return Verdict(CONFIRMED, f"{span} contains the claimed {claimed:+.3g}{unit} and "
                                  "excludes 0")
    return Verdict(INCONCLUSIVE, f"{span} contains both 0 and the claimed {claimed:+.3g}{unit}")


def value_verdict(low: float, high: float, claimed: float, unit: str = "") -> Verdict:
    """A claimed level (an accuracy, a norm): confirmed iff it lies in the measured interval."""
    undecided = _undecidable(low, high)
    if undecided:
        return undecided
    span = f"95% CI [{low:.3g}, {high:.3g}]{unit}"
    if low <= claimed <= high:
        return Verdict(CONFIRMED, f"{span} contains the claimed {claimed:.3g}{unit}")
    return Verdict(REFUTED, f"{span} excludes the claimed {claimed:.3g}{unit}")


def range_verdict(low: float, high: float, lower: float, upper: float, unit: str = "") -> Verdict:
    """A claimed range [lower, upper] ("grows to 5–6"): confirmed iff the measured interval lies
    inside it, refuted iff the two are disjoint, inconclusive when they overlap only in part."""
    undecided = _undecidable(low, high)
    if undecided:
        return undecided
    span = f"95% CI [{low:.3g}, {high:.3g}]{unit}"
    claimed = f"[{lower:.3g}, {upper:.3g}]{unit}"
    if lower <= low and high <= upper:
        return Verdict(CONFIRMED, f"{span} lies inside the claimed {claimed}")
    if high < lower or low > upper:
        return Verdict(REFUTED, f"{span} is disjoint from the claimed {claimed}")
    return Verdict(INCONCLUSIVE, f"{span} overlaps the claimed {claimed} only in part")


def equivalence_verdict(low: float, high: float, margin: float, unit: str = "") -> Verdict:
    """"No meaningful difference" with a margin stated in advance (two one-sided tests read off
    the interval): confirmed iff the interval lies inside (−margin, margin), refuted iff it lies
    entirely outside it, inconclusive otherwise."""
    if not margin > 0:
        raise ValueError(f"equivalence margin must be positive, got {margin!r}")
    undecided = _undecidable(low, high)
    if undecided:
        return undecided
    span = f"95% CI [{low:+.3g}, {high:+.3g}]{unit}"
    if -margin < low and high < margin:
        return Verdict(CONFIRMED, f"{span} lies inside ±{margin:.3g}{unit}")
    if low >= margin or high <= -margin:
        return Verdict(REFUTED, f"{span} lies outside ±{margin:.3g}{unit}")
    return Verdict(INCONCLUSIVE, f"{span} crosses the ±{margin:.3g}{unit} margin")


def direction_verdict(low: float, high: float, unit: str = "") -> Verdict:
    """"A helps" (Δ > 0): confirmed iff the interval lies above 0, refuted iff it lies below 0,
    inconclusive when it contains 0."""
    undecided = _undecidable(low, high)
    if undecided:
        return undecided
    span = f"95% CI [{low:+.3g}, {high:+.3g}]{unit}"
    if low > 0:
        return Verdict(CONFIRMED, f"{span} lies above 0")
    if high < 0:
        return Verdict(REFUTED, f"{span} lies below 0")
    return Verdict(INCONCLUSIVE, f"{span} contains 0")
