"""The measures the tracks hold a System to, each against the witness (`system_witness`).

Every function takes a `SystemUnderTest` (or a planted-fault variant of it, for the negative
controls) and returns numbers or `Evidence`; the tracks compose them. The witness computes
h*, J*, spectra and the reference gradients from `step` and `cost` alone; what is checked is
the System's own claim: its `lipschitz`, that its `step` converges where the witness says, its
`energy`, its `ep_gradient`, its `free_phase`.

Planted faults (`Amplified`, `PlantedGradient`) are derived from the user's own code, so a
certificate shows the check could fail *on this system*:

    Amplified(a):        T'(h) = h + a (T(h) − h)          same fixed points, J' = I + a(J − I)
    PlantedGradient:     g ↦ −g, 2g, or g with its largest parameter's block zeroed
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor

from . import system_witness as witness
from .evidence import Evidence, MeasurementFailed, at_least, at_most
from .gradients import fitted_slope

# -- the witnessed system ------------------------------------------------------------------------


@dataclass
class Witnessed:
    """A System and what the witness knows of it at one batch (x, y) = sample(batch, seed)."""

    sut: Any
    seed: int
    batch: int | None = None

    @cached_property
    def data(self) -> tuple[Tensor, Tensor]:
        return self.sut.data(self.seed, self.batch)

    @property
    def x(self) -> Tensor:
        return self.data[0]

    @property
    def y(self) -> Tensor:
        return self.data[1]

    @cached_property
    def params(self) -> dict[str, Tensor]:
        return self.sut.params64()

    @cached_property
    def eq(self) -> witness.Equilibrium:
        return witness.newton_equilibrium(self.sut, self.x, self.params)

    @cached_property
    def rho(self) -> np.ndarray:
        return np.array([witness.spectral_radius(J) for J in self.eq.jacobian])

    @cached_property
    def norm(self) -> np.ndarray:
        return np.array([witness.spectral_norm(J) for J in self.eq.jacobian])

    @cached_property
    def implicit(self) -> dict[str, Tensor]:
        self.require_equilibrium()
        return witness.implicit_gradient(self.sut, self.x, self.y, self.params, self.eq)

    def nudged(self, beta: float) -> NudgedPhase:
        """The nudged phase's equilibrium h_β of T_β (`NudgedPhase`; h* itself at β = 0)."""
        cache = self.__dict__.setdefault("_nudged", {})
        if beta not in cache:
            cache[beta] = nudged_phase(self, beta)
        return cache[beta]

    def require_equilibrium(self) -> None:
        """MeasurementFailed unless Newton found h* (residual ≤ 1e-12) and ρ(J*) < 1 (the
        equilibrium is locally attracting and I − J* is invertible)."""
        if not self.eq.converged:
            raise MeasurementFailed("witness: Newton equilibrium of T_0 found (max |T(h) - h|)",
                                    self.eq.max_residual, f"<= {witness.NEWTON_TOL:g}",
                                    iterations=self.eq.iterations)
        if not float(self.rho.max()) < 1:
            raise MeasurementFailed("witness: h* attracting, max rho(J*) (scipy)",
                                    float(self.rho.max()), "< 1")

    def equilibrium_evidence(self) -> list[Evidence]:
        """The premises as checks: Newton converged; ρ(J*) < 1."""
        return [
            at_most("witness: Newton residual max |T_0(h*) - h*| (float64)",
                    self.eq.max_residual, witness.NEWTON_TOL, iterations=self.eq.iterations,
                    error_bound=float(self.eq.error_bound.max())),
            at_most("witness: max rho(J*) over the batch (scipy eigvals)",
                    float(self.rho.max()), 1.0 - 1e-12, norm_J=float(self.norm.max())),
        ]


PHASE_STEPS = 2000  # plain steps of T_β from h* the witness takes to find where the phase goes
PHASE_SETTLED = 1e-9  # max |T_β(h) − h| at which an iterate is handed to Newton to polish
SPLIT = 1e-6  # max |h − h'| above which two polished equilibria are distinct


@dataclass(frozen=True)
class NudgedPhase:
    """Where the nudged phase goes: h_β, the fixed point of T_β that the System's own dynamics
    (plain iteration of `step` from h*) settle on, polished by Newton; Newton from h* for a sample
    whose iteration does not settle in PHASE_STEPS (T_β does not contract there).

    Why not Newton from h* alone: at a finite β, F(·, β) = E + βC need not be convex (β < 0, or a
    large ∇²C), and T_β can have several attracting equilibria. Found by a random hunt over
    LoopedMLP Systems at β = −0.5: ModelSpec(n_in=5, n_hidden=3, weight_scale=10, 'low_rank',
    seed=64800, γ=0.95, drive 0.1) at seed 37 has three equilibria for one sample (ρ(J) = 0.39,
    0.51 and a saddle at 1.59); the phase started at h* settles on the first, Newton from h* on
    the second, and the surrogate's gradient on the wrong branch missed the (correct) EP update
    by 0.053. Each branch obeys the envelope theorem; the one EP's update is the gradient of is
    the one its phase reaches, and a System's own solver need not follow the plain dynamics
    (hunted: ModelSpec(n_in=6, n_hidden=1, weight_scale=1e3, 'diagonal', seed=32054, γ=0.99,
    drive 0.1) at seed 39, where eqprop_core's Anderson phase took Newton's branch and the
    dynamics' missed by 0.146), so `branches` keeps both. `split` (per sample, max |h_β −
    h_Newton|) records that there was a choice."""

    eq: witness.Equilibrium
    settled: np.ndarray  # (B,) bool: the iteration from h* settled (h_β is the dynamics' own)
    split: np.ndarray  # (B,) max |h_β − Newton from h*| (0 where they agree or did not settle)
    newton: witness.Equilibrium | None = None  # Newton from h*, where it found another

    @property
    def max_split(self) -> float:
        return float(self.split.max()) if self.split.size else 0.0

    def branches(self) -> list[witness.Equilibrium]:
        """The equilibria the witness found for this phase: the dynamics' own, then Newton's
        from h* where it is another one (a System's own solver, e.g. Anderson, may take it)."""
        other = self.newton is not None and self.max_split > SPLIT and self.newton.converged
        return [self.eq, cast(witness.Equilibrium, self.newton)] if other else [self.eq]


def nudged_phase(w: Witnessed, beta: float) -> NudgedPhase:
    """`NudgedPhase` of T_β at the witnessed θ, iterated (and Newton-solved) from h*."""
    if beta == 0:
        return NudgedPhase(w.eq, np.ones(len(w.eq.residual), bool), np.zeros(len(w.eq.residual)))
    newton = witness.newton_equilibrium(w.sut, w.x, w.params, beta=beta, y=w.y, h0=w.eq.h)
    h, r, _ = iterate_to(w.sut, w.x, w.eq.h, w.params, tol=PHASE_SETTLED, max_steps=PHASE_STEPS,
                         beta=beta, y=w.y)
    settled = np.isfinite(r) & (r <= PHASE_SETTLED)
    if not settled.any():
        return NudgedPhase(newton, settled, np.zeros(len(r)))
    polished = witness.newton_equilibrium(
        w.sut, w.x, w.params, beta=beta, y=w.y,
        h0=torch.where(torch.as_tensor(settled)[:, None], h, newton.h))
    split = np.where(settled, (polished.h - newton.h).abs().amax(dim=1).numpy(), 0.0)
    return NudgedPhase(polished, settled, split, newton)


def split_note(w: Witnessed, betas) -> str | None:
    """A sentence naming the nudged phases with more than one equilibrium (None: none seen)."""
    parts = [f"beta = {b:+g}: samples {np.flatnonzero(w.nudged(b).split > SPLIT).tolist()} "
             f"(max |h - h'| = {w.nudged(b).max_split:.3g})"
             for b in betas if b != 0 and w.nudged(b).max_split > SPLIT]
    if not parts:
        return None
    return ("the nudged map has more than one attracting equilibrium (" + "; ".join(parts) +
            "): the surrogate is measured on the one the System's own step reaches from h* and "
            "on Newton's from h*, and the update must match one of them")


class PlantedMap:
    """The System with its `step` replaced by a planted variant (the subclass's); everything
    else is the System's own."""

    def __init__(self, sut: Any) -> None:
        self.sut = sut

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sut, name)


class Amplified(PlantedMap):
    """T'(h) = h + a(T(h) − h): the System's own map, over-relaxed by `a`. Same fixed points,
    J' = I + a(J − I): with a = 4 / max|1 − λ(J*)|, the eigenvalue λ attaining it gives
    |1 + a(λ − 1)| ≥ 4 − 1 = 3, so ρ(J') ≥ 3 and iteration diverges from h*."""

    def __init__(self, sut: Any, a: float) -> None:
        super().__init__(sut)
        self.a = float(a)

    def step(self, h, x, params=None, *, beta=0.0, y=None):
        return h + self.a * (self.sut.step(h, x, params, beta=beta, y=y) - h)

    def __repr__(self) -> str:
        return f"Amplified({self.sut!r}, a={self.a:.3g})"


def amplifying_factor(w: Witnessed) -> float:
    """a = 4 / max_λ |1 − λ| over the spectra of J* (see `Amplified`)."""
    import scipy.linalg

    gap = max(float(np.abs(1 - scipy.linalg.eigvals(J)).max()) for J in w.eq.jacobian)
    return 4.0 / gap if gap > 0 else 4.0


# -- starts and pairs ---------------------------------------------------------------------------


def starts(w: Witnessed, count: int) -> list[Tensor]:
    """init_state(x), then draws around and far from h*: Gaussian of the state's scale ×1, ×10,
    ×1e3, and 'corners' ±scale·sign — all from the seed."""
    rng = np.random.default_rng([w.seed, 17])
    h0 = w.sut.init_state(w.x)
    scale = max(1.0, float(w.eq.h.abs().max()))
    shape = tuple(h0.shape)
    out = [h0]
    kinds = [1.0, 10.0, 1e3, "corner"]
    for i in range(count - 1):
        kind = kinds[i % len(kinds)]
        if kind == "corner":
            z = scale * np.sign(rng.standard_normal(shape))
        else:
            z = cast(float, kind) * scale * rng.standard_normal(shape)
        out.append(torch.as_tensor(z, dtype=torch.float64))
    return out


def iterate_to(sut, x: Tensor, h0: Tensor, params, *, tol: float, max_steps: int,
               beta: float = 0.0, y: Tensor | None = None) -> tuple[Tensor, np.ndarray, int]:
    """Plain iteration h ← T_β(h) from h0 until max|T(h) − h| ≤ tol for every sample whose state
    is still finite (or max_steps): (h, residual per sample, steps)."""
    h = h0.clone()
    taken = 0
    with torch.no_grad():
        while taken < max_steps:
            T = sut.step(h, x, params, beta=beta, y=y)
            r = (T - h).abs().amax(dim=1).numpy()
            h, taken = T, taken + 1
            live = np.isfinite(r)
            if not live.any() or np.all(r[live] <= tol):
                break
    return h, witness.residual(sut, h, x, params, beta=beta, y=y), taken


# -- track 2: the claimed Lipschitz bound ---------------------------------------------------------


def lipschitz_ratios(sut, w: Witnessed, count: int) -> np.ndarray:
    """‖T(a) − T(b)‖/‖a − b‖ per sample and pair: pairs along the top right singular vector of
    J* at h* (gaps 1e-7 … 1e-3: the ratio there → ‖J*‖₂), random pairs around h*, around the
    start and far out (scale 10)."""
    rng = np.random.default_rng([w.seed, 2])
    h_star = w.eq.h.numpy()
    B, n = h_star.shape
    top = np.stack([np.linalg.svd(J)[2][0] for J in w.eq.jacobian])
    pairs = [(h_star + g * top / 2, h_star - g * top / 2) for g in (1e-7, 1e-5, 1e-3)]
    scale = max(1.0, float(np.abs(h_star).max()))
    for i in range(count):
        centre = [h_star, w.sut.init_state(w.x).numpy(),
                  10 * scale * rng.standard_normal((B, n))][i % 3]
        d = rng.standard_normal((B, n)) * 10.0 ** rng.uniform(-6, 0)
        pairs.append((centre + d / 2, centre - d / 2))
    ratios = []
    with torch.no_grad():
        for a, b in pairs:
            Ta = sut.step(torch.as_tensor(a), w.x, w.params).numpy()
            Tb = sut.step(torch.as_tensor(b), w.x, w.params).numpy()
            ratios.append(np.linalg.norm(Ta - Tb, axis=1) / np.linalg.norm(a - b, axis=1))
    return np.concatenate(ratios)


# Rounding of a measured ratio: T(a) − T(b) is computed from two float64 evaluations whose errors
# (~1e-16 of |T|) divided by ‖a − b‖ ≥ 1e-7 leave < 1e-8 relative slack on ratios of order 1.
RATIO_ROUNDING = 1e-7


# -- tracks 3–6: convergence and spectrum ----------------------------------------------------------


def uniqueness(sut, w: Witnessed, count: int, *, max_steps: int, newton: bool = True
               ) -> dict[str, Any]:
    """From every start, Newton and plain iteration both reach the witness's h*: the largest
    distance, in units of its first-order bound ‖(I − J*)⁻¹‖₂ (‖r‖₂ + ‖r*‖₂) (r the residual
    at the reached state, r* at h*), over starts and samples. A ratio ≤ 1 is agreement to
    within what the residuals allow; a start that diverges or stalls gives ∞."""
    inv = np.array([witness._inverse_norm(J) for J in w.eq.jacobian])
    r_star = _residual_norm(sut, w.eq.h, w)
    worst_newton = worst_iter = 0.0
    spread = 0.0
    steps = []
    for h0 in starts(w, count):
        if newton:
            eq = witness.newton_equilibrium(sut, w.x, w.params, h0=h0)
            d = np.linalg.norm((eq.h - w.eq.h).numpy(), axis=1)
            spread = max(spread, float(d.max()))
            bound = 1.1 * inv * (_residual_norm(sut, eq.h, w) + r_star) + 1e-15
            worst_newton = max(worst_newton,
                               float((d / bound).max()) if eq.converged else math.inf)
        h, r, k = iterate_to(sut, w.x, h0, w.params, tol=1e-12, max_steps=max_steps)
        steps.append(k)
        d = np.linalg.norm((h - w.eq.h).numpy(), axis=1)
        bound = 1.1 * inv * (_residual_norm(sut, h, w) + r_star) + 1e-15
        ok = np.all(np.isfinite(d)) and np.all(r <= 1e-10)
        worst_iter = max(worst_iter, float((d / bound).max()) if ok else math.inf)
    return {"newton_ratio": worst_newton, "iteration_ratio": worst_iter, "spread": spread,
            "max_iteration_steps": max(steps), "starts": count}


def _residual_norm(sut, h: Tensor, w: Witnessed) -> np.ndarray:
    with torch.no_grad():
        return np.linalg.norm((sut.step(h, w.x, w.params) - h).numpy(), axis=1)


def banach_violation(sut, w: Witnessed, L: float, count: int, steps: int) -> dict[str, float]:
    """max over starts, samples and k of ‖h_k − h*‖ / (L^k ‖h_0 − h*‖ + e*) (a priori) and of
    ‖h_k − h*‖ / (L/(1 − L) ‖h_k − h_{k−1}‖ + e*) (a posteriori), e* the witness's error bound
    on h* plus float64 rounding of the distances; ≤ 1 is the Banach theorem for this L."""
    slack = float(w.eq.error_bound.max()) + 1e-14 * max(1.0, float(w.eq.h.abs().max()))
    prior = post = 0.0
    for h0 in starts(w, count):
        traj = witness.free_trajectory(sut, w.x, steps, w.params, h0=h0)
        e0 = np.linalg.norm((traj[0] - w.eq.h).numpy(), axis=1)
        for k in range(1, len(traj)):
            ek = np.linalg.norm((traj[k] - w.eq.h).numpy(), axis=1)
            if not np.all(np.isfinite(ek)):
                return {"a_priori": math.inf, "a_posteriori": math.inf}
            step = np.linalg.norm((traj[k] - traj[k - 1]).numpy(), axis=1)
            prior = max(prior, float((ek / (L ** k * e0 + slack)).max()))
            post = max(post, float((ek / (L / (1 - L) * step + slack)).max()))
    return {"a_priori": prior, "a_posteriori": post}


def renormalized_rate(sut, w: Witnessed, steps: int = 600, fit: int = 300,
                     size: float = 1e-6) -> np.ndarray:
    """The asymptotic rate of plain iteration near h*, per sample, by Benettin's method: a
    deviation δ of norm `size` is mapped δ ← T(h* + δ) − T(h*) and renormalized each step;
    the rate is the geometric mean of the growth factors over the last `fit` steps (power
    iteration on J*, so it tends to ρ(J*); renormalizing keeps δ in the linear regime)."""
    rng = np.random.default_rng([w.seed, 5])
    h = w.eq.h
    with torch.no_grad():
        base = sut.step(h, w.x, w.params)
        delta = torch.as_tensor(rng.standard_normal(tuple(h.shape)))
        delta = size * delta / delta.norm(dim=1, keepdim=True)
        logs = []
        for _ in range(steps):
            moved = sut.step(h + delta, w.x, w.params) - base
            g = moved.norm(dim=1)
            logs.append(torch.log(g / size).numpy())
            delta = size * moved / g.clamp_min(1e-300)[:, None]
    return np.exp(np.mean(logs[-fit:], axis=0))


def damping(sut, w: Witnessed, steps: int, size: float = 1e-6) -> dict[str, float]:
    """A perturbation δ (‖δ‖ = size) at h*: the largest ‖T^k(h* + δ) − T^k(h*)‖ / (‖J*^k δ‖ +
    c‖δ‖²·k) deviation from its linear prediction, and the largest ‖δ_k‖ / (‖J*‖₂^k ‖δ‖)."""
    rng = np.random.default_rng([w.seed, 6])
    h = w.eq.h
    delta = torch.as_tensor(rng.standard_normal(tuple(h.shape)))
    delta = size * delta / delta.norm(dim=1, keepdim=True)
    J = w.eq.jacobian
    lin = delta.numpy().copy()
    a, b = h + delta, h.clone()
    worst_linear = worst_norm = 0.0
    with torch.no_grad():
        for k in range(1, steps + 1):
            a, b = sut.step(a, w.x, w.params), sut.step(b, w.x, w.params)
            lin = np.einsum("bij,bj->bi", J, lin)
            d = (a - b).numpy()
            dn = np.linalg.norm(d, axis=1)
            dev = np.linalg.norm(d - lin, axis=1) / (np.linalg.norm(lin, axis=1)
                                                     + 1e-3 * size * k + 1e-300)
            worst_linear = max(worst_linear, float(dev.max()))
            worst_norm = max(worst_norm, float((dn / (w.norm ** k * size + 1e-14)).max()))
    final = float(np.nanmax(dn / size)) if np.all(np.isfinite(dn)) else math.inf
    return {"linear_deviation": worst_linear, "norm_ratio": worst_norm, "final_ratio": final}


def jacobian_fd_error(sut, w: Witnessed, step: float = 1e-6) -> float:
    """max |J*_autograd − J*_FD| / max |J*| with J*_FD the central difference (T(h* + s e_j) −
    T(h* − s e_j)) / 2s of the System's step, column by column (error O(s²) + ε/s)."""
    h = w.eq.h
    n = h.shape[1]
    fd = np.zeros_like(w.eq.jacobian)
    with torch.no_grad():
        for j in range(n):
            e = torch.zeros_like(h)
            e[:, j] = step
            fd[:, :, j] = ((sut.step(h + e, w.x, w.params) - sut.step(h - e, w.x, w.params))
                           / (2 * step)).numpy()
    scale = max(float(np.abs(w.eq.jacobian).max()), 1e-300)
    return float(np.abs(fd - w.eq.jacobian).max() / scale)


# -- track 8: the energy ------------------------------------------------------------------------


EPS = float(np.finfo(np.float64).eps)


def stationarity(grad: Callable[[Tensor], Tensor], eq: witness.Equilibrium, step_residual:
                 np.ndarray, start: Tensor) -> dict[str, float]:
    """How far ∇_h F is from 0 at the witness's equilibrium h, in units of what h's own error
    and float64 allow. If the claim holds, ∇F(h†) = 0 at the exact fixed point h†, so to first
    order ∇F(h) = H (h − h†) with H = ∇²_h F (autograd, per sample); h − h† ≈ −δ, δ = (I − J)⁻¹
    (T(h) − h) the Newton correction left, and h itself is rounded to ε|h| (a saturated unit
    makes H huge: tanh's φ⁻¹ has slope 1/(1 − h²)); δ, computed from the rounded T(h) − h,
    is itself uncertain by ‖(I − J)⁻¹‖∞ kε‖h‖∞. Evaluating ∇F rounds its terms: the
    h-dependent ones are ≤ Σ_j |H_ij||h_j| in size (for φ⁻¹ and for bilinear couplings), the
    constant ones ≈ |∇F| at `start`, and a sum of n products is off by ≤ γ_n = nε/(1 − nε)
    of its terms' magnitudes (Higham, Accuracy and Stability, §3.1). So per free unit i (a row
    of J not zero; a unit clipped at a bound is pinned, and ∇F need not vanish there), with
    k = n + 8 (the n-term sums and a few roundings of h and of φ⁻¹ per unit),

        allowed_i = Σ_j |H_ij| (|δ_j| + kε|h_j| + ‖(I − J)⁻¹‖∞ kε‖h‖∞) + kε ‖∇F(start)‖∞,

    and the returned 'ratio' = max_i |∇F_i(h)| / allowed_i is ≤ 1 when h is a stationary
    point up to its resolution; a fixed point that is not stationary gives ∇F = O(1), a ratio
    ~1/ε. 'relative' is the plain ‖∇F(h)‖∞ / ‖∇F(start)‖∞."""
    h = eq.h.detach().clone()

    def g(z: Tensor) -> Tensor:
        return grad(z).sum(0)

    g_h = grad(h).detach().numpy()
    H = torch.autograd.functional.jacobian(g, h).permute(1, 0, 2).detach().numpy()  # (B, n, n)
    n = h.shape[1]
    inverse = [np.linalg.pinv(np.eye(n) - eq.jacobian[b]) for b in range(len(h))]
    delta = np.stack([inverse[b] @ step_residual[b] for b in range(len(h))])
    g_start = float(np.abs(grad(start.detach()).detach().numpy()).max())
    if not (math.isfinite(g_start) and g_start > 0):
        g_start = 1.0
    k, hn = (n + 8) * EPS, np.abs(h.numpy())
    # δ is computed from T(h) − h, itself rounded by ≤ kε‖h‖∞: δ is off by ≤ ‖(I − J)⁻¹‖∞ of that
    spread = np.array([np.abs(inverse[b]).sum(1).max() * k * hn[b].max() for b in range(len(h))])
    error = np.abs(delta) + k * hn + spread[:, None]
    allowed = (np.abs(H) * error[:, None, :]).sum(2) + k * g_start
    free = np.abs(eq.jacobian).sum(axis=2) > 0
    ratio = np.where(free, np.abs(g_h) / allowed, 0.0)
    at = np.where(free, np.abs(g_h), 0.0)
    return {"ratio": float(ratio.max()), "gradient_at_h_star": float(at.max()),
            "gradient_at_start": g_start, "relative": float(at.max() / g_start),
            "free_units": int(free.sum())}


def energy_stationarity(sut, w: Witnessed, energy: Callable | None = None) -> dict[str, float]:
    """`stationarity` of E at the witness's h* of T_0, against ∇E at T_0(init_state) (in the
    step's image, where E is finite)."""
    energy = energy or sut.energy

    def grad(h: Tensor) -> Tensor:
        h = h if h.requires_grad else h.detach().clone().requires_grad_(True)
        return torch.autograd.grad(energy(h, w.x, w.params).sum(), h, create_graph=True)[0]

    with torch.no_grad():
        first = w.sut.step(w.sut.init_state(w.x), w.x, w.params)
        left = (w.sut.step(w.eq.h, w.x, w.params) - w.eq.h).numpy()
    return stationarity(grad, w.eq, left, first)


def energy_ascent(sut, w: Witnessed, count: int, steps: int,
                  energy: Callable | None = None) -> dict[str, float]:
    """The largest increase E(h_{k+1}) − E(h_k) along T_0's iterates from the starts, relative
    to the energy's scale max(1, |E(h_1)|) (≤ ~1e-13: rounding; > 0 beyond it: ascent).
    Trajectories begin at h_1 = T_0(start): a drawn start may lie outside E's domain (|h| > 1
    for a tanh network, where G = ∫φ⁻¹ is undefined); every iterate lies in the step's image."""
    energy = energy or sut.energy
    worst, scale = -math.inf, 1.0
    for h0 in starts(w, count)[: max(2, count // 2)]:
        with torch.no_grad():
            h1 = sut.step(h0, w.x, w.params)
        traj = witness.free_trajectory(sut, w.x, steps, w.params, h0=h1)
        with torch.no_grad():
            E = np.stack([energy(h, w.x, w.params).numpy() for h in traj])
        if not np.all(np.isfinite(E)):
            return {"relative_increase": math.inf, "energy_scale": math.nan}
        scale = max(scale, float(np.abs(E[0]).max()))
        worst = max(worst, float(np.diff(E, axis=0).max()))
    return {"relative_increase": worst / scale, "energy_scale": scale}


# -- track 14: the finite nudge ------------------------------------------------------------------

NUDGES = {"one_sided": lambda b: (0.0, b), "symmetric": lambda b: (-b, b)}


def energy_parameters(w: Witnessed) -> list[str]:
    """The parameters the cost does not depend on (all of them for a cost without θ): where
    the finite-β EP update and the surrogate's gradient coincide."""
    if not getattr(w.sut, "cost_takes_params", False):
        return list(w.params)
    # Read at h* and at a perturbed state: a zero gradient at h* alone is not independence
    # (hunted: with no drive h* = 0, so ∂C/∂V = (p − e_y)h*ᵀ = 0 there and the readout V was
    # taken for an energy parameter).
    rng = np.random.default_rng([w.seed, 29])
    off = w.eq.h + 0.1 * torch.as_tensor(rng.standard_normal(tuple(w.eq.h.shape)))
    depends = dict.fromkeys(w.params, False)
    for h in (w.eq.h, off):
        leaves = {k: v.clone().requires_grad_(True) for k, v in w.params.items()}
        total = witness.mean_cost(w.sut, h, w.y, leaves)
        grads = torch.autograd.grad(total, list(leaves.values()), allow_unused=True)
        for k, g in zip(leaves, grads):
            depends[k] |= g is not None and bool(g.abs().max() > 0)
    return [k for k in w.params if not depends[k]]


def surrogate(w: Witnessed, estimator: str, beta: float,
              params: dict[str, Tensor] | None = None, branch: tuple[int, int] = (0, 0)
              ) -> float:
    """L_β = [F(h_β₂, β₂) − F(h_β₁, β₁)] / (β₂ − β₁), F(h, β) = mean_b E(h_b) + β C(h_b), at the
    nudged phases' equilibria (`Witnessed.nudged`; one-sided β₁ = 0, β₂ = β; symmetric ∓β;
    `branch` picks each phase's equilibrium among `NudgedPhase.branches`), re-solved at other θ
    by Newton warm-started there, so θ ↦ L_β stays on their branch. By the envelope theorem its
    gradient in the energy parameters is the finite-β EP update exactly, at any β (NaN if a
    phase has no equilibrium)."""
    values = []
    for b, pick in zip(NUDGES[estimator](beta), branch):
        base = w.nudged(b).branches()[pick]
        eq = base if params is None else witness.newton_equilibrium(
            w.sut, w.x, params, beta=b, y=w.y, h0=base.h)
        if not eq.converged:
            return float("nan")
        at = w.params if params is None else params
        with torch.no_grad():
            F = w.sut.energy(eq.h, w.x, at) + b * w.sut.cost(eq.h, w.y, at)
        values.append(float(F.mean()))
    lo, hi = NUDGES[estimator](beta)
    return (values[1] - values[0]) / (hi - lo)


def finite_nudge_gap(w: Witnessed, estimator: str, beta: float, estimate: dict[str, Tensor],
                     direction: dict[str, Tensor]) -> float:
    """|D_v L_β − ⟨ĝ, v⟩| / (‖ĝ‖ ‖v‖) over the energy parameters, D_v by
    `witness.line_derivative` of the re-solved surrogate (a Richardson tableau over a ladder of
    steps, so no step is tuned to one parameter's scale). Where a nudged map has more than one
    equilibrium the witness found, the smallest gap over the surrogates of those branches: the
    envelope theorem holds on each, and the update must be the gradient of one of them."""
    keys = energy_parameters(w)
    v = {k: direction[k] for k in keys}
    vnorm = math.sqrt(sum(float((t ** 2).sum()) for t in v.values()))
    g = {k: estimate.get(k, torch.zeros_like(w.params[k])) for k in keys}
    gnorm = math.sqrt(sum(float((t ** 2).sum()) for t in g.values()))
    if vnorm == 0:
        return 0.0
    inner = sum(float((g[k] * v[k]).sum()) for k in keys)
    counts = [len(w.nudged(b).branches()) for b in NUDGES[estimator](beta)]
    gaps = []
    for branch in [(i, j) for i in range(counts[0]) for j in range(counts[1])]:
        D = witness.line_derivative(
            lambda s, branch=branch: surrogate(w, estimator, beta,
                                               witness.along(w.params, v, s), branch),
            surrogate(w, estimator, beta, None, branch), first_step=0.1 / vnorm).value
        if not math.isfinite(D):
            gaps.append(math.inf)
        elif gnorm == 0:  # a zero update matches only a surrogate flat along v
            gaps.append(0.0 if D == 0 else math.inf)
        else:
            gaps.append(abs(D - inner) / (gnorm * vnorm))
    return min(gaps)


def nudged_radii(w: Witnessed, beta: float) -> dict[float, float]:
    """ρ(∂T_b/∂h) at the nudged phase's equilibrium h_b (`Witnessed.nudged`), b = ±β (max over
    the batch): how fast the System's nudged phase can converge there (NaN: no h_b found)."""
    out = {}
    for b in (-beta, beta):
        eq = w.nudged(b).eq
        out[b] = (max(witness.spectral_radius(J) for J in eq.jacobian) if eq.converged
                  else float("nan"))
    return out


def phase_diagnosis(estimator: str, gap: float, radii: dict[float, float]) -> str:
    """Why a finite-β update can miss its surrogate: each nudged map's ρ at its equilibrium and
    the plain steps ⌈log 1e-12 / log ρ⌉ a phase started at h* needs to get within 1e-12."""
    parts = []
    for b, r in radii.items():
        if 0 < r < 1:
            parts.append(f"rho(J_{b:+g}) = {r:.4g}, ~{math.log(1e-12) / math.log(r):.0f} steps "
                         "to converge to 1e-12")
        else:
            parts.append(f"rho(J_{b:+g}) = {r:.4g} (the phase does not contract)")
    return (f"{estimator}: the update misses the surrogate's gradient by {gap:.3g}; the nudged "
            f"maps at their equilibria: {'; '.join(parts)} - a phase of fewer steps is not "
            "converged")


def nudged_stationarity(w: Witnessed, beta: float) -> float:
    """The largest `stationarity` ratio of F = E + βC over the nudged phases ±β, at the
    nudged phases' equilibria h_β of T_β (`Witnessed.nudged`): the System's nudged step solves
    its own nudged energy (the premise of EP's formula); ≤ 1 up to h_β's resolution."""
    worst = 0.0
    start = w.sut.step(w.sut.init_state(w.x), w.x, w.params).detach()
    for b in (-beta, beta):
        eq = w.nudged(b).eq
        if not eq.converged:
            return math.inf

        def grad(h: Tensor, b: float = b) -> Tensor:
            h = h if h.requires_grad else h.detach().clone().requires_grad_(True)
            F = w.sut.energy(h, w.x, w.params) + b * w.sut.cost(h, w.y, w.params)
            return torch.autograd.grad(F.sum(), h, create_graph=True)[0]

        with torch.no_grad():
            left = (w.sut.step(eq.h, w.x, w.params, beta=b, y=w.y) - eq.h).numpy()
        worst = max(worst, stationarity(grad, eq, left, start)["ratio"])
    return worst


# -- tracks 9–11: the user's EP gradient ----------------------------------------------------------


ZERO_BLOCK = 1e-12  # ‖g_θ‖ ≤ this·‖g‖: the block is zero (its error is measured against ‖g‖)


def relative_errors(estimate: dict[str, Tensor], reference: dict[str, Tensor]
                    ) -> dict[str, float]:
    """‖ĝ_θ − g_θ‖ / ‖g_θ‖ per parameter the estimate returns, and 'all' over them together
    (a parameter the estimate omits counts as ĝ = 0 in 'all').

    A block whose reference is zero (‖g_θ‖ ≤ ZERO_BLOCK·‖g‖: e.g. ∂ℒ/∂W = 0 where h* = 0, or a
    1×1 W under SN, W_eff = γ·sign W) has no relative error: a correct estimator's O(β) bias there
    is set by the whole gradient, not by that block (hunted: h* = 0, ‖ĝ_W‖ = 6.6e-7 at β = 1e-5
    against ‖g‖ = 4 read as an infinite error). Its error is ‖ĝ_θ‖ / ‖g‖."""
    total = math.sqrt(sum(float(g.norm()) ** 2 for g in reference.values()))
    out = {}
    num = den = 0.0
    for k, g in reference.items():
        e = estimate.get(k, torch.zeros_like(g))
        d, r = float((e - g).norm()), float(g.norm())
        num, den = num + d * d, den + r * r
        if k in estimate:
            scale = r if r > ZERO_BLOCK * total else total
            out[k] = d / scale if scale > 0 else (0.0 if d == 0 else math.inf)
    out["all"] = math.sqrt(num / den) if den > 0 else (0.0 if num == 0 else math.inf)
    return out


def cosine(estimate: dict[str, Tensor], reference: dict[str, Tensor]) -> float:
    a = torch.cat([estimate.get(k, torch.zeros_like(g)).flatten() for k, g in reference.items()])
    b = torch.cat([g.flatten() for g in reference.values()])
    na, nb = float(a.norm()), float(b.norm())
    return float(a @ b) / (na * nb) if na > 0 and nb > 0 else 0.0


FAULTS = ("sign", "double", "drop")


def planted(grads: dict[str, Tensor], fault: str, reference: dict[str, Tensor]
            ) -> dict[str, Tensor]:
    """The user's estimate with a planted fault: −g ('sign'), 2g ('double'), or the block of
    the parameter carrying the largest share of the reference gradient zeroed ('drop')."""
    if fault == "sign":
        return {k: -g for k, g in grads.items()}
    if fault == "double":
        return {k: 2 * g for k, g in grads.items()}
    if fault == "drop":
        biggest = max(reference, key=lambda k: float(reference[k].norm()))
        return {k: (torch.zeros_like(g) if k == biggest else g) for k, g in grads.items()}
    raise ValueError(f"unknown fault {fault!r}; choose one of {FAULTS}")


@dataclass
class BetaSweep:
    """The user's ep_gradient over a grid of β (largest first) against a reference, per
    estimator. The fitted error is the one over the energy parameters ('energy'; 'all' where a
    sweep has no such entry): a parameter of the cost alone (a readout) is explicit and exact
    at every β and carries no β law."""

    estimator: str
    betas: list[float]
    errors: list[dict[str, float]]  # relative_errors per β
    cosines: list[float]
    faults: dict[str, list[float]] = field(default_factory=dict)  # 'all' error per β per fault

    def all_errors(self) -> list[float]:
        return [e.get("energy", e["all"]) for e in self.errors]

    def best(self) -> tuple[float, dict[str, float]]:
        i = int(np.nanargmin(self.all_errors()))
        return self.betas[i], self.errors[i]

    def floor(self) -> float:
        """The phases' error floor, from above: the largest error at β from that of the smallest
        error down to a tenth of it. Below that β the error no longer falls: what is left is the
        phases' own error; the minimum alone under-reads it where bias and floor happen to
        cancel, and a decade of the floor's branch shows its level. Where the error still falls
        at the smallest β, the floor is at most that error."""
        e = np.asarray(self.all_errors(), dtype=float)
        if not np.isfinite(e).any():
            return float("nan")
        return float(np.nanmax([e[j] for j in self._floor_points()]))

    def _floor_points(self) -> list[int]:
        """The smallest error's index and those of the β down to a tenth of its β."""
        i = int(np.nanargmin(self.all_errors()))
        return [j for j in range(i, len(self.betas))
                if self.betas[j] >= self.betas[i] / 10 * (1 - 1e-9)]

    def floor_at(self, beta: float) -> float:
        """The phases' error floor carried to `beta` ≥ the smallest error's β. A phase's state
        error ε (its tolerance, or rounding) is absolute, and the estimate divides the phases'
        difference by β, so that floor is ∝ ε/β: read at the floor's points as e_j β_j, it is
        max_j e_j β_j / β at β — never taken below the smallest error itself (a floor constant
        in β, as of phases cut short, shows there)."""
        e = np.asarray(self.all_errors(), dtype=float)
        if not np.isfinite(e).any():
            return float("nan")
        carried = max(e[j] * self.betas[j] for j in self._floor_points() if np.isfinite(e[j]))
        return float(max(np.nanmin(e), carried / beta))

    def floor_reached(self) -> bool:
        """The error has stopped falling inside the grid (its minimum is not at the smallest
        β)."""
        e = np.asarray(self.all_errors(), dtype=float)
        return bool(np.isfinite(e).any() and int(np.nanargmin(e)) < len(e) - 1)

    def window(self) -> list[int]:
        """The indices of the estimator's asymptotic window: the lowest decade of β above the
        floor. A point is above the floor when its β exceeds that of the smallest error and its
        error is ≥ 100× the floor carried to its β (`floor_at`: the phases' error then moves it
        by ≤ 1%), and below WINDOW_TOP; of those, the smallest β and the points up to 10× it: the
        higher-order terms, ∝ β^(p+1), are smallest there."""
        e = np.asarray(self.all_errors(), dtype=float)
        if not np.isfinite(e).any():
            return []
        lowest = int(np.nanargmin(e))
        above = [i for i in range(lowest) if np.isfinite(e[i])
                 and 100 * self.floor_at(self.betas[i]) <= e[i] <= WINDOW_TOP]
        if not above:
            return []
        bottom = self.betas[max(above)]
        return [i for i in above if self.betas[i] <= 10 * bottom * (1 + 1e-9)]

    def slope(self) -> tuple[float, list[float]]:
        """The least-squares slope of log error against log β over the window, and the window
        [β_min, β_max]; NaN when it holds fewer than 3 points or less than a decade."""
        keep = self.window()
        b = np.asarray(self.betas, dtype=float)[keep]
        e = np.asarray(self.all_errors(), dtype=float)[keep]
        span = [float(b.min()), float(b.max())] if len(keep) else []
        if len(keep) < 3 or b.max() / b.min() < 9.99:
            return float("nan"), span
        return fitted_slope(b, e), span


WINDOW_TOP = 0.05
BIAS_ORDERS = {"one_sided": (1.0, 0.1), "symmetric": (2.0, 0.15)}  # (order p, slope tolerance)
SMALLEST_BETA = 1e-8  # the sweep goes no lower: a phase's state error ~1e-15 over β is 1e-7


def sweep_betas(quick: bool) -> list[float]:
    """β = 10^(−k/4), k = 2..20 (every other k in quick)."""
    return [10 ** (-k / 4) for k in range(2, 21, 2 if quick else 1)]


def beta_sweep(w: Witnessed, estimator: str, betas: list[float],
               reference: dict[str, Tensor]) -> BetaSweep:
    """The user's `ep_gradient(x, y, beta, estimator)` at each β, against `reference`, and the
    same estimates with each planted fault. Where the error is still falling at the smallest β
    the grid is continued downward at its own spacing until it stops falling or β reaches
    SMALLEST_BETA: the window is the lowest decade above the floor, so the floor is measured
    rather than bounded by the last point."""
    errors, cosines = [], []
    faults: dict[str, list[float]] = {f: [] for f in FAULTS}
    keys = energy_parameters(w)
    betas = list(betas)
    ratio = betas[-1] / betas[-2] if len(betas) > 1 else 0.1

    def measure(beta: float) -> None:
        g = w.sut.ep_gradient(w.x, w.y, beta=beta, estimator=estimator)
        err = relative_errors(g, reference)
        err["energy"] = relative_errors({k: g[k] for k in keys if k in g},
                                        {k: reference[k] for k in keys})["all"]
        errors.append(err)
        cosines.append(cosine(g, reference))
        for f in FAULTS:
            faults[f].append(relative_errors(planted(g, f, reference), reference)["all"])

    for beta in betas:
        measure(beta)
    sweep = BetaSweep(estimator, betas, errors, cosines, faults)
    while not sweep.floor_reached() and betas[-1] * ratio >= SMALLEST_BETA * (1 - 1e-9):
        betas.append(betas[-1] * ratio)
        measure(betas[-1])
    return sweep


def free_phase_diagnosis(w: Witnessed) -> dict[str, float]:
    """The System's own free phase against the witness: its residual max|T_0(h) − h| and its
    distance max‖h − h*‖₂ to the Newton equilibrium."""
    h = w.sut.free_phase(w.x)
    r = witness.residual(w.sut, h, w.x, w.params)
    d = np.linalg.norm((h - w.eq.h).numpy(), axis=1)
    return {"free_phase_residual": float(r.max()), "free_phase_distance": float(d.max())}


def gradient_diagnosis(w: Witnessed, estimator: str, error: float, beta: float,
                       sweep: BetaSweep | None = None, *, from_half: bool = False) -> str:
    """What the numbers show about the System's gradient: its error at β, and with a β sweep
    the floor and the fitted slope over the asymptotic window; with its own `free_phase`, that
    phase's residual max|T_0(h) − h| and distance to the witness's Newton h*."""
    text = f"{estimator} EP: relative error {error:.3g} at beta={beta:g}"
    if from_half:
        text = (f"{estimator} EP: relative error {error:.3g} extrapolated to beta -> 0 from "
                f"beta={beta:g}, {beta / 2:g}")
    if sweep is not None:
        slope, span = sweep.slope()
        order = BIAS_ORDERS[estimator][0]
        where = (f"over beta in [{span[0]:.3g}, {span[1]:.3g}]" if len(span) == 2
                 else f"(no asymptotic window: no decade of beta with error in [100x the floor "
                 f"{sweep.floor():.3g}, {WINDOW_TOP:g}])")
        text = (f"{estimator} EP: smallest error {sweep.floor():.3g} (at beta={beta:g}), fitted "
                f"slope {slope:.3f} {where} (theory: {order:g})")
    if w.sut.has("free_phase"):
        fp = free_phase_diagnosis(w)
        text += (f"; its own free phase: residual max|T_0(h) - h| = "
                 f"{fp['free_phase_residual']:.3g}, {fp['free_phase_distance']:.3g} from the "
                 "Newton h*")
        if fp["free_phase_residual"] > 1e-8:
            text += " (not converged: its error over beta is a floor no beta removes)"
    return text


def bias_diagnosis(estimator: str, beta: float, error: float, at_half: float) -> str:
    """What the raw errors at β and β/2 show: a ratio 2^-p (p = 1 one-sided, 2 symmetric) is
    the estimator's own O(β^p) bias (removed by the extrapolation, so what is left is not it);
    a ratio near 1 or above is a floor: phases not converged, or an error that no β removes."""
    order = BIAS_ORDERS[estimator][0]
    ratio = at_half / error if error > 0 else float("nan")
    text = (f"; unextrapolated, the largest per-parameter error is {error:.3g} at beta={beta:g} "
            f"and {at_half:.3g} at beta={beta / 2:g} (ratio {ratio:.3f}; an O(beta^{order:g}) "
            f"bias gives {2 ** -order:g})")
    if ratio >= 1.5:
        text += (": it grows as 1/beta, a fixed state error divided by beta (phases not "
                 "converged), not EP's bias")
    elif ratio >= 0.9:
        text += ": a floor, not EP's bias"
    return text


# Track 9's agreement, on the estimate extrapolated from β and β/2 (`estimator_agreement`): what
# is left is O(β^(p+1)) and the phases' error, ~3·1e-12/(β/2) ≤ 6e-7 for converged phases.
AGREEMENT = 1e-3
AGREEMENT_BETA = {"one_sided": 1e-5, "symmetric": 1e-4}
COSINE_GAP = 1e-4  # cosine ≥ 0.9999


def extrapolated(at_beta: dict[str, Tensor], at_half: dict[str, Tensor], order: float
                 ) -> dict[str, Tensor]:
    """(2ᵖĝ(β/2) − ĝ(β)) / (2ᵖ − 1): the estimate with its leading O(βᵖ) bias removed (p = 1
    one-sided, 2 symmetric), whatever that bias's coefficient. A floor that does not vanish as
    β → 0 (unconverged phases: ~δ/β; a wrong formula: O(1)) is not removed: δ/β becomes 3δ/β."""
    k = 2.0 ** order
    return {name: (k * at_half[name] - g) / (k - 1) for name, g in at_beta.items()
            if name in at_half}


def estimator_agreement(w: Witnessed, reference: dict[str, Tensor], against: str, *,
                        with_cosine: bool = True) -> tuple[list[Evidence], list[str], float]:
    """The System's own estimate for each of its estimators, at AGREEMENT_BETA and half of it,
    extrapolated to β → 0 (`extrapolated`), against `reference` (named `against`): (checks,
    diagnosis notes for those that miss, the smallest relative error any planted fault reaches
    — the control's value). The errors at β itself are recorded beside each check.

    Why extrapolated: EP's estimate is biased by design, a·β (one-sided) or c·β² (symmetric),
    with coefficients set by the model, not the code. The suite's own models have a ≤ 44 and
    c ≤ 5e3 (track 11), so at these β the raw bias stays ≤ 5e-4; a user's System need not
    (hunted: n_hidden = 1, γ = 0.99, a = 130, raw error 1.3e-3 at β = 1e-5; with no drive the
    zero W block's bias ½‖h_β − h*‖²/β reached 5e-3). The question the track answers is whether
    the code's estimate converges to the gradient, so its O(βᵖ) term is removed; an O(1) error
    (a wrong sign, factor or block) or a floor of unconverged phases is not."""
    checks, notes, faults = [], [], []
    for estimator in w.sut.estimators:
        beta = AGREEMENT_BETA[estimator]
        order = BIAS_ORDERS[estimator][0]
        at_beta = w.sut.ep_gradient(w.x, w.y, beta=beta, estimator=estimator)
        at_half = w.sut.ep_gradient(w.x, w.y, beta=beta / 2, estimator=estimator)
        estimate = extrapolated(at_beta, at_half, order)
        errors = relative_errors(estimate, reference)
        raw = relative_errors(at_beta, reference)
        label = f"{estimator} EP (beta -> 0 from beta={beta:g}, {beta / 2:g}) vs {against}"
        if with_cosine:
            checks.append(at_least(f"{label}: cosine", cosine(estimate, reference),
                                   1 - COSINE_GAP, at_beta=cosine(at_beta, reference)))
        checks.append(at_most(f"{label}: max relative error over parameters",
                              max(errors.values()), AGREEMENT, per_parameter=errors,
                              at_beta=raw))
        if max(errors.values()) > AGREEMENT:
            notes.append(gradient_diagnosis(w, estimator, max(errors.values()), beta,
                                            from_half=True)
                         + bias_diagnosis(estimator, beta, max(raw.values()),
                                          max(relative_errors(at_half, reference).values())))
        faults += [relative_errors(planted(estimate, f, reference), reference)["all"]
                   for f in FAULTS]
    return checks, notes, min(faults)


@dataclass(frozen=True)
class FiniteDifferenceAgreement:
    """The witness's implicit gradient against finite differences of the re-solved ℒ along
    random unit directions v, in units of ‖g‖: the worst disagreement |⟨g, v⟩ − D_v ℒ|, the
    worst error the extrapolation estimates for its own D_v ℒ, and the worst jump of the
    one-sided derivatives (ℒ not differentiable at θ: a kink, e.g. a repeated top singular
    value under spectral normalization, where no gradient exists to agree with)."""

    disagreement: float
    fd_error: float
    kink: float


FD_AGREEMENT = 1e-6  # in units of ‖g‖: the implicit gradient is exact to the Newton residual
# (1e-12 · ‖(I − J*)⁻¹‖) and the extrapolated differences measure ≤ 1e-9 ‖g‖ on the examples and
# on hunted LoopedMLPs; a reference missing a chain-rule term is off by O(‖g‖)


def witness_fd_agreement(w: Witnessed, count: int) -> FiniteDifferenceAgreement:
    g = w.implicit
    norm = math.sqrt(sum(float((t ** 2).sum()) for t in g.values())) or 1.0
    worst, error, kink = 0.0, 0.0, 0.0
    for v in witness.random_directions(w.params, count, w.seed):
        fd = witness.directional_derivative(w.sut, w.x, w.y, v, w.params)
        ip = sum(float((g[k] * v[k]).sum()) for k in g)
        finite = math.isfinite(fd.value)
        worst = max(worst, abs(fd.value - ip) / norm if finite else math.inf)
        error = max(error, fd.error / norm if finite else math.inf)
        kink = max(kink, abs(fd.jump) / norm if math.isfinite(fd.jump) else math.inf)
    return FiniteDifferenceAgreement(worst, error, kink)


def bptt_steps(w: Witnessed, cap: int = 5000) -> int:
    """K for BPTT from init_state: the larger of the forward steps (plain iterations until
    max|h_k − h*| stops falling: 20 steps without a new minimum, float64's resolution of h*) and
    the adjoint steps (u_k = (J*ᵀ)ᵏ ∂C/∂h until ‖u_k‖ ≤ ε(1 − ρ)‖u_0‖ per sample, or it stops
    falling: the truncated tail Σ_{k≥K} u_k ≈ u_K/(1 − ρ) of λ = Σ_k u_k is below ε‖λ‖), plus 5;
    at most `cap`.

    The forward count alone is not enough: hunted, a System with no drive (U = b = 0) has h* = 0
    = init_state, so the forward trajectory sits at h* from step 1 and K was 26, while ρ(J*) =
    0.95 needs ~700 adjoint steps (BPTT then missed the implicit gradient by 26%)."""
    h, k, best, since = w.sut.init_state(w.x), 0, math.inf, 0
    with torch.no_grad():
        while k < cap and since < 20:
            h, k = w.sut.step(h, w.x, w.params), k + 1
            d = float((h - w.eq.h).abs().max())
            best, since = (d, 0) if d < best else (best, since + 1)
    hs = w.eq.h.detach().clone().requires_grad_(True)
    grad = torch.autograd.grad(w.sut.cost(hs, w.y, w.params).sum(), hs, allow_unused=True)[0]
    u = np.zeros(tuple(hs.shape)) if grad is None else grad.detach().numpy().copy()
    target = EPS * (1 - np.minimum(w.rho, 1 - 1e-3)) * np.linalg.norm(u, axis=1)
    adjoint, low, since = 0, np.linalg.norm(u, axis=1), 0
    while adjoint < cap and since < 20 and np.any(np.linalg.norm(u, axis=1) > target):
        u = np.einsum("bji,bj->bi", w.eq.jacobian, u)
        adjoint += 1
        size = np.linalg.norm(u, axis=1)
        since = 0 if np.any(size < low) else since + 1
        low = np.minimum(low, size)
    return min(cap, max(k, adjoint) + 5)


# -- track 12: GDD -------------------------------------------------------------------------------


def _energy_partials(sut, w: Witnessed, h: Tensor, keys: list[str]) -> Tensor:
    """∂E/∂θ (flattened over `keys`, mean over the batch) at state h."""
    leaves = {k: (v.clone().requires_grad_(True) if k in keys else v) for k, v in w.params.items()}
    grads = torch.autograd.grad(sut.energy(h, w.x, leaves).mean(), [leaves[k] for k in keys],
                                allow_unused=True)  # an energy without θ_k: ∂E/∂θ_k = 0
    return torch.cat([(torch.zeros_like(leaves[k]) if g is None else g).flatten()
                      for k, g in zip(keys, grads)])


def _gdd_updates(sut, w: Witnessed, beta: float, steps: int, keys: list[str]
                 ) -> tuple[Tensor, Tensor]:
    """EP's step-by-step updates in the symmetric (±β) nudged phases from h*: ΔEP_θ(t) and
    ΔEP_s(t), stacked over t."""
    def trajectory(b: float) -> list[Tensor]:
        h, out = w.eq.h.clone(), [w.eq.h.clone()]
        with torch.no_grad():
            for _ in range(steps):
                h = sut.step(h, w.x, w.params, beta=b, y=w.y)
                out.append(h)
        return out

    up, down = trajectory(beta), trajectory(-beta)
    partials_up = [_energy_partials(sut, w, h, keys) for h in up]
    partials_down = [_energy_partials(sut, w, h, keys) for h in down]
    ep_theta = torch.stack([-((partials_up[t + 1] - partials_up[t])
                              - (partials_down[t + 1] - partials_down[t])) / (2 * beta)
                            for t in range(steps)])
    ep_s = torch.stack([((up[t + 1] - up[t]) - (down[t + 1] - down[t])) / (2 * beta)
                        for t in range(steps)])
    return ep_theta, ep_s


def gdd_residual(sut, w: Witnessed, beta: float, steps: int = 30) -> dict[str, Any]:
    """GDD (Ernoult et al. 2019) on a System, from h*: EP's step-by-step updates in the nudged
    phase, ΔEP_θ(t) = −[∂E/∂θ(h_{t+1}) − ∂E/∂θ(h_t)]/β (symmetric ±β), against BPTT's
    gradients at the mirrored steps, ∇BPTT_θ(t) = ∂ℓ(h_K)/∂θ_{K−t} (θ_k the copy used by the
    step into h_{k+1}, ℓ = mean C); and the neurons, ΔEP_s(t) = (h_{t+1} − h_t)/β against
    ∂ℓ/∂h_{K−t}. GDD: ΔEP → −∇BPTT as β → 0. The symmetric updates are even in β, ΔEP(β) =
    ΔEP(0) + β²R₂ + O(β⁴), so (4ΔEP(β) − ΔEP(2β))/3 = ΔEP(0) + O(β⁴) removes the finite-β term
    whatever its coefficient; the round-off, ε‖∂E/∂θ‖/β, is ~1e-11 of it at β = 1e-4.
    Returned: ‖ΔEP(0) + ∇BPTT‖/‖∇BPTT‖ over all t and entries, for the energy parameters
    ('parameters') and for the neurons, and the unextrapolated parameter residual at β."""
    keys = energy_parameters(w)
    theta_1, s_1 = _gdd_updates(sut, w, beta, steps, keys)
    theta_2, s_2 = _gdd_updates(sut, w, 2 * beta, steps, keys)
    ep_theta, ep_s = (4 * theta_1 - theta_2) / 3, (4 * s_1 - s_2) / 3
    copies = [{k: (v.clone().requires_grad_(True) if k in keys else v)
               for k, v in w.params.items()} for _ in range(steps)]
    states = [w.eq.h.clone().requires_grad_(True)]
    h = states[0]
    for k in range(steps):
        h = sut.step(h, w.x, copies[k])
        h.retain_grad()
        states.append(h)
    witness.mean_cost(sut, h, w.y, w.params).backward()
    def grad_of(leaf: Tensor) -> Tensor:  # a θ_k the step does not use: no gradient, zero
        return (torch.zeros_like(leaf) if leaf.grad is None else leaf.grad).flatten()

    bptt_theta = torch.stack([torch.cat([grad_of(copies[steps - t - 1][k]) for k in keys])
                              for t in range(steps)])
    bptt_s = torch.stack([cast(Tensor, states[steps - t].grad)  # retain_grad(): set
                          for t in range(steps)])
    scale = bptt_theta.norm()
    return {"parameters": float((ep_theta + bptt_theta).norm() / scale),
            "parameters_at_beta": float((theta_1 + bptt_theta).norm() / scale),
            "neurons": float((ep_s + bptt_s).norm() / bptt_s.norm()), "steps": steps,
            "parameter_keys": keys}


def preconditioner_asymmetry(w: Witnessed) -> float:
    """max over samples of ‖P − Pᵀ‖ / ‖P‖ (Frobenius), P = (I − J*) H⁻¹, H = ∇²_h E(h*): the
    linearized update is h ← h − P∇E. GDD holds for the parameters exactly when P is symmetric
    (then J*P = P J*ᵀ, so EP's and BPTT's propagations match step by step); layer-wise
    asynchronous (Gauss–Seidel) updates make P non-symmetric."""
    h = w.eq.h.clone()

    def gradient(z: Tensor) -> Tensor:
        return torch.autograd.grad(w.sut.energy(z, w.x, w.params).sum(), z, create_graph=True)[0]

    def summed(z: Tensor) -> Tensor:
        return gradient(z).sum(0)

    H = torch.autograd.functional.jacobian(
        lambda z: summed(z.requires_grad_(True)), h).permute(1, 0, 2).detach().numpy()
    worst = 0.0
    for b in range(h.shape[0]):
        n = H[b].shape[0]
        P = (np.eye(n) - w.eq.jacobian[b]) @ np.linalg.pinv(H[b])
        worst = max(worst, float(np.linalg.norm(P - P.T)
                                 / max(cast(float, np.linalg.norm(P)), 1e-300)))
    return worst


class DoubledNudge(PlantedMap):
    """T'_β = T_2β: the System's own map with its nudge entering twice over (a slip in how β
    scales the cost's pull). T'_0 = T_0, so h* and the free dynamics stay; EP's step-by-step
    updates double, so GDD must fail. The control for a one-neuron state, which has no
    antisymmetric coupling to plant (every 1×1 P is symmetric)."""

    def step(self, h, x, params=None, *, beta=0.0, y=None):
        return self.sut.step(h, x, params, beta=2 * beta, y=y)

    def __repr__(self) -> str:
        return f"DoubledNudge({self.sut!r})"


class AsymmetricallyCoupled(PlantedMap):
    """T'(h) = T(h) + (h − h*) Aᵀ with A antisymmetric, ‖A‖₂ = `size`: the System's own map
    with a planted non-reciprocal coupling. h* stays a fixed point; T' is no gradient step of
    E, so GDD must fail on it."""

    def __init__(self, sut: Any, h_star: Tensor, size: float, seed: int) -> None:
        n = h_star.shape[1]
        R = torch.randn(n, n, generator=torch.Generator().manual_seed(int(seed)),
                        dtype=torch.float64)
        A = R - R.T
        super().__init__(sut)
        self.h_star = h_star
        self.A = size * A / torch.linalg.matrix_norm(A, ord=2)

    def step(self, h, x, params=None, *, beta=0.0, y=None):
        return self.sut.step(h, x, params, beta=beta, y=y) + (h - self.h_star) @ self.A.T
