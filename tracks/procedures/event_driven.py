"""Track 30's figure: the residual against cumulative neuron updates, synchronous vs lazy vs
Gauss–Seidel, on one certified model."""

from __future__ import annotations

from eqprop_core.event_driven import event_driven_equilibrium
from properties.asynchronous_convergence import MAX_ROUNDS, TOL
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
