"""Figures are specs drawn by one module (`tracks.plots.draw`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tracks.plots import Bars, Figure, Level, Line, Panel, Points, Ticks, draw, line_plot


def test_every_layer_kind_draws_into_a_file(tmp_path: Path) -> None:
    k = np.arange(1, 20)
    figure = Figure([
        Panel([Line("measured", k, 0.5 ** k, "k."), Line("bound", k, 0.6 ** k, "C3--"),
               Level(1e-6, "floor")], title="decay", xlabel="k", logy=True),
        Panel([Points("draws", k, k ** 2, color=k, colorbar="k")], logx=True),
        Panel([Bars(["a", "b", "c"], [0.5, 0.7, 0.6], low=[0.4, 0.6, 0.5],
                    high=[0.6, 0.8, 0.7], label="mean ± 95% CI")], ylim=(0, 1)),
    ], columns=2)
    for suffix in ("png", "svg"):
        path = tmp_path / f"figure.{suffix}"
        draw(path, figure)
        assert path.stat().st_size > 1000


def test_no_output_directory_writes_nothing(tmp_path: Path) -> None:
    draw(None, Figure([Panel([Line("x", [1, 2], [1, 2])])]))
    line_plot(None, {"x": ([1, 2], [3, 4])}, title="t", xlabel="x", ylabel="y")
    assert not list(tmp_path.iterdir())


def test_a_layer_that_is_not_one_is_a_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="not a figure layer"):
        draw(tmp_path / "bad.png", Figure([Panel(["a string"])]))  # type: ignore[list-item]


def test_h18_f1_ticks_legend_place_alpha_hollow_markers_and_colour_range(tmp_path: Path) -> None:
    """The fields added for the figures of tracks 7, 12, 15, 21 and 22: ticks with labels, the
    legend's place, columns and size, a line's opacity and hollow markers, a fixed colour
    scale."""
    k = np.arange(1, 6)
    figure = Figure([
        Panel([Line("thin", k, k, "C0-", alpha=0.3), Line("hollow", k, k + 1, "C1o",
                                                          marker_face="none")],
              xticks=Ticks([1, 3, 5]), yticks=Ticks(k, [f"row {i}" for i in k], size=7),
              legend_loc="upper center", legend_columns=2, legend_size=6),
        Panel([Points(None, k, k, color=k, colorbar="k", color_range=(0, 10))],
              xticks=Ticks([2, 4], size=6)),
    ])
    path = tmp_path / "fields.png"
    draw(path, figure)
    assert path.stat().st_size > 1000
    assert Panel([]).legend_loc == "best" and Panel([]).legend_columns == 1
    assert Panel([]).xticks is None and Panel([]).legend_size is None
    assert Line(None, k, k).alpha is None and Points(None, k, k).color_range is None
