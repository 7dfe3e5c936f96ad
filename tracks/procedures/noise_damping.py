"""Track 6's figure: ‖δ_k‖ for an SN model's perturbation and for the no-SN control's."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from properties.contraction_rate import Equilibrium, typical_sn_model
from properties.noise_damping import FLOOR, Perturbations, perturbations_of

from ..plots import plt, save_figure


def plot_damping(path, decaying: Perturbations, amplifying: Equilibrium,
                 amplified: np.ndarray) -> None:
    """‖δ_k‖ vs k: the SN model's δ₀ = 1e-6 along J*'s top direction, and the no-SN model's."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    eq = decaying.eq
    errors = decaying.errors[:, 0]
    # up to where even the loosest bound, L^k‖δ₀‖, reaches float64 round-off
    shown = min(errors.size, 2 + int(np.log(1e-16 / errors[0]) / np.log(eq.lipschitz_scipy)))
    k = np.arange(shown)
    ax = axes[0]
    ax.semilogy(k, errors[:shown], "k.", ms=3, label=r"measured $\|\delta_k\|$")
    ax.semilogy(k, errors[0] * eq.lipschitz_scipy ** k, "C3--", label=f"$L^k$, L = "
                f"{eq.lipschitz_scipy:.3f}")
    ax.semilogy(k, errors[0] * eq.norm ** k, "C1-", label=rf"$\|J^*\|_2^k$ = {eq.norm:.3f}$^k$")
    ax.semilogy(k, errors[0] * eq.rho ** k, "C0:", label=rf"$\rho(J^*)^k$ = {eq.rho:.3f}$^k$")
    ax.axhline(FLOOR, color="0.6", lw=0.8, label="lowest bound tested")
    ax.set_ylim(1e-18, errors[0] * 10)
    ax.set_title("SN model: a 1e-6 perturbation is damped", fontsize=9)
    ax.set_xlabel("k")
    ax.legend(fontsize=7)
    ax = axes[1]
    k = np.arange(amplified.size)
    ax.semilogy(k, amplified, "k.", ms=3, label=r"measured $\|\delta_k\|$")
    ax.semilogy(k, amplified[0] * amplifying.rho ** k, "C3--",
                label=rf"$\rho(J^*)^k$ = {amplifying.rho:.2f}$^k$")
    ax.axhline(amplified[0], color="0.6", lw=0.8, label=r"$\|\delta_0\|$ (damping bound)")
    ax.set_ylim(amplified[0] / 10, amplified.max() * 10)
    ax.set_title("control, no SN: the same perturbation is amplified until tanh saturates",
                 fontsize=9)
    ax.set_xlabel("k")
    ax.legend(fontsize=7)
    save_figure(fig, path, dpi=120)


def damping_figure(path: Path, seed: int, amplifying: Equilibrium, amplified: np.ndarray) -> None:
    """The figure: a typical SN model (gaussian W, 10 units) beside the control's model."""
    example = typical_sn_model(seed)
    plot_damping(path, perturbations_of(example, seed), amplifying, amplified)
