"""Figures saved next to a track's JSON (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

Series = tuple[Sequence[float] | np.ndarray, Sequence[float] | np.ndarray]


def line_plot(
    path: Path | None, series: Mapping[str, Series], *, title: str, xlabel: str, ylabel: str,
    logy: bool = True, logx: bool = False, styles: dict[str, str] | None = None,
) -> None:
    """One axes, one line per labelled (x, y) series; nothing is written when path is None."""
    if path is None:
        return
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, (x, y) in series.items():
        ax.plot(x, y, (styles or {}).get(label, "-"), label=label)
    ax.set_yscale("log" if logy else "linear")
    ax.set_xscale("log" if logx else "linear")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def save_figure(fig: plt.Figure, path: Path, *, dpi: int = 110) -> None:
    """Write `fig` to `path` (format from the suffix), trimmed to its contents, and free it."""
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
