"""δ_k = h_k − h* for perturbations h_0 = h* + δ₀ of the model's h*, against ‖J*‖₂^k, L^k and
‖δ₀‖ (track 6; the bounds and their float64 allowances are derived in the track's docstring).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.linalg
from hypothesis import assume
from hypothesis import strategies as st

from .contraction_rate import Equilibrium, equilibrium_of, iteration_errors, rate_deviation
from .strategies import ModelSpec

LOCAL_SIZE = 1e-6  # ‖δ₀‖ for the first-order bound


LOCAL_SLACK = 1e-3  # ‖δ_k‖ ≤ (1 + LOCAL_SLACK)·‖J*‖₂^k‖δ₀‖: room for second-order terms


SIZES = (LOCAL_SIZE, 1e-2, 1.0, 1e12)  # ‖δ₀‖ for the global bound (1e12: tanh saturates)


DIRECTIONS = 2  # per size: the top right singular vector of J*, then a random unit vector


ROUNDOFF = 1e-12  # absolute allowance on ‖δ_k‖ for float64 round-off in h_k and h*


FLOOR = 1e-9  # bounds below this are not tested (ROUNDOFF would exceed 0.1% of them)


MAX_STEPS = 1500  # bounds are tested for k ≤ 1500 (or down to FLOOR, whichever comes first)


@dataclass
class Perturbations:
    """‖δ_k‖ for a batch of perturbations of h*: errors (K + 1, B), sizes (B,) = ‖δ₀‖."""

    eq: Equilibrium
    sizes: np.ndarray
    errors: np.ndarray

    def ratios(self, rate: float, rows: np.ndarray) -> np.ndarray:
        """(‖δ_k‖ − ROUNDOFF) / (rate^k ‖δ₀‖) for k ≥ 1 where that bound is ≥ FLOOR."""
        k = np.arange(1, self.errors.shape[0])[:, None]
        bound = np.power(rate, k) * self.errors[0, rows]
        tested = bound >= FLOOR
        return ((self.errors[1:, rows] - ROUNDOFF) / np.where(tested, bound, 1.0))[tested]


def perturbation_directions(eq: Equilibrium, seed: int) -> np.ndarray:
    """(DIRECTIONS, n) unit rows: J*'s top right singular vector (scipy), then random ones."""
    top = scipy.linalg.svd(eq.jacobian)[2][:1]
    rest = np.random.default_rng(seed).standard_normal((DIRECTIONS - 1, eq.h_star.shape[0]))
    rows = np.vstack([top, rest])
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@lru_cache(maxsize=512)
def perturbations_of(spec: ModelSpec, seed: int) -> Perturbations:
    """Iterate `model.step` from h* + δ₀, every size × direction, until L^k·1e12 < FLOOR (at
    most MAX_STEPS steps)."""
    eq = equilibrium_of(spec)
    deltas = np.concatenate([size * perturbation_directions(eq, seed) for size in SIZES])
    L = eq.lipschitz_scipy
    steps = MAX_STEPS if L >= 1 else min(
        MAX_STEPS, max(1, math.ceil(math.log(FLOOR / max(SIZES)) / math.log(max(L, 1e-300)))))
    errors = iteration_errors(eq, eq.h_star + deltas, steps)
    return Perturbations(eq, np.repeat(SIZES, DIRECTIONS), errors)


def cases(models: st.SearchStrategy) -> st.SearchStrategy:
    """(model, direction seed) pairs: the seed draws the random perturbation directions."""
    return st.tuples(models, st.integers(0, 2**16))


def local_ratio(case: tuple[ModelSpec, int]) -> float:
    """max_k ‖δ_k‖ / (‖J*‖₂^k‖δ₀‖) for ‖δ₀‖ = 1e-6; cases with no bound above FLOOR skipped."""
    p = perturbations_of(*case)
    ratios = p.ratios(p.eq.norm, np.flatnonzero(p.sizes == LOCAL_SIZE))
    assume(ratios.size > 0)  # ‖J*‖₂·1e-6 < 1e-9: J* ≈ 0, nothing above round-off to test
    return float(ratios.max())


def global_ratio(case: tuple[ModelSpec, int]) -> float:
    """max_k ‖δ_k‖ / (L^k‖δ₀‖) over every size 1e-6 … 1e12 and direction."""
    p = perturbations_of(*case)
    return float(p.ratios(p.eq.lipschitz_scipy, np.arange(p.sizes.size)).max())


def amplification(errors: np.ndarray) -> float:
    """max_{k ≥ 1} ‖δ_k‖ / ‖δ₀‖ per the damping property (≤ 1 iff every step is damped)."""
    return float(np.max(errors[1:] / errors[0]))


def damping_ratio(case: tuple[ModelSpec, int]) -> float:
    return amplification(perturbations_of(*case).errors)


def decay_rate_deviation(case: tuple[ModelSpec, int], excluded: dict) -> float:
    """Track 5's |measured rate − ρ(J*)|/ρ(J*), started at h* + δ₀ with a random ‖δ₀‖ = 1."""
    spec, seed = case
    eq = equilibrium_of(spec)
    direction = perturbation_directions(eq, seed)[-1]
    return rate_deviation((spec, eq.h_star + direction), excluded)


def amplifying_model(seed: int) -> ModelSpec:
    """No SN, symmetric W with ‖W‖₂ = 1.5, zero drive (U = 0, b = 0): h* = 0, J* = W."""
    return ModelSpec(n_in=1, n_hidden=8, weight_scale=1.5, structure="gaussian", seed=seed,
                     spectral_norm=False, drive_scale=0.0)


def amplified_perturbation(seed: int) -> tuple[ModelSpec, Equilibrium, np.ndarray]:
    """‖δ_k‖ for k = 0…80 of a random 1e-6 perturbation of h* = 0 on `amplifying_model(seed)`."""
    spec = amplifying_model(seed)
    eq = equilibrium_of(spec)
    direction = np.random.default_rng(seed).standard_normal(spec.n_hidden)
    delta = LOCAL_SIZE * direction / np.linalg.norm(direction)
    return spec, eq, iteration_errors(eq, eq.h_star + delta, 80)[:, 0]
