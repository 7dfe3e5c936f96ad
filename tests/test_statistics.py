"""properties.statistics: intervals and Welch's test against formulas written out here, and every
branch of the three-valued verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from properties.statistics import (
    CONFIRMED,
    INCONCLUSIVE,
    REFUTED,
    direction_verdict,
    effect_verdict,
    equivalence_verdict,
    mean_ci,
    paired_difference,
    range_verdict,
    value_verdict,
    welch,
)

A = [61.2, 58.9, 60.4, 59.7, 62.0]
B = [33.0, 35.5, 31.2, 34.8, 29.9, 36.1]


def test_mean_ci_is_the_t_interval() -> None:
    interval = mean_ci(A)
    half = scipy.stats.t.ppf(0.975, 4) * np.std(A, ddof=1) / math.sqrt(5)
    assert interval.mean == pytest.approx(np.mean(A))
    assert (interval.low, interval.high) == pytest.approx((np.mean(A) - half, np.mean(A) + half))
    assert mean_ci(A, level=0.99).half_width > interval.half_width
    assert math.isnan(mean_ci([1.0]).low) and math.isnan(mean_ci([1.0, math.nan]).high)


def test_welch_matches_the_welch_satterthwaite_formula() -> None:
    va, vb = np.var(A, ddof=1) / len(A), np.var(B, ddof=1) / len(B)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(A) - 1) + vb ** 2 / (len(B) - 1))
    diff = np.mean(A) - np.mean(B)
    half = scipy.stats.t.ppf(0.975, df) * se
    test = welch(A, B)
    assert test.difference == pytest.approx(diff)
    assert test.df == pytest.approx(df)
    assert test.t == pytest.approx(diff / se)
    assert (test.low, test.high) == pytest.approx((diff - half, diff + half))
    assert test.p == pytest.approx(2 * scipy.stats.t.sf(abs(diff / se), df))


def test_welch_degenerate_cases() -> None:
    constant = welch([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])
    assert (constant.low, constant.high, constant.p) == (0.25, 0.25, 0.0)
    assert welch([1.0, 1.0], [1.0, 1.0]).p == 1.0
    for short in (welch([1.0], B), welch(A, [1.0, math.nan])):
        assert math.isnan(short.low) and math.isnan(short.p)
    with pytest.raises(ValueError):
        welch([], B)


def test_paired_difference_pairs_and_refuses_unequal_lengths() -> None:
    diff = paired_difference([3.0, 5.0, 4.0], [1.0, 2.0, 2.0])
    assert diff.mean == pytest.approx(7 / 3) and diff.low < diff.mean < diff.high
    with pytest.raises(ValueError):
        paired_difference([1.0, 2.0], [1.0])


@pytest.mark.parametrize(("low", "high", "claimed", "expected"), [
    (20.0, 28.0, 24.0, CONFIRMED),      # contains the claim, excludes 0
    (-3.0, 4.0, 24.0, REFUTED),         # excludes the claim (and contains 0)
    (2.0, 6.0, 24.0, REFUTED),          # right sign, wrong size
    (-2.0, 30.0, 24.0, INCONCLUSIVE),   # contains both
    (math.nan, math.nan, 24.0, INCONCLUSIVE),
])
def test_effect_verdict(low: float, high: float, claimed: float, expected: str) -> None:
    verdict = effect_verdict(low, high, claimed)
    assert verdict.verdict == expected and verdict.reason


def test_value_range_direction_and_equivalence_verdicts() -> None:
    assert value_verdict(55.0, 60.0, 57.2).verdict == CONFIRMED
    assert value_verdict(60.0, 65.0, 57.2).verdict == REFUTED
    assert range_verdict(5.2, 5.8, 5.0, 6.0).verdict == CONFIRMED
    assert range_verdict(4.8, 5.5, 5.0, 6.0).verdict == INCONCLUSIVE
    assert range_verdict(1.8, 2.2, 5.0, 6.0).verdict == REFUTED
    assert direction_verdict(0.5, 3.0).verdict == CONFIRMED
    assert direction_verdict(-3.0, -0.5).verdict == REFUTED
    assert direction_verdict(-1.0, 1.0).verdict == INCONCLUSIVE
    assert equivalence_verdict(-1.0, 1.5, 2.0).verdict == CONFIRMED
    assert equivalence_verdict(2.5, 4.0, 2.0).verdict == REFUTED
    assert equivalence_verdict(-1.0, 3.0, 2.0).verdict == INCONCLUSIVE
    with pytest.raises(ValueError):
        equivalence_verdict(-1.0, 1.0, 0.0)


def test_mcnemar_counts_discordant_items_and_matches_the_exact_binomial_tail() -> None:
    from properties.statistics import mcnemar_b_better

    a = [True] * 340 + [False] * 10 + [True] * 3 + [False] * 7
    b = [True] * 340 + [True] * 10 + [False] * 3 + [False] * 7
    test = mcnemar_b_better(a, b)
    assert (test.a_only, test.b_only, test.n) == (3, 10, 360)
    # P(Bin(13, 1/2) >= 10) = (C(13,10) + C(13,11) + C(13,12) + C(13,13)) / 2^13
    assert abs(test.p_value - (286 + 78 + 13 + 1) / 8192) < 1e-12
    # track 22 seed 5: B one image ahead (6 vs 5 discordant) is no evidence at all
    one_ahead = mcnemar_b_better([True] * 5 + [False] * 6, [False] * 5 + [True] * 6)
    assert one_ahead.p_value == pytest.approx(0.5, abs=1e-12)
    # a clearly better B is caught: 25 vs 2 discordant items
    clear = mcnemar_b_better([True] * 2 + [False] * 25, [False] * 2 + [True] * 25)
    assert clear.p_value < 1e-5
    assert mcnemar_b_better([True, False], [True, False]).p_value == 1.0
    with pytest.raises(ValueError, match="cannot be paired"):
        mcnemar_b_better([True], [True, False])
