"""Track 7's sweep and figure: each family × drive × size × seed probed at every weight scale
s of the grid (the frontier table's rows), and the figure drawn from those rows."""

from __future__ import annotations

import numpy as np

from properties.contraction_frontier import frontier_row, probe, seeded_starts
from properties.strategies import ModelSpec

from ..plots import Figure, Level, Line, Panel, Points, Ticks

FAMILIES = {  # family -> (ModelSpec.structure, symmetric)
    "psd_spike": ("spike", True),
    "negative_definite": ("negative_definite", True),
    "rotation": ("rotation", False),
}


DRIVES = {"zero drive": 0.0, "drive x0.5": 0.5, "drive x2": 2.0}  # ModelSpec.drive_scale


def frontier_figure(grid: np.ndarray, rows: list[dict], s_cert: float) -> Figure:
    """Left: failure kind at each (row, s). Right: max ρ(J*) over the fixed points vs s."""
    colors = {".": "C2", "M": "C3", "2": "C1", "o": "C4", "u": "C7", "x": "k"}
    labels = {".": "unique + convergent", "M": "several fixed points", "2": "2-cycle",
              "o": "no convergence", "u": "rho(J*) >= 1", "x": "endpoint not a fixed point"}
    where: dict[str, tuple[list[float], list[int]]] = {}  # mark -> its (s, row) in order seen
    for i, row in enumerate(rows):
        for s, mark in zip(grid, row["status_by_s"]):
            xs, ys = where.setdefault(mark, ([], []))
            xs.append(float(s))
            ys.append(i)
    boundary = Level(s_cert, axis="x", style="--", color="k")
    xlabel = "s = ||W_eff||_2  (L = s * sup|phi'|)"
    left = Panel([*(Points(labels[m], xs, ys, color=colors[m], size=36, marker="s")
                    for m, (xs, ys) in where.items()), boundary],
                 title="what fails where (dashed: certified boundary L = 1)", title_size=9,
                 xlabel=xlabel, ylim=(-0.5, len(rows) + 1.5),
                 yticks=Ticks(range(len(rows)), [r["label"] for r in rows], size=7),
                 legend_loc="upper center", legend_columns=3)
    right = Panel([*(Line(row["label"], grid, row["max_rho_by_s"], ".-") for row in rows),
                   boundary, Level(1.0, style="-", color="0.5")],
                  title="spectral radius of J* at the fixed points", title_size=9,
                  xlabel=xlabel, ylabel="max rho(J*) over fixed points", legend_loc="upper left",
                  legend_size=6)
    return Figure([left, right], size=(13, max(4.2, 1.5 + 0.16 * len(rows))))


def frontier_sweep(grid: np.ndarray, sizes: tuple[int, ...], seeds: tuple[int, ...],
                   s_cert: float) -> tuple[list[dict], list[dict], int]:
    """The frontier table's rows (one per family, drive, size and seed, without SN), the sweep
    points with L < 1 that failed, and how many sweep points had L < 1."""
    rows: list[dict] = []
    subcritical_failures: list[dict] = []
    subcritical_points = 0
    for family, (structure, symmetric) in FAMILIES.items():
        for drive_label, drive_scale in DRIVES.items():
            for n in sizes:
                for seed in seeds:
                    spec = ModelSpec(n_in=3, n_hidden=n, weight_scale=1.0, structure=structure,
                                     seed=seed, symmetric=symmetric, spectral_norm=False,
                                     drive_scale=drive_scale)
                    starts = seeded_starts(n, seed)
                    probes = [probe(spec.with_(weight_scale=float(s)), starts) for s in grid]
                    subcritical_points += sum(p.certified for p in probes)
                    for s, p in zip(grid, probes):
                        if p.certified and not p.ok:
                            subcritical_failures.append({"family": family, "drive": drive_label,
                                                         "s": s, **p.summary()})
                    rows.append(frontier_row(family, drive_label, spec, grid, probes, s_cert))
    return rows, subcritical_failures, subcritical_points
