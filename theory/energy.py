"""The Hopfield-type energy of a symmetric recurrent layer, in NumPy.

E(h) = Σ_i G(h_i) − ½ hᵀWh − hᵀa,  G′ = φ⁻¹,  ∇E(h) = φ⁻¹(h) − ½(W + Wᵀ)h − a.

Theorem (descent under synchronous updates; cf. Marcus & Westervelt 1989): for symmetric W and
h⁺ = φ(Wh + a), convexity of G with G″ ≥ 1/s (s = sup φ′) gives

    E(h⁺) ≤ E(h) − ½ Δᵀ(W + I/s)Δ,  Δ = h⁺ − h,

so E decreases strictly along the trajectory whenever λ_min(W) > −1/s — in particular whenever
‖W‖₂ < 1/s, i.e. whenever the Lipschitz certificate L = ‖W‖₂·s is below 1.
"""

from __future__ import annotations

import numpy as np

from .activations import nonlinearity

Array = np.ndarray


def energy(h: Array, weight: Array, drive: Array, activation: str) -> float:
    """E(h) for one state h (n,). For asymmetric W only ½(W + Wᵀ) enters hᵀWh."""
    h = np.asarray(h, dtype=np.float64)
    G = nonlinearity(activation).primitive_of_inverse(h).sum()
    return float(G - 0.5 * h @ (weight @ h) - h @ drive)


def energy_gradient(h: Array, weight: Array, drive: Array, activation: str) -> Array:
    """∇E(h) = φ⁻¹(h) − ½(W + Wᵀ)h − a."""
    h = np.asarray(h, dtype=np.float64)
    sym = 0.5 * (weight + weight.T)
    return nonlinearity(activation).inverse(h) - sym @ h - drive


def guaranteed_decrease(delta: Array, weight: Array, activation: str) -> float:
    """½ Δᵀ(W + I/s)Δ: the decrease the theorem guarantees for the step Δ = h⁺ − h."""
    s = nonlinearity(activation).sup_slope
    delta = np.asarray(delta, dtype=np.float64)
    return float(0.5 * delta @ (weight @ delta) + 0.5 * delta @ delta / s)
