"""Track 4's figure: one measured trajectory against the Banach bounds and the wrong rate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

import theory
from tracks.plots import Figure, Line, Panel


def slowest(trajectories: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The trajectory of the largest ρ(J*) (the first of them on a tie)."""
    example = trajectories[0]
    for t in trajectories:
        if t["rho"] > example["rho"]:
            example = t
    return example


def banach_figure(example: Mapping[str, Any]) -> Figure:
    """‖h_k − h*‖ with the a-priori, a-posteriori and wrong-rate bounds, down to the witness's
    own error (below it the witness cannot resolve the error)."""
    e = example["errors"]
    k = np.arange(len(e))
    keep = e > example["witness_error"]
    L, rho = example["L"], example["rho"]
    lines = [
        Line("measured ||h_k - h*||", k[keep], e[keep]),
        Line("a priori L^k ||h_0 - h*||", k[keep], L ** k[keep] * e[0]),
        Line("a posteriori L/(1-L) ||h_k - h_{k-1}||", k[1:][keep[1:]],
             theory.a_posteriori_bound(L, example["steps"][keep[1:]])),
        Line("wrong rate (0.9 rho)^k ||h_0 - h*||", k[keep], (0.9 * rho) ** k[keep] * e[0]),
    ]
    return Figure([Panel(lines, title=f"Banach bounds, L = {L:.3f}, rho(J*) = {rho:.3f}",
                         xlabel="iteration k", ylabel="error", logy=True)])
