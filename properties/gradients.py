"""Comparing gradient estimates with a reference, and fitting the β scaling law.

A gradient here is a dict keyed like `model.named_parameters()` whose values are tensors or
arrays. Every comparison is per parameter: the relative error ‖ĝ − g‖/‖g‖ and the cosine
⟨ĝ, g⟩/(‖ĝ‖‖g‖), both in float64; `worst` summarizes over parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from hypothesis import strategies as st

import theory
from eqprop_core import EPGradients, ep_gradients

from .evidence import require_converged
from .extract import as_numpy
from .strategies import ModelSpec

GRADIENT_STRUCTURES = ("gaussian", "spike", "low_rank")  # simple top singular value: σ(W) is
# differentiable, so the gradient through SN exists ("orthogonal" has all σ_i equal)
ENERGY_PARAMETERS = ("W", "U", "b")  # inside E: estimated from the phases (biased at finite β)
READOUT_PARAMETERS = ("V", "c")  # outside E: explicit at h_0 (exact at every β)


def flat(value: Any) -> np.ndarray:
    """A tensor or array as a float64 NumPy vector (the real part of a complex one)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.real(np.asarray(value)).astype(np.float64).ravel()


def relative_error(estimate: Any, reference: Any) -> float:
    """‖ĝ − g‖/‖g‖ in float64; a zero reference divides by the smallest normal number instead."""
    e, r = flat(estimate), flat(reference)
    if e.shape != r.shape:
        raise ValueError(f"estimate has {e.size} entries, reference {r.size}")
    return float(np.linalg.norm(e - r) / max(np.linalg.norm(r), np.finfo(np.float64).tiny))


@dataclass(frozen=True)
class Agreement:
    """Per-parameter relative error and cosine of an estimate against a reference."""

    relative_error: dict[str, float]
    cosine: dict[str, float]

    @property
    def worst_relative_error(self) -> float:
        return max(self.relative_error.values())

    @property
    def worst_cosine(self) -> float:
        return min(self.cosine.values())

    def worst_parameter(self) -> str:
        return max(self.relative_error, key=self.relative_error.__getitem__)


def agreement(estimate: Mapping[str, Any], reference: Mapping[str, Any],
              keys: Sequence[str] | None = None) -> Agreement:
    """Relative error and cosine per key (all of reference's keys unless `keys` is given).

    A zero reference makes the relative error the estimate's norm over the smallest normal
    number (huge unless the estimate is also zero) and the cosine 1 only if both are zero.
    """
    rel, cos = {}, {}
    tiny = np.finfo(np.float64).tiny
    for key in keys or list(reference):
        try:
            rel[key] = relative_error(estimate[key], reference[key])
        except ValueError as err:
            raise ValueError(f"{key}: {err}") from None
        e, r = flat(estimate[key]), flat(reference[key])
        nr, ne = np.linalg.norm(r), np.linalg.norm(e)
        cos[key] = 1.0 if nr == ne == 0 else float(e @ r / max(ne * nr, tiny))
    return Agreement(rel, cos)


def fitted_slope(betas: Sequence[float] | np.ndarray, errors: Sequence[float] | np.ndarray
                 ) -> float:
    """Least-squares slope of log(error) against log(β): the order of the estimator's bias."""
    b, e = np.log(np.asarray(betas, dtype=np.float64)), np.asarray(errors, dtype=np.float64)
    if np.any(~np.isfinite(e)) or np.any(e <= 0):
        return float("nan")
    return float(np.polyfit(b, np.log(e), 1)[0])


@st.composite
def gradient_models(
    draw: st.DrawFn, *, max_hidden: int = 8, symmetric: bool = True,
    spectral_norm: bool | None = None, dtype: str = "float64",
) -> ModelSpec:
    """Small float64 models whose gradient the suite can check: contractive (SN with γ ≤ 0.95,
    or no SN with ‖W_eff‖₂ ≤ 0.9), structures with a simple top singular value, drives that
    keep the units out of hard saturation."""
    sn = draw(st.booleans()) if spectral_norm is None else spectral_norm
    return ModelSpec(
        n_in=draw(st.integers(1, 5)),
        n_hidden=draw(st.integers(2, max_hidden)),
        weight_scale=draw(st.sampled_from([0.1, 1.0, 10.0, 100.0]) if sn
                          else st.sampled_from([0.1, 0.5, 0.9])),
        structure=draw(st.sampled_from(GRADIENT_STRUCTURES)),
        seed=draw(st.integers(0, 2**16)),
        symmetric=symmetric,
        spectral_norm=sn,
        gamma=draw(st.sampled_from([0.5, 0.9, 0.95])),
        drive_scale=draw(st.sampled_from([0.1, 0.5, 1.0])),
        dtype=dtype,
        n_out=draw(st.integers(2, 4)),
    )


class GradientProblem:
    """One drawn model with its batch, the implicit reference and EP estimates cached by
    (estimator, β) — so searches that score different metrics of one model solve it once."""

    def __init__(self, spec: ModelSpec, batch: int = 4, tol: float = 1e-14) -> None:
        self.spec = spec
        self.model = spec.build()
        self.x = spec.inputs(batch)
        self.y = spec.labels(batch)
        self.tol = tol
        self._estimates: dict[tuple[str, float], EPGradients] = {}

    @cached_property
    def implicit(self) -> dict[str, np.ndarray]:
        return theory.implicit_gradients(as_numpy(self.model), self.x, self.y)

    def ep(self, beta: float, estimator: str = "symmetric") -> EPGradients:
        """EP at β; `MeasurementFailed` with the max residual if a phase missed the tolerance."""
        key = (estimator, beta)
        if key not in self._estimates:
            estimate = ep_gradients(self.model, self.x, self.y, beta=beta, estimator=estimator,
                                    tol=self.tol, on_unconverged="record")
            require_converged(estimate.free, f"{estimator} EP free phase")
            for beta_k, stats in zip(estimate.schedule.betas, estimate.nudged):
                require_converged(stats, f"{estimator} EP nudged phase beta={beta_k:.3g}")
            self._estimates[key] = estimate
        return self._estimates[key]

    def error(self, beta: float, estimator: str = "symmetric",
              keys: Sequence[str] | None = None) -> Agreement:
        """Per-parameter relative error and cosine of EP at β against the implicit gradient."""
        return agreement(self.ep(beta, estimator), self.implicit, keys)

    @cached_property
    def asymmetry(self) -> float:
        W = self.model.W.detach().numpy()
        return float(np.linalg.norm(W - W.T) / np.linalg.norm(W + W.T))
