"""Track 5's figure: log ‖h_k − h*‖ along plain iteration with the rates ρ(J*) and ρ(W_eff)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from properties.contraction_rate import (
    Equilibrium,
    RateFit,
    convergence_rate,
    equilibrium_of,
    typical_sn_model,
)
from properties.jacobian_spectrum import gaussian_start

from ..plots import plt, save_figure


def plot_rate(path, panels) -> None:
    """log ‖h_k − h*‖ vs k with the slopes ρ(J*)^k (and the wrong ρ(W_eff)^k) through the fit."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (title, eq, fit) in zip(axes[0], panels):
        log10 = fit.log_errors / np.log(10)
        k = np.arange(len(log10))
        ax.plot(k[:fit.switch_step + 1], log10[:fit.switch_step + 1], "k.", ms=3,
                label=r"plain iteration $\log_{10}\|h_k - h^*\|$")
        ax.plot(k[fit.switch_step:], log10[fit.switch_step:], "k-", lw=1,
                label="continued, renormalized (stitched)")
        anchor = log10[fit.first_step]
        for rate, style, label in ((eq.rho, "C0--", rf"$\rho(J^*)^k$, $\rho$ = {eq.rho:.4f}"),
                                   (eq.rho_weight, "C3:",
                                    rf"wrong $\rho(W)^k$, $\rho$ = {eq.rho_weight:.4f}")):
            ax.plot(k, anchor + (k - fit.first_step) * np.log10(rate), style, label=label)
        ax.axvspan(fit.first_step, fit.last_step, color="0.9", label="fit")
        ax.set_ylim(log10.min() - 5, log10.max() + 5)
        ax.set_xlabel("k")
        ax.set_ylabel(r"$\log_{10}$ error")
        ax.set_title(f"{title}: fitted rate {fit.rate:.4f}", fontsize=9)
        ax.legend(fontsize=7)
    save_figure(fig, path, dpi=120)


def rate_figure(path: Path, seed: int, control: Equilibrium, control_fit: RateFit) -> None:
    """The figure: a typical SN model (gaussian W, 10 units) beside the control's model."""
    example = typical_sn_model(seed)
    typical = equilibrium_of(example)
    plot_rate(path, [("SN model (gaussian W, 10 units)", typical,
                      convergence_rate(typical, gaussian_start(example, seed))),
                     ("control: strongly driven", control, control_fit)])
