"""Spectral normalization with a margin: W_eff = γ · W / σ̂(W), σ̂ ≥ σ_max(W), γ < 1.

Power iteration alone *under*-estimates σ_max, so dividing by it can leave ‖W_eff‖₂ > γ (and
PyTorch's stock `spectral_norm` targets γ = 1: non-expansive, never a contraction). Two ways to
get a σ̂ that never under-estimates:

    certified_spectral_norm   the exact σ_max in float64 (symmetric eigenvalues or singular
                              values) times a rounding factor; no stored state to go stale.
    SubspaceSpectralNorm      a certified upper bound from a warm-started k-dimensional
                              subspace (`schur_upper_bound`), O(n²k) per call; an exact
                              decomposition only when the bound is not tight enough.
    CholeskySpectralNorm      a warm subspace's Ritz value raised by the tolerance and
                              certified by Cholesky factorizations (`cholesky_certified_below`),
                              O(n³/3) per call, no eigensolver on most calls: the training
                              default.

Either way σ_max(W_eff) ≤ γ holds after every update of W, in train and eval mode alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from .solvers import all_finite

SpectralBound = Callable[..., Tensor]
"""σ̂(weight, *, symmetric) ≥ σ_max(weight): a float64 scalar tensor, differentiable."""

FLOAT64_EPS = torch.finfo(torch.float64).eps
DEFAULT_RANK = 32
DEFAULT_TOLERANCE = 1e-3
"""`SubspaceSpectralNorm`'s defaults, chosen by measurement (benchmarks/spectral_norm.py): k = 32
costs O(n²k) per call, noise next to an eigh; tolerance 1e-3 keeps σ_max(W_eff) ≥ γ/1.001 and
refreshes about half as often as 1e-4 in Adam training at hidden 384."""


def rounding_margin(n: int, dtype: torch.dtype) -> float:
    """Relative inflation 4·√n·ε(dtype) of σ̂: ‖W ∘ (1 + δ)‖₂ ≤ (1 + √n·max|δ|)‖W‖₂."""
    return 4.0 * math.sqrt(max(n, 1)) * torch.finfo(dtype).eps


def certified_spectral_norm(weight: Tensor, *, symmetric: bool = False) -> Tensor:
    """σ̂ ≥ σ_max(weight), differentiable, as a float64 scalar tensor.

    `symmetric=True` promises weight = weightᵀ and uses eigvalsh (σ_max = max|λ|); the caller
    is responsible for the promise. Otherwise σ_max² = λ_max(G) for the smaller Gram matrix
    G = WWᵀ (or WᵀW), also by eigvalsh — a third of an SVD's time at 384 × 784 — with the
    float64 product's error ‖fl(G) − G‖₂ ≤ γ_N‖W‖²_F added under the root (`product_error`), so
    the squaring costs no certainty; the gradient is that of σ_max, u vᵀ, either way. Where that
    error would loosen σ̂ by more than the rounding margin itself (a float64 W: the margin is then
    ~10⁻¹⁴), the SVD gives σ_max instead, so σ̂/σ_max − 1 stays within twice the margin.
    """
    w64 = _as_float64_matrix(weight)
    if not all_finite(w64):
        # No finite bound exists; +inf lets NaN weights propagate into the dynamics, where the
        # solver reports them as a measured divergence instead of LAPACK raising here.
        return w64.new_tensor(float("inf"))
    margin = rounding_margin(min(weight.shape), weight.dtype)
    if symmetric:
        sigma = torch.linalg.eigvalsh(w64).abs().max()
    else:
        gram, gram_error = smaller_gram(w64)
        top = torch.linalg.eigvalsh(gram)[-1].clamp_min(0)
        if gram_error <= 2.0 * margin * float(top.detach()):
            sigma = (top + gram_error).sqrt()
        else:
            sigma = torch.linalg.matrix_norm(w64, ord=2)
    return sigma * (1.0 + margin)


def spectrally_normalize(weight: Tensor, gamma: float, *, symmetric: bool = False,
                         bound: SpectralBound | None = None) -> Tensor:
    """γ · weight / σ̂(weight) in weight's dtype, with σ_max of the result ≤ γ.

    σ̂ comes from `bound` (a `SubspaceSpectralNorm`, say), `certified_spectral_norm` when None.
    A zero matrix stays zero (σ̂ is floored at the smallest normal number instead of 0); a
    matrix with NaN/∞ entries keeps them (NaN · 0), so the dynamics diverge visibly.
    """
    sigma = (bound or certified_spectral_norm)(weight, symmetric=symmetric)
    sigma = sigma.clamp_min(torch.finfo(torch.float64).tiny)
    return (weight.to(torch.float64) * (gamma / sigma)).to(weight.dtype)


def smaller_gram(w64: Tensor) -> tuple[Tensor, float]:
    """G = fl(WWᵀ) or fl(WᵀW), whichever is smaller, and γ_N‖W‖²_F ≥ ‖G − WWᵀ‖₂ (the float64
    product's error, |fl(G) − G| ≤ γ_N|W||W|ᵀ entrywise): σ_max(W)² ≤ λ_max(G) + that error."""
    m, n = w64.shape
    gram = w64 @ w64.T if m <= n else w64.T @ w64
    return gram, product_error(max(m, n)) * float(w64.detach().square().sum())


def _as_float64_matrix(weight: Tensor) -> Tensor:
    if weight.ndim != 2:
        raise ValueError(f"spectral norm needs a matrix, got shape {tuple(weight.shape)}")
    return weight.to(torch.float64)


# -- the subspace bound ------------------------------------------------------------------------
def schur_upper_bound(ritz: float, coupling: float, tail: float) -> float:
    """σ_up = [(s + r) + √((s − r)² + 4e²)] / 2 ≥ σ_max(A), with s = ritz, e = coupling, r = tail.

    Claim. Let A be symmetric (n × n), S (n × k) orthonormal, S⊥ an orthonormal basis of its
    complement, H = SᵀAS, s = ‖H‖₂, e = ‖AS − SH‖₂ and r ≥ ‖S⊥ᵀAS⊥‖₂. Then every eigenvalue μ
    of A has |μ| ≤ σ_up, so σ_max(A) ≤ σ_up; and σ_max(A) ≥ s (Cauchy interlacing).

    Proof. In the basis [S, S⊥], A = [[H, Bᵀ], [B, M]] with B = S⊥ᵀAS, ‖B‖₂ = ‖(I − SSᵀ)AS‖₂
    = e, and ‖M‖₂ ≤ r. Let Az = μz, z = (x, y), |μ| > r. The second block row gives
    y = (μ − M)⁻¹Bx, and ‖(μ − M)⁻¹‖₂ ≤ 1/(|μ| − r) because M is symmetric with ‖M‖₂ ≤ r;
    so x ≠ 0 (else y = 0), and the first row, μx = Hx + Bᵀ(μ − M)⁻¹Bx, gives
    |μ| ≤ s + e²/(|μ| − r), i.e. (|μ| − s)(|μ| − r) ≤ e²: |μ| is at most the larger root σ_up
    of (t − s)(t − r) = e². Eigenvalues with |μ| ≤ r are below σ_up ≥ max(s, r) too.   ∎

    A non-symmetric W (m × n) is the case A = [[0, W], [Wᵀ, 0]] (eigenvalues ±σᵢ(W)) with
    S = diag(U, V): s = σ_max(UᵀWV), e = max(‖WV − UB‖₂, ‖WᵀU − VBᵀ‖₂) for B = UᵀWV, and
    r ≥ ‖U⊥ᵀWV⊥‖₂. σ_up − s ≈ e²/(s − r): quadratic in the coupling. σ_up increases in each
    argument with slope ≤ 1, so over-estimating any of them by δ over-estimates σ_up by ≤ δ.
    """
    # hypot: √(d² + e²) without the underflow (or overflow) of squaring tiny (or huge) inputs.
    return 0.5 * (ritz + tail) + math.hypot(0.5 * (ritz - tail), coupling)


@dataclass(frozen=True)
class SubspaceReference:
    """The warm start of `subspace_spectral_bound`: a matrix W_ref and its top-k singular
    subspaces from an exact float64 decomposition (a refresh).

    left (m × k), right (n × k): the computed top-k singular vectors (symmetric: eigenvectors by
        largest |λ|, right = left).
    tail: an upper bound on ‖Û⊥ᵀ W_ref V̂⊥‖₂ (σ_{k+1}(W_ref) plus the decomposition's measured
        residual), Û, V̂ the exactly orthogonal matrices nearest the computed factors.
    defect: the measured orthogonality defect η = ‖QᵀQ − I‖_F of the computed factors Q.
    """

    weight: Tensor
    left: Tensor
    right: Tensor
    tail: float
    defect: float
    symmetric: bool

    def matches(self, weight: Tensor, symmetric: bool) -> bool:
        """Whether this reference can bound `weight` (float64): same shape, device, symmetry."""
        return (self.symmetric == symmetric and self.weight.shape == weight.shape
                and self.weight.device == weight.device)


def product_error(n: int) -> float:
    """γ_n = n·ε64: ‖fl(XY) − XY‖₂ ≤ γ_n‖X‖_F‖Y‖_F for a float64 product with inner size n
    (the classical bound |fl(XY) − XY| ≤ γ_n|X||Y| entrywise, γ_n = nu/(1 − nu) ≤ nε, u = ε/2)."""
    return n * FLOAT64_EPS


def subspace_reference(weight: Tensor, rank: int, *, symmetric: bool) -> SubspaceReference:
    """Refresh: exact float64 decomposition W_ref = QΛQᵀ (symmetric) or UΣVᵀ, kept to rank k.

    tail = σ_{k+1} + ρ + 2η‖W_ref‖_F + (rounding of ρ), where ρ = ‖W_ref V − UΣ‖_F is the
    measured residual and η the orthogonality defect: with Û, V̂ the exactly orthogonal
    matrices nearest U, V (‖U − Û‖₂ ≤ ‖UᵀU − I‖₂ ≤ η), ÛᵀW_refV̂ = Σ + G with
    ‖G‖₂ ≤ ρ + η‖W_ref‖₂ + η‖Σ‖₂, so ‖Û⊥ᵀW_refV̂⊥‖₂ ≤ σ_{k+1} + ‖G‖₂ ≤ tail.
    """
    # A copy, never a view: for a float64 W, `.to(float64)` returns W itself, and an alias
    # would follow W's in-place updates, so that ‖W − W_ref‖_F (the tail's growth) read 0.
    ref = _as_float64_matrix(weight).detach().clone()
    m, n = ref.shape
    k = max(1, min(rank, m, n))
    if symmetric:
        lam, Q = torch.linalg.eigh(ref)
        order = lam.abs().argsort(descending=True)
        left = right = Q[:, order[:k]].contiguous()
        residual = torch.linalg.matrix_norm(ref @ Q - Q * lam)
        eye = torch.eye(n, dtype=ref.dtype, device=ref.device)
        defect = float(torch.linalg.matrix_norm(Q.T @ Q - eye))
        sigma_next = float(lam.abs()[order[k]]) if k < n else 0.0
        inner = n
    else:
        U, s, Vh = torch.linalg.svd(ref, full_matrices=True)
        left, right = U[:, :k].contiguous(), Vh[:k].T.contiguous()
        sigma_matrix = torch.zeros_like(ref)
        sigma_matrix[range(len(s)), range(len(s))] = s
        residual = torch.linalg.matrix_norm(ref @ Vh.T - U @ sigma_matrix)
        defect = max(
            float(torch.linalg.matrix_norm(U.T @ U - torch.eye(m, dtype=ref.dtype,
                                                                device=ref.device))),
            float(torch.linalg.matrix_norm(Vh @ Vh.T - torch.eye(n, dtype=ref.dtype,
                                                                  device=ref.device))))
        sigma_next = float(s[k]) if k < len(s) else 0.0
        inner = max(m, n)
    # The computed ‖QᵀQ − I‖_F is itself off by ≤ γ_N‖Q‖²_F = γ_N·N.
    defect += product_error(inner) * inner
    fro = float(torch.linalg.matrix_norm(ref))
    rounding = 2 * product_error(inner) * fro * math.sqrt(inner)
    tail = sigma_next + float(residual) + 2.0 * defect * fro + rounding
    return SubspaceReference(ref, left, right, tail, defect, symmetric)


@dataclass(frozen=True)
class SubspaceEstimate:
    """One evaluation of the subspace bound: σ_max ∈ [ritz, upper], upper certified.

    ritz: s = σ_max(UᵀWV) (a lower bound), as a float64 tensor carrying W's gradient.
    coupling: e; tail: r = reference tail + ‖W − W_ref‖_F; upper: σ̂ after every margin.
    """

    ritz: Tensor
    coupling: float
    tail: float
    upper: float

    @property
    def tightness(self) -> float:
        """upper/ritz − 1: how far the certified value may exceed σ_max, relatively."""
        ritz = float(self.ritz.detach())
        return self.upper / ritz - 1.0 if ritz > 0 else math.inf


def subspace_spectral_bound(weight: Tensor, reference: SubspaceReference,
                            dtype: torch.dtype | None = None) -> SubspaceEstimate:
    """σ_max(W) ∈ [s, σ̂], σ̂ = (σ_up(s + δ, e + δ, r + δ)) · (1 + rounding_margin(n, dtype)).

    W (m × n) is the current matrix; U, V, the tail and the defect η come from `reference`. The
    exact argument (`schur_upper_bound`) needs exactly orthonormal bases containing the
    reference's; the computed s, e and r differ from those of Û, V̂ by at most
    δ = (6η + 4γ_N√k)·‖W‖_F (η enters each product UᵀWV, WV − UB once or twice; γ_N√k‖W‖_F
    bounds the rounding of each float64 product with inner size N), and σ_up has slope ≤ 1 in
    each argument. The coupling is √λ_max of the k × k Gram matrices, each raised by the Gram
    product's own γ_N‖R‖²_F. r = tail + ‖W − W_ref‖_F·(1 + γ_N) bounds ‖U⊥ᵀWV⊥‖₂ since
    ‖U⊥ᵀ(W − W_ref)V⊥‖₂ ≤ ‖W − W_ref‖₂ ≤ ‖W − W_ref‖_F — with W_ref the matrix the reference
    was *computed from*, held as a copy (a view of W would follow W's in-place updates and make
    this term 0, which is how the bound once failed by 1.8e-4). The final factor covers the rounding
    of W/σ̂ to `dtype` (default W's), as in `certified_spectral_norm`, and 8ε64 that of
    σ_up's own few operations. Cost O(mnk): no decomposition larger than k × k.
    """
    dtype = weight.dtype if dtype is None else dtype
    w64 = _as_float64_matrix(weight)
    U, V = reference.left, reference.right
    m, n = w64.shape
    k = U.shape[1]
    inner = max(m, n)
    X = w64 @ V
    B = U.T @ X
    ritz = torch.linalg.matrix_norm(B, ord=2)
    with torch.no_grad():
        w = w64.detach()
        residuals = [X.detach() - U @ B.detach()]
        if not reference.symmetric:
            residuals.append(w.T @ U - V @ B.detach().T)
        coupling_sq = 0.0
        for R in residuals:
            gram_error = product_error(R.shape[0]) * float(R.square().sum())
            coupling_sq = max(coupling_sq, float(torch.linalg.eigvalsh(R.T @ R).max())
                              + 2 * gram_error)
        coupling = math.sqrt(max(coupling_sq, 0.0))
        change = float(torch.linalg.matrix_norm(w - reference.weight))
        tail = reference.tail + change * (1.0 + product_error(inner))
        fro = float(torch.linalg.matrix_norm(w))
        slack = (6.0 * reference.defect + 4.0 * product_error(inner) * math.sqrt(k)) * fro
        upper = schur_upper_bound(float(ritz) + slack, coupling + slack, tail + slack)
        # 8ε64 covers the few float64 operations of σ_up itself.
        upper *= (1.0 + 8.0 * FLOAT64_EPS) * (1.0 + rounding_margin(min(m, n), dtype))
    return SubspaceEstimate(ritz, coupling, tail, upper)


class WarmSpectralBound:
    """What the warm-started bounds share: a subspace rank and tolerance (validated), the
    counters `calls` and `refreshes` (evaluations that needed an eigendecomposition)."""

    def __init__(self, rank: int = DEFAULT_RANK, tolerance: float = DEFAULT_TOLERANCE) -> None:
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ValueError(f"rank must be a positive integer, got {rank!r}")
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not (
                math.isfinite(tolerance) and tolerance > 0):
            raise ValueError(f"tolerance must be a positive finite number, got {tolerance!r}")
        self.rank = rank
        self.tolerance = float(tolerance)
        self.refreshes = 0
        self.calls = 0

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(rank={self.rank}, tolerance={self.tolerance:g}, "
                f"calls={self.calls}, refreshes={self.refreshes})")

    def reset(self) -> None:
        """Forget the counters (subclasses also forget their warm start)."""
        self.refreshes, self.calls = 0, 0

    def __call__(self, weight: Tensor, *, symmetric: bool = False) -> Tensor:
        """σ̂ ≥ σ_max(weight) as a float64 scalar tensor carrying a gradient for weight."""
        w64 = _as_float64_matrix(weight)
        self.calls += 1
        if not all_finite(w64):
            return w64.new_tensor(float("inf"))  # as certified_spectral_norm: NaN propagates
        if not bool(w64.detach().any()):
            return w64.abs().max()  # W = 0: σ_max = 0 exactly, gradient zero
        return self._bound(weight, w64, symmetric)

    def _bound(self, weight: Tensor, w64: Tensor, symmetric: bool) -> Tensor:
        raise NotImplementedError


class SubspaceSpectralNorm(WarmSpectralBound):
    """σ̂(W) ≥ σ_max(W) from a warm-started subspace: exact decomposition only on refresh.

    Each call evaluates `subspace_spectral_bound` against the stored reference and refreshes
    the reference (`subspace_reference`, one float64 eigh/SVD) when there is none, when W's
    shape, device or symmetry differs from it, or when the certified tightness
    σ̂/s − 1 exceeds `tolerance`; so after every call s ≤ σ_max(W) ≤ σ̂ ≤ (1 + tolerance)·s,
    whatever the reference (it only decides how tight the bound is before a refresh).

    The returned value is σ̂ with the gradient of the Ritz value s (σ̂ = s + (σ̂ − s).detach()):
    ∂s/∂W = u_s v_sᵀ for the top singular pair of UᵀWV lifted by U, V, which approaches
    ∂σ_max/∂W = u vᵀ as the subspace does. So W ↦ γW/σ̂ is a slightly different
    parametrization from the exact one — its value within the factor 1 + tolerance, its
    gradient that of s — and the exact method stays the default of every model.

    Not an nn.Module and holds no parameters: the reference is a warm start, not model state,
    and stays out of state_dict; after `.to(device)` or a state_dict load the next call
    refreshes or loosens, never errs. `refreshes` and `calls` count what happened.
    """

    def __init__(self, rank: int = DEFAULT_RANK, tolerance: float = DEFAULT_TOLERANCE) -> None:
        super().__init__(rank, tolerance)
        self.reference: SubspaceReference | None = None
        self.last: SubspaceEstimate | None = None

    def reset(self) -> None:
        """Forget the reference (the next call refreshes) and the counters."""
        super().reset()
        self.reference, self.last = None, None

    def _bound(self, weight: Tensor, w64: Tensor, symmetric: bool) -> Tensor:
        """σ̂ ≥ σ_max(weight), σ̂ ≤ (1 + tolerance)·σ_max."""
        estimate = None
        if self.reference is not None and self.reference.matches(w64, symmetric):
            estimate = subspace_spectral_bound(w64, self.reference, weight.dtype)
            if not estimate.tightness <= self.tolerance:
                estimate = None
        if estimate is None:
            self.reference = subspace_reference(w64, self.rank, symmetric=symmetric)
            self.refreshes += 1
            estimate = subspace_spectral_bound(w64, self.reference, weight.dtype)
        self.last = replace(estimate, ritz=estimate.ritz.detach())  # no graph: deepcopy-safe
        return estimate.ritz + (estimate.upper - estimate.ritz.detach())


# -- the Cholesky certificate ------------------------------------------------------------------
def cholesky_certified_below(matrix: Tensor, shift: float, *, negated: bool = False
                             ) -> float | None:
    """A certified t with λ_max(matrix) ≤ t, t ≈ shift, from one Cholesky of shift·I − matrix;
    None when that factorization fails (λ_max may exceed the shift). `matrix` symmetric float64;
    `negated`: certify −matrix instead (shift·I + matrix, the same numbers as passing −matrix).

    Claim. Let M = fl(shift·I − A) (only its diagonal is rounded: M = shift·I − A + D,
    |D_ii| ≤ ε|M_ii|). If floating-point Cholesky of M runs to completion, with R̂ᵀR̂ = M + ΔM,
    |ΔM| ≤ γ_{N+1}|R̂ᵀ||R̂| (Higham, *Accuracy and Stability*, Thm 10.3; γ_j = jε/(1 − jε)), then
    ‖ΔM‖₂ ≤ γ_{N+1}‖R̂‖²_F and ‖R̂‖²_F = Σ_i (R̂ᵀR̂)_ii ≤ tr(M)/(1 − γ_{N+1}) (each diagonal entry
    of ΔM is at most γ_{N+1} times that of R̂ᵀR̂). R̂ᵀR̂ is positive semi-definite, so
    λ_min(M) ≥ −‖ΔM‖₂ and λ_max(A) ≤ shift + max|D_ii| + γ_{N+1}/(1 − γ_{N+1})·tr(M). Blocked
    LAPACK factorizations satisfy the same bound with a larger constant; γ_{2N+2} is used.   ∎
    """
    n = matrix.shape[0]
    shifted = matrix.clone() if negated else -matrix
    shifted.diagonal().add_(shift)  # shift·I ∓ matrix, without building I (same numbers)
    # The upper factor R̂ of the row-major matrix: LAPACK factors it in place, no transposed copy.
    _, info = torch.linalg.cholesky_ex(shifted, upper=True)
    if int(info) != 0:
        return None
    diagonal = shifted.diagonal()
    if not bool((diagonal > 0).all()):
        return None
    trace = float(diagonal.sum())
    gamma = product_error(2 * n + 2) / (1.0 - product_error(2 * n + 2))
    bound = shift + FLOAT64_EPS * float(diagonal.max()) + gamma * trace
    return bound * (1.0 + 4.0 * FLOAT64_EPS)  # the few operations of `bound` itself


class CholeskySpectralNorm(WarmSpectralBound):
    """σ̂(W) ≥ σ_max(W) certified by Cholesky factorizations, O(n³/3) with no eigensolver on
    most calls: the training default of `variants.build` (`sn_method="cholesky"`).

    Each call takes the Ritz value s ≤ σ_max(W) of a warm k-dimensional subspace S (the top of
    SᵀAS, A = W symmetric, or σ_max(WS) for a right subspace otherwise) and certifies the
    candidate t = s·(1 + tolerance):
    symmetric, λ_max(±A) ≤ t' by `cholesky_certified_below` for both signs; otherwise
    σ_max(W)² ≤ λ_max(fl(WᵀW)) + γ_N‖W‖²_F with the Gram matrix certified the same way. So
    σ_max ≤ σ̂ ≤ (1 + tolerance)·s·(1 + O(N²ε)) ≤ (1 + tolerance + O(N²ε))·σ_max: the
    certificate rests on the factorization's error bound alone, never on the subspace, which only
    decides whether the candidate is high enough. When a factorization fails (s lagged the
    top of the spectrum by more than the tolerance) S takes one block power step
    (S ← orth(AS)) and the new candidate is tried; if that fails too, one float64
    eigendecomposition restarts S at the exact top-k (`refreshes` counts them); should even
    that fail, `certified_spectral_norm` gives σ̂. S moves only then, so matrices close to
    each other (a model and its float64 copy) get σ̂ as close as the matrices.

    The value returned is σ̂ with the gradient of s, as `SubspaceSpectralNorm`'s. Holds no
    parameters; the subspace is a warm start outside state_dict.
    """

    def __init__(self, rank: int = DEFAULT_RANK, tolerance: float = DEFAULT_TOLERANCE) -> None:
        super().__init__(rank, tolerance)
        self.basis: Tensor | None = None
        # The last matrix certified, the basis its Ritz value came from and σ̂: the same W
        # evaluated again gets the same σ̂ (a function of W, not of how often it was asked).
        self.last: tuple[Tensor, Tensor, float, tuple[bool, torch.dtype]] | None = None

    def reset(self) -> None:
        """Forget the subspace (the next call restarts it) and the counters."""
        super().reset()
        self.basis, self.last = None, None

    def _ritz(self, w64: Tensor, symmetric: bool, basis: Tensor | None = None) -> Tensor:
        """s ≤ σ_max(W) from the basis (differentiable in W): max|λ(SᵀWS)| or σ_max(WS)."""
        S = self.basis if basis is None else basis
        assert S is not None
        X = w64 @ S
        if symmetric:
            H = S.T @ X
            return torch.linalg.eigvalsh(0.5 * (H + H.T)).abs().max()
        return torch.linalg.matrix_norm(X, ord=2)

    def _step(self, w64: Tensor, symmetric: bool) -> None:
        """One block power step of the basis: S ← orth(WS), or orth(WᵀWS) when not symmetric."""
        assert self.basis is not None
        w = w64.detach()
        step = w @ self.basis if symmetric else w.T @ (w @ self.basis)
        if bool(step.any()) and all_finite(step):
            self.basis = torch.linalg.qr(step).Q

    def _restart(self, w64: Tensor, symmetric: bool) -> None:
        w = w64.detach()
        k = max(1, min(self.rank, *w.shape))
        if symmetric:
            lam, Q = torch.linalg.eigh(w)
            self.basis = Q[:, lam.abs().argsort(descending=True)[:k]].contiguous()
        else:
            _, _, Vh = torch.linalg.svd(w, full_matrices=False)
            self.basis = Vh[:k].T.contiguous()
        self.refreshes += 1

    def _certify(self, w64: Tensor, candidate: float, symmetric: bool) -> float | None:
        w = w64.detach()
        if symmetric:
            above = cholesky_certified_below(w, candidate)
            if above is None:
                return None
            below = cholesky_certified_below(w, candidate, negated=True)
            return None if below is None else max(above, below)
        gram, error = smaller_gram(w)
        top = cholesky_certified_below(gram, candidate * candidate)
        if top is None:
            return None
        return math.sqrt(top + error) * (1.0 + 4.0 * FLOAT64_EPS)

    def _bound(self, weight: Tensor, w64: Tensor, symmetric: bool) -> Tensor:
        """σ̂ ≥ σ_max(weight), σ̂ ≲ (1 + tolerance)·σ_max."""
        if self.last is not None:
            # The key holds the weight's dtype: σ̂ carries that dtype's rounding margin.
            seen, seen_basis, value, key = self.last
            if key == (symmetric, weight.dtype) and seen.device == w64.device and \
                    torch.equal(seen, w64.detach()):
                ritz = self._ritz(w64, symmetric, seen_basis)
                return ritz + (value - ritz.detach())
        margin = 1.0 + rounding_margin(min(w64.shape), weight.dtype)
        k = max(1, min(self.rank, *w64.shape))
        warm = (self.basis is not None and self.basis.shape == (w64.shape[1], k)
                and self.basis.device == w64.device)
        # The basis as it is (so nearby matrices get nearby σ̂), then one power step, then the
        # exact top-k; each stage only when the one before could not certify its candidate.
        for stage in ("as is", "stepped", "restarted") if warm else ("restarted",):
            if stage == "stepped":
                self._step(w64, symmetric)
            elif stage == "restarted":
                self._restart(w64, symmetric)
            basis = self.basis
            assert basis is not None
            ritz = self._ritz(w64, symmetric)
            value = float(ritz.detach())
            certified = (self._certify(w64, value * (1.0 + self.tolerance), symmetric)
                         if value > 0 else None)
            if certified is not None:
                self.last = (w64.detach().clone(), basis, certified * margin,
                             (symmetric, weight.dtype))
                return ritz + (certified * margin - ritz.detach())
        exact = certified_spectral_norm(weight, symmetric=symmetric).detach()
        assert basis is not None
        self.last = (w64.detach().clone(), basis, float(exact), (symmetric, weight.dtype))
        return ritz + (exact - ritz.detach())


WARM_BOUNDS: dict[str, type[WarmSpectralBound]] = {
    "subspace": SubspaceSpectralNorm, "cholesky": CholeskySpectralNorm}
"""The warm-started bounds by their `sn_method` name."""
