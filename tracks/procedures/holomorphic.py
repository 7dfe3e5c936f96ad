"""Track 13's figure and account: every N (and the real-valued control) on one model over
1e-4 <= |β| <= 1, and the notes that read the measured slopes, windows and claim."""

from __future__ import annotations

import numpy as np

from properties import ModelSpec
from properties.holomorphic import (
    CLAIM_BETA,
    CLAIM_POINTS,
    CONTROL_ORDER,
    FLOOR_MARGIN,
    ORDERS,
    WINDOW_BOTTOM,
    HolomorphicProblem,
    control_law,
    error_laws,
)
from tracks.plots import line_plot

PLOT_ORDERS = (1, 2, 3, 4, 8)
PLOT_GRID = tuple(10 ** (k / 2) for k in range(-8, 1))  # 1e-4 … 1, 2 per decade


def plot(ctx, spec: ModelSpec) -> dict[str, float]:
    """Every N (and the real-valued control) on one model over 1e-4 ≤ |β| ≤ 1, slopes fitted in
    each N's window; returns those slopes."""
    problem = HolomorphicProblem(spec)
    laws = error_laws(problem, PLOT_ORDERS)
    control = control_law(problem, laws)
    series, styles, slopes = {}, {}, {}
    for n, law in laws.items():
        slopes[f"N={n}"] = law.slope
        label = f"holomorphic N={n} (slope {law.slope:.2f})"
        series[label] = (PLOT_GRID, [law.seen[b] if b in law.seen
                                     else problem.holomorphic_error(b, n) for b in PLOT_GRID])
        styles[label] = "o-"
    slopes["control"] = control.slope
    label = (f"real cos-modulated nudges, N={CONTROL_ORDER} (= symmetric EP, hides N=2; slope "
             f"{control.slope:.2f})")
    series[label] = (PLOT_GRID, [problem.real_circle_error(b, CONTROL_ORDER) for b in PLOT_GRID])
    styles[label] = "k^--"
    edge = "window's lower edge max(1e-9, 1e-11/|beta|)"
    series[edge] = (PLOT_GRID, [max(WINDOW_BOTTOM, FLOOR_MARGIN / b) for b in PLOT_GRID])
    styles[edge] = "k:"
    line_plot(ctx.artifact_path("error_vs_beta.png"), series,
              title=f"holomorphic EP vs implicit gradient, n_hidden={spec.n_hidden}",
              xlabel="|beta|", ylabel="relative error (worst of W, U, b)", logx=True,
              styles=styles)
    return slopes


def account(ctx, drawn: str, seen: list[dict], windows: dict, typical: ModelSpec,
            plotted: dict[str, float], share: float, errors: list[float], claim_limit: float,
            claim_worst: float, control_slopes: list[float]) -> None:
    """The notes: slopes and windows over the draws, the plotted model, the claim, the control."""
    ctx.note(f"{drawn}: fitted slopes " + "; ".join(
        f"N={k} {min(v):.3f}..{max(v):.3f}" for k, v in
        ((k, [m["slopes"][k] for m in seen]) for k in ORDERS)))
    ranges = {k: [w for w in windows[f"N={k}"] if w] for k in ORDERS if any(windows[f"N={k}"])}
    ctx.note("windows in |beta| (fixed on the error axis, so they move with each model's "
             "radius): " + "; ".join(f"N={k} {min(w[0] for w in v):.1e}..{max(w[1] for w in v):.1e}"
                                    for k, v in ranges.items()))
    ctx.note(f"plotted model {typical!r}: slopes " + ", ".join(
        f"{k} {v:.2f}" for k, v in plotted.items()))
    meeting = f"{share:.0%} of draws" if ctx.model is None else ("met" if share else "missed")
    ctx.note(f"N={CLAIM_POINTS} at |beta|={CLAIM_BETA:g}: {meeting} <= "
             f"{claim_limit:g} (median {np.median(errors):.1e}, worst {claim_worst:.1e}): the "
             "error is (|beta|/R)^8 with a model-dependent radius R")
    where = "" if ctx.model is None else ", on the suite's models"
    ctx.note(f"control (real nudges |beta|cos(2 pi k/{CONTROL_ORDER}){where}): slopes "
             + ", ".join(f"{s:.2f}" for s in control_slopes) + " -- O(beta^2), not beta^4")
