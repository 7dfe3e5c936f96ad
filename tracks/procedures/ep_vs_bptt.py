"""Track 10's figure: BPTT-vs-implicit error against the number of unrolled steps T for a typical
SN model, with the L^T reference line."""

from __future__ import annotations

import numpy as np

from properties import ModelSpec, agreement
from properties.bptt_truncation import UnrolledProblem
from tracks.plots import line_plot


def truncation_figure(ctx) -> None:
    """`bptt-truncation.png` on the typical SN model of the run's seed."""
    typical = UnrolledProblem(ModelSpec(n_in=3, n_hidden=8, weight_scale=1.0,
                                        structure="gaussian", seed=ctx.seed, gamma=0.95,
                                        drive_scale=1.0))
    horizon = sorted({*np.unique(np.geomspace(1, typical.steps, 14).astype(int)).tolist(),
                      typical.steps})
    errors = [agreement(typical.bptt(t), typical.implicit).worst_relative_error
              for t in horizon]
    floor = np.finfo(np.float64).eps
    line_plot(ctx.artifact_path("bptt-truncation.png"),
              {"BPTT(T) vs implicit, worst parameter": (horizon, np.maximum(errors, floor)),
               f"L^T (L = {typical.lipschitz:.3g})":
                   (horizon, np.maximum(typical.lipschitz ** np.asarray(horizon, float), floor))},
              title="BPTT truncation: error vs unrolled steps (typical SN model)",
              xlabel="unrolled steps T", ylabel="relative error",
              styles={"BPTT(T) vs implicit, worst parameter": "o-"})
