"""EqProp on a layered Hopfield energy minimised exactly, layer by layer, written as a System.

    state      s = (s_1, …, s_L) in [0, 1]ⁿ, layers concatenated (B, n); s_0 = x
    energy     E(s) = ½‖s‖² − Σ_l s_lᵀ W_l s_{l−1} − Σ_l b_lᵀ s_l            θ = {W_l, b_l}
    cost       C(s, y) = ½‖s_L − y‖²
    one step   even layers:  s_l ← clip(W_l s_{l−1} + W_{l+1}ᵀ s_{l+1} + b_l, 0, 1)
               then odd ones, from the new even ones (the same formula); the output layer's
               minimiser of E + βC (β > −1): s_L ← clip((W_L s_{L−1} + b_L + β y) / (1 + β), 0, 1)
    centered   dℒ/dθ ≈ (1/2β) [∂E/∂θ(s^{+β}) − ∂E/∂θ(s^{−β})]    (phases at ±β from s^0)
    one-sided  dℒ/dθ ≈ (1/β)  [∂E/∂θ(s^β) − ∂E/∂θ(s^0)]
    local rule ∂E/∂W_l = −mean_b s_l s_{l−1}ᵀ,  ∂E/∂b_l = −mean_b s_l     (written by hand)
    Lipschitz  ‖T_0(s) − T_0(s′)‖₂ ≤ a √(1 + a²) ‖s − s′‖₂,  a = ‖A_eo‖₂ (odd → even couplings)

Given the other parity, E + βC is a separable convex quadratic in each layer of one parity, so
the clip of its unconstrained minimiser is its exact minimiser over the box: each half-step
lowers E + βC (block-coordinate descent), and T_0 maps every state into [0, 1]ⁿ. A fixed point
is a box-KKT point of E + βC — a stationary point wherever it is interior, and EP is exact as
β → 0 (units pinned at 0 or 1 stay pinned for small β). T_0 reads only the odd layers (the
even ones are overwritten first): even′ = clip(A_eo odd + c_e), odd′ = clip(A_oe even′ + c_o),
A_oe = A_eoᵀ, whence the Lipschitz bound (clip is 1-Lipschitz) and a rate ≈ a² per step.

Sizes: n_in = 12, layers (16, 16, 8), n = 40 (L = 3: layer 2 is even; 1 and 3 are odd, so the
nudged output layer is updated after layer 2). Weights scaled so a = 0.6 (L = 0.70: one
equilibrium); biases centre the drives at ½. For `sample`'s inputs about 1% of the units end
pinned at 0 or 1 (3 of 320 at sample(8, 0)): box-KKT points, where EP stays exact. Defaults: 40
free, 30 nudged steps (the residual reaches rounding, ~1e-16, by step 29).
`broken()`: the slip described at `BrokenLayerwiseHopfield`.
"""

from __future__ import annotations

import torch
from torch import Tensor

try:  # as a package module (examples.systems.<name>) or as a file (path/to/<name>.py)
    from .teacher import TeacherTask
except ImportError:
    from teacher import TeacherTask

N_IN, LAYERS = 12, (16, 16, 8)
NORM_COUPLING = 0.6  # a = ‖A_eo‖₂
TEACHER_SEED, WEIGHT_SEED = 303, 5


class LayerwiseHopfield:
    """Even/odd exact block minimisation of a layered Hopfield energy (module docstring)."""

    estimators = ("symmetric", "one_sided")

    def __init__(self, free_steps: int = 40, nudged_steps: int = 30, *, n_in: int = N_IN,
                 layers: tuple[int, ...] = LAYERS, seed: int = WEIGHT_SEED) -> None:
        self.free_steps, self.nudged_steps = int(free_steps), int(nudged_steps)
        self.n_in, self.layers = n_in, tuple(layers)
        self.n_out = self.layers[-1]
        self.params = self._init_params(seed)
        self.task = TeacherTask(n_in, self.n_out, TEACHER_SEED)

    def _init_params(self, seed: int) -> dict[str, Tensor]:
        """W_1 ~ N(0, 0.4²/n_in); W_l (l ≥ 2) Gaussian, rescaled so ‖A_eo‖₂ = NORM_COUPLING;
        b_l = ½ − ½ (W_l 𝟙 + W_{l+1}ᵀ 𝟙): at s = ½ and x = 0 every unit's drive is ½."""
        g = torch.Generator().manual_seed(seed)
        sizes = (self.n_in,) + self.layers
        p: dict[str, Tensor] = {}
        for l in range(1, len(sizes)):
            gain = 0.4 if l == 1 else 1.0
            p[f"W{l}"] = gain * torch.randn(sizes[l], sizes[l - 1], dtype=torch.float64,
                                            generator=g) / sizes[l - 1] ** 0.5
        scale = NORM_COUPLING / self.odd_to_even_norm(p)
        for l in range(2, len(sizes)):
            p[f"W{l}"] = p[f"W{l}"] * scale
        L = len(self.layers)
        for l in range(1, L + 1):
            pull = p[f"W{l}"].sum(1) if l >= 2 else torch.zeros(sizes[l], dtype=torch.float64)
            push = p[f"W{l + 1}"].sum(0) if l < L else torch.zeros(sizes[l], dtype=torch.float64)
            p[f"b{l}"] = 0.5 - 0.5 * (pull + push)
        return p

    # -- layout -------------------------------------------------------------------------------
    def split(self, s: Tensor) -> list[Tensor]:
        """s (B, n) → [s_1, …, s_L]."""
        return list(torch.split(s, self.layers, dim=1))

    def odd_to_even_norm(self, params: dict[str, Tensor]) -> float:
        """a = ‖A_eo‖₂: the couplings (W_l between layers l and l − 1, l ≥ 2) from the odd layers
        into the even ones, as one matrix (rows: even units, columns: odd units)."""
        L = len(self.layers)
        even = [l for l in range(1, L + 1) if l % 2 == 0]
        odd = [l for l in range(1, L + 1) if l % 2 == 1]
        rows = []
        for e in even:
            blocks = []
            for o in odd:
                if o == e - 1:
                    blocks.append(params[f"W{e}"])
                elif o == e + 1:
                    blocks.append(params[f"W{o}"].T)
                else:
                    blocks.append(torch.zeros(self.layers[e - 1], self.layers[o - 1],
                                              dtype=torch.float64))
            rows.append(torch.cat(blocks, 1))
        return float(torch.linalg.matrix_norm(torch.cat(rows, 0), ord=2))

    # -- the protocol -------------------------------------------------------------------------
    def sample(self, batch: int, seed: int) -> tuple[Tensor, Tensor]:
        """The fixed teacher task (`teacher.TeacherTask`)."""
        return self.task.sample(batch, seed)

    def init_state(self, x: Tensor) -> Tensor:
        return torch.zeros(x.shape[0], sum(self.layers), dtype=x.dtype)

    def cost(self, h: Tensor, y: Tensor) -> Tensor:
        """C = ½‖s_L − y‖² per sample."""
        return 0.5 * ((h[:, -self.n_out:] - y) ** 2).sum(1)

    def _minimiser(self, l: int, s: list[Tensor], x: Tensor, params: dict[str, Tensor],
                   beta: float, y: Tensor | None) -> Tensor:
        """argmin over s_l ∈ [0, 1] of E + βC given its neighbours."""
        L = len(self.layers)
        below = x if l == 1 else s[l - 2]
        a = below @ params[f"W{l}"].T + params[f"b{l}"]
        if l < L:
            a = a + s[l] @ params[f"W{l + 1}"]
        if l == L and beta != 0:
            a = (a + beta * y) / (1 + beta)
        return a.clamp(0.0, 1.0)

    def step(self, h: Tensor, x: Tensor, params: dict[str, Tensor], *, beta: float = 0.0,
             y: Tensor | None = None) -> Tensor:
        """All even layers to their exact minimiser, then all odd layers (given the new even)."""
        s = self.split(h)
        L = len(self.layers)
        for parity in (0, 1):
            new = {l: self._minimiser(l, s, x, params, beta, y)
                   for l in range(1, L + 1) if l % 2 == parity}
            s = [new.get(l, s[l - 1]) for l in range(1, L + 1)]
        return torch.cat(s, 1)

    def energy(self, h: Tensor, x: Tensor, params: dict[str, Tensor]) -> Tensor:
        """E(s) per sample (the quadratic; T_0 keeps every iterate in [0, 1]ⁿ)."""
        s = [x] + self.split(h)
        E = 0.5 * (h * h).sum(1)
        for l in range(1, len(s)):
            E = E - ((s[l - 1] @ params[f"W{l}"].T) * s[l]).sum(1) - s[l] @ params[f"b{l}"]
        return E

    def lipschitz(self, params: dict[str, Tensor]) -> float:
        """a √(1 + a²), a = ‖A_eo‖₂."""
        a = self.odd_to_even_norm(params)
        return a * (1 + a * a) ** 0.5

    # -- the implementation's own EP ------------------------------------------------------------
    def relax(self, s: Tensor, x: Tensor, steps: int, beta: float = 0.0,
              y: Tensor | None = None) -> Tensor:
        with torch.no_grad():
            for _ in range(steps):
                s = self.step(s, x, self.params, beta=beta, y=y)
        return s

    def free_phase(self, x: Tensor) -> Tensor:
        return self.relax(self.init_state(x), x, self.free_steps)

    def energy_gradient(self, h: Tensor, x: Tensor) -> dict[str, Tensor]:
        """∂E/∂θ at h, mean over the batch, by the local rule."""
        s = [x] + self.split(h)
        B = h.shape[0]
        grads = {}
        for l in range(1, len(s)):
            grads[f"W{l}"] = -self.hebbian(l, s[l], s[l - 1]) / B
            grads[f"b{l}"] = -s[l].sum(0) / B
        return grads

    def hebbian(self, l: int, post: Tensor, pre: Tensor) -> Tensor:
        """Σ_b post_b pre_bᵀ (n_l, n_{l−1}) for W_l."""
        return post.T @ pre

    def ep_gradient(self, x: Tensor, y: Tensor, *, beta: float, estimator: str
                    ) -> dict[str, Tensor]:
        """+dℒ/dθ by EP: the local rule's difference between the phases over β or 2β."""
        if estimator not in self.estimators:
            raise ValueError(f"unknown estimator {estimator!r}; choose from {self.estimators}")
        s0 = self.free_phase(x)
        s_plus = self.relax(s0, x, self.nudged_steps, beta, y)
        if estimator == "symmetric":
            s_ref, denom = self.relax(s0, x, self.nudged_steps, -beta, y), 2 * beta
        else:
            s_ref, denom = s0, beta
        g_plus, g_ref = self.energy_gradient(s_plus, x), self.energy_gradient(s_ref, x)
        return {k: (g_plus[k] - g_ref[k]) / denom for k in g_plus}


class BrokenLayerwiseHopfield(LayerwiseHopfield):
    """The slip: the hidden-to-hidden weight's Hebbian term is written pre·postᵀ instead of
    post·preᵀ — a missing transpose. Both hidden layers have 16 units, so W_2's gradient has the
    right shape and nothing complains; it is the transpose of the true one (W_1's and W_3's
    are right). Both estimators carry it, at every β and step count."""

    def hebbian(self, l: int, post: Tensor, pre: Tensor) -> Tensor:
        if post.shape[1] == pre.shape[1]:  # the hidden-to-hidden layer (its own line, in code)
            return pre.T @ post  # SLIP: the transpose of post.T @ pre
        return post.T @ pre


def build() -> LayerwiseHopfield:
    """40 free, 30 nudged steps (both phases converged)."""
    return LayerwiseHopfield()


def broken() -> LayerwiseHopfield:
    """The transposed hidden-to-hidden gradient (see `BrokenLayerwiseHopfield`)."""
    return BrokenLayerwiseHopfield()
