"""EP's gradient under hardware non-idealities and its first-order error model (track 20).

A state error of size ε at the end of the phases becomes a gradient error of size ~ε/β with an
estimator-specific constant (derivation: track 20's module docstring). `Bench` holds one float64
model and batch: the scipy implicit gradient of the ideal float model, J_b at the Newton
equilibria, the EP estimates (cached), and the predicted RMS error of the (W, U, b) estimate for
neuron noise (stationary Lyapunov covariance) and for state rounding (Widrow's additive model).
`noise_sweep` / `precision_sweep` measure the estimate under noise and b-bit states / weights
against those predictions; `break_even` / `predicted_break_even` locate where the cosine falls
below BREAK_EVEN; `weight_quantized_reference` is g_q, the implicit gradient of the network with
quantized matrices pulled back straight-through (scipy on NumPy copies).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import scipy.linalg
import torch
from torch import Tensor

import theory
from eqprop_core import EPGradients, LoopedMLP, ep_gradients, nudge_schedule
from eqprop_core.hardware import (
    neuron_noise,
    quantization_step,
    quantize_states,
    quantize_weights,
)
from properties.gradients import flat
from theory.gradients import pull_back_to_raw
from theory.network import Network
from theory.spectra import jacobian_at_equilibrium, spectral_norm

from .extract import as_numpy
from .gradients import agreement

ESTIMATORS = ("one_sided", "symmetric", "holomorphic")
N_POINTS = 4  # holomorphic nudges on the circle |β_k| = β
BETA = 0.2  # the training β (trainer default, track 17)
STEPS = (30, 10)  # (T_free, T_nudged), the phases as trained
ENERGY = ("W", "U", "b")  # the parameters EP estimates from the phases
PARAMETERS = ("W", "U", "b", "V", "c")
BREAK_EVEN = 0.9


# -- comparing gradients ----------------------------------------------------------------------
def vector(gradient: dict, keys: Sequence[str] = PARAMETERS) -> np.ndarray:
    return np.concatenate([flat(gradient[k]) for k in keys])


def cosine(estimate: dict, reference: dict, keys: Sequence[str] = PARAMETERS) -> float:
    """⟨ĝ, g⟩/(‖ĝ‖‖g‖) over the concatenated parameters; 0 for an all-zero estimate (coarse
    states can leave every phase on the same grid point: no direction at all)."""
    e, r = vector(estimate, keys), vector(reference, keys)
    norms = float(np.linalg.norm(e) * np.linalg.norm(r))
    return float(e @ r / norms) if norms > 0 else 0.0


def distance(a: dict, b: dict, keys: Sequence[str] = ENERGY) -> float:
    return float(np.linalg.norm(vector(a, keys) - vector(b, keys)))


# -- the independent side: scipy on NumPy copies ----------------------------------------------
def fake_quantized(matrix: np.ndarray, bits: int) -> np.ndarray:
    """s·round(M/s), s = max|M|/(2^(bits−1) − 1): per-tensor symmetric, written in NumPy."""
    scale = np.max(np.abs(matrix)) / (2 ** (bits - 1) - 1)
    return scale * np.round(matrix / scale)


def weight_quantized_reference(net: Network, x: Tensor, y: Tensor,
                               bits: int) -> dict[str, np.ndarray]:
    """g_q: the implicit gradient of the network whose W_eff, U_eff, V_eff are quantized,
    w.r.t. those matrices, with W's pulled back through the float parametrization (the
    straight-through rule)."""
    qW, qU, qV = (fake_quantized(m, bits) for m in (net.weight, net.U, net.V))
    quantized = Network(weight=qW, U=qU, b=net.b, activation=net.activation, W=qW, V=qV,
                        c=net.c, symmetric=False, spectral_norm=False)
    grads = theory.implicit_gradients(quantized, x, y)
    grads["W"] = pull_back_to_raw(net, grads["W"])
    return grads


@dataclass
class Bench:
    """One float64 model and batch: the scipy reference, J_b at the Newton equilibria, and the
    EP estimates (cached)."""

    label: str
    model: LoopedMLP
    x: Tensor
    y: Tensor
    net: Network = field(init=False)
    reference: dict[str, np.ndarray] = field(init=False)
    states: np.ndarray = field(init=False)
    jacobians: np.ndarray = field(init=False)
    sn_scale: float = field(init=False)
    _ideal: dict[str, EPGradients] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.net = as_numpy(self.model)
        self.reference = theory.implicit_gradients(self.net, self.x, self.y)
        x = self.x.numpy()
        self.states = theory.equilibria(self.net, x)
        drive = self.net.drive(x)
        self.jacobians = np.array([jacobian_at_equilibrium(h, self.net.weight, a, "tanh")
                                   for h, a in zip(self.states, drive)])
        S = 0.5 * (self.net.W + self.net.W.T) if self.net.symmetric else self.net.W
        self.sn_scale = spectral_norm(self.net.weight) / spectral_norm(S)

    def estimate(self, estimator: str, transform: Callable[[Tensor], Tensor] | None = None,
                 weight_bits: int | None = None) -> EPGradients:
        n_points = N_POINTS if estimator == "holomorphic" else None
        handle = quantize_weights(self.model, weight_bits) if weight_bits else None
        try:
            return ep_gradients(self.model, self.x, self.y, beta=BETA, estimator=estimator,
                                n_points=n_points, steps=STEPS, state_transform=transform)
        finally:
            if handle is not None:
                handle.remove()

    def ideal(self, estimator: str) -> EPGradients:
        if estimator not in self._ideal:
            self._ideal[estimator] = self.estimate(estimator)
        return self._ideal[estimator]

    @cached_property
    def nudge_displacement(self) -> float:
        """RMS over neurons and samples of β·dh/dβ = −β(I − J)⁻¹ D Vᵀ(p − y), how far the
        nudge moves a state (linear response; D = diag φ′(a*) = 1 − h*² for tanh); Widrow's
        model assumes it is large compared to Δ."""
        logits = self.states @ self.net.V.T + self.net.c
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        error = p - np.eye(self.net.V.shape[0])[self.y.numpy()]
        eye = np.eye(self.jacobians.shape[1])
        moves = [BETA * scipy.linalg.solve(eye - J, (1 - h**2) * (self.net.V.T @ e))
                 for J, h, e in zip(self.jacobians, self.states, error)]
        return float(np.sqrt(np.mean(np.square(moves))))

    # -- the error model (module doc) ---------------------------------------------------------
    def noise_covariances(self, std: float) -> np.ndarray:
        """C_b = J_b C_b J_bᵀ + σ²I: stationary state error of e ← J_b e + σξ."""
        eye = np.eye(self.jacobians.shape[1])
        return np.array([scipy.linalg.solve_discrete_lyapunov(J, std**2 * eye)
                         for J in self.jacobians])

    def rounding_covariances(self, step: float) -> np.ndarray:
        """C_b = (Δ²/12)(I − J_b)⁻¹(I − J_b)⁻ᵀ: a rounding error frozen at a fixed point."""
        eye = np.eye(self.jacobians.shape[1])
        inverses = [scipy.linalg.inv(eye - J) for J in self.jacobians]
        return np.array([step**2 / 12 * M @ M.T for M in inverses])

    def predicted_error(self, estimator: str, covariances: np.ndarray,
                        propagated: bool) -> float:
        """Predicted RMS of ‖δ(W, U, b)‖ for per-sample phase-state covariances C_b;
        `propagated`: the nudged errors carry J^T e_0 from the free state (noise)."""
        schedule = nudge_schedule(estimator, BETA, N_POINTS if estimator == "holomorphic"
                                  else None)
        weights = np.array(schedule.weights)
        total = complex(sum(schedule.weights))
        free = complex(schedule.free_weight)
        x2 = (self.x.numpy() ** 2).sum(axis=1)
        squared = 0.0
        for b, (C, J) in enumerate(zip(covariances, self.jacobians)):
            if propagated:
                Jt = np.linalg.matrix_power(J, STEPS[1])
                A = total * Jt + free * np.eye(len(J))
                fresh = C - Jt @ C @ Jt.T
                cov = (A.real @ C @ A.real.T + A.imag @ C @ A.imag.T
                       + np.sum(np.abs(weights) ** 2) * fresh)
            else:
                cov = (np.sum(np.abs(weights) ** 2) + abs(free) ** 2) * C
            h = self.states[b]
            trace = np.trace(cov)
            squared += trace * (1 + x2[b]) + 0.5 * self.sn_scale**2 * (
                h @ h * trace + h @ cov @ h)
        return math.sqrt(squared) / len(self.jacobians)


# -- sweeps -----------------------------------------------------------------------------------
@dataclass
class NoisePoint:
    std: float
    cosines: list[float]
    errors: list[float]  # ‖δ(W, U, b)‖ against the ideal EP estimate, per repeat
    energy_cosines: list[float]
    per_parameter: dict[str, float]
    residual: float
    predicted: float

    @property
    def mean(self) -> float:
        return float(np.mean(self.cosines))

    @property
    def standard_error(self) -> float:
        return float(np.std(self.cosines, ddof=1) / math.sqrt(len(self.cosines))) \
            if len(self.cosines) > 1 else 0.0

    @property
    def ratio(self) -> float:
        return float(np.sqrt(np.mean(np.square(self.errors)))) / self.predicted


def noise_sweep(bench: Bench, estimator: str, stds: Sequence[float], repeats: int,
                seed: int) -> list[NoisePoint]:
    ideal = bench.ideal(estimator)
    points = [NoisePoint(0.0, [cosine(ideal, bench.reference)], [0.0],
                         [cosine(ideal, bench.reference, ENERGY)],
                         agreement(ideal, bench.reference).cosine, ideal.max_residual, 0.0)]
    for index, std in enumerate(stds):
        covariances = bench.noise_covariances(std)
        cos, err, energy, residual = [], [], [], 0.0
        per: dict[str, list[float]] = {k: [] for k in PARAMETERS}
        for r in range(repeats):
            generator = torch.Generator().manual_seed(
                seed * 1_000_003 + ESTIMATORS.index(estimator) * 10_007 + index * 101 + r)
            g = bench.estimate(estimator, neuron_noise(std, generator))
            cos.append(cosine(g, bench.reference))
            energy.append(cosine(g, bench.reference, ENERGY))
            err.append(distance(g, ideal))
            for k, v in agreement(g, bench.reference).cosine.items():
                per[k].append(v)
            residual = max(residual, g.max_residual)
        points.append(NoisePoint(std, cos, err, energy,
                                 {k: float(np.mean(v)) for k, v in per.items()}, residual,
                                 bench.predicted_error(estimator, covariances, True)))
    return points


@dataclass
class PrecisionPoint:
    bits: int
    arm: str  # "states", "weights", "states+weights"
    cosine: float
    energy_cosine: float
    per_parameter: dict[str, float]
    error: float
    residual: float
    predicted: float  # the rounding model's RMS error when states are quantized, else NaN


def precision_sweep(bench: Bench, estimator: str, bits_list: Sequence[int]
                    ) -> list[PrecisionPoint]:
    ideal = bench.ideal(estimator)
    points = []
    for bits in bits_list:
        for arm in ("states", "weights", "states+weights"):
            transform = quantize_states(bits) if "states" in arm else None
            g = bench.estimate(estimator, transform, bits if "weights" in arm else None)
            predicted = math.nan
            if "states" in arm:
                predicted = bench.predicted_error(
                    estimator, bench.rounding_covariances(quantization_step(bits)), False)
            points.append(PrecisionPoint(bits, arm, cosine(g, bench.reference),
                                         cosine(g, bench.reference, ENERGY),
                                         agreement(g, bench.reference).cosine,
                                         distance(g, ideal), g.max_residual, predicted))
    return points


def sweeps(benches: Sequence[Bench], stds: Sequence[float], repeats: int, seed: int,
           bits: Sequence[int]) -> tuple[dict[tuple[str, str], list[NoisePoint]],
                                         dict[tuple[str, str], list[PrecisionPoint]]]:
    """The noise and precision sweeps of every (bench, estimator)."""
    noise: dict[tuple[str, str], list[NoisePoint]] = {}
    precision: dict[tuple[str, str], list[PrecisionPoint]] = {}
    for bench in benches:
        for estimator in ESTIMATORS:
            noise[(bench.label, estimator)] = noise_sweep(bench, estimator, stds, repeats,
                                                          seed)
            precision[(bench.label, estimator)] = precision_sweep(bench, estimator, bits)
    return noise, precision


def int8_margin(bench: Bench, estimator: str, precision: Sequence[PrecisionPoint],
                predicted: float, ideal_cosine: float, x: Tensor, y: Tensor, bits: int,
                allowance: float) -> dict[str, Any]:
    """The error model's floor for the cosine with b-bit states and weights: cos(θ_ideal +
    arcsin r), r = (‖g_q − g‖ + allowance·(predicted state error))/‖ĝ_ideal‖, and whether it
    is vacuous (r ≥ 1 or an angle ≥ 90°), beside the measured cosine."""
    both = next(p for p in precision if p.bits == bits and p.arm == "states+weights")
    ideal_norm = float(np.linalg.norm(vector(bench.ideal(estimator))))
    g_q = weight_quantized_reference(bench.net, x, y, bits)
    weight_shift = float(np.linalg.norm(vector(g_q) - vector(bench.reference)))
    state_error = allowance * predicted
    r = (weight_shift + state_error) / ideal_norm
    angle = math.acos(min(1.0, ideal_cosine)) + math.asin(min(1.0, r))
    return {"cosine": both.cosine, "bound": math.cos(min(angle, math.pi)),
            "vacuous": r >= 1 or angle >= math.pi / 2,
            "ideal_cosine": ideal_cosine, "r": r,
            "weight_shift_over_ideal": weight_shift / ideal_norm,
            "per_parameter": both.per_parameter,
            "cosine_by_precision": {f"{p.arm} {p.bits} bits": p.cosine for p in precision}}


def rounding_ratios(precision: dict[tuple[str, str], list[PrecisionPoint]], labels: Sequence[str],
                    estimator: str, bits: int
                    ) -> tuple[dict[str, PrecisionPoint], dict[str, float], dict[str, float]]:
    """The b-bit states points per model, their measured/predicted (Widrow) error ratios, and
    the ratio at every bit width."""
    int8 = {lab: next(p for p in precision[(lab, estimator)]
                      if p.bits == bits and p.arm == "states") for lab in labels}
    q_ratios = {lab: p.error / p.predicted for lab, p in int8.items()}
    all_bits = {f"{lab} {p.bits} bits": p.error / p.predicted for lab in labels
                for p in precision[(lab, estimator)] if p.arm == "states"}
    return int8, q_ratios, all_bits


def worst(values: dict[str, float], lowest: bool = True) -> tuple[str, float]:
    """(key, value) of the smallest (`lowest`) or largest value."""
    key = (min if lowest else max)(values, key=values.__getitem__)
    return key, values[key]


def largest_rise(points: Sequence[NoisePoint], standard_errors: float) -> float:
    """The largest rise of the mean cosine from one σ to the next beyond `standard_errors`
    standard errors of the two repeat means (≤ 0: the cosine does not rise with σ)."""
    return max(after.mean - before.mean - standard_errors * math.hypot(
        before.standard_error, after.standard_error)
        for before, after in zip(points, points[1:]))


def break_even(points: Sequence[NoisePoint], level: float = BREAK_EVEN) -> float:
    """σ where the mean cosine first falls below `level`, log-interpolated; inf if never."""
    for before, after in zip(points[1:], points[2:]):
        if before.mean >= level > after.mean:
            t = (before.mean - level) / (before.mean - after.mean)
            return float(math.exp(math.log(before.std) + t * (math.log(after.std)
                                                             - math.log(before.std))))
    if points[1].mean < level:
        return points[1].std
    return math.inf


def predicted_break_even(bench: Bench, estimator: str, level: float = BREAK_EVEN) -> float:
    """σ* with ⟨ĝ, g⟩/(‖g‖·√(‖ĝ‖² + σ²K)) = level, K = predicted error²/σ² (errors ⊥ ĝ)."""
    ideal = vector(bench.ideal(estimator))
    g = vector(bench.reference)
    K = (bench.predicted_error(estimator, bench.noise_covariances(1.0), True)) ** 2
    needed = (ideal @ g / (level * np.linalg.norm(g))) ** 2 - ideal @ ideal
    return math.sqrt(needed / K) if needed > 0 else 0.0
