"""Track 11's figure and closing account: error vs β on the stated grid for a typical model and
the model with the worst stated-range slope, both estimators, and the share of drawn models
meeting each stated figure."""

from __future__ import annotations

import numpy as np

from properties import ModelSpec
from properties.scaling import ORDERS, STATED_BETAS, ScalingProblem
from tracks.plots import line_plot


def scaling_figure(ctx, worst: ScalingProblem, stated: dict[str, np.ndarray],
                   tolerance: dict[str, float]) -> None:
    """`beta-scaling.png`, then the note on the stated figures (`tolerance`: |slope − order|)."""
    typical = ScalingProblem(ModelSpec(n_in=3, n_hidden=8, weight_scale=1.0, structure="gaussian",
                                       seed=ctx.seed, gamma=0.95, drive_scale=1.0))
    series, styles = {}, {}
    worst_label = "worst drawn" if ctx.model is None else "your model"
    for label, p in (("typical", typical), (worst_label, worst)):
        for estimator, mark in (("one_sided", "o"), ("symmetric", "s")):
            name = (f"{label}, {estimator.replace('_', '-')} "
                    f"(slope {p.slope(STATED_BETAS, estimator):.2f})")
            series[name] = (STATED_BETAS, p.errors(STATED_BETAS, estimator))
            styles[name] = mark + ("-" if label == "typical" else "--")
    line_plot(ctx.artifact_path("beta-scaling.png"), series,
              title="EP relative error (W, U, b) vs beta", xlabel="beta",
              ylabel="||g_EP - g*|| / ||g*||", logx=True, styles=styles)
    shares = {e: 100 * np.mean(np.abs(stated[e] - ORDERS[e]) <= tolerance[e]) for e in ORDERS}
    if ctx.model is None:
        ctx.note(f"over [1e-3, 0.3]: {shares['one_sided']:.0f}% of drawn models have one-sided "
                 f"slope 1 +- 0.1, {shares['symmetric']:.0f}% symmetric 2 +- 0.15")
    else:
        ctx.note(f"over [1e-3, 0.3]: {ctx.model!r} has one-sided slope "
                 f"{stated['one_sided'][0]:.3f} (stated 1 +- 0.1), symmetric "
                 f"{stated['symmetric'][0]:.3f} (stated 2 +- 0.15)")

