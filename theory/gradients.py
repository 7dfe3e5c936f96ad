"""The implicit-differentiation gradient of the loss at equilibrium, by scipy in float64.

For h* = T(h*) = φ(W_eff h* + Ux + b) and ℓ = CE(V h* + c, y), the implicit function theorem
gives, per sample, with a* = W_eff h* + Ux + b, D = diag φ′(a*) and J* = D W_eff:

    (I − J*)ᵀ λ = ∂ℓ/∂h = Vᵀ(softmax(V h* + c) − onehot(y)),     g = D λ,
    ∂ℓ/∂W_eff = g h*ᵀ,   ∂ℓ/∂U = g xᵀ,   ∂ℓ/∂b = g,   ∂ℓ/∂V = (p − y) h*ᵀ,   ∂ℓ/∂c = p − y,

averaged over the batch (ℒ = mean ℓ). The raw W is reached by the chain rule of its
parametrization, worked out here by hand: with S = ½(W + Wᵀ) (or W) and, under spectral
normalization, W_eff = r S with r = γ/(c σ(S)) a constant multiple of 1/σ(S),

    ∂ℒ/∂S = r [G − (⟨G, W_eff⟩ / σ(W_eff)) u vᵀ],   (u, v) the top singular pair of W_eff,

because dσ(S) = uᵀ dS v for a simple top singular value; then ∂ℒ/∂W = ½(∂ℒ/∂S + ∂ℒ/∂Sᵀ) when
symmetrized. r is read off as σ(W_eff)/σ(S). Nothing here calls the code under test.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
from scipy.special import softmax

from .activations import nonlinearity
from .fixed_point import find_fixed_point
from .network import Network, as_array

Array = np.ndarray
ArrayLike = Any  # a NumPy array, or a torch tensor (read through .detach(), never imported)


def one_hot(y: Array, n_out: int) -> Array:
    y = np.asarray(y)
    return np.eye(n_out)[y.astype(int)]


def read_batch(net: Network, x: object, y: object) -> tuple[Array, Array]:
    """x as (B, n_in) float64 and y as (B, n_out) one-hot, from arrays or tensors; ValueError
    naming the problem on a wrong shape, non-finite x, or labels that are not integers in
    [0, n_out)."""
    x = np.atleast_2d(as_array(x))
    n_in = net.U.shape[1]
    if x.ndim != 2 or x.shape[1] != n_in:
        raise ValueError(f"x must have shape (batch, {n_in}), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("x contains non-finite values (NaN or ±inf)")
    labels = np.atleast_1d(as_array(y, dtype=None))
    n_out = net.V.shape[0]
    if labels.shape != (x.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"y must be integer labels of shape ({x.shape[0]},), got {labels.dtype} {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= n_out):
        raise ValueError(
            f"labels must lie in [0, {n_out}), got values in [{labels.min()}, {labels.max()}]"
        )
    return x, one_hot(labels, n_out)


def equilibria(net: Network, x: Array, *, tol: float = 1e-14) -> Array:
    """h* for each row of x by Newton (`find_fixed_point`): (B, n). ValueError if one fails."""
    drive = net.drive(x)
    states = []
    for row, a in enumerate(drive):
        found = find_fixed_point(net.weight, a, net.activation, tol=tol)
        if not found.converged:
            raise ValueError(
                f"no fixed point found for sample {row}: residual {found.residual:.3e}"
            )
        states.append(found.h)
    return np.array(states)


def pull_back_to_raw(net: Network, grad_weight: Array) -> Array:
    """∂ℒ/∂W from ∂ℒ/∂W_eff through symmetrization and spectral normalization (module doc)."""
    G = np.asarray(grad_weight, dtype=np.float64)
    S = 0.5 * (net.W + net.W.T) if net.symmetric else np.asarray(net.W, dtype=np.float64)
    if net.spectral_norm:
        u_, s_, vt_ = scipy.linalg.svd(net.weight)
        sigma_eff, sigma_raw = s_[0], scipy.linalg.svdvals(S)[0]
        r = sigma_eff / sigma_raw
        gap = np.linalg.norm(net.weight - r * S) / np.linalg.norm(net.weight)
        if gap > 1e-10:
            raise ValueError(
                f"W_eff is not a multiple of the (symmetrized) W: relative gap {gap:.2e}"
            )
        G = r * (G - (np.sum(G * net.weight) / sigma_eff) * np.outer(u_[:, 0], vt_[0]))
    return 0.5 * (G + G.T) if net.symmetric else G


def implicit_gradients(
    net: Network, x: ArrayLike, y: ArrayLike, *, tol: float = 1e-14
) -> dict[str, Array]:
    """∇_θ ℒ for θ ∈ {W (raw), U, b, V, c} by implicit differentiation at h* (module doc).

    x: (B, n_in) array or tensor, y: (B,) integer labels. Keys match `LoopedMLP.named_parameters()`.
    """
    x, target = read_batch(net, x, y)
    act = nonlinearity(net.activation)
    h_star = equilibria(net, x, tol=tol)
    drive = net.drive(x)
    n = net.weight.shape[0]
    grads = {k: np.zeros_like(v) for k, v in
             (("W", net.weight), ("U", net.U), ("b", net.b), ("V", net.V), ("c", net.c))}
    for h, a, xb, t in zip(h_star, drive, x, target):
        slope = act.slope(net.weight @ h + a)
        jac = slope[:, None] * net.weight
        error = softmax(net.V @ h + net.c) - t
        lam = scipy.linalg.solve((np.eye(n) - jac).T, net.V.T @ error)
        g = slope * lam
        grads["W"] += np.outer(g, h)
        grads["U"] += np.outer(g, xb)
        grads["b"] += g
        grads["V"] += np.outer(error, h)
        grads["c"] += error
    grads = {k: v / len(x) for k, v in grads.items()}
    grads["W"] = pull_back_to_raw(net, grads["W"])
    return grads


def loss(net: Network, x: ArrayLike, y: ArrayLike) -> float:
    """ℒ = mean CE(V h* + c, y) at the Newton equilibria."""
    x, target = read_batch(net, x, y)
    logits = equilibria(net, x) @ net.V.T + net.c
    logp = logits - scipy.special.logsumexp(logits, axis=1, keepdims=True)
    return float(-np.mean(np.sum(target * logp, axis=1)))
