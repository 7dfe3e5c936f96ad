"""Track 8's figure: E(h_k) along synchronous updates, each rescaled to [0, 1], for a typical
symmetric SN model, the W = −1.5·I 2-cycle and the asymmetric control."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from properties.energy_descent import trajectory
from properties.strategies import ModelSpec

from ..plots import line_plot


def energy_figure(path: Path | None, seed: int, cycle_energies: np.ndarray,
                  asymmetric_trace: Sequence[float] | None) -> None:
    """Plot the three energy traces (the asymmetric one when the control found a model)."""
    typical = ModelSpec(n_in=3, n_hidden=8, weight_scale=1.0, structure="gaussian",
                        seed=seed, gamma=0.95, drive_scale=1.0)
    model = typical.build()
    x = typical.inputs(1)
    states = trajectory(model, x, np.random.default_rng(seed).standard_normal((1, 8)))
    with torch.no_grad():
        typical_E = [float(model.energy(torch.as_tensor(h), x)[0]) for h in states]

    def rescaled(energies) -> tuple[range, np.ndarray]:
        """E(h_k) mapped onto [0, 1] by its own min and max, so shapes compare across scales."""
        e = np.asarray(energies, dtype=np.float64)
        return range(len(e)), (e - e.min()) / max(e.max() - e.min(), np.finfo(float).tiny)

    series = {"symmetric SN (gamma 0.95)": rescaled(typical_E),
              "W = -1.5 I (2-cycle)": rescaled(cycle_energies)}
    if asymmetric_trace is not None:
        series["asymmetric control (shrunk)"] = rescaled(asymmetric_trace)
    line_plot(path, series,
              title="E(h_k) along synchronous updates, each rescaled to [0, 1]", xlabel="k",
              ylabel="(E_k - min E) / (max E - min E)", logy=False,
              styles={"symmetric SN (gamma 0.95)": ".-", "W = -1.5 I (2-cycle)": "s--",
                      "asymmetric control (shrunk)": "^-"})
