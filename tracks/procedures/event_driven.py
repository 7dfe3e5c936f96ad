"""Track 30's figure (the residual against cumulative neuron updates, synchronous vs lazy vs
Gauss–Seidel, on one certified model) and the lines of its account."""

from __future__ import annotations

from typing import Any

import numpy as np

from eqprop_core.event_driven import event_driven_equilibrium
from properties.asynchronous_convergence import MAX_ROUNDS, TARGETS, TOL, outcomes
from properties.strategies import ModelSpec
from tracks.plots import line_plot


def plot(ctx, spec: ModelSpec) -> None:
    """Residual vs cumulative neuron updates for one certified n = 32 model, one input."""
    model, x = spec.build(), spec.inputs(1)
    series = {}
    for label, scheme in (("synchronous", "synchronous"), ("lazy (event-driven)", "lazy"),
                          ("Gauss-Seidel, random order", "asynchronous")):
        _, stats = event_driven_equilibrium(model, x, scheme=scheme, tol=TOL,
                                            max_rounds=MAX_ROUNDS)
        series[label] = (stats.update_trace, stats.residual_trace)
    line_plot(ctx.artifact_path("updates.png"), series,
              title=f"{spec.structure}, n = {spec.n_hidden}: residual vs work",
              xlabel="neuron updates (each = one column of W_eff)",
              ylabel="||T(h) - h||_2")


def search_note(n: int, rows: list[dict[str, Any]]) -> str:
    return (f"{n} drawn SN models rescaled to Perron-weighted L_w in {TARGETS} (max-norm "
            f"certified; {len(rows)} measured), 2 starts each to 1e6 in norm, float64, "
            f"stop at ||T(h)-h||_2 <= {TOL:g}")


def saving_note(saving_lazy: list[float], saving_gs: list[float]) -> str:
    return (f"lazy vs synchronous at equal error: {100 * np.median(saving_lazy):.1f}% of "
            f"neuron updates skipped (median over {len(saving_lazy)} models; range "
            f"{100 * min(saving_lazy):.1f}% to {100 * max(saving_lazy):.1f}%); Gauss-Seidel "
            f"vs synchronous: {100 * np.median(saving_gs):.1f}% fewer (median)")


def scale_note(scale_rows: list[dict[str, Any]]) -> str:
    return "larger SN models, lazy vs synchronous saving: " + ", ".join(
        f"{r['class']} {100 * (r['saving_lazy'] or 0):.0f}%" for r in scale_rows)


def census_note(seen: list[dict[str, Any]], share: dict[str, float]) -> str:
    return (f"{len(seen)} SN models (grid: 5 structures x sym/asym x n in "
            f"{sorted({r['n_hidden'] for r in seen})}, gamma 0.95): max-norm contractions "
            + ", ".join(f"{k}: {100 * v:.0f}%" for k, v in share.items()))


def outcomes_note(sym_uncert: list[dict[str, Any]], asym_uncert: list[dict[str, Any]],
                  asym_counter: ModelSpec | None) -> str:
    return ("non-certified SN models, outcomes: symmetric "
            f"{outcomes(sym_uncert)}, asymmetric {outcomes(asym_uncert)}"
            + (f"; cyclic Gauss-Seidel never converges on {asym_counter!r}"
               if asym_counter is not None else ""))


def control_note(control: dict[str, Any]) -> str:
    return (f"control W = [[0,-2],[-2,0]], x = 0, start (1/2, 1/2): "
            f"{control['distinct']} distinct fixed points reached by Gauss-Seidel orders; "
            f"converged: {control['converged']}")
