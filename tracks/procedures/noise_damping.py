"""Track 6's figure: ‖δ_k‖ for an SN model's perturbation and for the no-SN control's."""

from __future__ import annotations

import numpy as np

from properties.contraction_rate import Equilibrium, typical_sn_model
from properties.noise_damping import FLOOR, Perturbations, perturbations_of

from ..plots import Figure, Level, Line, Panel


def damping_panels(decaying: Perturbations, amplifying: Equilibrium,
                   amplified: np.ndarray) -> list[Panel]:
    """‖δ_k‖ vs k: the SN model's δ₀ = 1e-6 along J*'s top direction, and the no-SN model's."""
    eq = decaying.eq
    errors = decaying.errors[:, 0]
    # up to where even the loosest bound, L^k‖δ₀‖, reaches float64 round-off
    shown = min(errors.size, 2 + int(np.log(1e-16 / errors[0]) / np.log(eq.lipschitz_scipy)))
    k = np.arange(shown)
    damped = Panel([
        Line(r"measured $\|\delta_k\|$", k, errors[:shown], "k.", marker_size=3),
        Line(f"$L^k$, L = {eq.lipschitz_scipy:.3f}", k, errors[0] * eq.lipschitz_scipy ** k,
             "C3--"),
        Line(rf"$\|J^*\|_2^k$ = {eq.norm:.3f}$^k$", k, errors[0] * eq.norm ** k, "C1-"),
        Line(rf"$\rho(J^*)^k$ = {eq.rho:.3f}$^k$", k, errors[0] * eq.rho ** k, "C0:"),
        Level(FLOOR, "lowest bound tested", style="-"),
    ], title="SN model: a 1e-6 perturbation is damped", title_size=9, xlabel="k", logy=True,
        ylim=(1e-18, errors[0] * 10))
    k = np.arange(amplified.size)
    grown = Panel([
        Line(r"measured $\|\delta_k\|$", k, amplified, "k.", marker_size=3),
        Line(rf"$\rho(J^*)^k$ = {amplifying.rho:.2f}$^k$", k, amplified[0] * amplifying.rho ** k,
             "C3--"),
        Level(amplified[0], r"$\|\delta_0\|$ (damping bound)", style="-"),
    ], title="control, no SN: the same perturbation is amplified until tanh saturates",
        title_size=9, xlabel="k", logy=True, ylim=(amplified[0] / 10, amplified.max() * 10))
    return [damped, grown]


def damping_figure(seed: int, amplifying: Equilibrium, amplified: np.ndarray) -> Figure:
    """The figure: a typical SN model (gaussian W, 10 units) beside the control's model."""
    example = typical_sn_model(seed)
    return Figure(damping_panels(perturbations_of(example, seed), amplifying, amplified),
                  size=(11, 4), dpi=120)
