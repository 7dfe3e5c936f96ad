"""Figures saved next to a track's JSON, drawn from specs (matplotlib, Agg backend).

A track says *what* to draw as data — a `Figure` of `Panel`s, each a stack of layers (`Line`,
`Points`, `Level`, `Bars` with confidence intervals) on linear or log axes — and `draw` is the
only code that turns a spec into pixels, so every figure of the suite has the same look and the
tracks hold no plotting code. `line_plot` is the one-panel shorthand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

Values = Sequence[float] | np.ndarray
Series = tuple[Values, Values]


@dataclass(frozen=True)
class Line:
    """y against x as a line (`style`: a matplotlib format string such as "C3--" or "k."),
    with error bars ±`error` when given. A line without points (x = y = []) is a legend entry
    only."""

    label: str | None
    x: Values
    y: Values
    style: str = "-"
    width: float | None = None
    marker_size: float | None = None
    alpha: float | None = None  # opacity (e.g. thin per-draw lines under their median)
    marker_face: str | None = None  # the markers' fill colour ("none": hollow markers)
    error: Values | None = None  # ± error bars at each point


@dataclass(frozen=True)
class Points:
    """A scatter of (x, y), optionally coloured by a third value (`color`, with a colour bar)."""

    label: str | None
    x: Values
    y: Values
    color: Values | str | None = None
    colorbar: str | None = None
    size: float = 12.0
    marker: str = "o"
    color_range: tuple[float, float] | None = None  # the colour scale's (min, max), else the data's


@dataclass(frozen=True)
class Level:
    """A horizontal (`axis` "y") or vertical ("x") reference line at `at`."""

    at: float
    label: str | None = None
    axis: str = "y"
    style: str = "--"
    color: str = "0.6"
    alpha: float = 1.0


@dataclass(frozen=True)
class Span:
    """A shaded band from `low` to `high` across the x axis (`axis` "x") or the y axis ("y")."""

    low: float
    high: float
    label: str | None = None
    axis: str = "x"
    color: str = "0.9"


@dataclass(frozen=True)
class Bars:
    """One bar per label with its value and, when given, an interval [low, high] (a 95% CI)."""

    labels: Sequence[str]
    values: Values
    low: Values | None = None
    high: Values | None = None
    label: str | None = None
    offset: float = 0.0
    width: float = 0.8
    color: str | None = None


Layer = Line | Points | Level | Bars | Span


@dataclass(frozen=True)
class Ticks:
    """An axis's ticks: at `at`, labelled by `labels` (else by their values), in font `size`."""

    at: Sequence[float]
    labels: Sequence[str] | None = None
    size: float | None = None


@dataclass(frozen=True)
class Panel:
    """One axes: its layers drawn in order, its labels and scales; `xticks` / `yticks`, when
    given, are the only ticks of that axis."""

    layers: Sequence[Layer]
    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    logx: bool = False
    logy: bool = False
    xlim: tuple[float, float] | None = None
    ylim: tuple[float, float] | None = None
    legend: bool = True
    title_size: float | None = None
    xticks: Ticks | None = None
    yticks: Ticks | None = None
    legend_loc: str = "best"
    legend_columns: int = 1
    legend_size: float | None = None  # the legend's font size, else 7 or 8 by the layer count


@dataclass(frozen=True)
class Figure:
    """Panels side by side (`columns` per row), saved at `dpi`; with `sharey` one y axis for
    all of them."""

    panels: Sequence[Panel]
    columns: int | None = None
    size: tuple[float, float] | None = None
    dpi: int = 110
    title: str | None = None
    sharey: bool = False


def _draw_layer(ax: plt.Axes, layer: Layer) -> None:
    if isinstance(layer, Line):
        kwargs: dict[str, Any] = {}
        if layer.width is not None:
            kwargs["lw"] = layer.width
        if layer.marker_size is not None:
            kwargs["ms"] = layer.marker_size
        if layer.alpha is not None:
            kwargs["alpha"] = layer.alpha
        if layer.marker_face is not None:
            kwargs["mfc"] = layer.marker_face
        if layer.error is not None:
            ax.errorbar(layer.x, layer.y, yerr=layer.error, fmt=layer.style, label=layer.label,
                        **kwargs)
        else:
            ax.plot(layer.x, layer.y, layer.style, label=layer.label, **kwargs)
    elif isinstance(layer, Points):
        low, high = layer.color_range or (None, None)
        drawn = ax.scatter(layer.x, layer.y, c=layer.color, s=layer.size, marker=layer.marker,
                           label=layer.label, vmin=low, vmax=high)
        if layer.colorbar is not None:
            ax.figure.colorbar(drawn, ax=ax, label=layer.colorbar)
    elif isinstance(layer, Level):
        line = ax.axhline if layer.axis == "y" else ax.axvline
        line(layer.at, ls=layer.style, color=layer.color, lw=0.8, alpha=layer.alpha,
             label=layer.label)
    elif isinstance(layer, Span):
        band = ax.axvspan if layer.axis == "x" else ax.axhspan
        band(layer.low, layer.high, color=layer.color, label=layer.label)
    elif isinstance(layer, Bars):
        x = np.arange(len(layer.labels)) + layer.offset
        values = np.asarray(layer.values, dtype=float)
        error = None
        if layer.low is not None and layer.high is not None:
            error = np.vstack([values - np.asarray(layer.low, dtype=float),
                               np.asarray(layer.high, dtype=float) - values])
        ax.bar(x, values, width=layer.width, yerr=error, capsize=3, label=layer.label,
               color=layer.color)
        ax.set_xticks(np.arange(len(layer.labels)), list(layer.labels), rotation=30,
                      ha="right", fontsize=8)
    else:
        raise TypeError(f"not a figure layer: {layer!r}")


def _draw_panel(ax: plt.Axes, panel: Panel) -> None:
    # scales first: setting one resets the axis' ticks, and `Bars` labels its own
    ax.set_xscale("log" if panel.logx else "linear")
    ax.set_yscale("log" if panel.logy else "linear")
    for layer in panel.layers:
        _draw_layer(ax, layer)
    if panel.xlim is not None:
        ax.set_xlim(*panel.xlim)
    if panel.ylim is not None:
        ax.set_ylim(*panel.ylim)
    if panel.title_size is None:  # matplotlib's title size unless the panel sets one
        ax.set_title(panel.title)
    else:
        ax.set_title(panel.title, fontsize=panel.title_size)
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(panel.ylabel)
    for set_ticks, ticks in ((ax.set_xticks, panel.xticks), (ax.set_yticks, panel.yticks)):
        if ticks is not None:  # the only ticks of that axis: its minor ones are cleared
            set_ticks([], minor=True)
            labels = None if ticks.labels is None else list(ticks.labels)
            if ticks.size is None:
                set_ticks(list(ticks.at), labels)
            else:  # a font size needs the labels themselves
                set_ticks(list(ticks.at), labels or [f"{v:g}" for v in ticks.at],
                          fontsize=ticks.size)
    ax.grid(True, which="both", alpha=0.3)
    if panel.legend and any(getattr(layer, "label", None) for layer in panel.layers):
        place: dict[str, Any] = {"loc": panel.legend_loc, "ncol": panel.legend_columns}
        size = panel.legend_size or (7 if len(panel.layers) > 4 else 8)
        ax.legend(fontsize=size, **place)


def draw(path: Path | None, figure: Figure) -> None:
    """Render `figure` to `path` (format from the suffix); nothing is written when path is
    None (a track run without an output directory)."""
    if path is None:
        return
    columns = figure.columns or len(figure.panels)
    rows = -(-len(figure.panels) // columns)
    size = figure.size or (5.6 * columns if columns > 1 else 6.4, 4.2 * rows)
    fig, axes = plt.subplots(rows, columns, figsize=size, squeeze=False,
                             sharey=figure.sharey)
    for ax, panel in zip(axes.flat, figure.panels):
        _draw_panel(ax, panel)
    for ax in list(axes.flat)[len(figure.panels):]:
        ax.set_visible(False)
    if figure.title:
        fig.suptitle(figure.title)
    save_figure(fig, path, dpi=figure.dpi)


def line_plot(
    path: Path | None, series: Mapping[str, Series], *, title: str, xlabel: str, ylabel: str,
    logy: bool = True, logx: bool = False, styles: dict[str, str] | None = None,
) -> None:
    """One panel, one line per labelled (x, y) series; nothing is written when path is None."""
    lines = [Line(label, x, y, (styles or {}).get(label, "-")) for label, (x, y) in
             series.items()]
    draw(path, Figure([Panel(lines, title=title, xlabel=xlabel, ylabel=ylabel, logx=logx,
                             logy=logy)]))


def save_figure(fig: plt.Figure, path: Path, *, dpi: int = 110) -> None:
    """Write `fig` to `path` (format from the suffix), trimmed to its contents, and free it."""
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
