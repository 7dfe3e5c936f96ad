"""The witness for any System: equilibria, spectra and gradients from `step` and `cost` alone.

For a System with update map T_β(h; θ) and per-sample cost C (`properties.system`), all in
float64 on copies of θ:

    h*            Newton on F(h) = h − T_0(h):  h ← h − (I − J(h))⁻¹ F(h),  J = ∂T_0/∂h by autograd
    J*            ∂T_0/∂h at h*;  ρ(J*) by scipy.linalg.eigvals, ‖J*‖₂ by scipy.linalg.svdvals
    implicit      dℒ/dθ = λᵀ ∂T_0/∂θ (h*) + ∂ℒ/∂θ (h*),  (I − J*)ᵀ λ = ∂ℒ/∂h (h*)
                  (λ by scipy.linalg.solve)
                  (the explicit ∂ℒ/∂θ is nonzero only for a cost with parameters of its own)
    BPTT          autograd of ℒ(h_K), h_{k+1} = T_0(h_k) unrolled from init_state(x)
    FD            ⟨dℒ/dθ, v⟩ by central differences of ℒ(θ ± t v), ℒ re-solved by Newton,
                  over a ladder of steps extrapolated by a Richardson tableau with its own
                  error estimate, and the jump of the one-sided derivatives (a kink)

with ℒ(θ) = mean_b C(h*_b(θ), y_b). The map is applied to the whole batch, but sample b's update
depends on sample b only (checked on load), so the batch Jacobian is block diagonal and the
n vector–Jacobian products of Σ_b T(h)_b give every block at once.

It calls `init_state`, `step`, `cost`, `energy` and `sample` — never the user's
`ep_gradient`, `free_phase` or `lipschitz`, which the tracks hold to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch
from torch import Tensor

NEWTON_TOL = 1e-12  # max |T_0(h) − h| at a witnessed equilibrium (float64)
NEWTON_STEPS = 60


@dataclass(frozen=True)
class Equilibrium:
    """h* per sample, with the Newton residual max_i |T(h)_i − h_i| and the first-order error
    bound ‖(I − J*)⁻¹‖₂ ‖T(h) − h‖₂ of h against the exact fixed point."""

    h: Tensor  # (B, n)
    jacobian: np.ndarray  # (B, n, n): J* = ∂T/∂h at h
    residual: np.ndarray  # (B,)
    error_bound: np.ndarray  # (B,)
    iterations: int

    @property
    def converged(self) -> bool:
        return bool(np.all(self.residual <= NEWTON_TOL))

    @property
    def max_residual(self) -> float:
        return float(self.residual.max())


def jacobians(sut, h: Tensor, x: Tensor, params: dict[str, Tensor], *, beta: float = 0.0,
              y: Tensor | None = None) -> np.ndarray:
    """(B, n, n): J_b = ∂T(h)_b / ∂h_b, from the n VJPs of Σ_b T(h)_b (block-diagonal batch)."""
    def summed(z: Tensor) -> Tensor:
        return sut.step(z, x, params, beta=beta, y=y).sum(0)

    J = torch.autograd.functional.jacobian(summed, h.detach().clone())  # (n, B, n)
    return J.permute(1, 0, 2).detach().numpy()


def residual(sut, h: Tensor, x: Tensor, params: dict[str, Tensor], *, beta: float = 0.0,
             y: Tensor | None = None) -> np.ndarray:
    """max_i |T(h)_i − h_i| per sample."""
    with torch.no_grad():
        T = sut.step(h, x, params, beta=beta, y=y)
    return (T - h).abs().amax(dim=1).numpy()


def newton_equilibrium(sut, x: Tensor, params: dict[str, Tensor] | None = None, *,
                       beta: float = 0.0, y: Tensor | None = None, h0: Tensor | None = None,
                       tol: float = NEWTON_TOL, max_steps: int = NEWTON_STEPS) -> Equilibrium:
    """h* of T_β by damped Newton per sample (a step that does not lower the residual is halved,
    down to 1/1024; then the plain step h ← T(h) is taken)."""
    params = sut.params64() if params is None else params
    h = (sut.init_state(x) if h0 is None else h0).detach().clone().double()
    r = residual(sut, h, x, params, beta=beta, y=y)
    steps = 0
    while steps < max_steps and not np.all(r <= tol):
        steps += 1
        J = jacobians(sut, h, x, params, beta=beta, y=y)
        with torch.no_grad():
            F = (h - sut.step(h, x, params, beta=beta, y=y)).numpy()
        n = h.shape[1]
        delta = np.zeros_like(F)
        for b in range(h.shape[0]):
            if r[b] > tol:
                try:
                    delta[b] = scipy.linalg.solve(np.eye(n) - J[b], F[b])
                except (np.linalg.LinAlgError, ValueError):
                    delta[b] = F[b]  # singular I − J: fall back to the plain step's direction
        if not np.all(np.isfinite(delta)):
            delta = np.where(np.isfinite(delta), delta, F)
        h, r = _damped(sut, h, torch.as_tensor(delta), r, x, params, beta, y)
    J = jacobians(sut, h, x, params, beta=beta, y=y)
    with torch.no_grad():
        F = (sut.step(h, x, params, beta=beta, y=y) - h).numpy()
    bound = np.array([_inverse_norm(J[b]) * np.linalg.norm(F[b]) for b in range(len(F))])
    return Equilibrium(h.detach(), J, r, bound, steps)


def _damped(sut, h: Tensor, delta: Tensor, r: np.ndarray, x: Tensor, params, beta, y
            ) -> tuple[Tensor, np.ndarray]:
    """h − t·δ per sample with the largest t ∈ {1, 1/2, …, 1/1024} that lowers the residual;
    a sample no t improves takes the plain step h ← T(h)."""
    new_h, new_r = h.clone(), r.copy()
    pending = r > 0
    t = 1.0
    for _ in range(11):
        trial = h - t * delta
        r_trial = residual(sut, trial, x, params, beta=beta, y=y)
        accept = pending & np.isfinite(r_trial) & (r_trial < r)
        mask = torch.as_tensor(accept)
        new_h[mask] = trial[mask]
        new_r[accept] = r_trial[accept]
        pending &= ~accept
        if not pending.any():
            return new_h, new_r
        t /= 2
    with torch.no_grad():
        plain = sut.step(h, x, params, beta=beta, y=y)
    mask = torch.as_tensor(pending)
    new_h[mask] = plain[mask]
    return new_h, residual(sut, new_h, x, params, beta=beta, y=y)


def _inverse_norm(J: np.ndarray) -> float:
    s = scipy.linalg.svdvals(np.eye(len(J)) - J)
    return float(1 / s[-1]) if s[-1] > 0 else float("inf")


def spectral_radius(J: np.ndarray) -> float:
    """ρ(J) = max |λ| by scipy.linalg.eigvals."""
    return float(np.abs(scipy.linalg.eigvals(J)).max())


def spectral_norm(J: np.ndarray) -> float:
    """‖J‖₂ by scipy.linalg.svdvals."""
    return float(scipy.linalg.svdvals(J)[0])


def mean_cost(sut, h: Tensor, y: Tensor, params: dict[str, Tensor] | None = None) -> Tensor:
    """ℒ = mean_b C(h_b, y_b) (with θ where the cost has parameters of its own)."""
    return sut.cost(h, y, params).mean()


def implicit_gradient(sut, x: Tensor, y: Tensor, params: dict[str, Tensor] | None = None,
                      eq: Equilibrium | None = None) -> dict[str, Tensor]:
    """dℒ/dθ = λᵀ ∂T_0/∂θ + ∂ℒ/∂θ at h*, with (I − J*_b)ᵀ λ_b = ∂ℒ/∂h_b by scipy per sample."""
    params = sut.params64() if params is None else params
    eq = newton_equilibrium(sut, x, params) if eq is None else eq
    h = eq.h.clone().requires_grad_(True)
    (dL_dh,) = torch.autograd.grad(mean_cost(sut, h, y, params), h)
    g = dL_dh.detach().numpy()
    n = g.shape[1]
    lam = np.stack([scipy.linalg.solve((np.eye(n) - eq.jacobian[b]).T, g[b])
                    for b in range(len(g))])
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    T = sut.step(eq.h.detach(), x, leaves)
    total = (T * torch.as_tensor(lam)).sum() + mean_cost(sut, eq.h.detach(), y, leaves)
    grads = torch.autograd.grad(total, list(leaves.values()), allow_unused=True)
    return {k: (torch.zeros_like(v) if g_ is None else g_.detach())
            for (k, v), g_ in zip(leaves.items(), grads)}


def bptt_gradient(sut, x: Tensor, y: Tensor, steps: int,
                  params: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
    """Autograd of ℒ(h_K) through K = `steps` updates of T_0 from init_state(x)."""
    params = sut.params64() if params is None else params
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    h = sut.init_state(x)
    for _ in range(steps):
        h = sut.step(h, x, leaves)
    grads = torch.autograd.grad(mean_cost(sut, h, y, leaves), list(leaves.values()),
                                allow_unused=True)
    return {k: (torch.zeros_like(v) if g_ is None else g_.detach())
            for (k, v), g_ in zip(leaves.items(), grads)}


def loss_at_equilibrium(sut, x: Tensor, y: Tensor, params: dict[str, Tensor],
                        h0: Tensor | None = None) -> float:
    """ℒ(θ) = mean_b C(h*_b(θ), y_b), h* re-solved by Newton (NaN if it does not converge)."""
    eq = newton_equilibrium(sut, x, params, h0=h0)
    if not eq.converged:
        return float("nan")
    with torch.no_grad():
        return float(mean_cost(sut, eq.h, y, params))


@dataclass(frozen=True)
class LineDerivative:
    """f′(0) of a scalar f along a line, with the extrapolation's own error estimate and the
    jump f′(0⁺) − f′(0⁻) (≈ 0 where f is differentiable at 0; a kink shows as a jump that does
    not shrink with the step)."""

    value: float
    error: float
    jump: float
    step: float  # the step whose extrapolation was kept


def _tableau(values: list[float], shrink: float) -> tuple[float, float]:
    """The Richardson tableau of A(tᵢ) = values[i], tᵢ = t₀ shrink⁻ⁱ, A(t) = a + c₁t² + c₂t⁴ +
    …: the entry with the smallest error estimate (its distance to its two parents) and that
    estimate (column 0 has none of its own)."""
    best, best_err = float("nan"), float("inf")
    prev: list[float] = []
    for value in values:
        row = [value]
        factor = shrink ** 2
        for j in range(1, len(prev) + 1):
            row.append((factor * row[j - 1] - prev[j - 1]) / (factor - 1))
            factor *= shrink ** 2
            err = max(abs(row[j] - row[j - 1]), abs(row[j] - prev[j - 1]))
            if err <= best_err:
                best, best_err = row[j], err
        prev = row
    return best, best_err


def line_derivative(f, f0: float, *, first_step: float = 0.1, shrink: float = 2.0,
                    levels: int = 16) -> LineDerivative:
    """f′(0) by central differences D(t) = (f(t) − f(−t)) / 2t at t = first_step·shrink⁻ⁱ,
    extrapolated to t → 0 by a Richardson tableau (D(t) = f′ + c₂t² + c₄t⁴ + …, so column j
    removes the t²ʲ term). Each entry's error is estimated as its distance to its two parents
    and the entry with the smallest estimate is kept: large steps (f not smooth on their scale,
    e.g. across a near-crossing of the top two singular values) and small ones (round-off
    ∝ 1/t) both show as large estimates, so no step is tuned to one parameter's scale. The
    ladder runs all `levels` unless an estimate reaches f's round-off, 16ε(|f(0)|/t + |f′|),
    below which no smaller step can improve it. Steps where f is not finite (a re-solve that
    failed) restart the tableau below them.

    The jump: S(t) = [f(t) + f(−t) − 2f(0)] / t = D₊(t) − D₋(t) (forward minus backward
    difference) is f″t + O(t³) for a smooth f and tends to f′(0⁺) − f′(0⁻) at a kink; it is
    extrapolated once, 2S(t) − S(2t), at the kept step. It is a diagnosis (why a central
    difference, the mean of the two one-sided derivatives, can disagree with a gradient), not a
    measurement as precise as f′."""
    eps = float(np.finfo(np.float64).eps)
    central: list[float] = []
    second: list[float] = []
    best, best_err, best_step, kept = float("nan"), float("inf"), float("nan"), 0
    for i in range(levels):
        t = first_step / shrink ** i
        up, down = f(t), f(-t)
        if not (math.isfinite(up) and math.isfinite(down)):
            central, second = [], []
            continue
        central.append((up - down) / (2 * t))
        second.append((up + down - 2 * f0) / t)
        value, err = _tableau(central, shrink)
        if err < best_err:
            best, best_err, best_step, kept = value, err, t, len(second)
        if best_err <= 16 * eps * (abs(f0) / t + abs(best)):
            break
    if not math.isfinite(best) and central:  # one finite level: no estimate of its error
        best, best_step = central[-1], first_step / shrink ** (levels - 1)
    # S(t) = J + f″t + O(t³) ⇒ 2S(t) − S(2t) = J + O(t³), read at the kept step
    jump = (2 * second[kept - 1] - second[kept - 2]) if kept >= 2 else float("nan")
    return LineDerivative(best, best_err, jump, best_step)


def along(params: dict[str, Tensor], direction: dict[str, Tensor], s: float
          ) -> dict[str, Tensor]:
    """θ + s·v (v touches the parameters it names)."""
    return {k: (p + s * direction[k].to(p.dtype) if k in direction else p)
            for k, p in params.items()}


def directional_derivative(sut, x: Tensor, y: Tensor, direction: dict[str, Tensor],
                           params: dict[str, Tensor] | None = None, *, levels: int = 16
                           ) -> LineDerivative:
    """⟨dℒ/dθ, v⟩ by `line_derivative` of the re-solved s ↦ ℒ(θ + s v), v = `direction`
    (each ℒ a Newton solve warm-started at h*(θ)); the first step is 0.1/‖v‖, at most
    `levels` steps."""
    params = sut.params64() if params is None else params
    direction = {k: v for k, v in direction.items() if k in params}
    vnorm = float(np.sqrt(sum(float((v ** 2).sum()) for v in direction.values())))
    if vnorm == 0:
        return LineDerivative(0.0, 0.0, 0.0, 0.0)
    eq = newton_equilibrium(sut, x, params)
    with torch.no_grad():
        f0 = float(mean_cost(sut, eq.h, y, params)) if eq.converged else float("nan")
    return line_derivative(
        lambda s: loss_at_equilibrium(sut, x, y, along(params, direction, s), h0=eq.h),
        f0, first_step=0.1 / vnorm, levels=levels)


def random_directions(params: dict[str, Tensor], count: int, seed: int
                      ) -> list[dict[str, Tensor]]:
    """`count` unit-norm random directions in θ, each touching every parameter."""
    gen = torch.Generator().manual_seed(int(seed))
    out = []
    for _ in range(count):
        v = {k: torch.randn(p.shape, generator=gen, dtype=torch.float64) for k, p in
             params.items()}
        norm = float(np.sqrt(sum(float((t ** 2).sum()) for t in v.values())))
        out.append({k: t / norm for k, t in v.items()})
    return out


def free_trajectory(sut, x: Tensor, steps: int, params: dict[str, Tensor] | None = None,
                    h0: Tensor | None = None) -> list[Tensor]:
    """[h_0, h_1, …, h_K] of h_{k+1} = T_0(h_k) from init_state(x) (or h0)."""
    params = sut.params64() if params is None else params
    h = sut.init_state(x) if h0 is None else h0
    out = [h]
    with torch.no_grad():
        for _ in range(steps):
            h = sut.step(h, x, params)
            out.append(h)
    return out
