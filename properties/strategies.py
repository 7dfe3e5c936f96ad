"""Hypothesis strategies, named for what they produce.

Models are drawn as `ModelSpec`s — a few numbers and a seed — and built on demand, so a shrunk
counterexample reads as `ModelSpec(n_hidden=2, weight_scale=1000.0, structure='spike', …)` and
rebuilds the exact model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from eqprop_core import LoopedMLP

STRUCTURES = ("gaussian", "spike", "low_rank", "diagonal", "orthogonal")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def structured_matrix(
    n: int, structure: str, rng: np.random.Generator, symmetric: bool
) -> np.ndarray:
    """An n×n matrix of the given structure, symmetrized if asked, scaled to ‖·‖₂ = 1."""
    if structure == "gaussian":
        m = rng.standard_normal((n, n))
    elif structure == "spike":  # a dominant rank-1 spike on top of noise
        u, v = rng.standard_normal(n), rng.standard_normal(n)
        m = rng.standard_normal((n, n)) / np.sqrt(n) + 30.0 * np.outer(u, u if symmetric else v)
    elif structure == "low_rank":
        u, v = rng.standard_normal(n), rng.standard_normal(n)
        m = np.outer(u, u if symmetric else v)
    elif structure == "diagonal":
        m = np.diag(rng.uniform(-1, 1, n))
    elif structure == "orthogonal":  # every singular value equal: the margin is tight everywhere
        q, _ = np.linalg.qr(rng.standard_normal((n, n)))
        m = q @ np.diag(np.sign(rng.standard_normal(n))) @ q.T if symmetric else q
    elif structure == "negative_definite":  # −AAᵀ: synchronous updates 2-cycle once scaled past 1
        a = rng.standard_normal((n, n))
        m = -(a @ a.T)
    elif structure == "rotation":  # skew-dominated: no energy, oscillating dynamics
        a = rng.standard_normal((n, n))
        m = a - a.T + 0.1 * rng.standard_normal((n, n))
    else:
        raise ValueError(f"unknown structure {structure!r}")
    if symmetric:
        m = 0.5 * (m + m.T)
    norm = np.linalg.norm(m, 2)
    return m / norm if norm > 0 else m


@dataclass(frozen=True)
class ModelSpec:
    """A LoopedMLP described by numbers: ‖W_eff‖₂ = weight_scale before SN (after symmetrizing)."""

    n_in: int
    n_hidden: int
    weight_scale: float
    structure: str
    seed: int
    symmetric: bool = True
    spectral_norm: bool = True
    gamma: float = 0.95
    drive_scale: float = 1.0
    activation: str = "tanh"
    dtype: str = "float64"
    n_out: int = 3

    def build(self) -> LoopedMLP:
        rng = np.random.default_rng(self.seed)
        model = LoopedMLP(
            self.n_in, self.n_hidden, self.n_out, symmetric=self.symmetric,
            spectral_norm=self.spectral_norm, gamma=self.gamma, activation=self.activation,
            dtype=DTYPES[self.dtype],
        )
        W = self.weight_scale * structured_matrix(
            self.n_hidden, self.structure, rng, self.symmetric
        )
        U = self.drive_scale * rng.standard_normal((self.n_hidden, self.n_in)) / np.sqrt(self.n_in)
        b = 0.1 * self.drive_scale * rng.standard_normal(self.n_hidden)
        # The readout is drawn after W, U, b so that those stay what they were before it was.
        V = rng.standard_normal((self.n_out, self.n_hidden)) / np.sqrt(self.n_hidden)
        c = 0.1 * rng.standard_normal(self.n_out)
        with torch.no_grad():
            for param, value in ((model.W, W), (model.U, U), (model.b, b), (model.V, V),
                                 (model.c, c)):
                param.copy_(torch.as_tensor(value, dtype=param.dtype))
        return model

    def inputs(self, batch: int, scale: float = 1.0, seed: int | None = None) -> torch.Tensor:
        """A (batch, n_in) input batch of the model's dtype, reproducible from the seed."""
        rng = np.random.default_rng(self.seed + 1 if seed is None else seed)
        return torch.as_tensor(scale * rng.standard_normal((batch, self.n_in)),
                               dtype=DTYPES[self.dtype])

    def labels(self, batch: int, seed: int | None = None) -> torch.Tensor:
        """(batch,) integer class labels in [0, n_out), reproducible from the seed."""
        rng = np.random.default_rng(self.seed + 2 if seed is None else seed)
        return torch.as_tensor(rng.integers(0, self.n_out, batch), dtype=torch.int64)

    def with_(self, **changes: Any) -> ModelSpec:
        return replace(self, **changes)


weight_scales = st.sampled_from([1e-3, 0.1, 1.0, 10.0, 1e3]) | st.floats(1e-3, 1e3)


@st.composite
def contractive_models(
    draw: st.DrawFn, *, max_hidden: int = 12, symmetric: bool | None = True,
    dtype: str = "float64", gamma: float | None = None,
) -> ModelSpec:
    """Spectrally normalized models (certified L = γ·sup|φ′| < 1) with weights at any scale."""
    return ModelSpec(
        n_in=draw(st.integers(1, 6)),
        n_hidden=draw(st.integers(1, max_hidden)),
        weight_scale=draw(weight_scales),
        structure=draw(st.sampled_from(STRUCTURES)),
        seed=draw(st.integers(0, 2**16)),
        symmetric=draw(st.booleans()) if symmetric is None else symmetric,
        spectral_norm=True,
        gamma=draw(st.sampled_from([0.5, 0.9, 0.95, 0.99])) if gamma is None else gamma,
        drive_scale=draw(st.sampled_from([0.0, 0.1, 1.0, 3.0])),
        dtype=dtype,
    )


@st.composite
def noncontractive_models(
    draw: st.DrawFn, *, min_scale: float = 1.2, max_scale: float = 5.0, max_hidden: int = 12,
    symmetric: bool = True,
) -> ModelSpec:
    """Models without SN whose ‖W_eff‖₂ = weight_scale ∈ [min_scale, max_scale] exceeds 1."""
    return ModelSpec(
        n_in=draw(st.integers(1, 6)),
        n_hidden=draw(st.integers(1, max_hidden)),
        weight_scale=draw(st.floats(min_scale, max_scale)),
        structure=draw(st.sampled_from(("gaussian", "spike", "low_rank", "orthogonal"))),
        seed=draw(st.integers(0, 2**16)),
        symmetric=symmetric,
        spectral_norm=False,
        drive_scale=draw(st.sampled_from([0.0, 0.1, 1.0])),
    )


@st.composite
def initial_states(draw: st.DrawFn, n_hidden: int, batch: int = 1) -> np.ndarray:
    """Solver starts (batch, n_hidden): zeros, Gaussian, huge norms (1e6), corners ±1 and ±1e3."""
    kind = draw(st.sampled_from(["zeros", "gaussian", "huge", "corner", "far_corner"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    g = rng.standard_normal((batch, n_hidden))
    return {
        "zeros": np.zeros_like(g),
        "gaussian": g,
        "huge": 1e6 * g,
        "corner": np.sign(g) + (g == 0),
        "far_corner": 1e3 * (np.sign(g) + (g == 0)),
    }[kind]


input_scales = st.sampled_from([0.0, 1e-3, 1.0, 10.0, 1e3])


@st.composite
def inputs(draw: st.DrawFn, n_in: int, batch: int = 1) -> np.ndarray:
    """Input batches (batch, n_in): zero, tiny, unit and huge scales, reproducible from a seed."""
    scale = draw(input_scales)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return scale * rng.standard_normal((batch, n_in))
