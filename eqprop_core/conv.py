"""Circular convolutions as matrices, their exact operator norm, and a convolutional energy model.

A kernel K (c_out, c_in, k_h, k_w) acting on c_in × n × n images with circular (periodic)
padding is the linear map (cross-correlation, as `torch.nn.functional.conv2d`)

    (K ⋆ x)[o, i, j] = Σ_{c,p,q} K[o, c, p, q] · x[c, (i + p − a_h) mod n, (j + q − a_w) mod n],

a_h = (k_h − 1) // 2, a_w = (k_w − 1) // 2 (the "same" alignment; a shift is unitary, so it does
not change any singular value). Its matrix (c_out·n², c_in·n²), rows (o, i, j), columns
(c, i′, j′), holds K[o, c, p, q] at p = (i′ − i + a_h) mod n, q = (j′ − j + a_w) mod n when
p < k_h and q < k_w, else 0 — each entry one kernel tap, copied exactly when k_h, k_w ≤ n.

Operator norm (Sedghi, Gupta & Long 2019, "The singular values of convolutional layers"): the
2-D DFT block-diagonalizes the operator, so its singular values are the union over the n²
frequencies (u, v) of the singular values of the c_out × c_in matrix

    P(u, v)[o, c] = Σ_{p,q} K[o, c, p, q] · exp(2πi (u p + v q) / n),

the DFT of the kernel zero-padded to n × n. σ_max = max_{u,v} σ_max(P(u, v)) costs n² SVDs of
c_out × c_in matrices instead of one SVD of a c_out·n² × c_in·n² matrix.

The common "reshaped-kernel" spectral normalization (Miyato et al. 2018 applied to conv layers)
divides by σ_max(R), R = K reshaped to (c_out, c_in·k_h·k_w). It is not a bound on the operator
norm: since R·Rᵀ = mean_{u,v} P(u,v)P(u,v)ᴴ (cross terms of distinct taps average to zero
when k ≤ n) and P(u, v) = R·(ω(u,v) ⊗ I) with ‖ω ⊗ I‖₂ = √(k_h k_w),

    σ_max(R) ≤ σ_max(K ⋆ ·) ≤ √(k_h k_w) · σ_max(R),

so dividing by σ_max(R) leaves an operator norm between γ and γ·k (k × k kernels): equality on
the left needs the top direction of every frequency to coincide, on the right is reached by a
constant kernel (P(0, 0) = Σ_pq K_pq). Track 22 measures both ends.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .model import LoopedMLP
from .solvers import is_positive_integer
from .spectral import rounding_margin

SN_MODES = ("fft", "reshaped", "off")


def _check_kernel(kernel: Tensor, n: int) -> tuple[int, int, int, int]:
    """(c_out, c_in, k_h, k_w) of a kernel that fits n × n images; ValueError otherwise."""
    if not isinstance(kernel, Tensor) or kernel.ndim != 4:
        shape = tuple(kernel.shape) if isinstance(kernel, Tensor) else type(kernel).__name__
        raise ValueError(f"kernel must be a 4-D tensor (c_out, c_in, k_h, k_w), got {shape}")
    if not is_positive_integer(n):
        raise ValueError(f"image size n must be a positive integer, got {n!r}")
    c_out, c_in, k_h, k_w = (int(s) for s in kernel.shape)
    if min(c_out, c_in, k_h, k_w) < 1:
        raise ValueError(f"kernel has an empty dimension: shape {tuple(kernel.shape)}")
    if k_h > n or k_w > n:
        raise ValueError(
            f"kernel size {k_h}x{k_w} exceeds the image size n={n}: a circular convolution "
            "would alias its taps (k_h, k_w <= n required)"
        )
    return c_out, c_in, k_h, k_w


def _tap_index(k: int, n: int, device: torch.device) -> Tensor:
    """(n, n) index p[i, i′] = (i′ − i + a) mod n of the tap linking output i to input i′;
    values ≥ k point at the zero padding of the kernel (no tap)."""
    positions = torch.arange(n, device=device)
    return (positions[None, :] - positions[:, None] + (k - 1) // 2) % n


def circular_conv_matrix(kernel: Tensor, n: int) -> Tensor:
    """The dense matrix (c_out·n², c_in·n²) of the circular convolution K ⋆ · (module doc).

    Built by gathering kernel taps (no arithmetic), so every entry is an exact copy of one tap
    and the map K ↦ matrix is linear and differentiable (its adjoint sums the matrix entries
    back onto their taps). Rows (o, i, j) and columns (c, i′, j′) in row-major order, so that
    `matrix @ x.reshape(-1)` = `(K ⋆ x).reshape(-1)` for one image x (c_in, n, n).
    """
    c_out, c_in, k_h, k_w = _check_kernel(kernel, n)
    padded = kernel.new_zeros(c_out, c_in, n, n)
    padded[:, :, :k_h, :k_w] = kernel
    p = _tap_index(k_h, n, kernel.device)  # (i, i′)
    q = _tap_index(k_w, n, kernel.device)  # (j, j′)
    # taps[o, c, i, i′, j, j′] = padded[o, c, p[i, i′], q[j, j′]]
    taps = padded[:, :, p[:, :, None, None], q[None, None, :, :]]
    return taps.permute(0, 2, 4, 1, 3, 5).reshape(c_out * n * n, c_in * n * n)


def conv_singular_values(kernel: Tensor, n: int) -> Tensor:
    """All singular values of K ⋆ · on n × n images, (n², min(c_out, c_in)) in float64: row
    (u·n + v) holds σ(P(u, v)) in descending order (Sedghi et al. 2019). Differentiable."""
    _check_kernel(kernel, n)
    transfer = torch.fft.fft2(kernel.to(torch.float64), s=(n, n))  # (c_out, c_in, n, n)
    per_frequency = transfer.permute(2, 3, 0, 1).reshape(n * n, *kernel.shape[:2])
    return torch.linalg.svdvals(per_frequency)


def fft_rounding_margin(kernel_shape: tuple[int, ...], n: int) -> float:
    """Relative error bound of σ_max computed by a float64 FFT and SVD: 8·(log₂ n² + 1)·n·√r·ε.

    A float64 FFT of length N = n² has norm-wise relative error ≤ c·log₂N·ε (Higham, Accuracy
    and Stability, §24.1); over all frequencies Σ‖ΔP‖_F² ≤ (c log₂N ε)² n²‖K‖_F², so one
    frequency's ‖ΔP‖₂ ≤ c log₂N ε · n‖K‖_F ≤ c log₂N ε · n√r · σ_max (Parseval:
    n²‖K‖_F² = Σ‖P‖_F² ≤ n² r σ_max², r = min(c_out, c_in)); the SVD adds O(ε)σ_max.
    """
    rank = min(int(kernel_shape[0]), int(kernel_shape[1]))
    eps = torch.finfo(torch.float64).eps
    return 8.0 * (math.log2(n * n) + 1.0) * n * math.sqrt(rank) * eps


def conv_operator_norm(kernel: Tensor, n: int) -> Tensor:
    """σ̂ ≥ σ_max(K ⋆ ·) on n × n circular images, differentiable, as a float64 scalar tensor.

    σ̂ = max_{u,v} σ_max(P(u, v)) · (1 + FFT margin + rounding margin of kernel's dtype): exact up
    to a relative ~1e-13 in float64; the dtype's margin (as `spectral.certified_spectral_norm`)
    keeps γK/σ̂, rounded to that dtype, at operator norm ≤ γ. Non-finite kernels give +inf.
    """
    c_out, c_in, _, _ = _check_kernel(kernel, n)
    if not torch.isfinite(kernel).all():
        return torch.tensor(float("inf"), dtype=torch.float64, device=kernel.device)
    sigma = conv_singular_values(kernel, n).max()
    margin = fft_rounding_margin(tuple(kernel.shape), n) + rounding_margin(
        min(c_out, c_in) * n * n, kernel.dtype)
    return sigma * (1.0 + margin)


def reshaped_kernel_norm(kernel: Tensor) -> Tensor:
    """σ_max(R), R = K reshaped to (c_out, c_in·k_h·k_w), float64, differentiable.

    The usual spectral normalization of conv layers. NOT an upper bound on the operator norm:
    σ_max(R) ≤ σ_max(K ⋆ ·) ≤ √(k_h k_w)·σ_max(R) (module doc).
    """
    if not isinstance(kernel, Tensor) or kernel.ndim != 4:
        shape = tuple(kernel.shape) if isinstance(kernel, Tensor) else type(kernel).__name__
        raise ValueError(f"kernel must be a 4-D tensor (c_out, c_in, k_h, k_w), got {shape}")
    if kernel.numel() == 0:
        raise ValueError(f"kernel has an empty dimension: shape {tuple(kernel.shape)}")
    return torch.linalg.matrix_norm(kernel.to(torch.float64).reshape(kernel.shape[0], -1), ord=2)


class ConvEqProp(LoopedMLP):
    """Convolutional energy model on c_0 × n × n images (flat input (B, c_0·n²)).

    State h = [h_1; h_2], h_1 ∈ ℝ^{c_1×n×n}, h_2 ∈ ℝ^{c_2×n×n} (flat, channel-major). Energy

        E(h) = Σ G(h_i) − h_2ᵀ (K ⋆ h_1) − h_1ᵀ (U ⋆ x) − hᵀb,   logits = V h_2 + c,

    i.e. LoopedMLP's E with W_eff = [[0, Dᵀ], [D, 0]] (D the matrix of K ⋆ ·, so h_1 receives
    the transposed convolution Kᵀ h_2), U_eff = [[D_U], [0]] and V_eff = [0, V]. Circular
    padding, stride 1, per-unit bias b. ‖W_eff‖₂ = ‖D‖₂, so spectral normalization of K alone
    certifies the contraction:

        sn="fft":       K_eff = γK/σ̂(K ⋆ ·), σ̂ the exact FFT operator norm (`conv_operator_norm`)
        sn="reshaped":  K_eff = γK/σ_max(R)   (the common SN; ‖W_eff‖₂ ∈ [γ, γ·k]: no certificate)
        sn="off":       K_eff = K.

    Raw parameters (names as LoopedMLP, so `ep_gradients`, `bptt_gradients` and the trainer work
    unchanged): W = K (c_2, c_1, k, k), U (c_1, c_0, k_in, k_in), b (n_hidden,), V (n_out, c_2·n²),
    c (n_out,). The parametrizations below build the dense matrices from the kernels by an
    exact gather, so EP's gradients for W_eff, U_eff, V_eff reach the kernels by one
    vector–Jacobian product of these maps — the adjoint of the convolution.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 8, 8),
        channels: tuple[int, int] = (4, 4),
        n_out: int = 10,
        *,
        kernel_size: int = 3,
        input_kernel_size: int | None = None,
        sn: str = "fft",
        gamma: float = 0.95,
        activation: str = "tanh",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if (not isinstance(image_shape, (tuple, list)) or len(image_shape) != 3
                or not all(is_positive_integer(s) for s in image_shape)
                or image_shape[1] != image_shape[2]):
            raise ValueError(
                f"image_shape must be (channels, n, n) of positive integers, got {image_shape!r}"
            )
        if (not isinstance(channels, (tuple, list)) or len(channels) != 2
                or not all(is_positive_integer(c) for c in channels)):
            raise ValueError(f"channels must be (c_1, c_2), two positive integers, got "
                             f"{channels!r}")
        if sn not in SN_MODES:
            raise ValueError(f"sn must be one of {list(SN_MODES)}, got {sn!r}")
        input_kernel_size = kernel_size if input_kernel_size is None else input_kernel_size
        c0, n, _ = (int(s) for s in image_shape)
        for label, k in (("kernel_size", kernel_size), ("input_kernel_size", input_kernel_size)):
            if not is_positive_integer(k) or k > n:
                raise ValueError(f"{label} must be an integer in [1, {n}] (image size), got {k!r}")
        c1, c2 = (int(c) for c in channels)
        super().__init__(c0 * n * n, (c1 + c2) * n * n, n_out, symmetric=True,
                         spectral_norm=sn != "off", io_spectral_norm=False, gamma=gamma,
                         activation=activation, dtype=dtype)
        self.image_shape = (c0, n, n)
        self.channels = (c1, c2)
        self.sn = sn
        k, k_in = int(kernel_size), int(input_kernel_size)

        def uniform(*shape: int, fan_in: int) -> torch.nn.Parameter:
            bound = 1.0 / math.sqrt(fan_in)
            return torch.nn.Parameter(torch.empty(*shape, dtype=dtype).uniform_(-bound, bound))

        # Replaces LoopedMLP's dense parameters by kernels (same names, same order).
        self.W = uniform(c2, c1, k, k, fan_in=c1 * k * k)
        self.U = uniform(c1, c0, k_in, k_in, fan_in=c0 * k_in * k_in)
        self.b = uniform(self.n_hidden, fan_in=c0 * k_in * k_in)
        self.V = uniform(n_out, c2 * n * n, fan_in=c2 * n * n)
        self.c = uniform(n_out, fan_in=c2 * n * n)

    @property
    def image_size(self) -> int:
        return self.image_shape[1]

    def extra_repr(self) -> str:
        return (f"image_shape={self.image_shape}, channels={self.channels}, n_out={self.n_out}, "
                f"kernel={tuple(self.W.shape[2:])}, input_kernel={tuple(self.U.shape[2:])}, "
                f"sn={self.sn!r}, gamma={self.gamma}, activation={self.activation.name!r}")

    # -- parametrizations: kernels ↦ the matrices the dynamics use --------------------------
    def effective_kernel(self, W: Tensor) -> Tensor:
        """K ↦ K_eff: γK/σ̂(K ⋆ ·) (sn="fft"), γK/σ_max(R) (sn="reshaped") or K (sn="off")."""
        if self.sn == "off":
            return W
        if self.sn == "fft":
            sigma = conv_operator_norm(W, self.image_size)
        else:
            sigma = reshaped_kernel_norm(W)
        sigma = sigma.clamp_min(torch.finfo(torch.float64).tiny)
        return (W.to(torch.float64) * (self.gamma / sigma)).to(W.dtype)

    def effective_weight(self, W: Tensor) -> Tensor:
        """W_eff = [[0, Dᵀ], [D, 0]], D the matrix of K_eff ⋆ · (n_hidden, n_hidden), symmetric."""
        coupling = circular_conv_matrix(self.effective_kernel(W), self.image_size)
        n1 = coupling.shape[1]
        top = torch.cat([coupling.new_zeros(n1, n1), coupling.T], dim=1)
        bottom = torch.cat([coupling, coupling.new_zeros(coupling.shape[0], coupling.shape[0])],
                           dim=1)
        return torch.cat([top, bottom], dim=0)

    def effective_input_weight(self, U: Tensor) -> Tensor:
        """U_eff = [[D_U], [0]] (n_hidden, n_in): the input drives h_1 through U ⋆ x."""
        drive = circular_conv_matrix(U, self.image_size)
        return torch.cat([drive, drive.new_zeros(self.n_hidden - drive.shape[0], self.n_in)])

    def effective_readout_weight(self, V: Tensor) -> Tensor:
        """V_eff = [0, V] (n_out, n_hidden): the readout sees h_2 only."""
        return torch.cat([V.new_zeros(self.n_out, self.n_hidden - V.shape[1]), V], dim=1)

    def lipschitz_certificate(self) -> float:
        """L = σ̂(K_eff ⋆ ·)·sup|φ′| = σ̂(W_eff)·sup|φ′| by the FFT (exact up to its margin)."""
        with torch.no_grad():
            sigma = conv_operator_norm(self.effective_kernel(self.W), self.image_size)
        return float(sigma) * self.activation.max_slope
