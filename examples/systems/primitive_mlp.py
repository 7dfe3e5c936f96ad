"""A layered EqProp network in the "primitive function" style, written as a System.

    state      s = (s_1, …, s_L), layers concatenated (B, n); s_0 = x; s_L the output layer
    primitive  Φ(x, s; θ) = Σ_l s_lᵀ W_l s_{l−1} + b_lᵀ s_l         θ = {W_l, b_l}
    free       T_0(s)  = σ(∂Φ/∂s)                                   (all layers at once)
    nudged     T_β(s)  = σ(∂Φ/∂s − β ∂C/∂s),   C(s, y) = ½‖s_L − y‖²  (the nudge inside σ)
    σ(a)       = 1 / (1 + exp(−4(a − ½)))       σ′ = 4σ(1 − σ) ≤ 1,   σ⁻¹(u) = ½ + ¼ log(u/(1−u))
    energy     E(s) = Σ_i G(s_i) − Φ(x, s),     G(u) = ∫σ⁻¹ = u/2 + ¼[u log u + (1−u) log(1−u)]
    one-sided  dℒ/dθ ≈ −(1/β)  [∂Φ/∂θ(s^β)  − ∂Φ/∂θ(s^0)]           (mean over the batch)
    symmetric  dℒ/dθ ≈ −(1/2β) [∂Φ/∂θ(s^{+β}) − ∂Φ/∂θ(s^{−β})]       (both phases from s^0)
    Lipschitz  ‖T_0(s) − T_0(s′)‖₂ ≤ sup σ′ · ‖A‖₂ ‖s − s′‖₂,  A = ∂²Φ/∂s² (symmetric blocks W_l)

∂Φ/∂s_l = W_l s_{l−1} + W_{l+1}ᵀ s_{l+1} + b_l is taken by autograd of Φ, as the public PyTorch
EqProp code does; the code then keeps the graph only when the caller differentiates (the suite
takes ∂T/∂h and ∂T/∂θ of `step`). Fixed points of T_β are exactly the stationary points of
E + βC (σ⁻¹(s) = ∂Φ/∂s − β∂C/∂s ⇔ ∇(E + βC) = 0), so EP is exact as β → 0 at converged
phases. G'' = 1/(4u(1−u)) ≥ 1, so with ‖A‖₂ < 1 the energy is strongly convex on the box and
T_0 (a concave–convex step: ∇G(s′) = ∇Φ(s)) descends it: E(s′) − E(s) ≤ −½(1 − ‖A‖₂)‖s′ − s‖².
E is defined on [0, 1]ⁿ (σ's range closure) and +∞ outside; ∂G/∂u = σ⁻¹(u) is −∞ at u = 0.

Sizes: n_in = 12, layers (24, 16, 6), n = 46; weights scaled so ‖A‖₂ = 0.9 (a contraction: one
equilibrium; ρ(J*) ≤ 0.79 at sample(8, 0)). Defaults (`build`): 30 free and 10 nudged steps,
the published code's numbers — here the free phase is *not* converged: max|T_0(h) − h| = 8.6e-5
at sample(8, 0), the symmetric estimate stops at a relative error 5.0e-3 for every β ≤ 1e-3 and
the one-sided one grows as ~3e-5/β; the suite must diagnose it. `converged()`: the same weights
with 400 free and 200 nudged steps (residual 7e-16; errors ∝ β and β² down to rounding).
`broken()`: the slip described at `BrokenPrimitiveMLP`.
"""

from __future__ import annotations

import torch
from torch import Tensor

try:  # as a package module (examples.systems.<name>) or as a file (path/to/<name>.py)
    from .teacher import TeacherTask
except ImportError:
    from teacher import TeacherTask

N_IN, LAYERS = 12, (24, 16, 6)
NORM_A = 0.9  # ‖A‖₂ of the block coupling: the claimed Lipschitz bound (sup σ′ = 1)
TEACHER_SEED, WEIGHT_SEED = 101, 7


def sigma(a: Tensor) -> Tensor:
    """σ(a) = 1 / (1 + exp(−4(a − ½)))."""
    return torch.sigmoid(4.0 * (a - 0.5))


def sigma_inverse(u: Tensor) -> Tensor:
    """σ⁻¹(u) = ½ + ¼ log(u / (1 − u)) (±∞ at the ends)."""
    return 0.5 + 0.25 * (torch.log(u) - torch.log1p(-u))


class _IntegralOfInverse(torch.autograd.Function):
    """G(u) = u/2 + ¼[u log u + (1−u) log(1−u)] elementwise, with G′ = σ⁻¹ (−∞ at 0, +∞ at 1)
    as its derivative: autograd of the formula would give 0·∞ = NaN at the ends."""

    @staticmethod
    def forward(ctx, u: Tensor) -> Tensor:
        ctx.save_for_backward(u)
        return 0.5 * u + 0.25 * (torch.special.xlogy(u, u) + torch.special.xlogy(1 - u, 1 - u))

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (u,) = ctx.saved_tensors
        return grad * sigma_inverse(u)


class PrimitiveMLP:
    """Layered primitive-function EqProp (see the module docstring)."""

    estimators = ("one_sided", "symmetric")

    def __init__(self, free_steps: int = 30, nudged_steps: int = 10, *, n_in: int = N_IN,
                 layers: tuple[int, ...] = LAYERS, seed: int = WEIGHT_SEED) -> None:
        self.free_steps, self.nudged_steps = int(free_steps), int(nudged_steps)
        self.n_in, self.layers = n_in, tuple(layers)
        self.n_out = self.layers[-1]
        self.params = self._init_params(seed)
        self.task = TeacherTask(n_in, self.n_out, TEACHER_SEED)

    # -- initialization ------------------------------------------------------------------------
    def _init_params(self, seed: int) -> dict[str, Tensor]:
        """W_1 ~ N(0, 0.3²/n_in); W_l ~ N(0, 1/fan_in) for l ≥ 2, rescaled so ‖A‖₂ = NORM_A;
        b_l ~ ½ + N(0, 0.15²). Weak drives keep many units in σ's steep part, where the
        iteration is slow (ρ(J*) ≈ 0.6–0.8)."""
        g = torch.Generator().manual_seed(seed)
        sizes = (self.n_in,) + self.layers
        p: dict[str, Tensor] = {}
        for l in range(1, len(sizes)):
            gain = 0.3 if l == 1 else 1.0
            p[f"W{l}"] = gain * torch.randn(sizes[l], sizes[l - 1], dtype=torch.float64,
                                            generator=g) / sizes[l - 1] ** 0.5
            p[f"b{l}"] = 0.5 + 0.15 * torch.randn(sizes[l], dtype=torch.float64, generator=g)
        scale = NORM_A / float(torch.linalg.matrix_norm(self.coupling(p), ord=2))
        for l in range(2, len(sizes)):
            p[f"W{l}"] = p[f"W{l}"] * scale
        return p

    # -- layout --------------------------------------------------------------------------------
    def split(self, s: Tensor) -> list[Tensor]:
        """s (B, n) → [s_1, …, s_L] (views)."""
        return list(torch.split(s, self.layers, dim=1))

    def coupling(self, params: dict[str, Tensor]) -> Tensor:
        """A = ∂²Φ/∂s² (n, n): block (l, l−1) is W_l, block (l−1, l) is W_lᵀ (l ≥ 2)."""
        n = sum(self.layers)
        A = torch.zeros(n, n, dtype=torch.float64)
        offsets = [0]
        for size in self.layers:
            offsets.append(offsets[-1] + size)
        for l in range(2, len(self.layers) + 1):
            r, c = slice(offsets[l - 1], offsets[l]), slice(offsets[l - 2], offsets[l - 1])
            A[r, c] = params[f"W{l}"]
            A[c, r] = params[f"W{l}"].T
        return A

    # -- the protocol --------------------------------------------------------------------------
    def sample(self, batch: int, seed: int) -> tuple[Tensor, Tensor]:
        """The fixed teacher task (`teacher.TeacherTask`)."""
        return self.task.sample(batch, seed)

    def init_state(self, x: Tensor) -> Tensor:
        return torch.zeros(x.shape[0], sum(self.layers), dtype=x.dtype)

    def primitive(self, x: Tensor, s: Tensor, params: dict[str, Tensor]) -> Tensor:
        """Φ(x, s; θ) per sample (B,)."""
        layers = [x] + self.split(s)
        phi = torch.zeros(s.shape[0], dtype=s.dtype)
        for l in range(1, len(layers)):
            phi = phi + ((layers[l - 1] @ params[f"W{l}"].T) * layers[l]).sum(1)
            phi = phi + layers[l] @ params[f"b{l}"]
        return phi

    def cost(self, h: Tensor, y: Tensor) -> Tensor:
        """C = ½‖s_L − y‖² per sample."""
        return 0.5 * ((h[:, -self.n_out:] - y) ** 2).sum(1)

    def step(self, h: Tensor, x: Tensor, params: dict[str, Tensor], *, beta: float = 0.0,
             y: Tensor | None = None) -> Tensor:
        """T_β(h) = σ(∂/∂s [Φ(x, s) − βC(s, y)] at s = h), the derivative by autograd."""
        graph = torch.is_grad_enabled() and (
            h.requires_grad or x.requires_grad or any(p.requires_grad for p in params.values()))
        with torch.enable_grad():
            s = h if (graph and h.requires_grad) else h.detach().requires_grad_(True)
            total = self.primitive(x, s, params)
            if beta != 0:
                total = total - beta * self.nudge_cost(s, y)
            (drive,) = torch.autograd.grad(total.sum(), s, create_graph=graph)
        return sigma(drive)

    def nudge_cost(self, s: Tensor, y: Tensor) -> Tensor:
        """The cost the nudged phase feels (the same C)."""
        return self.cost(s, y)

    def energy(self, h: Tensor, x: Tensor, params: dict[str, Tensor]) -> Tensor:
        """E = Σ_i G(h_i) − Φ(x, h) on [0, 1]ⁿ, +∞ outside it."""
        box = (h >= 0) & (h <= 1)
        G = _IntegralOfInverse.apply(torch.where(box, h, torch.full_like(h, 0.5))).sum(1)
        E = G - self.primitive(x, h, params)
        return torch.where(box.all(1), E, torch.full_like(E, float("inf")))

    def lipschitz(self, params: dict[str, Tensor]) -> float:
        """sup σ′ · ‖A‖₂ with sup σ′ = σ′(½) = 1."""
        return float(torch.linalg.matrix_norm(self.coupling(params), ord=2))

    # -- the implementation's own EP -----------------------------------------------------------
    def free_phase(self, x: Tensor) -> Tensor:
        s = self.init_state(x)
        with torch.no_grad():
            for _ in range(self.free_steps):
                s = self.step(s, x, self.params)
        return s

    def nudged_phase(self, s: Tensor, x: Tensor, y: Tensor, beta: float) -> Tensor:
        with torch.no_grad():
            for _ in range(self.nudged_steps):
                s = self.step(s, x, self.params, beta=beta, y=y)
        return s

    def ep_gradient(self, x: Tensor, y: Tensor, *, beta: float, estimator: str
                    ) -> dict[str, Tensor]:
        """+dℒ/dθ by EP: autograd of −ΔΦ / (β or 2β) between the phases, mean over the batch."""
        if estimator not in self.estimators:
            raise ValueError(f"unknown estimator {estimator!r}; choose from {self.estimators}")
        s0 = self.free_phase(x)
        s_plus = self.nudged_phase(s0, x, y, beta)
        if estimator == "one_sided":
            s_ref, denom = s0, beta
        else:
            s_ref, denom = self.nudged_phase(s0, x, y, -beta), 2 * beta
        leaves = {k: v.detach().clone().requires_grad_(True) for k, v in self.params.items()}
        delta = (self.primitive(x, s_plus, leaves) - self.primitive(x, s_ref, leaves)).mean()
        grads = torch.autograd.grad(-delta / denom, list(leaves.values()))
        return {k: g.detach() for k, g in zip(leaves, grads)}


class BrokenPrimitiveMLP(PrimitiveMLP):
    """The slip: the nudge is applied *after* σ, s ← σ(∂Φ/∂s) − β ∂C/∂s — the leaky-dt
    convention (`leaky_dt.py`) pasted into sigmoid code. Its fixed point is no longer a
    stationary point of E + βC: ds/dβ = −(I − DA)⁻¹ ∂C/∂s instead of −(I − DA)⁻¹ D ∂C/∂s
    (D = diag σ′), so EP returns the gradient of a cost whose output error is weighted by
    1/σ′(s_L) per unit — wrong in direction, and at every β."""

    def step(self, h: Tensor, x: Tensor, params: dict[str, Tensor], *, beta: float = 0.0,
             y: Tensor | None = None) -> Tensor:
        free = super().step(h, x, params)
        if beta == 0:
            return free
        hidden = torch.zeros_like(free[:, :-self.n_out])
        force = torch.cat([hidden, h[:, -self.n_out:] - y], dim=1)  # ∂C/∂s (output layer)
        return free - beta * force  # SLIP: −β∂C/∂s outside σ (it belongs inside)


def build() -> PrimitiveMLP:
    """The published defaults: 30 free, 10 nudged steps (free phase not converged)."""
    return PrimitiveMLP()


def converged() -> PrimitiveMLP:
    """The same weights with converged phases: 400 free, 1500 nudged steps (the nudged map at
    β = +0.5 contracts only at ρ = 0.979, measured by the suite's track 14: 200 steps left
    the update 5.5e-6 off the finite-β surrogate's gradient)."""
    return PrimitiveMLP(free_steps=400, nudged_steps=1500)


def broken() -> PrimitiveMLP:
    """The nudge outside σ (see `BrokenPrimitiveMLP`), with converged phases."""
    return BrokenPrimitiveMLP(free_steps=400, nudged_steps=1500)
