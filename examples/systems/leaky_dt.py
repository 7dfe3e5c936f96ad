"""EqProp with leaky discrete-time dynamics and a hard sigmoid, written as a System.

    state      s = (s_h, s_o), hidden and output units in one vector (B, n)
    couplings  W_eff = M ∘ ½(W + Wᵀ),  M the layered mask (hidden ↔ output only), θ = {W, U, b}
    drive      a(s) = W_eff s + Ū x + b,    Ū x = (U x, 0)       (the input drives the hidden units)
    free       T_0(s) = s + dt (−s + ρ(a(s))),   ρ(a) = clip(a, 0, 1)
    nudged     T_β(s) = T_0(s) + β dt (y − s_o) on the output units    (the nudge outside ρ)
    cost       C(s, y) = ½‖s_o − y‖²
    energy     E(s) = ½‖s‖² − ½ sᵀ W_eff s − sᵀ(Ū x + b)
    EP         dℒ/dθ ≈ (1/β)[∂E/∂θ(s^β) − ∂E/∂θ(s^0)]                (one-sided)
                      (1/2β)[∂E/∂θ(s^{+β}) − ∂E/∂θ(s^{−β})]           (symmetric)
               by autograd of E between the phases (mean over the batch): for W this is the
               local rule −(1/2β) M ∘ (s^β s^βᵀ − s^0 s^0ᵀ), symmetric by construction
    Lipschitz  ‖T_0(s) − T_0(s′)‖₂ ≤ (1 − dt + dt ‖W_eff‖₂) ‖s − s′‖₂       (sup ρ′ = 1)

Where every unit's drive lies in ρ's linear region (0, 1), T_0(s) = s − dt ∇E(s) and T_β(s) =
s − dt ∇(E + βC)(s): the nudge outside ρ is exactly the gradient of βC there, the fixed points
of T_β are the stationary points of E + βC, and EP is exact as β → 0. The task and
initialization are chosen so that this holds for what `sample` draws: ‖W_eff‖₂ = 0.5, b centres
the drives at ½, Ū x small. Over 20 × 256 sampled inputs the drives at the free equilibrium lie
in [0.061, 0.920], and at the free and nudged ones (|β| ≤ 0.1) every drive is ≥ 0.048 from
ρ's kinks (`linear_margin`; checked in the tests).

Otherwise: a *hidden* unit whose drive saturates is pinned at 0 or 1 in both phases — that is the
box-constrained minimiser of E, and EP stays exact (the active set does not move with β); but
an *output* unit that saturates at its free equilibrium (drive a > 1, s_o = 1) is still moved by
the nudge outside ρ, s_o^β = (1 + βy)/(1 + β), while its true sensitivity is 0 (ρ′ = 0): EP then
reports ∂ℒ/∂b_o ≈ 1 − y_o (and terms through W) where the gradient is 0 — a bias no β removes.
With output 0's bias raised by 1 (so it saturates: `saturated()`) the one-sided and symmetric
estimates both stop at a relative error 0.62 for every β ≤ 1e-2 (measured in the tests); there
E is not stationary at the fixed point either (the saturated unit keeps the leak, so it is not
pinned, and ∂E/∂s_o = s_o − a_o ≠ 0).

`energy` is E (finite everywhere). It is exact where claimed: its stationary points are the
fixed points of T_0 in the linear region (the equilibria `sample` produces), and on the box
[0, 1]ⁿ T_0 descends it: T_0(s) = (1 − dt) s + dt P(s − ∇E(s)), P the projection on the box, is
a projected-gradient step of size 1 < 2/λ_max(I − W_eff) (λ_max ≤ 1.5) on a convex E, relaxed
by dt ≤ 1. Outside the box T_0 is not a gradient step of E (a unit at s_i > 1 with drive
a_i > s_i decays while −∂E/∂s_i > 0), so descent is not proved there; none was found (the suite's
far starts, and a gradient-ascent search for E(T_0(s)) > E(s) from 30 × 64 starts).

Sizes: n_in = 12, hidden 32, output 6, n = 38. Defaults: dt = 0.5, 120 free and 300 nudged steps
(the free rate is ≤ 1 − dt(1 − ‖W_eff‖₂) = 0.75; a nudge −β adds βdt to the output units' self-
coupling, and at β = −0.5 the suite's track 14 measured ρ = 0.905 for the nudged map, where 80
steps left the symmetric update 1.2e-6 off the finite-β surrogate's gradient; 300 steps reach
0.905³⁰⁰ ≈ 1e-13).
`broken()`: the slip described at `BrokenLeakyDT`.
"""

from __future__ import annotations

import torch
from torch import Tensor

try:  # as a package module (examples.systems.<name>) or as a file (path/to/<name>.py)
    from .teacher import TeacherTask
except ImportError:
    from teacher import TeacherTask

N_IN, N_HIDDEN, N_OUT = 12, 32, 6
NORM_W = 0.5  # ‖W_eff‖₂ at initialization
TEACHER_SEED, WEIGHT_SEED = 202, 11


class LeakyDT:
    """Leaky discrete-time EqProp with the nudge outside ρ (see the module docstring)."""

    estimators = ("one_sided", "symmetric")

    def __init__(self, dt: float = 0.5, free_steps: int = 120, nudged_steps: int = 300, *,
                 n_in: int = N_IN, n_hidden: int = N_HIDDEN, n_out: int = N_OUT,
                 seed: int = WEIGHT_SEED) -> None:
        self.dt, self.free_steps, self.nudged_steps = float(dt), int(free_steps), int(nudged_steps)
        self.n_in, self.n_hidden, self.n_out = n_in, n_hidden, n_out
        n = n_hidden + n_out
        self.mask = torch.zeros(n, n, dtype=torch.float64)
        self.mask[:n_hidden, n_hidden:] = 1.0
        self.mask[n_hidden:, :n_hidden] = 1.0
        self.params = self._init_params(seed)
        self.task = TeacherTask(n_in, n_out, TEACHER_SEED)

    def _init_params(self, seed: int) -> dict[str, Tensor]:
        """W: a symmetric masked Gaussian with ‖W_eff‖₂ = NORM_W; U ~ N(0, 0.15²/n_in);
        b = ½(𝟙 − W_eff 𝟙), so that s = ½ has drive ½ at x = 0 (the units start centred in ρ's
        linear region; the input moves them by |U x| ≲ 0.3)."""
        g = torch.Generator().manual_seed(seed)
        n = self.n_hidden + self.n_out
        W = torch.randn(n, n, dtype=torch.float64, generator=g)
        W = self.mask * 0.5 * (W + W.T)
        W = NORM_W * W / float(torch.linalg.matrix_norm(W, ord=2))
        U = 0.15 * torch.randn(self.n_hidden, self.n_in, dtype=torch.float64,
                               generator=g) / self.n_in ** 0.5
        b = 0.5 * (1 - W.sum(1))
        return {"W": W, "U": U, "b": b}

    # -- the model ------------------------------------------------------------------------------
    def effective_weight(self, params: dict[str, Tensor]) -> Tensor:
        """W_eff = M ∘ ½(W + Wᵀ)."""
        return self.mask * 0.5 * (params["W"] + params["W"].T)

    def external(self, x: Tensor, params: dict[str, Tensor]) -> Tensor:
        """Ū x + b (B, n): the input drives the hidden units only."""
        ux = x @ params["U"].T
        return torch.cat([ux, torch.zeros(x.shape[0], self.n_out, dtype=ux.dtype)], 1) \
            + params["b"]

    def drive(self, h: Tensor, x: Tensor, params: dict[str, Tensor]) -> Tensor:
        """a(s) = W_eff s + Ū x + b."""
        return h @ self.effective_weight(params).T + self.external(x, params)

    def linear_margin(self, h: Tensor, x: Tensor) -> float:
        """min over units and samples of min(a, 1 − a) at h (> 0: every unit in (0, 1))."""
        with torch.no_grad():
            a = self.drive(h, x, self.params)
        return float(torch.minimum(a, 1 - a).min())

    # -- the protocol ---------------------------------------------------------------------------
    def sample(self, batch: int, seed: int) -> tuple[Tensor, Tensor]:
        """The fixed teacher task (`teacher.TeacherTask`)."""
        return self.task.sample(batch, seed)

    def init_state(self, x: Tensor) -> Tensor:
        return torch.zeros(x.shape[0], self.n_hidden + self.n_out, dtype=x.dtype)

    def cost(self, h: Tensor, y: Tensor) -> Tensor:
        """C = ½‖s_o − y‖² per sample."""
        return 0.5 * ((h[:, self.n_hidden:] - y) ** 2).sum(1)

    def step(self, h: Tensor, x: Tensor, params: dict[str, Tensor], *, beta: float = 0.0,
             y: Tensor | None = None) -> Tensor:
        """s + dt(−s + ρ(a(s))) [+ β dt (y − s_o) on the outputs]."""
        new = h + self.dt * (-h + self.drive(h, x, params).clamp(0.0, 1.0))
        if beta == 0:
            return new
        nudge = torch.cat([torch.zeros_like(h[:, :self.n_hidden]), y - h[:, self.n_hidden:]], 1)
        return new + beta * self.dt * nudge

    def energy(self, h: Tensor, x: Tensor, params: dict[str, Tensor]) -> Tensor:
        """E = ½‖s‖² − ½ sᵀ W_eff s − sᵀ(Ū x + b) per sample."""
        Wh = h @ self.effective_weight(params).T
        return 0.5 * (h * h).sum(1) - 0.5 * (h * Wh).sum(1) - (h * self.external(x, params)).sum(1)

    def lipschitz(self, params: dict[str, Tensor]) -> float:
        """1 − dt + dt ‖W_eff‖₂ (for dt ≤ 1)."""
        norm = float(torch.linalg.matrix_norm(self.effective_weight(params), ord=2))
        return 1 - self.dt + self.dt * norm

    # -- the implementation's own EP ------------------------------------------------------------
    def relax_(self, s: Tensor, x: Tensor, steps: int, beta: float = 0.0,
               y: Tensor | None = None) -> Tensor:
        """Run `steps` updates on the buffer s in place (the phases share one buffer)."""
        with torch.no_grad():
            for _ in range(steps):
                s.copy_(self.step(s, x, self.params, beta=beta, y=y))
        return s

    def snapshot(self, s: Tensor) -> Tensor:
        """A copy of the buffer that later phases cannot overwrite."""
        return s.clone()

    def free_phase(self, x: Tensor) -> Tensor:
        return self.relax_(self.init_state(x), x, self.free_steps)

    def ep_gradient(self, x: Tensor, y: Tensor, *, beta: float, estimator: str
                    ) -> dict[str, Tensor]:
        """+dℒ/dθ by EP: autograd of ΔE / (β or 2β) between the phases, mean over the batch."""
        if estimator not in self.estimators:
            raise ValueError(f"unknown estimator {estimator!r}; choose from {self.estimators}")
        s = self.free_phase(x)
        s_free = self.snapshot(s)
        self.relax_(s, x, self.nudged_steps, beta, y)
        if estimator == "one_sided":
            s_a, s_b, denom = s, s_free, beta
        else:
            s_plus = self.snapshot(s)
            s.copy_(s_free)  # the −β phase starts from the free state too
            self.relax_(s, x, self.nudged_steps, -beta, y)
            s_a, s_b, denom = s_plus, s, 2 * beta
        leaves = {k: v.detach().clone().requires_grad_(True) for k, v in self.params.items()}
        delta = (self.energy(s_a, x, leaves) - self.energy(s_b, x, leaves)).mean()
        grads = torch.autograd.grad(delta / denom, list(leaves.values()))
        return {k: g.detach() for k, g in zip(leaves, grads)}


class BrokenLeakyDT(LeakyDT):
    """The slip: the free state is kept as an *alias* of the buffer the nudged phase then
    overwrites in place (`s_free = s` where `s.clone()` was needed — numpy habits, or a
    "memory optimization"). Every snapshot is the live buffer, so ΔE is taken between a state
    and itself: one-sided and symmetric both return exactly 0, at every β and step count."""

    def snapshot(self, s: Tensor) -> Tensor:
        return s  # SLIP: an alias, not a copy — the next relax_ overwrites it


def build() -> LeakyDT:
    """dt = 0.5, 120 free and 300 nudged steps (both phases converged, up to |β| = 0.5)."""
    return LeakyDT()


def saturated() -> LeakyDT:
    """The same network with output 0's bias at 1.5: that unit saturates at the free
    equilibrium, where the nudge outside ρ is no longer the gradient of βC (EP biased)."""
    system = LeakyDT()
    system.params["b"][N_HIDDEN] += 1.0
    return system


def broken() -> LeakyDT:
    """The aliased free state (see `BrokenLeakyDT`)."""
    return BrokenLeakyDT()
