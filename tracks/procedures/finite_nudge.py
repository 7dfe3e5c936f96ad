"""Track 14's figure and closing account: |L_β − L| against β for both estimators on a typical
model, and the notes on L_β − L at β = 0.5, its slope, and the readout's difference."""

from __future__ import annotations

import numpy as np

from properties import ModelSpec, as_numpy, fitted_slope
from properties.finite_nudge import BATCH, BETA, ESTIMATORS, in_premise, surrogate_value
from theory.gradients import loss as true_loss
from tracks.plots import line_plot

PLOT_BETAS = tuple(float(b) for b in np.geomspace(1e-3, 0.5, 10))


def surrogate_account(ctx, seen: list[dict], closest: float) -> None:
    """`surrogate_gap.png` on the typical model of the run's seed, then the notes over `seen`
    (`closest`: the control's closest relative error to the true gradient)."""
    typical = ModelSpec(n_in=3, n_hidden=8, weight_scale=1.0, structure="gaussian",
                        seed=ctx.seed, gamma=0.95, drive_scale=1.0)
    model, x, y = typical.build(), typical.inputs(BATCH), typical.labels(BATCH)
    L = true_loss(as_numpy(model), x, y)
    series = {}
    for estimator in ESTIMATORS:
        gaps = [abs(surrogate_value(model, x, y, estimator, b) - L) for b in PLOT_BETAS]
        small = [b for b in PLOT_BETAS if b <= 1e-2]
        slope = fitted_slope(small, gaps[:len(small)])
        series[f"{estimator} (slope {slope:.2f} for beta <= 1e-2)"] = (PLOT_BETAS, gaps)
    line_plot(ctx.artifact_path("surrogate_gap.png"), series,
              title="|L_beta - L|: the finite-nudge surrogate vs the loss",
              xlabel="beta", ylabel="|L_beta - L|", logx=True,
              styles={k: "o-" for k in series})

    for estimator in ESTIMATORS:
        scored = [m for m in seen if in_premise(m, estimator)]
        gaps = [m[estimator]["gap_at_beta"] for m in scored]
        readout = [max(m[estimator]["readout_difference"].values()) for m in scored]
        drawn = f"over {len(seen)} draws" if ctx.model is None else f"on {ctx.model!r}"
        ctx.note(f"{estimator}: L_beta - L at beta = {BETA:g} {drawn} "
                 f"{min(gaps):+.3e}..{max(gaps):+.3e} (median {np.median(gaps):+.3e}); "
                 f"slope of |L_beta - L| vs beta "
                 f"{min(m[estimator]['slope'] for m in scored):.2f}.."
                 f"{max(m[estimator]['slope'] for m in scored):.2f}; readout V, c: surrogate "
                 f"gradient (at h_beta) differs from EP's (at h_0) by {np.median(readout):.2e} "
                 "relative (median) -- reported, not checked")
    where = "" if ctx.model is None else " of the suite's models"
    ctx.note(f"EP at beta = {BETA:g} vs the true gradient: relative error "
             f"{closest:.3f} at the closest draw{where} -- finite-beta EP descends L_beta, not L")

