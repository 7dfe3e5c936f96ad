"""Banach fixed-point bounds for an L-contraction T (L < 1) with fixed point h*.

a priori:      ‖h_k − h*‖ ≤ L^k ‖h_0 − h*‖ ≤ L^k / (1 − L) · ‖h_1 − h_0‖
a posteriori:  ‖h_k − h*‖ ≤ L / (1 − L) · ‖h_k − h_{k−1}‖
"""

from __future__ import annotations

import math

import numpy as np


def _check(L: float) -> None:
    if not 0 <= L < 1:
        raise ValueError(f"Banach bounds need 0 <= L < 1, got L = {L!r}")


def a_priori_bound(L: float, k: np.ndarray | int, initial_error: float) -> np.ndarray:
    """L^k · ‖h_0 − h*‖ for each k."""
    _check(L)
    return np.power(L, np.asarray(k, dtype=np.float64)) * initial_error


def a_priori_from_first_step(L: float, k: np.ndarray | int, first_step: float) -> np.ndarray:
    """L^k / (1 − L) · ‖h_1 − h_0‖ — needs no knowledge of h*."""
    _check(L)
    return np.power(L, np.asarray(k, dtype=np.float64)) / (1 - L) * first_step


def a_posteriori_bound(L: float, last_step: np.ndarray | float) -> np.ndarray:
    """L / (1 − L) · ‖h_k − h_{k−1}‖."""
    _check(L)
    return L / (1 - L) * np.asarray(last_step, dtype=np.float64)


def steps_to_tolerance(L: float, first_step: float, tol: float) -> int:
    """Smallest k with L^k/(1 − L)·‖h_1 − h_0‖ ≤ tol."""
    _check(L)
    if first_step <= tol * (1 - L):
        return 0
    if L == 0:
        return 1
    return math.ceil(math.log(tol * (1 - L) / first_step) / math.log(L))
