"""Convolutional EqProp's measures (track 22): the exact operator norm of a multi-channel
circular convolution, the contraction certificate of FFT SN, and EP's gradients at the kernels.

`measure_kernel` holds the FFT norm and spectrum (`eqprop_core.conv`) against
`scipy.linalg.svdvals` of the dense matrix built by index loops (`theory.conv`), with the
reshaped-kernel norm and the sandwich σ_max(R) ≤ σ ≤ √(k_h k_w)·σ_max(R); `measure_certificate`
scipy's L = ‖W_eff‖₂·sup|φ′| against γ and the model's own certificate; `measure_gradients`
symmetric EP at β = BETA against the scipy implicit gradient pulled to the kernels, and that
reference against central differences (step FD_STEP) of `theory.loss`. The strategies
(`conv_kernels`, `sn_models`, `gradient_conv_models`) draw the cases; `correct_on_test` is the
paired data of the McNemar test.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, cast

import numpy as np
import scipy.linalg
import torch
from hypothesis import assume
from hypothesis import strategies as st

import theory
from eqprop_core import LoopedMLP, ep_gradients
from eqprop_core.conv import (
    ConvEqProp,
    conv_operator_norm,
    conv_singular_values,
    reshaped_kernel_norm,
)
from eqprop_core.train import EqProp
from theory import conv as witness
from theory.gradients import loss as witness_loss

from .extract import as_numpy
from .gradients import agreement

STRUCTURES = ("gaussian", "constant", "spike", "positive")
BATCH = 4
SOLVE_TOL = 1e-14
BETA = 1e-4
FD_STEP = 1e-5  # (c3)
DTYPES = {"float32": torch.float32, "float64": torch.float64}


# -- drawn kernels and models ---------------------------------------------------------------
def structured_kernel(shape: tuple[int, int, int, int], structure: str,
                      rng: np.random.Generator) -> np.ndarray:
    """A kernel of `shape`: gaussian taps, a tap-constant kernel A[o, c] (under-estimation
    ratio exactly √(k_h k_w)), one dominant tap (ratio ≈ 1), or |gaussian| (smoothing-like)."""
    g = rng.standard_normal(shape)
    if structure == "constant":
        return np.broadcast_to(g[:, :, :1, :1], shape).copy()
    if structure == "spike":
        g[:, :, rng.integers(shape[2]), rng.integers(shape[3])] *= 100.0
        return g
    if structure == "positive":
        return np.abs(g)
    return g


@dataclasses.dataclass(frozen=True)
class KernelCase:
    c_out: int
    c_in: int
    k_h: int
    k_w: int
    n: int
    scale: float
    structure: str
    seed: int

    def kernel(self) -> np.ndarray:
        shape = (self.c_out, self.c_in, self.k_h, self.k_w)
        return self.scale * structured_kernel(shape, self.structure,
                                              np.random.default_rng(self.seed))


@st.composite
def conv_kernels(draw: st.DrawFn) -> KernelCase:
    k_h, k_w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    return KernelCase(
        c_out=draw(st.integers(1, 4)), c_in=draw(st.integers(1, 4)), k_h=k_h, k_w=k_w,
        n=draw(st.integers(max(4, k_h, k_w), 12)),
        scale=draw(st.sampled_from([1e-3, 1.0, 1e3])),
        structure=draw(st.sampled_from(STRUCTURES)), seed=draw(st.integers(0, 2**16)),
    )


@dataclasses.dataclass(frozen=True)
class ModelCase:
    """A ConvEqProp with drawn shapes and kernels (raw kernel K = scale · structured)."""

    c0: int
    n: int
    c1: int
    c2: int
    k: int
    k_in: int
    n_out: int
    scale: float
    structure: str
    gamma: float
    sn: str
    dtype: str
    seed: int

    def build(self, sn: str | None = None) -> ConvEqProp:
        rng = np.random.default_rng(self.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = ConvEqProp((self.c0, self.n, self.n), (self.c1, self.c2), self.n_out,
                               kernel_size=self.k, input_kernel_size=self.k_in,
                               sn=self.sn if sn is None else sn, gamma=self.gamma,
                               dtype=DTYPES[self.dtype])
        K = structured_kernel((self.c2, self.c1, self.k, self.k), self.structure, rng)
        if self.sn == "off":  # contractive without SN: ‖K ⋆ ·‖₂ = scale < 1
            K *= self.scale / witness.conv_operator_norm(K, self.n)
        else:
            K *= self.scale
        with torch.no_grad():
            model.W.copy_(torch.as_tensor(K, dtype=model.dtype))
        return model

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed + 1)
        x = torch.randn(BATCH, self.c0 * self.n * self.n, generator=g, dtype=DTYPES[self.dtype])
        return x, torch.randint(0, self.n_out, (BATCH,), generator=g)


@st.composite
def sn_models(draw: st.DrawFn) -> ModelCase:
    """FFT-SN models for the certificate (b): both dtypes, raw kernel scales 1e-3…1e3."""
    n = draw(st.integers(4, 8))
    return ModelCase(
        c0=draw(st.integers(1, 2)), n=n, c1=draw(st.integers(1, 4)), c2=draw(st.integers(1, 4)),
        k=draw(st.integers(1, min(5, n))), k_in=draw(st.integers(1, min(5, n))),
        n_out=draw(st.integers(2, 10)), scale=draw(st.sampled_from([1e-3, 1.0, 1e3])),
        structure=draw(st.sampled_from(STRUCTURES)),
        gamma=draw(st.sampled_from([0.5, 0.9, 0.95])), sn="fft",
        dtype=draw(st.sampled_from(["float32", "float64"])), seed=draw(st.integers(0, 2**16)),
    )


@st.composite
def gradient_conv_models(draw: st.DrawFn) -> ModelCase:
    """Small float64 models for (c): FFT SN, or none with ‖K ⋆ ·‖₂ ∈ {0.3, 0.6, 0.9}; gaussian
    kernels (a generic top singular value: σ is differentiable, see the FD check)."""
    n = draw(st.integers(4, 6))
    sn = draw(st.sampled_from(["fft", "off"]))
    c1, c2, k = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    # A one-entry kernel under SN is K_eff = ±γ whatever K: its gradient is identically zero
    # (scale invariance), and a relative error between two round-off zeros means nothing.
    assume(sn == "off" or c1 * c2 * k * k > 1)
    return ModelCase(
        c0=draw(st.integers(1, 2)), n=n, c1=c1, c2=c2,
        k=k, k_in=draw(st.integers(1, 3)), n_out=draw(st.integers(2, 4)),
        scale=draw(st.sampled_from([0.3, 0.6, 0.9]) if sn == "off"
                   else st.sampled_from([0.1, 1.0, 10.0])),
        structure="gaussian", gamma=draw(st.sampled_from([0.5, 0.9, 0.95])), sn=sn,
        dtype="float64", seed=draw(st.integers(0, 2**16)),
    )


# -- measurements ---------------------------------------------------------------------------
def measure_kernel(case: KernelCase) -> dict[str, float]:
    """FFT norm and spectrum vs scipy on the loop-built matrix; reshaped norm and its ratio."""
    K = case.kernel()
    reference = scipy.linalg.svdvals(witness.circular_conv_matrix(K, case.n))
    sigma = float(reference[0])
    kernel = torch.as_tensor(K)
    certified = float(conv_operator_norm(kernel, case.n))
    spectrum = np.sort(conv_singular_values(kernel, case.n).numpy().ravel())[::-1]
    reshaped = float(reshaped_kernel_norm(kernel))
    taps = math.sqrt(case.k_h * case.k_w)
    return {
        "relative_error": abs(certified - sigma) / sigma,
        "spectrum_error": float(np.abs(spectrum - reference[:spectrum.size]).max()) / sigma,
        "deficit": (sigma - certified) / sigma,
        "sandwich": max(reshaped / sigma - 1.0, sigma / (taps * reshaped) - 1.0),
        "ratio": sigma / reshaped,
        "ratio_over_ceiling": sigma / (taps * reshaped),
        "sigma": sigma, "reshaped": reshaped, "taps": taps,
        "reshaped_scipy_gap": abs(reshaped - witness.reshaped_kernel_norm(K)) / reshaped,
    }


def scipy_lipschitz(model: ConvEqProp) -> float:
    """‖W_eff‖₂·sup|φ′| by scipy on the dense matrix the dynamics use."""
    return theory.lipschitz_certificate(as_numpy(model).weight, model.activation.name)


def measure_certificate(case: ModelCase) -> dict[str, float]:
    model = case.build()
    lipschitz = scipy_lipschitz(model)
    return {"L_over_gamma": lipschitz / model.gamma,
            "unsound": (lipschitz - model.lipschitz_certificate()) / lipschitz,
            "L": lipschitz}


def scaled_direction(raw: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """A random direction whose part for each kernel has that kernel's norm: under SN the loss
    is scale-invariant in K, so its derivatives scale as ‖K‖^-order and a step relative to ‖K‖
    keeps the difference quotient's truncation error independent of the kernel's scale."""
    rng = np.random.default_rng(seed)
    v = {}
    for name, value in raw.items():
        d = rng.standard_normal(value.shape)
        v[name] = d * (np.linalg.norm(value) or 1.0) / np.linalg.norm(d)
    return v


def measure_gradients(case: ModelCase) -> dict[str, Any]:
    """EP vs the scipy implicit gradient at the kernels, and that reference vs FD of theory."""
    model = case.build()
    x, y = case.batch()
    reference = witness.conv_model_gradients(as_numpy(model), x, y, recurrent_kernel=model.W,
                                             input_kernel=model.U, image_size=case.n)
    estimate = ep_gradients(model, x, y, beta=BETA, tol=SOLVE_TOL)
    match = agreement(estimate, reference)
    raw = {k: p.detach().numpy().copy() for k, p in model.named_parameters()}
    v = scaled_direction({k: raw[k] for k in ("W", "U")}, case.seed + 7)

    def moved_loss(step: float) -> float:
        net = witness.conv_network(
            raw["W"] + step * v["W"], raw["U"] + step * v["U"], raw["b"], raw["V"], raw["c"],
            image_size=case.n, gamma=model.gamma if case.sn == "fft" else None)
        return witness_loss(net, x, y)

    fd = (moved_loss(FD_STEP) - moved_loss(-FD_STEP)) / (2 * FD_STEP)
    projected = sum(float((reference[k] * v[k]).sum()) for k in v)
    scale = sum(float(np.linalg.norm(reference[k]) * np.linalg.norm(v[k])) for k in v)
    return {"relative_error": match.worst_relative_error, "cosine_gap": 1 - match.worst_cosine,
            "per_parameter": match.relative_error, "fd_error": abs(fd - projected) / scale,
            "max_residual": estimate.max_residual}


def correct_on_test(model: torch.nn.Module, digits) -> np.ndarray:
    """Per test image: is the model's equilibrium prediction right (the paired data of (d2))."""
    x = digits.x_test.flatten(1).to(next(model.parameters()).dtype)
    with torch.no_grad():
        logits = EqProp().infer(cast(LoopedMLP, model), x).logits
    return (logits.argmax(dim=1) == digits.y_test).numpy()


def worst_per_parameter(seen: list[dict[str, Any]]) -> dict[str, float]:
    """The largest relative error of each parameter over the measured gradient cases."""
    return {k: max(g["per_parameter"][k] for g in seen) for k in seen[0]["per_parameter"]}
