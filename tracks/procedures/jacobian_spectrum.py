"""Track 5's figure: log ‖h_k − h*‖ along plain iteration with the rates ρ(J*) and ρ(W_eff)."""

from __future__ import annotations

import numpy as np

from properties.contraction_rate import (
    Equilibrium,
    RateFit,
    convergence_rate,
    equilibrium_of,
    typical_sn_model,
)
from properties.jacobian_spectrum import gaussian_start

from ..plots import Figure, Line, Panel, Span


def rate_panel(title: str, eq: Equilibrium, fit: RateFit) -> Panel:
    """log ‖h_k − h*‖ vs k with the slopes ρ(J*)^k (and the wrong ρ(W_eff)^k) through the fit."""
    log10 = fit.log_errors / np.log(10)
    k = np.arange(len(log10))
    anchor = log10[fit.first_step]
    slopes = [Line(label, k, anchor + (k - fit.first_step) * np.log10(rate), style)
              for rate, style, label in (
                  (eq.rho, "C0--", rf"$\rho(J^*)^k$, $\rho$ = {eq.rho:.4f}"),
                  (eq.rho_weight, "C3:", rf"wrong $\rho(W)^k$, $\rho$ = {eq.rho_weight:.4f}"))]
    return Panel([
        Line(r"plain iteration $\log_{10}\|h_k - h^*\|$", k[:fit.switch_step + 1],
             log10[:fit.switch_step + 1], "k.", marker_size=3),
        Line("continued, renormalized (stitched)", k[fit.switch_step:],
             log10[fit.switch_step:], "k-", width=1),
        *slopes,
        Span(fit.first_step, fit.last_step, label="fit"),
    ], title=f"{title}: fitted rate {fit.rate:.4f}", title_size=9, xlabel="k",
        ylabel=r"$\log_{10}$ error", ylim=(log10.min() - 5, log10.max() + 5))


def rate_figure(seed: int, control: Equilibrium, control_fit: RateFit) -> Figure:
    """The figure: a typical SN model (gaussian W, 10 units) beside the control's model (the
    typical model's panel left out if its iteration has no rate to fit)."""
    example = typical_sn_model(seed)
    typical = equilibrium_of(example)
    fits = [("SN model (gaussian W, 10 units)", typical,
             convergence_rate(typical, gaussian_start(example, seed))),
            ("control: strongly driven", control, control_fit)]
    panels = [rate_panel(title, eq, fit) for title, eq, fit in fits if fit is not None]
    return Figure(panels, size=(5.5 * len(panels), 4), dpi=120)
