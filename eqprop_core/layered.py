"""Layered (Hopfield-style, bidirectional) energy networks: a LoopedMLP with a chain structure.

Hidden layers h_1, …, h_L of sizes n_1, …, n_L; the input x feeds layer 1 only, the readout reads
layer L only. Energy (symmetric couplings):

    E(h) = Σ_l Σ_i G(h_{l,i}) − Σ_{l<L} h_{l+1}ᵀ W_l h_l − h_1ᵀ U_1 x − Σ_l b_lᵀ h_l,   G′ = φ⁻¹,

so ∇_{h_l} E = 0 is the layered dynamics

    h_l ← φ(W_{l−1} h_{l−1} + W_lᵀ h_{l+1} + b_l)     (W_0 h_0 := U_1 x, W_L := 0).

With the state h = [h_1; …; h_L] (n = Σ n_l) this *is* the LoopedMLP energy
E = Σ G(h_i) − ½hᵀW_eff h − hᵀ(U_eff x + b) for the block-tridiagonal matrix

    W_eff = [[0,   W_1ᵀ, 0,   …],
             [W_1, 0,    W_2ᵀ, …],
             [0,   W_2,  0,   …], …],      U_eff = [U_1; 0; …; 0],   V_eff = [0, …, 0, V_L],

so `LayeredEqProp` only overrides the three parametrizations θ ↦ θ_eff (masks, symmetrization,
spectral normalization) and inherits the dynamics, the energy, EP's estimators (whose gradients
reach the raw, masked parameters by the vector–Jacobian product of these maps: entries outside
the blocks get exactly zero), BPTT, the certificate and the NumPy snapshot unchanged.

Raw parameters keep LoopedMLP's names and shapes: W (n, n) of which only the blocks between
adjacent layers are used — (l+1, l) holds W_l, (l, l+1) its partner —, U (n, n_in) of which only
layer 1's rows are used, V (n_out, n) of which only layer L's columns. With `symmetric` the
coupling is S = ½(M∘W + (M∘W)ᵀ) (M the block mask), so W_l = ½(W_{l+1,l} + W_{l,l+1}ᵀ). With
symmetric=False the (l, l+1) block is an independent feedback matrix B_l in place of W_lᵀ
(h_l ← φ(W_{l−1}h_{l−1} + B_l h_{l+1} + b_l): no energy, a "directed" / feedback-alignment-style
network, trained by EP's vector-field form).

Spectral normalization, two modes:
- "global": W_eff = γ S/σ̂(S), one SN of the whole block matrix, so ‖W_eff‖₂ ≤ γ and the
  certificate L = ‖W_eff‖₂·sup|φ′| ≤ γ < 1.
- "per_layer": every coupling block is scaled on its own, W_l,eff = γ_b W_l/σ̂(W_l) (and B_l alike).
  The whole matrix is then bounded by its block norms: with A the L×L matrix of block norms
  A_{ij} = ‖(W_eff)_{ij}‖₂ and t_j = ‖x_j‖,

      ‖W_eff x‖² = Σ_i ‖Σ_j (W_eff)_{ij} x_j‖² ≤ Σ_i (Σ_j A_{ij} t_j)² = ‖At‖² ≤ ‖A‖₂²‖x‖²,

  so ‖W_eff‖₂ ≤ ‖A‖₂. For a chain A is supported on the path graph P_L's edges, A ≤ s·P_L
  entrywise with s = max_l ‖W_l‖₂, and for non-negative matrices the norm is monotone, so

      ‖W_eff‖₂ ≤ ‖A‖₂ ≤ s·‖P_L‖₂ = 2 s cos(π/(L + 1))       (eigenvalues of P_L: 2cos(kπ/(L+1)))

  — s for L = 2 (exact: W_eff's eigenvalues are ±σ_i(W_1)), √2·s for L = 3. Hence the default
  γ_b = γ / (2cos(π/(L + 1))) certifies ‖W_eff‖₂ ≤ γ; γ_b = γ per block would not for L ≥ 3
  (√2·0.95 = 1.34 > 1). `block_norm_bound()` reports ‖A‖₂ from certified block norms.

A bipartite chain (layers of odd vs even index) has a spectrum symmetric about 0, so σ_max(W_eff)
is always attained twice (±λ); the global SN divides by max|λ|, whose derivative on the masked,
symmetric subspace is eeᵀ for either eigenvector e of ±λ (they differ by the layer-parity signs,
which the mask absorbs), so the pull-back of a gradient is well defined.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from .model import LoopedMLP
from .solvers import is_positive_integer
from .spectral import certified_spectral_norm, rounding_margin, spectrally_normalize

SN_MODES = ("global", "per_layer")


def path_graph_norm(depth: int) -> float:
    """‖P_L‖₂ = 2cos(π/(L + 1)), the spectral norm of the path graph on L vertices (L ≥ 1)."""
    if not is_positive_integer(depth):
        raise ValueError(f"depth must be a positive integer, got {depth!r}")
    return 2.0 * math.cos(math.pi / (int(depth) + 1))


def layer_slices(sizes: Sequence[int]) -> tuple[slice, ...]:
    """The slice of the concatenated state [h_1; …; h_L] that holds each layer."""
    bounds = [0]
    for size in sizes:
        bounds.append(bounds[-1] + int(size))
    return tuple(slice(a, b) for a, b in zip(bounds[:-1], bounds[1:]))


class LayeredEqProp(LoopedMLP):
    """Layered energy network h_l = φ(W_{l−1}h_{l−1} + W_lᵀh_{l+1} + b_l) as a LoopedMLP over
    the state [h_1; …; h_L] (module doc: energy, masks, the two SN modes and their bounds).

    layer_sizes: (n_1, …, n_L), L ≥ 2. sn_mode: "global" or "per_layer" (used when
    spectral_norm). layer_gamma: γ_b of each block under "per_layer"; default
    γ / (2cos(π/(L + 1))), which certifies ‖W_eff‖₂ ≤ γ.
    """

    weight_mask: Tensor  # (n, n): ones on the blocks between adjacent layers
    input_mask: Tensor  # (n, n_in): ones on layer 1's rows
    readout_mask: Tensor  # (n_out, n): ones on layer L's columns

    def __init__(
        self,
        n_in: int,
        layer_sizes: Sequence[int],
        n_out: int,
        *,
        symmetric: bool = True,
        spectral_norm: bool = True,
        sn_mode: str = "global",
        layer_gamma: float | None = None,
        io_spectral_norm: bool = False,
        gamma: float = 0.95,
        activation: str = "tanh",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if isinstance(layer_sizes, (str, bytes)) or not isinstance(layer_sizes, Sequence):
            raise ValueError(f"layer_sizes must be a sequence of layer widths, got {layer_sizes!r}")
        sizes = tuple(layer_sizes)
        if len(sizes) < 2 or not all(is_positive_integer(s) for s in sizes):
            raise ValueError(
                f"layer_sizes must hold at least two positive integers, got {layer_sizes!r}"
            )
        if sn_mode not in SN_MODES:
            raise ValueError(f"unknown sn_mode {sn_mode!r}; choose one of {list(SN_MODES)}")
        super().__init__(n_in, sum(int(s) for s in sizes), n_out, symmetric=symmetric,
                         spectral_norm=spectral_norm, io_spectral_norm=io_spectral_norm,
                         gamma=gamma, activation=activation, dtype=dtype)
        if layer_gamma is None:
            layer_gamma = self.gamma / path_graph_norm(len(sizes))
        if not (isinstance(layer_gamma, (int, float)) and not isinstance(layer_gamma, bool)
                and math.isfinite(layer_gamma) and layer_gamma > 0):
            raise ValueError(f"layer_gamma must be a positive finite number, got {layer_gamma!r}")
        self.layer_sizes = tuple(int(s) for s in sizes)
        self.layer_slices = layer_slices(self.layer_sizes)
        self.sn_mode = sn_mode
        self.layer_gamma = float(layer_gamma)

        first, last = self.layer_slices[0], self.layer_slices[-1]
        weight_mask = torch.zeros(self.n_hidden, self.n_hidden, dtype=dtype)
        for lower, upper in self.couplings():
            weight_mask[upper, lower] = 1.0
            weight_mask[lower, upper] = 1.0
        input_mask = torch.zeros(self.n_hidden, self.n_in, dtype=dtype)
        input_mask[first] = 1.0
        readout_mask = torch.zeros(self.n_out, self.n_hidden, dtype=dtype)
        readout_mask[:, last] = 1.0
        self.register_buffer("weight_mask", weight_mask, persistent=False)
        self.register_buffer("input_mask", input_mask, persistent=False)
        self.register_buffer("readout_mask", readout_mask, persistent=False)

        # Fan-in of each block, not of the whole state; unused entries start (and stay) zero.
        with torch.no_grad():
            self.W.zero_()
            for lower, upper in self.couplings():
                for rows, cols in ((upper, lower), (lower, upper)):
                    bound = 1.0 / math.sqrt(cols.stop - cols.start)
                    self.W[rows, cols].uniform_(-bound, bound)
            self.U.mul_(self.input_mask)
            self.V.zero_()
            self.V[:, last].uniform_(-1.0 / math.sqrt(self.layer_sizes[-1]),
                                     1.0 / math.sqrt(self.layer_sizes[-1]))

    @property
    def depth(self) -> int:
        """L, the number of hidden layers."""
        return len(self.layer_sizes)

    def extra_repr(self) -> str:
        return (f"layer_sizes={self.layer_sizes}, sn_mode={self.sn_mode!r}, "
                f"layer_gamma={self.layer_gamma:.4g}, " + super().extra_repr())

    def couplings(self) -> tuple[tuple[slice, slice], ...]:
        """(layer l, layer l+1) slices for l = 1..L−1: W_l is the block [l+1, l] of W_eff."""
        return tuple(zip(self.layer_slices[:-1], self.layer_slices[1:]))

    def split_layers(self, h: Tensor) -> tuple[Tensor, ...]:
        """(h_1, …, h_L): views of a state (…, n) along its last axis."""
        if h.shape[-1] != self.n_hidden:
            raise ValueError(f"state must have {self.n_hidden} units in its last axis, "
                             f"got shape {tuple(h.shape)}")
        return tuple(h[..., s] for s in self.layer_slices)

    # -- parametrizations --------------------------------------------------------------------
    def effective_weight(self, W: Tensor) -> Tensor:
        """W ↦ W_eff: mask to the adjacent-layer blocks, symmetrize (if symmetric), then SN —
        of the whole matrix ("global", ‖W_eff‖₂ ≤ γ) or of each block ("per_layer", each block
        ≤ γ_b, ‖W_eff‖₂ ≤ ‖A‖₂ ≤ 2γ_b cos(π/(L+1))). Pure and differentiable."""
        coupling = W * self.weight_mask
        if self.symmetric:
            coupling = 0.5 * (coupling + coupling.T)
        if not self.spectral_norm:
            return coupling
        if self.sn_mode == "global":
            return spectrally_normalize(coupling, self.gamma, symmetric=self.symmetric)
        weight = torch.zeros_like(coupling)
        for lower, upper in self.couplings():
            forward = spectrally_normalize(coupling[upper, lower], self.layer_gamma)
            weight[upper, lower] = forward
            # Symmetric: the partner block is exactly W_lᵀ (not a second, rounded SN of it).
            weight[lower, upper] = forward.T if self.symmetric else spectrally_normalize(
                coupling[lower, upper], self.layer_gamma)
        return weight

    def effective_input_weight(self, U: Tensor) -> Tensor:
        """U ↦ U_eff = [U_1; 0; …] (layer 1's rows), then γU/σ̂ with io_spectral_norm."""
        return super().effective_input_weight(U * self.input_mask)

    def effective_readout_weight(self, V: Tensor) -> Tensor:
        """V ↦ V_eff = [0, …, V_L] (layer L's columns), then γV/σ̂ with io_spectral_norm."""
        return super().effective_readout_weight(V * self.readout_mask)

    # -- certificates ------------------------------------------------------------------------
    def block_norms(self) -> Tensor:
        """A (L, L), float64: A_{ij} = σ̂((W_eff)_{ij}) ≥ ‖block‖₂ (zero off the chain)."""
        with torch.no_grad():
            weight = self.recurrent_weight()
            A = torch.zeros(self.depth, self.depth, dtype=torch.float64, device=weight.device)
            for l, (lower, upper) in enumerate(self.couplings()):
                A[l + 1, l] = certified_spectral_norm(weight[upper, lower])
                A[l, l + 1] = certified_spectral_norm(weight[lower, upper])
        return A

    def block_norm_bound(self) -> float:
        """‖A‖₂ ≥ ‖W_eff‖₂ (module doc), itself ≤ 2·max‖W_l‖₂·cos(π/(L+1)); rounded up."""
        A = self.block_norms()
        return float(torch.linalg.matrix_norm(A, ord=2)) * (
            1.0 + rounding_margin(self.depth, torch.float64))
