"""Track 7's sweep and figure: each family × drive × size × seed probed at every weight scale
s of the grid (the frontier table's rows), and the figure drawn from those rows."""

from __future__ import annotations

import numpy as np

from properties.contraction_frontier import frontier_row, probe, seeded_starts
from properties.strategies import ModelSpec

from ..plots import plt, save_figure

FAMILIES = {  # family -> (ModelSpec.structure, symmetric)
    "psd_spike": ("spike", True),
    "negative_definite": ("negative_definite", True),
    "rotation": ("rotation", False),
}


DRIVES = {"zero drive": 0.0, "drive x0.5": 0.5, "drive x2": 2.0}  # ModelSpec.drive_scale


def plot_frontier(path, grid: np.ndarray, rows: list[dict], s_cert: float) -> None:
    """Left: failure kind at each (row, s). Right: max ρ(J*) over the fixed points vs s."""
    colors = {".": "C2", "M": "C3", "2": "C1", "o": "C4", "u": "C7", "x": "k"}
    labels = {".": "unique + convergent", "M": "several fixed points", "2": "2-cycle",
              "o": "no convergence", "u": "rho(J*) >= 1", "x": "endpoint not a fixed point"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, max(4.2, 1.5 + 0.16 * len(rows))))
    seen = set()
    for i, row in enumerate(rows):
        for s, mark in zip(grid, row["status_by_s"]):
            left.plot(s, i, "s", color=colors[mark], ms=6,
                      label=None if mark in seen else labels[mark])
            seen.add(mark)
        right.plot(grid, row["max_rho_by_s"], ".-", label=row["label"])
    for ax in (left, right):
        ax.axvline(s_cert, color="k", ls="--", lw=1)
        ax.set_xlabel("s = ||W_eff||_2  (L = s * sup|phi'|)")
    left.set_yticks(range(len(rows)), [r["label"] for r in rows], fontsize=7)
    left.set_ylim(-0.5, len(rows) + 1.5)
    left.set_title("what fails where (dashed: certified boundary L = 1)", fontsize=9)
    left.legend(fontsize=7, loc="upper center", ncol=3)
    right.axhline(1.0, color="0.5", lw=1)
    right.set_ylabel("max rho(J*) over fixed points")
    right.set_title("spectral radius of J* at the fixed points", fontsize=9)
    right.legend(fontsize=6, loc="upper left")
    save_figure(fig, path)


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
