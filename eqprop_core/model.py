"""LoopedMLP: a one-hidden-layer recurrent network run to its equilibrium.

Dynamics (batched, rows are samples):   h ← T(h) = φ(h W_effᵀ + x Uᵀ + b)
Readout at equilibrium:                 logits = h* Vᵀ + c
Energy (symmetric W_eff only):          E(h) = Σ_i G(h_i) − ½ hᵀW_eff h − hᵀ(Ux + b),  G′ = φ⁻¹

so ∇E(h) = φ⁻¹(h) − W_eff h − (Ux + b) = 0 exactly at the fixed points of T.

W_eff (`recurrent_weight()`) is what the dynamics use: ½(W + Wᵀ) when `symmetric`, then scaled to
γ/σ̂ with a certified σ̂ ≥ σ_max when `spectral_norm`. With `io_spectral_norm` the input and
readout matrices are rescaled the same way (U_eff = γU/σ̂(U), V_eff = γV/σ̂(V): "SN on all
layers"); they do not enter the contraction certificate. `sn_method` picks σ̂: "exact" (default;
`spectral.certified_spectral_norm`, a float64 eigvalsh per evaluation) or "subspace" for W_eff
(`spectral.SubspaceSpectralNorm`, a certified warm-started bound, O(n²k) per evaluation with an
exact refresh only when it is not within its tolerance; σ̂ ∈ [σ_max, (1 + tol)·σ_max]) or
"cholesky" for W_eff (`spectral.CholeskySpectralNorm`: a warm subspace's Ritz value raised by
the tolerance, certified by Cholesky factorizations, an eigendecomposition only when that fails;
the training default of `variants.build`); U and V stay exact either way (the subspace bound's
rectangular refresh, an SVD of U, cost 16.6 s per epoch at hidden 384 with SN on all layers,
against 7.8 s for the exact SVD it was to replace; the exact value is now a Gram eigvalsh).
Every parametrization θ ↦ θ_eff is a pure method (`effective_weight`, `effective_input_weight`,
`effective_readout_weight`), so a subclass with structured parameters (masked layers, convolution
kernels) overrides only these and EP's gradient reaches its raw parameters by the vector–Jacobian
product of that map.

With sup|φ′| = s the update map is an L-contraction with L = ‖W_eff‖₂ · s; for tanh and SN
this is L ≤ γ < 1, so the fixed point is unique and every solver start reaches it (Banach).

The equilibrium is found without autograd: the forward pass is a measurement, and learning signals
come from EqProp's phases (or from a BPTT reference, labelled as such), never from
differentiating through the solver.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from .activations import get_activation
from .solvers import SolverStats, all_finite, get_solver, is_positive_integer
from .spectral import (
    WARM_BOUNDS,
    WarmSpectralBound,
    certified_spectral_norm,
    spectrally_normalize,
)

SN_METHODS = ("exact", *WARM_BOUNDS)


class EquilibriumNotConverged(UserWarning):
    """The free phase behind a forward pass did not reach its tolerance."""


def default_tolerance(dtype: torch.dtype) -> float:
    """Residual tolerance a solve of this dtype can reach: 1e-12 in float64, 1e-5 in float32."""
    return 1e-12 if dtype == torch.float64 else 1e-5


def layer_widths(n_in: object, n_hidden: object, n_out: object) -> tuple[int, int, int]:
    """(n_in, n_hidden, n_out) as ints; ValueError naming the first that is not a positive
    integer."""
    for label, value in (("n_in", n_in), ("n_hidden", n_hidden), ("n_out", n_out)):
        if not is_positive_integer(value):
            raise ValueError(f"{label} must be a positive integer, got {value!r}")
    return int(n_in), int(n_hidden), int(n_out)  # type: ignore[call-overload]


def uniform_parameter(*shape: int, fan_in: int, dtype: torch.dtype) -> nn.Parameter:
    """U(−1/√fan_in, 1/√fan_in) entries (torch.nn.Linear's scale), from torch's global RNG."""
    bound = 1.0 / math.sqrt(fan_in)
    return nn.Parameter(torch.empty(*shape, dtype=dtype).uniform_(-bound, bound))


class LoopedMLP(nn.Module):
    """Recurrent MLP whose output is read at the fixed point h* = φ(W_eff h* + Ux + b).

    Parameters (raw; `named_parameters()` keys): W (n_hidden, n_hidden), U (n_hidden, n_in),
    b (n_hidden,), V (n_out, n_hidden), c (n_out,).
    """

    def __init__(
        self,
        n_in: int,
        n_hidden: int,
        n_out: int,
        *,
        symmetric: bool = True,
        spectral_norm: bool = True,
        io_spectral_norm: bool = False,
        gamma: float = 0.95,
        activation: str = "tanh",
        dtype: torch.dtype = torch.float32,
        sn_method: str = "exact",
    ) -> None:
        super().__init__()
        self.n_in, self.n_hidden, self.n_out = layer_widths(n_in, n_hidden, n_out)
        if not (isinstance(gamma, (int, float)) and math.isfinite(gamma) and 0 < gamma < 1):
            raise ValueError(f"gamma must lie in (0, 1) for a contraction margin, got {gamma!r}")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
        if sn_method not in SN_METHODS:
            raise ValueError(f"unknown sn_method {sn_method!r}; choose one of {list(SN_METHODS)}")
        self.symmetric = bool(symmetric)
        self.spectral_norm = bool(spectral_norm)
        self.io_spectral_norm = bool(io_spectral_norm)
        self.gamma = float(gamma)
        self.activation = get_activation(activation)
        self.sn_method = sn_method
        # The recurrent matrix's warm-started bound; a plain attribute, so outside state_dict.
        self.spectral_bounds: dict[str, WarmSpectralBound] = (
            {"W": WARM_BOUNDS[sn_method]()} if sn_method in WARM_BOUNDS else {})

        self.W = uniform_parameter(n_hidden, n_hidden, fan_in=n_hidden, dtype=dtype)
        self.U = uniform_parameter(n_hidden, n_in, fan_in=n_in, dtype=dtype)
        self.b = uniform_parameter(n_hidden, fan_in=n_in, dtype=dtype)
        self.V = uniform_parameter(n_out, n_hidden, fan_in=n_hidden, dtype=dtype)
        self.c = uniform_parameter(n_out, fan_in=n_hidden, dtype=dtype)

    @property
    def dtype(self) -> torch.dtype:
        return self.W.dtype

    def extra_repr(self) -> str:
        return (
            f"n_in={self.n_in}, n_hidden={self.n_hidden}, n_out={self.n_out}, "
            f"symmetric={self.symmetric}, spectral_norm={self.spectral_norm}, "
            f"io_spectral_norm={self.io_spectral_norm}, "
            + (f"sn_method={self.sn_method!r}, " if self.sn_method != "exact" else "")
            + f"gamma={self.gamma}, activation={self.activation.name!r}"
        )

    # -- the matrix the dynamics use -------------------------------------------------------
    def recurrent_weight(self) -> Tensor:
        """W_eff: ½(W + Wᵀ) if symmetric, then γ·W/σ̂(W) if spectral_norm (σ_max(W_eff) ≤ γ)."""
        return self.effective_weight(self.W)

    def effective_weight(self, W: Tensor) -> Tensor:
        """The parametrization W ↦ W_eff applied to any raw W (n_hidden, n_hidden); pure, so its
        vector–Jacobian product carries a gradient for W_eff back to the raw W.

        With sn_method="subspace" the value of σ̂ also depends on the warm start (within the
        factor 1 + tolerance, never below σ_max) and its gradient is the Ritz value's."""
        weight = 0.5 * (W + W.T) if self.symmetric else W
        if self.spectral_norm:
            weight = spectrally_normalize(weight, self.gamma, symmetric=self.symmetric,
                                          bound=self.spectral_bounds.get("W"))
        return weight

    def input_weight(self) -> Tensor:
        """U_eff, the input matrix the dynamics use (n_hidden, n_in)."""
        return self.effective_input_weight(self.U)

    def readout_weight(self) -> Tensor:
        """V_eff, the readout matrix (n_out, n_hidden)."""
        return self.effective_readout_weight(self.V)

    def effective_input_weight(self, U: Tensor) -> Tensor:
        """U ↦ U_eff: γU/σ̂(U) with `io_spectral_norm`, else U itself (pure)."""
        if not self.io_spectral_norm:
            return U
        return spectrally_normalize(U, self.gamma, bound=self.spectral_bounds.get("U"))

    def effective_readout_weight(self, V: Tensor) -> Tensor:
        """V ↦ V_eff: γV/σ̂(V) with `io_spectral_norm`, else V itself (pure)."""
        if not self.io_spectral_norm:
            return V
        return spectrally_normalize(V, self.gamma, bound=self.spectral_bounds.get("V"))

    def lipschitz_certificate(self) -> float:
        """L = σ̂(W_eff)·sup|φ′| ≥ the Lipschitz constant of T in ‖·‖₂ (σ̂ never under-estimates)."""
        with torch.no_grad():
            sigma = certified_spectral_norm(self.recurrent_weight(), symmetric=self.symmetric)
        return float(sigma) * self.activation.max_slope

    # -- inputs ----------------------------------------------------------------------------
    def validate_input(self, x: Tensor) -> Tensor:
        """x as a (B, n_in) tensor of the model's dtype, B ≥ 1; ValueError on a wrong shape, an
        empty batch (a batch mean over no samples is undefined), complex or non-finite values.

        The input is real for every phase: holomorphic EP makes the *states* complex (its nudges
        β_k are complex), never x, and casting a complex x to real would silently drop its
        imaginary part."""
        if not isinstance(x, Tensor):
            x = torch.as_tensor(x)
        if x.ndim == 1:
            x = x.unsqueeze(0)
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(
                f"x must have shape (batch, {self.n_in}) or ({self.n_in},), got {tuple(x.shape)}"
            )
        if x.shape[0] == 0:
            raise ValueError(f"x is an empty batch of shape {tuple(x.shape)}: give at least one "
                             "sample (batch statistics and EP's batch mean need one)")
        if x.is_complex():
            raise ValueError(f"x must be real, got dtype {x.dtype}: the model's input is real "
                             "(holomorphic EP makes only the states complex)")
        if x.is_floating_point() and not all_finite(x):
            raise ValueError("x contains non-finite values (NaN or ±inf)")
        return x.to(device=self.W.device, dtype=self.dtype)

    def _validate_state(self, h: Tensor, batch: int) -> Tensor:
        if h.shape != (batch, self.n_hidden):
            raise ValueError(
                f"h must have shape ({batch}, {self.n_hidden}), got {tuple(h.shape)}"
            )
        if not all_finite(h):
            raise ValueError("h contains non-finite values (NaN or ±inf)")
        return h.to(device=self.W.device, dtype=self.dtype)

    # -- dynamics --------------------------------------------------------------------------
    def input_drive(self, x: Tensor, *, input_weight: Tensor | None = None) -> Tensor:
        """U_eff x + b for each row of x: (B, n_hidden); `input_weight` is U_eff when the caller
        already has it."""
        U = self.input_weight() if input_weight is None else input_weight
        return x @ U.T + self.b

    def step(self, h: Tensor, x: Tensor, *, weight: Tensor | None = None) -> Tensor:
        """One synchronous update T(h) = φ(h W_effᵀ + x Uᵀ + b); h (B, n_hidden), x (B, n_in)."""
        weight = self.recurrent_weight() if weight is None else weight
        return self.activation.phi(h @ weight.T + self.input_drive(x))

    def update_map(self, x: Tensor) -> Callable[[Tensor], Tensor]:
        """T(h) = φ(h W_effᵀ + x Uᵀ + b) for this input, with W_eff and Ux + b computed once.

        For solvers and trajectories: no autograd (call it under `torch.no_grad`).
        """
        x = self.validate_input(x)
        weight = self.recurrent_weight()
        drive = self.input_drive(x)
        phi = self.activation.phi
        return lambda h: phi(h @ weight.T + drive)

    def trajectory(self, x: Tensor, h0: Tensor, steps: int) -> Tensor:
        """[h_0, T(h_0), …, T^steps(h_0)] of plain synchronous updates: (steps + 1, B, n_hidden).

        The dynamics themselves, not a solve: tracks that measure rates, bounds or energies along
        the way iterate the map here. h0 is (B, n_hidden) with B = x's batch.
        """
        x = self.validate_input(x)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
        h = self._validate_state(h0, x.shape[0])
        with torch.no_grad():
            T = self.update_map(x)
            states = [h]
            for _ in range(steps):
                h = T(h)
                states.append(h)
        return torch.stack(states)

    def equilibrium(
        self,
        x: Tensor,
        h0: Tensor | None = None,
        *,
        solver: str = "anderson",
        tol: float | None = None,
        max_steps: int = 2000,
        **solver_options: Any,
    ) -> tuple[Tensor, SolverStats]:
        """Free phase: solve h* = T(h*) for each row of x; returns (h* (B, n_hidden), stats).

        tol defaults to `default_tolerance(dtype)`. When the certificate L < 1, stats carry the
        Banach a-posteriori bound of the computed iterates, ‖h − h*‖ ≤ (L‖h − h_prev‖ + ρ)/(1 − L)
        with ρ the rounding of the last step (`step_rounding`). Non-convergence is reported in
        stats (converged, residual), never raised.
        """
        x = self.validate_input(x)
        solve = get_solver(solver, solver_options)
        tol = default_tolerance(self.dtype) if tol is None else tol
        h0 = x.new_zeros(x.shape[0], self.n_hidden) if h0 is None else self._validate_state(
            h0, x.shape[0]
        )
        with torch.no_grad():
            certificate = self.lipschitz_certificate()
            h, stats = solve(
                self.update_map(x),
                h0,
                tol=tol,
                max_steps=max_steps,
                lipschitz=certificate if certificate < 1 else None,
                **solver_options,
            )
            if stats.error_bound is not None:
                stats.error_bound = self._with_rounding(stats.error_bound, x, h, certificate)
        return h, stats

    def step_rounding(self, x: Tensor, h: Tensor) -> Tensor:
        """ρ ≥ ‖fl(T(h')) − T(h')‖₂ per row, for every h' with |h'| ≤ h entrywise (h ≥ 0), T
        evaluated in the model's dtype with unit roundoff ε.

        Both products h'W_effᵀ and xU_effᵀ + b (the drive) have entrywise error
        ≤ γ_{m+1}(|·||·| + |b|) with γ_m ≤ mε (inner size m ≤ n + n_in), φ is s-Lipschitz and its
        evaluation adds ≤ 2 ulp of |φ| ≤ |h'| after a step: ρ = (n + n_in + 3)·ε·s·‖h|W_eff|ᵀ
        + |x||U_eff|ᵀ + |b|‖ + 3ε‖h‖.
        """
        eps = torch.finfo(self.dtype).eps
        with torch.no_grad():
            products = (h @ self.recurrent_weight().abs().T
                        + x.abs() @ self.input_weight().abs().T + self.b.abs())
            norm = torch.linalg.vector_norm
            return ((self.n_hidden + self.n_in + 3) * eps * self.activation.max_slope
                    * norm(products, dim=1) + 3 * eps * norm(h, dim=1))

    def _with_rounding(self, bound: Tensor, x: Tensor, h: Tensor, L: float) -> Tensor:
        """The solver's exact-arithmetic bound L/(1 − L)·‖h − h_prev‖ plus ρ/(1 − L): the
        computed h = T(h_prev) + r, ‖r‖ ≤ ρ, gives e ≤ L(‖h − h_prev‖ + e) + ρ. ρ is taken at
        |h| + ‖h − h_prev‖ (≥ |h_prev| entrywise), the step read back from the bound; the sum
        is raised by (n + 4)ε for its own rounding."""
        step = bound * ((1 - L) / L) if L > 0 else torch.zeros_like(bound)
        step = torch.where(torch.isfinite(step), step, torch.full_like(step, float("inf")))
        rho = self.step_rounding(x, h.abs() + step[:, None])
        eps = torch.finfo(self.dtype).eps
        return (bound + rho / (1 - L)) * (1 + (self.n_hidden + 4) * eps)

    def readout(self, h: Tensor, *, readout_weight: Tensor | None = None) -> Tensor:
        """logits = h V_effᵀ + c: (B, n_out); `readout_weight` is V_eff when the caller already
        has it."""
        V = self.readout_weight() if readout_weight is None else readout_weight
        return h @ V.T + self.c

    def forward(self, x: Tensor, **solver_options: Any) -> Tensor:
        """Logits at equilibrium, V h* + c. Same options as `equilibrium`.

        Warns `EquilibriumNotConverged` (with the worst residual) if the free phase missed its
        tolerance; use `equilibrium` to get the full statistics.
        """
        h, stats = self.equilibrium(x, **solver_options)
        if not stats.all_converged:
            warnings.warn(stats.summary(), EquilibriumNotConverged, stacklevel=2)
        return self.readout(h)

    # -- energy ----------------------------------------------------------------------------
    def energy(self, h: Tensor, x: Tensor) -> Tensor:
        """E(h) = Σ G(h_i) − ½hᵀW_eff h − hᵀ(Ux + b) per row: (B,). Symmetric W_eff only."""
        if not self.symmetric:
            raise ValueError(
                "energy is defined only for symmetric W (symmetric=True); "
                "an asymmetric model has no energy whose gradient is its dynamics"
            )
        x = self.validate_input(x)
        h = self._validate_state(h, x.shape[0])
        weight = self.recurrent_weight()
        G = self.activation.primitive_of_inverse(h).sum(dim=1)
        return G - 0.5 * ((h @ weight) * h).sum(dim=1) - (h * self.input_drive(x)).sum(dim=1)

    def energy_gradient(self, h: Tensor, x: Tensor) -> Tensor:
        """∇_h E = φ⁻¹(h) − W_eff h − (Ux + b): (B, n_hidden); zero at the fixed points."""
        if not self.symmetric:
            raise ValueError("energy_gradient is defined only for symmetric W (symmetric=True)")
        x = self.validate_input(x)
        h = self._validate_state(h, x.shape[0])
        return self.activation.inverse(h) - h @ self.recurrent_weight().T - self.input_drive(x)
