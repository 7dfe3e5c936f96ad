"""Layered (chain) energy networks, rebuilt independently in NumPy/SciPy: the witness for track 21.

State h = [h_1; …; h_L] (sizes n_1..n_L); the coupling matrix is block-tridiagonal with zero
diagonal blocks: block (l+1, l) is W_l, block (l, l+1) is W_lᵀ (symmetric) or an independent
feedback B_l (directed). Input enters layer 1, the readout reads layer L. From the raw W this
module rebuilds the matrix the dynamics use,

    S = ½(M∘W + (M∘W)ᵀ)  (symmetric)  or  M∘W,          M the adjacent-block mask,
    global SN:     W_eff = r S,  r = γ/σ̂(S)
    per-layer SN:  every block N_b = r_b S_b,  r_b = γ_b/σ̂(S_b)  (the partner of a symmetric
                   block is its transpose),

and carries the implicit gradient G = ∂ℒ/∂W_eff (`implicit_gradients` on W_eff itself) back to the
raw W by hand. For N = r S with r = γ/(c σ(S)) and dσ(S) = uᵀ dS v (top singular pair),

    ∂ℒ/∂S = r [G − (⟨G, N⟩/σ(N)) u vᵀ],

then through the symmetrization and the mask: ∂ℒ/∂W = M∘½(G_S + G_Sᵀ) (symmetric) or M∘G_S.
Per-layer, symmetric: N_l enters W_eff twice (as N_l and N_lᵀ), so ∂ℒ/∂N_l = G_{l+1,l} + G_{l,l+1}ᵀ,
and S_l = ½(W_{l+1,l} + W_{l,l+1}ᵀ) sends half of ∂ℒ/∂S_l to each raw block (transposed).
A chain's spectrum is symmetric about 0, so the global σ_max is a double singular value; the
singular pair SciPy returns is any unit combination of those of ±λ, and the symmetrization plus
the mask leave exactly eeᵀ (e a unit eigenvector of λ) whichever it is, so the result is unique.

Also the linear response of the state to the nudge, per sample (the "nudge signal" EP sees):

    dh_β/dβ |_{β=0} = −(I − J*)⁻¹ D Vᵀ(softmax(V h* + c) − onehot(y)),
    D = diag φ′(a*),  J* = D W_eff.

Nothing here imports the code under test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import scipy.linalg
from scipy.special import softmax

from .activations import nonlinearity
from .gradients import equilibria, implicit_gradients, read_batch
from .network import Network

Array = np.ndarray


def layer_slices(sizes: Sequence[int]) -> list[slice]:
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


@dataclass(frozen=True)
class Chain:
    """How a layered model makes W_eff from its raw W: sizes, symmetry and the SN mode
    ("global", "per_layer" or None for no SN) with its targets γ (global) and γ_b (per block)."""

    sizes: tuple[int, ...]
    symmetric: bool = True
    sn_mode: str | None = "global"
    gamma: float = 0.95
    layer_gamma: float = 0.95

    def __post_init__(self) -> None:
        if len(self.sizes) < 2:
            raise ValueError(f"a chain needs at least two layers, got sizes {self.sizes}")
        if self.sn_mode not in ("global", "per_layer", None):
            raise ValueError(f"unknown sn_mode {self.sn_mode!r}")

    @property
    def slices(self) -> list[slice]:
        return layer_slices(self.sizes)

    @property
    def n(self) -> int:
        return int(sum(self.sizes))

    def couplings(self) -> list[tuple[slice, slice]]:
        """(layer l, layer l+1): W_l is block [l+1, l], its partner block [l, l+1]."""
        s = self.slices
        return list(zip(s[:-1], s[1:]))

    def mask(self) -> Array:
        """M (n, n): ones on the blocks between adjacent layers."""
        m = np.zeros((self.n, self.n))
        for lower, upper in self.couplings():
            m[upper, lower] = 1.0
            m[lower, upper] = 1.0
        return m

    def coupling(self, W: Array) -> Array:
        """S = ½(M∘W + (M∘W)ᵀ), or M∘W for a directed chain."""
        masked = self.mask() * np.asarray(W, dtype=np.float64)
        return 0.5 * (masked + masked.T) if self.symmetric else masked

    def weight(self, W: Array) -> Array:
        """W_eff rebuilt from the raw W with the exact σ_max (SciPy)."""
        S = self.coupling(W)
        if self.sn_mode is None:
            return S
        if self.sn_mode == "global":
            return self.gamma * S / scipy.linalg.svdvals(S)[0]
        out = np.zeros_like(S)
        for lower, upper in self.couplings():
            blocks = [(upper, lower)] if self.symmetric else [(upper, lower), (lower, upper)]
            for rows, cols in blocks:
                block = S[rows, cols]
                out[rows, cols] = self.layer_gamma * block / scipy.linalg.svdvals(block)[0]
            if self.symmetric:
                out[lower, upper] = out[upper, lower].T
        return out


def sn_pull_back(G: Array, normalized: Array, raw: Array) -> Array:
    """∂ℒ/∂S from ∂ℒ/∂N for N = r S, r ∝ 1/σ(S): r[G − (⟨G, N⟩/σ(N)) u vᵀ] (module doc)."""
    u, s, vt = scipy.linalg.svd(normalized)
    r = s[0] / scipy.linalg.svdvals(raw)[0]
    return r * (G - (np.sum(G * normalized) / s[0]) * np.outer(u[:, 0], vt[0]))


def pull_back(chain: Chain, G: Array, W: Array, weight: Array) -> Array:
    """∂ℒ/∂W (raw, zero off the blocks) from G = ∂ℒ/∂W_eff (n, n, unconstrained).

    `weight` is the W_eff the model uses (its σ̂ may exceed σ by a rounding margin, so r is read
    off it as σ(W_eff)/σ(S), as `theory.gradients.pull_back_to_raw` does)."""
    M, S = chain.mask(), chain.coupling(W)
    if chain.sn_mode is None:
        G_S = G
    elif chain.sn_mode == "global":
        G_S = sn_pull_back(G, weight, S)
    else:
        G_S = np.zeros_like(G)
        for lower, upper in chain.couplings():
            if chain.symmetric:
                # N_l at [l+1, l] and N_lᵀ at [l, l+1]; G_S placed at [l+1, l] only: the
                # symmetrization below halves it into both raw blocks.
                grad_N = G[upper, lower] + G[lower, upper].T
                G_S[upper, lower] = sn_pull_back(grad_N, weight[upper, lower], S[upper, lower])
                G_S[lower, upper] = G_S[upper, lower].T
            else:
                for rows, cols in ((upper, lower), (lower, upper)):
                    G_S[rows, cols] = sn_pull_back(G[rows, cols], weight[rows, cols],
                                                   S[rows, cols])
        if chain.symmetric:
            # The two raw blocks each enter S_l with weight ½: ∂ℒ/∂W_{l+1,l} = ½∂ℒ/∂S_l and
            # ∂ℒ/∂W_{l,l+1} = ½(∂ℒ/∂S_l)ᵀ; G_S holds ∂ℒ/∂S_l and its transpose, so halve.
            return M * 0.5 * G_S
    if chain.symmetric:
        return M * 0.5 * (G_S + G_S.T)
    return M * G_S


def layered_implicit_gradients(net: Network, chain: Chain, x: object, y: object, *,
                               tol: float = 1e-14) -> dict[str, Array]:
    """∇ℒ for the raw W (zero off the blocks), U (layer 1's rows), b, V (layer L's columns), c.

    net: the model's snapshot (W_eff, U_eff, V_eff as the dynamics use them, raw W). Inputs and
    readout without io SN: ∂ℒ/∂U = mask∘∂ℒ/∂U_eff, ∂ℒ/∂V = mask∘∂ℒ/∂V_eff.
    """
    plain = replace(net, W=net.weight, symmetric=False, spectral_norm=False)
    grads = implicit_gradients(plain, x, y, tol=tol)  # W here: ∂ℒ/∂W_eff, unconstrained
    grads["W"] = pull_back(chain, grads["W"], net.W, net.weight)
    first, last = chain.slices[0], chain.slices[-1]
    U = np.zeros_like(grads["U"])
    U[first] = grads["U"][first]
    V = np.zeros_like(grads["V"])
    V[:, last] = grads["V"][:, last]
    grads["U"], grads["V"] = U, V
    return grads


def nudge_response(net: Network, x: object, y: object, *, tol: float = 1e-14) -> Array:
    """dh_β/dβ at β = 0 per sample: −(I − J*)⁻¹ D Vᵀ(p − onehot(y)), (B, n) (module doc)."""
    x, target = read_batch(net, x, y)
    act = nonlinearity(net.activation)
    states = equilibria(net, x, tol=tol)
    n = net.weight.shape[0]
    out = []
    for h, a, t in zip(states, net.drive(x), target):
        slope = act.slope(net.weight @ h + a)
        error = softmax(net.V @ h + net.c) - t
        out.append(-scipy.linalg.solve(np.eye(n) - slope[:, None] * net.weight,
                                       slope * (net.V.T @ error)))
    return np.array(out)


def block_norms(weight: Array, sizes: Sequence[int]) -> Array:
    """A (L, L): A_{ij} = ‖block (i, j) of weight‖₂ by SciPy."""
    s = layer_slices(sizes)
    return np.array([[scipy.linalg.svdvals(weight[a, b])[0] for b in s] for a in s])


def block_norm_bound(weight: Array, sizes: Sequence[int]) -> float:
    """‖A‖₂ ≥ ‖weight‖₂ for the matrix A of block norms (‖Wx‖ ≤ ‖A t‖, t_j = ‖x_j‖)."""
    return float(scipy.linalg.svdvals(block_norms(weight, sizes))[0])


def path_bound(max_block_norm: float, depth: int) -> float:
    """2 s cos(π/(L + 1)) ≥ ‖A‖₂ for a chain whose blocks have norm ≤ s (path graph P_L)."""
    return 2.0 * max_block_norm * float(np.cos(np.pi / (depth + 1)))
