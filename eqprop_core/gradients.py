"""Equilibrium Propagation: gradients from a free phase and nudged phases, no autograd through them.

Total energy with nudge strength β (Scellier & Bengio 2017), per sample,

    F(h, β) = E(h) + β ℓ(h),   E(h) = Σ G(h_i) − ½ hᵀW_eff h − hᵀ(Ux + b),   ℓ = CE(Vh + c, y),

whose stationary points are the fixed points of the *nudged* map

    h = T_β(h) = φ(W_eff h + Ux + b − β ∂ℓ/∂h),   ∂ℓ/∂h = Vᵀ(softmax(Vh + c) − onehot(y)).

With h_β the nudged equilibrium (h_0 the free one), EP's theorem is

    dℒ/dθ = d/dβ ∂F/∂θ(h_β, β) |_{β=0} = lim_{β→0} (1/β)[∂E/∂θ(h_β) − ∂E/∂θ(h_0)]

for the energy parameters θ ∈ {W, U, b}, where ∂E/∂W_eff = −½hhᵀ, ∂E/∂U = −hxᵀ, ∂E/∂b = −h.
The estimators differ only in which nudged states enter the derivative in β:

    one_sided    (1/β)[∂E/∂θ(h_β) − ∂E/∂θ(h_0)]                       bias O(β)
    symmetric    (1/2β)[∂E/∂θ(h_β) − ∂E/∂θ(h_−β)]                     bias O(β²)
    holomorphic  Re (1/N) Σ_k [∂E/∂θ(h_{β_k}) − ∂E/∂θ(h_0)] / β_k,  β_k = |β|e^{2πik/N}
                 (Laborieux & Zenke 2022: the N-point Cauchy formula for d/dβ on a circle, with
                 complex states; its error is O(|β|^N). N = 1 is one-sided, N = 2 symmetric.)

Sign convention: every estimate is of +dℒ/dθ, the gradient to *descend*; nudging with β > 0
pulls h towards lower loss. The batch loss is the mean ℒ = (1/B) Σ ℓ_b: each sample is nudged by
its own β ∂ℓ_b/∂h and the per-sample estimates are averaged.

Readout parameters (V, c) are outside E; they get their explicit gradient ∂ℒ/∂V, ∂ℒ/∂c at h_0.
The estimate for W_eff reaches the raw W by the chain rule of the local map W ↦ W_eff
(symmetrization, then spectral normalization γW/σ(W)) — a vector–Jacobian product of that
parametrization only, never of the dynamics.

Asymmetric ("directed", vector-field) models have no energy. For them the same rule is applied
in its vector-field form (Scellier et al. 2018): post-synaptic nudged difference × pre-synaptic
free activity, ∂Ê/∂W_eff = −h h_0ᵀ. For a symmetric W it has the same limit as the energy
form; for W ≠ Wᵀ the nudged phase propagates the error through W where backprop uses Wᵀ, and
that bias does not vanish as β → 0 (track 15 measures it).
"""

from __future__ import annotations

import cmath
import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .model import EquilibriumNotConverged, LoopedMLP, default_tolerance
from .solvers import Outcome, SolverStats, get_solver, is_positive_integer, iterate
from .solvers import _finish as finish_solve
from .solvers import _row_norm as row_norm

ESTIMATORS = ("one_sided", "symmetric", "holomorphic")
ON_UNCONVERGED = ("raise", "warn", "record")
DEFAULT_POINTS = 4  # holomorphic estimator: N = 4 points on the circle unless told otherwise


class PhaseNotConverged(RuntimeError):
    """A free or nudged phase missed its tolerance, so an EP gradient from it would be wrong."""


@dataclass(frozen=True)
class NudgeSchedule:
    """Which nudges to run and how to combine them: estimate = Re Σ_k w_k ∂E/∂θ(h_{β_k}) + w_0
    ∂E/∂θ(h_0). Real for one-sided and symmetric; complex for holomorphic."""

    estimator: str
    betas: tuple[complex, ...]
    weights: tuple[complex, ...]
    free_weight: complex

    @property
    def is_complex(self) -> bool:
        return self.estimator == "holomorphic"


def nudge_schedule(estimator: str, beta: float, n_points: int | None = None) -> NudgeSchedule:
    """The nudges β_k and weights w_k of an estimator (ValueError on a bad β, N or name)."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {list(ESTIMATORS)}")
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not math.isfinite(beta):
        raise ValueError(f"beta must be a finite real number, got {beta!r}")
    if beta == 0:
        raise ValueError("beta must be non-zero: EP divides by the nudge strength")
    if estimator != "holomorphic" and n_points is not None:
        raise ValueError(f"n_points applies to the holomorphic estimator only, not {estimator!r}")
    beta = float(beta)
    if estimator == "one_sided":
        return NudgeSchedule(estimator, (beta,), (1 / beta,), -1 / beta)
    if estimator == "symmetric":
        return NudgeSchedule(estimator, (beta, -beta), (0.5 / beta, -0.5 / beta), 0.0)
    n = DEFAULT_POINTS if n_points is None else n_points
    if not is_positive_integer(n):
        raise ValueError(f"n_points must be a positive integer, got {n_points!r}")
    n = int(n)
    radius = abs(beta)
    betas = tuple(radius * cmath.exp(2j * math.pi * k / n) for k in range(n))
    weights = tuple(1 / (n * b) for b in betas)
    return NudgeSchedule(estimator, betas, weights, -sum(weights))


def smallest_usable_beta(readout_weight: Tensor, *, max_slope: float, resolution: float,
                         dtype: torch.dtype) -> float:
    """β_min = max(δ / (s √2 ‖V_eff‖₂), 1/f_max): no |β| below it can give an EP estimate.

    The nudged map differs from the free one only by the nudge in the pre-activation, so for
    every state h (per sample, s = sup|φ′|)

        ‖T_β(h) − T_0(h)‖ ≤ s |β| ‖∂ℓ/∂h‖,   ‖∂ℓ/∂h‖ = ‖V_effᵀ(p − e_y)‖ ≤ √2 ‖V_eff‖₂,

    since ‖p − e_y‖² = (1 − p_y)² + Σ_{j≠y} p_j² ≤ 2(1 − p_y)² ≤ 2 for a softmax p. For |β| <
    δ / (s √2 ‖V_eff‖₂) the two maps therefore differ by less than δ at *every* state, where δ
    (`resolution`) is the accuracy to which a phase's state is known: the tolerance a solved
    phase stops at (its residual ≤ tol, so its state is known to ~tol/(1 − L)), and never less
    than one rounding ε of a unit-size state. The nudge then moves the state by no more than the
    phases' own error, and (h_β − h_0)/β is that error magnified by 1/β: measured in float64 at
    β = 1e-20 as exactly 0 (symmetric: both nudged phases stop at h_0) or 1e7× the true
    gradient (one-sided). The second term keeps the estimator's weights 1/β finite in `dtype`
    (β = 5e-324 overflows 1/β and gives NaN). The floor refuses only what cannot work whatever
    the data; a useful β lies well above it (at β_min the signal can at most equal the noise).
    With V_eff = 0 the loss does not depend on h: the true gradient of W, U, b is 0 and their
    estimate is the phases' error over β at *every* β alike (the readout's V, c gradient is
    exact), so no β is refused for it — a zero-initialized readout trains — only the second term
    applies.
    """
    norm = float(torch.linalg.matrix_norm(readout_weight.detach().double(), ord=2)) \
        if readout_weight.numel() else 0.0
    force = max_slope * math.sqrt(2) * norm
    overflow = 1 / torch.finfo(dtype).max
    return max(resolution / force, overflow) if force > 0 else overflow


def check_nudge(beta: float, model: LoopedMLP, *, tol: float | None,
                readout_weight: Tensor | None = None) -> None:
    """ValueError naming β and `smallest_usable_beta` when |β| is below it for `model`.

    tol: the tolerance the phases are solved to, or None for truncated phases (fixed numbers of
    updates, whose states carry only rounding: δ = ε of the model's dtype)."""
    eps = torch.finfo(model.dtype).eps
    resolution = eps if tol is None else max(tol, eps)
    V = model.readout_weight() if readout_weight is None else readout_weight
    floor = smallest_usable_beta(V, max_slope=model.activation.max_slope,
                                 resolution=resolution, dtype=model.dtype)
    if abs(beta) < floor:
        raise ValueError(
            f"beta={beta!r} is too small for this model in {model.dtype}: the smallest usable "
            f"|beta| is {floor:.3g} = delta / (sup|phi'| sqrt(2) ||V_eff||_2) with delta = "
            f"{resolution:.1e} (the phases' tolerance, at least eps); below it the nudge moves "
            f"the state by less than the phases' own error and (h_beta - h_0)/beta is rounding "
            f"noise. Use a |beta| well above it"
        )


def one_hot_labels(y: Tensor, n_out: int, batch: int) -> Tensor:
    """Integer labels (B,) in [0, n_out) as a one-hot (B, n_out) float64 tensor."""
    y = torch.as_tensor(y)
    if y.ndim != 1 or y.shape[0] != batch:
        raise ValueError(f"y must be integer labels of shape ({batch},), got {tuple(y.shape)}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}")
    if batch and (int(y.min()) < 0 or int(y.max()) >= n_out):
        raise ValueError(
            f"labels must lie in [0, {n_out}), got values in [{int(y.min())}, {int(y.max())}]"
        )
    return torch.nn.functional.one_hot(y.long(), n_out).to(torch.float64)


def softmax(logits: Tensor) -> Tensor:
    """Row softmax that also accepts complex logits (holomorphic extension of exp)."""
    shift = logits.real.max(dim=1, keepdim=True).values
    e = torch.exp(logits - shift)
    return e / e.sum(dim=1, keepdim=True)


def loss_gradient_wrt_state(h: Tensor, V: Tensor, c: Tensor, target: Tensor) -> Tensor:
    """∂ℓ_b/∂h_b = Vᵀ(softmax(V h_b + c) − onehot(y_b)) per row: (B, n_hidden)."""
    return (softmax(h @ V.T + c) - target) @ V


def cross_entropy(logits: Tensor, y: Tensor) -> Tensor:
    """ℒ = mean_b CE(logits_b, y_b), the loss every estimator here is a gradient of."""
    return torch.nn.functional.cross_entropy(logits, torch.as_tensor(y).long())


@dataclass(frozen=True)
class Phases:
    """The model's numbers in the dtype a phase runs in (complex for holomorphic nudges)."""

    weight: Tensor
    drive: Tensor
    V: Tensor
    c: Tensor
    target: Tensor
    phi: Callable[[Tensor], Tensor]
    # φ(a + ib) from real parts a, b (`Activation.phi_parts`); None: φ(torch.complex(a, b)).
    phi_parts: Callable[[Tensor, Tensor], Tensor] | None = None

    def nudged_map(self, beta: complex) -> Callable[[Tensor], Tensor]:
        """T_β(h) = φ(h W_effᵀ + Ux + b − β ∂ℓ/∂h); β = 0 is the free map."""
        weight_t = self.weight.T
        if beta == 0:
            return FreeMap(self)
        if self.weight.is_complex():
            return self._complex_map(beta, self.drive, self.target)
        # Real β: −β Vᵀ(p − y) = β Vᵀy − β Vᵀp; the label part is a constant drive, so a step
        # is three fused matrix products, a softmax and φ (this is the inner loop of training).
        drive = self.drive + beta * (self.target @ self.V)
        readout_t, scaled = self.V.T, beta * self.V
        return lambda h: self.phi(torch.addmm(
            torch.addmm(drive, h, weight_t),
            torch.softmax(torch.addmm(self.c, h, readout_t), dim=1), scaled, alpha=-1,
        ))


    def astype(self, dtype: torch.dtype) -> Phases:
        """The same numbers in `dtype` (`phases(…, dtype)` casts exactly these)."""
        return dataclasses.replace(self, weight=self.weight.to(dtype), drive=self.drive.to(dtype),
                                   V=self.V.to(dtype), c=self.c.to(dtype),
                                   target=self.target.to(dtype))

    def _complex_map(self, beta: complex | Tensor, drive: Tensor, target: Tensor
                     ) -> Callable[[Tensor], Tensor]:
        """T_β on complex states. The model's matrices are real (their imaginary parts are
        zero): then a product with a complex state is two real products, (a + ib)M = aM + ibM,
        half the work of a complex one — the same numbers to rounding."""
        if bool(self.weight.imag.any()) or bool(self.V.imag.any()):
            weight_t = self.weight.T
            return lambda h: self.phi(
                h @ weight_t + drive - beta * loss_gradient_wrt_state(h, self.V, self.c, target))
        weight_t, readout, readout_t = (m.contiguous() for m in (
            self.weight.real.T, self.V.real, self.V.real.T))
        drive_re, drive_im = drive.real.contiguous(), drive.imag.contiguous()
        beta = torch.as_tensor(beta, dtype=drive.dtype, device=drive.device)
        beta_re, beta_im = beta.real, beta.imag
        phi_of = self.phi_parts or (lambda real, imag: self.phi(torch.complex(real, imag)))

        def T(h: Tensor) -> Tensor:
            h_re, h_im = h.real, h.imag
            error = softmax(torch.complex(h_re @ readout_t, h_im @ readout_t) + self.c) - target
            pull_re, pull_im = error.real @ readout, error.imag @ readout
            # pre = hWᵀ + drive − β·(p − y)V, its real and imaginary parts apart: the products
            # of real matrices with each part, and φ of the parts (`Activation.phi_parts`).
            return phi_of(h_re @ weight_t + drive_re - (beta_re * pull_re - beta_im * pull_im),
                          h_im @ weight_t + drive_im - (beta_re * pull_im + beta_im * pull_re))

        return T

    def stacked_map(self, betas: Sequence[complex]) -> Callable[[Tensor], Tensor]:
        """All the nudged maps at once: on K·B states, rows k·B … (k+1)·B − 1 follow T_{β_k}
        (`nudged_map(β_k)` of those rows, to rounding: one product per step for all K nudges
        instead of K)."""
        k, batch = len(betas), self.drive.shape[0]
        column = torch.as_tensor(list(betas), dtype=self.drive.dtype, device=self.drive.device)
        beta = column.repeat_interleave(batch).unsqueeze(1)  # (K·B, 1): each row's β
        target, weight_t = self.target.repeat(k, 1), self.weight.T
        if self.weight.is_complex():
            return self._complex_map(beta, self.drive.repeat(k, 1), target)
        drive = self.drive.repeat(k, 1) + beta * (target @ self.V)
        readout_t = self.V.T
        return lambda h: self.phi(torch.addmm(
            torch.addmm(drive, h, weight_t),
            beta * torch.softmax(torch.addmm(self.c, h, readout_t), dim=1), self.V, alpha=-1,
        ))

    def first_nudged_step(self, betas: Sequence[complex], h: Tensor, pre: Tensor) -> Tensor:
        """`stacked_map(betas)` of h repeated K times, from pre = h W_effᵀ + Ux + b (real
        numbers): T_{β_k}(h) = φ(pre − β_k (softmax(Vh + c) − y)V), no product by W_eff."""
        beta = torch.as_tensor(list(betas), dtype=pre.dtype, device=pre.device)[:, None, None]
        pull = (torch.softmax(torch.addmm(self.c, h, self.V.T), dim=1) - self.target) @ self.V
        # (K, B, n) by broadcasting, then the K·B rows of the stacked phases.
        return self.phi(torch.addcmul(pre, beta, pull, value=-1).flatten(0, 1))


class FreeMap:
    """The free map T_0(h) = φ(h W_effᵀ + Ux + b), keeping its last argument and pre-activation:
    a truncated free phase ends by evaluating T_0(h_free) for its residual, and that product
    h_free W_effᵀ is also the first product of every nudged phase (`Phases.first_nudged_step`)."""

    def __init__(self, numbers: Phases) -> None:
        self.phi, self.drive, self.weight_t = numbers.phi, numbers.drive, numbers.weight.T
        self.last: tuple[Tensor, Tensor] | None = None

    def __call__(self, h: Tensor) -> Tensor:
        pre = torch.addmm(self.drive, h, self.weight_t)
        self.last = (h, pre)
        return self.phi(pre)

    def pre_activation(self, h: Tensor) -> Tensor:
        """h W_effᵀ + Ux + b: the one kept when `h` is the last argument, else computed."""
        if self.last is not None and self.last[0] is h:
            return self.last[1]
        return torch.addmm(self.drive, h, self.weight_t)


def phases(model: LoopedMLP, x: Tensor, y: Tensor, dtype: torch.dtype | None = None, *,
           weight: Tensor | None = None, input_weight: Tensor | None = None,
           readout_weight: Tensor | None = None) -> Phases:
    """Everything the free and nudged maps need, computed once (no autograd); `weight`,
    `input_weight` and `readout_weight` are W_eff, U_eff and V_eff when the caller has them."""
    x = model.validate_input(x)
    target = one_hot_labels(y, model.n_out, x.shape[0])
    dtype = model.dtype if dtype is None else dtype
    with torch.no_grad():
        weight = model.recurrent_weight() if weight is None else weight
        U = model.input_weight() if input_weight is None else input_weight
        V = model.readout_weight() if readout_weight is None else readout_weight
        return Phases(
            weight=weight.detach().to(dtype),
            drive=model.input_drive(x, input_weight=U.detach()).to(dtype),
            V=V.detach().to(dtype),
            c=model.c.detach().to(dtype),
            target=target.to(device=x.device, dtype=dtype),
            phi=model.activation.phi,
            phi_parts=model.activation.phi_parts,
        )


def nudged_map(model: LoopedMLP, x: Tensor, y: Tensor, beta: float) -> Callable[[Tensor], Tensor]:
    """T_β for this batch: h ↦ φ(h W_effᵀ + Ux + b − β Vᵀ(softmax(Vh + c) − onehot(y)))."""
    return phases(model, x, y).nudged_map(beta)


class EPGradients(dict):
    """EP's gradient estimate, keyed exactly like `model.named_parameters()`, with its phases.

    free: the free phase's SolverStats; nudged: one SolverStats per nudge β_k (same order as
    `schedule.betas`); free_state: h_0 (B, n_hidden). A non-converged phase is refused by
    `ep_gradients` unless `on_unconverged` says otherwise; `converged` tells which.
    """

    def __init__(self, grads: dict[str, Tensor], *, schedule: NudgeSchedule, free: SolverStats,
                 nudged: list[SolverStats], free_state: Tensor) -> None:
        super().__init__(grads)
        self.schedule = schedule
        self.free = free
        self.nudged = nudged
        self.free_state = free_state

    @property
    def converged(self) -> bool:
        return self.free.all_converged and all(s.all_converged for s in self.nudged)

    @property
    def max_residual(self) -> float:
        return max([self.free.max_residual] + [s.max_residual for s in self.nudged])


@dataclass
class _Solve:
    solver: str
    tol: float
    max_steps: int
    options: dict = field(default_factory=dict)

    def __call__(self, T: Callable[[Tensor], Tensor], h0: Tensor,
                 fixed_steps: int | None, first: Tensor | None = None, *,
                 measured: bool = True) -> tuple[Tensor, SolverStats]:
        """The phase from h0: solved to `tol`, or `fixed_steps` plain updates, the first of
        which is `first` when the caller already has T(h0); `measured` False skips the closing
        residual T(h) − h of a truncated phase (one more update): its stats then say so."""
        if fixed_steps is None:
            return get_solver(self.solver)(T, h0, tol=self.tol, max_steps=self.max_steps,
                                           **self.options)
        # Truncated EP: exactly this many plain updates, no per-step residual (it would cost a
        # reduction and a device sync per step); the residual is measured once at the end.
        run = iterate(T, h0, steps=fixed_steps, tol=None, advance=lambda h, f, g, r: f,
                      first=first)
        h_prev, h = run.last, run.image
        if not measured:
            # As `finish_solve` marks them, a non-finite row has residual inf; a finite one NaN.
            finite = torch.isfinite(row_norm(h))
            return h, SolverStats(
                solver="truncated", tol=self.tol, residual=torch.where(
                    finite, math.nan, math.inf).to(h.real.dtype), residual_trace=[],
                steps=fixed_steps, converged=torch.zeros_like(finite),
                outcome=Outcome.of(torch.zeros_like(finite), finite, measured=False))
        return finish_solve("truncated", T, h_prev, h, tol=self.tol, steps=fixed_steps,
                            trace=[], lipschitz=None)


def _split_stats(stats: SolverStats, k: int) -> list[SolverStats]:
    """The stats of a solve of K stacked phases (`Phases.stacked_map`), one per phase: each
    its rows' residuals and flags (a non-finite row has residual inf, `_finish`, measured or
    not)."""
    out = []
    for residual, converged in zip(stats.residual.chunk(k), stats.converged.chunk(k)):
        out.append(SolverStats(
            solver=stats.solver, tol=stats.tol, residual=residual, residual_trace=[],
            steps=stats.steps, converged=converged, lipschitz=stats.lipschitz,
            outcome=Outcome.of(converged, ~torch.isinf(residual),
                               measured=not bool(torch.isnan(residual).any())),
            extra=dict(stats.extra)))
    return out


def _holomorphic_nudges(solve: _Solve, real: Phases, complex_numbers: Phases, h_free: Tensor,
                        betas: list[complex], weights: list[complex], steps: int, *,
                        measured: bool = True
                        ) -> tuple[list[tuple[Tensor, SolverStats]], list[complex], list[int]]:
    """The N holomorphic phases from the fewest states: the model's numbers are real, so
    T_β̄(h̄) = conj(T_β(h)) (φ, softmax and every product commute with conjugation) and the
    phase of β̄_k = β_{N−k} is the conjugate of that of β_k: w h + w̄ h̄ = 2 Re(w h), and the
    estimate keeps only real parts. So one phase per conjugate pair, weighted 2w, run complex;
    the real nudges (β_0 = |β|, and β_{N/2} = −|β| for even N) run in real arithmetic, stacked.
    Returns the phases, their weights, and for each of the N nudges the index of the phase that
    stands for it (its stats). The same estimate as N separate phases to rounding (β_k is
    computed by cmath.exp, so β_{N−k} and conj(β_k) differ in the last bits)."""
    n = len(betas)
    real_k = [k for k in range(n) if 2 * k % n == 0]  # k = 0 and, for even N, N/2
    pair_k = list(range(1, (n + 1) // 2))  # one of each pair (k, N − k)
    phases: list[tuple[Tensor, SolverStats]] = []
    if real_k:
        reals = [betas[k].real for k in real_k]
        states, stats = solve(real.stacked_map(reals), h_free.real.to(real.drive.dtype)
                              .repeat(len(reals), 1), steps, measured=measured)
        phases += zip(states.chunk(len(reals)), _split_stats(stats, len(reals)))
    if pair_k:
        paired = [betas[k] for k in pair_k]
        states, stats = solve(complex_numbers.stacked_map(paired),
                              h_free.repeat(len(paired), 1), steps, measured=measured)
        phases += zip(states.chunk(len(paired)), _split_stats(stats, len(paired)))
    kept = real_k + pair_k
    phase_weights = [weights[k] if k in real_k else 2 * weights[k] for k in kept]
    stands_for = [kept.index(k) if k in kept else kept.index(n - k) for k in range(n)]
    return phases, phase_weights, stands_for


def weighted_grams(weighted: Sequence[tuple[Tensor, complex]]) -> Tensor:
    """Σ_k w_k h_kᵀh_k up to its antisymmetric part, for the energy form's ∂E/∂W_eff = −½hhᵀ.

    Two states with opposite weights (the symmetric estimator's ±β, the one-sided's h_β and
    h_0) take one product: h_aᵀh_a − h_bᵀh_b is the symmetric part of (h_a − h_b)ᵀ(h_a + h_b),
    whose antisymmetric part the symmetric model's W ↦ ½(W + Wᵀ) removes in the pull-back to the
    raw W; h_a − h_b is formed before the product, so the difference of nearby states does not
    cancel in the products' rounding. Only a symmetric model may use it."""
    left = list(weighted)
    total: Tensor | None = None
    while left:
        h_a, w_a = left.pop(0)
        partner = next((i for i, (_, w) in enumerate(left) if w == -w_a), None)
        if partner is None:
            term = w_a * (h_a.T @ h_a)
        else:
            h_b, _ = left.pop(partner)
            term = w_a * ((h_a - h_b).T @ (h_a + h_b))
        total = term if total is None else total + term
    assert total is not None, "weighted_grams needs at least one state"
    return total


def _check_steps(steps: object) -> tuple[int, int] | None:
    if steps is None:
        return None
    if (isinstance(steps, (tuple, list)) and len(steps) == 2
            and all(is_positive_integer(s) for s in steps)):
        return int(steps[0]), int(steps[1])
    raise ValueError(
        f"steps must be None (solve to tolerance) or (free_steps, nudged_steps), two positive "
        f"integers; got {steps!r}"
    )


def ep_gradients(
    model: LoopedMLP,
    x: Tensor,
    y: Tensor,
    *,
    beta: float,
    estimator: str = "symmetric",
    n_points: int | None = None,
    steps: tuple[int, int] | None = None,
    solver: str = "anderson",
    tol: float | None = None,
    max_steps: int = 5000,
    on_unconverged: str | None = None,
    state_transform: Callable[[Tensor], Tensor] | None = None,
    batch_nudges: bool = True,
    nudged_residuals: bool = True,
    **solver_options: object,
) -> EPGradients:
    """EP's estimate of ∇_θ ℒ, ℒ = mean CE(model(x), y), for every raw parameter θ of `model`.

    beta: nudge strength (finite, non-zero; the holomorphic estimator uses |β| as the radius),
        |β| ≥ `smallest_usable_beta` for the model, dtype and tolerance (ValueError below it).
    estimator: "one_sided", "symmetric" or "holomorphic" (n_points = N ≥ 1, default 4).
    steps: None solves every phase to `tol` (default `default_tolerance(dtype)`) with `solver`;
        (T_free, T_nudged) runs exactly that many plain updates instead, whatever the residual
        (truncated EP, as trained in practice; the nudged phases start from the free state).
    on_unconverged: "raise" (default when solving to tolerance) refuses with PhaseNotConverged
        naming the residual; "warn" warns EquilibriumNotConverged; "record" (default with
        `steps`) only records it in the result's stats.
    state_transform: applied to the state after every update of every phase, h ← s(T(h)) (a
        hardware model: neuron noise, low-precision states); None is the ideal dynamics.
    batch_nudges: with `steps` and no `state_transform`, run the K nudged phases (±β, or the N
        holomorphic nudges) as one batch of K·B states — one product per step instead of K,
        the same estimate to rounding; False runs them one after another (the reference).
    nudged_residuals: False (with `steps` and on_unconverged="record"; what the trainer passes,
        which reads only the free phase's residual) skips each truncated nudged phase's
        closing residual T(h) − h, one more update of all K·B states: the same estimate, and
        those phases' stats then hold residual NaN and converged False (not measured).
    Returns EPGradients: a dict {name: tensor like the parameter} carrying the phases' stats.
    """
    schedule = nudge_schedule(estimator, beta, n_points)
    fixed = _check_steps(steps)
    mode = on_unconverged or ("record" if fixed else "raise")
    if mode not in ON_UNCONVERGED:
        raise ValueError(f"on_unconverged must be one of {list(ON_UNCONVERGED)}, got {mode!r}")
    if not nudged_residuals and (fixed is None or mode != "record"):
        raise ValueError("nudged_residuals=False needs truncated phases (steps=(T_free, "
                         "T_nudged)) and on_unconverged='record': an unmeasured phase cannot "
                         "be refused or warned about")
    x = model.validate_input(x)
    tol = default_tolerance(model.dtype) if tol is None else tol
    get_solver(solver, solver_options)  # ValueError on an unknown solver or option
    solve = _Solve(solver, tol, max_steps, dict(solver_options))
    state_dtype = (torch.complex128 if model.dtype == torch.float64 else torch.complex64) \
        if schedule.is_complex else model.dtype
    # W_eff, U_eff, V_eff and the pull-back of their gradients to the raw W, U, V from one
    # evaluation of each parametrization: a vector–Jacobian product of θ ↦ θ_eff only, never of
    # the dynamics.
    raw = {name: getattr(model, name).detach().clone().requires_grad_(True) for name in "WUV"}
    with torch.enable_grad():
        effective = {"W": model.effective_weight(raw["W"]),
                     "U": model.effective_input_weight(raw["U"]),
                     "V": model.effective_readout_weight(raw["V"])}
    check_nudge(beta, model, tol=None if fixed else tol, readout_weight=effective["V"])
    # The free phase has β = 0: real numbers, real arithmetic, even for complex nudges (whose
    # phases then start from the real h_0, cast): a complex product costs ~4 real ones.
    free_numbers = phases(model, x, y, model.dtype, weight=effective["W"],
                          input_weight=effective["U"], readout_weight=effective["V"])
    numbers = free_numbers.astype(state_dtype) if schedule.is_complex else free_numbers

    def transformed(T: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
        if state_transform is None:
            return T
        return lambda h: state_transform(T(h))

    def nudged_map(beta: complex) -> Callable[[Tensor], Tensor]:
        return transformed(numbers.nudged_map(beta))

    directed = not model.symmetric
    batch = x.shape[0]

    with torch.no_grad():
        h0 = x.new_zeros(batch, model.n_hidden, dtype=model.dtype)
        free_map = FreeMap(free_numbers)
        h_free, free_stats = solve(transformed(free_map), h0, fixed and fixed[0])
        h_free = h_free.to(state_dtype)
        if mode == "raise" and not free_stats.all_converged:
            raise PhaseNotConverged(
                f"EP gradient refused: free phase {free_stats.summary()}; every nudged phase "
                "and the estimate would inherit its error. Raise max_steps, use a contractive "
                "model (spectral_norm=True), or pass on_unconverged='warn'/'record'."
            )
        # ∂E/∂U and ∂E/∂b are linear in h, and so is ∂E/∂W_eff in the vector-field form, so
        # they need only the combined state Σ_k w_k h_k; the energy form's −½hhᵀ is quadratic.
        # The symmetric estimator gives h_0 the weight 0: skip its (n × B × n) product rather
        # than multiply it by zero (same numbers: 0·a + b = b for the finite states used).
        combined: Tensor | None = None
        if schedule.free_weight != 0:
            combined = schedule.free_weight * h_free
        betas = [b if schedule.is_complex else b.real for b in schedule.betas]
        weights = list(schedule.weights)
        order = list(range(len(betas)))  # the phase that stands for each nudge
        if fixed and batch_nudges and state_transform is None and len(betas) > 1:
            # Truncated phases: every nudge in one batch of K·B states (one product per step).
            if schedule.is_complex:
                nudged, weights, order = _holomorphic_nudges(
                    solve, free_numbers, numbers, h_free, betas, weights, fixed[1],
                    measured=nudged_residuals)
            else:
                # The free phase's last evaluation (its residual) computed h_free W_effᵀ: the
                # first nudged step reuses it, one product fewer per phase.
                first = numbers.first_nudged_step(betas, h_free, free_map.pre_activation(h_free))
                stacked, stats = solve(numbers.stacked_map(betas), h_free.repeat(len(betas), 1),
                                       fixed[1], first, measured=nudged_residuals)
                nudged = list(zip(stacked.chunk(len(betas)), _split_stats(stats, len(betas))))
        else:
            nudged = [solve(nudged_map(b), h_free, fixed and fixed[1], measured=nudged_residuals)
                      for b in betas]
        phase_stats = [stats for _, stats in nudged]
        nudged_stats = [phase_stats[i] for i in order]
        for (h_k, _), weight_k in zip(nudged, weights):
            term = weight_k * h_k
            combined = term if combined is None else combined + term
        assert combined is not None  # every schedule has at least one nudge
        if directed:
            grad_weight = -(combined.T @ h_free) / batch
        else:
            weighted = [(h_k, w_k) for (h_k, _), w_k in zip(nudged, weights)]
            if schedule.free_weight != 0:
                weighted.insert(0, (h_free, schedule.free_weight))
            grad_weight = -0.5 * weighted_grams(weighted) / batch
        estimates = {
            "W": grad_weight,
            "U": -(combined.T @ x.to(combined.dtype)) / batch,
            "b": -combined.mean(dim=0),
        }
        estimates = {k: (v.real if v.is_complex() else v).to(model.dtype)
                     for k, v in estimates.items()}
        h_real = h_free.real.to(model.dtype) if schedule.is_complex else h_free
        logits = model.readout(h_real, readout_weight=effective["V"].detach())
        readout_error = softmax(logits) - numbers.target.real.to(model.dtype)
        estimates["V"] = readout_error.T @ h_real / batch
        estimates["c"] = readout_error.mean(dim=0)
        pulled = torch.autograd.grad([effective[k] for k in "WUV"], [raw[k] for k in "WUV"],
                                     grad_outputs=[estimates[k] for k in "WUV"])
        estimates.update(zip("WUV", pulled))

    result = EPGradients(
        {name: estimates[name].detach() for name, _ in model.named_parameters()},
        schedule=schedule, free=free_stats, nudged=nudged_stats, free_state=h_real,
    )
    if not result.converged and mode != "record":
        worst = [("free", free_stats)] + [(f"nudged(beta={b:.3g})", s) for b, s in
                                           zip(schedule.betas, nudged_stats)]
        failed = "; ".join(f"{name} phase {s.summary()}" for name, s in worst
                           if not s.all_converged)
        message = (f"EP gradient from an unconverged phase ({failed}); the estimate would be "
                   "wrong by an unknown amount. Raise max_steps, use a contractive model, or "
                   "pass on_unconverged='warn'/'record' to accept it.")
        if mode == "raise":
            raise PhaseNotConverged(message)
        warnings.warn(message, EquilibriumNotConverged, stacklevel=2)
    return result


def nudge_surrogate(
    model: LoopedMLP,
    x: Tensor,
    y: Tensor,
    *,
    beta: float,
    estimator: str = "one_sided",
    unroll: int = 0,
    tol: float | None = None,
    max_steps: int = 5000,
) -> Tensor:
    """The loss that finite-β EP descends exactly (track 14), as a differentiable scalar:

        one_sided:  L_β = [F(h_β, β) − F(h_0, 0)] / β
        symmetric:  L_β = [F(h_β, β) − F(h_−β, −β)] / 2β,     F(h, β) = mean_b [E(h_b) + βℓ(h_b)]

    Because ∂F/∂h = 0 at every equilibrium, dL_β/dθ = the partial ∂L_β/∂θ at the fixed states,
    which is exactly the finite-β EP update of W, U, b (energy form; symmetric models only; the
    readout V, c enter F through βℓ, so L_β's gradient for them is ∂ℓ/∂(V, c) at h_β, or the
    mean over ±β, where `ep_gradients` uses the exact ∂ℒ/∂(V, c) at h_0). `unroll` = K
    re-applies the map K times *with* autograd from each (detached) equilibrium, so autograd
    also sees dh/dθ (→ the implicit derivative as K grows): the envelope theorem then becomes a
    measurable claim rather than a construction. As β → 0, L_β → ℒ.
    """
    if not model.symmetric:
        raise ValueError("the finite-nudge surrogate needs an energy: symmetric=True models only")
    if estimator not in ("one_sided", "symmetric"):
        raise ValueError(f"estimator must be 'one_sided' or 'symmetric', got {estimator!r}")
    if isinstance(unroll, bool) or not isinstance(unroll, int) or unroll < 0:
        raise ValueError(f"unroll must be a non-negative integer, got {unroll!r}")
    nudge_schedule(estimator, beta)  # validates beta
    x = model.validate_input(x)
    tol = default_tolerance(model.dtype) if tol is None else tol
    check_nudge(beta, model, tol=tol)
    numbers = phases(model, x, y)
    labels = torch.as_tensor(y).long()
    nudges = [0.0, float(beta)] if estimator == "one_sided" else [-float(beta), float(beta)]
    with torch.no_grad():
        h_free, free_stats = get_solver("anderson")(numbers.nudged_map(0), x.new_zeros(
            x.shape[0], model.n_hidden), tol=tol, max_steps=max_steps)
    values = []
    for beta_k in nudges:
        with torch.no_grad():
            h, stats = (h_free, free_stats) if beta_k == 0 else get_solver("anderson")(
                numbers.nudged_map(beta_k), h_free, tol=tol, max_steps=max_steps)
        if not stats.all_converged:
            raise PhaseNotConverged(f"surrogate phase beta={beta_k:g}: {stats.summary()}")
        weight = model.recurrent_weight()
        drive = model.input_drive(x)
        for _ in range(unroll):
            logits = model.readout(h)
            nudge = (torch.softmax(logits, dim=1) - numbers.target) @ model.readout_weight()
            h = model.activation.phi(h @ weight.T + drive - beta_k * nudge)
        F = model.energy(h, x).mean()
        if beta_k != 0:
            F = F + beta_k * cross_entropy(model.readout(h), labels)
        values.append(F)
    return (values[1] - values[0]) / (float(beta) if estimator == "one_sided" else 2 * float(beta))
