"""Figures are specs drawn by one module (`tracks.plots.draw`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tracks.plots import Bars, Figure, Level, Line, Panel, Points, Span, Ticks, draw, line_plot


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
def test_f2_span_error_bars_faint_levels_ticks_and_shared_y(tmp_path: Path) -> None:
    """The layers and fields added for issue 18 (h18-f2): `Span`, `Line.error`, `Level.alpha`,
    `Panel.xticks`, `Figure.sharey`, and a line without points as a legend entry only."""
    k = np.arange(1, 20)
    figure = Figure([
        Panel([Line("measured", k, 0.5 ** k, "k.", error=0.1 * 0.5 ** k),
               Span(5, 10, label="fit"), Level(3, axis="x", color="C0", alpha=0.3),
               Line("legend entry only", [], [], "C1--")], logy=True),
        Panel([Line("bits", [2, 4, 8, 64], [0.1, 0.5, 0.9, 1.0], "C2-o")], logx=True,
              xticks=Ticks([2, 4, 8, 64], ["2", "4", "8", "f64"]), legend=False),
    ], sharey=True)
    for suffix in ("png", "svg"):
        path = tmp_path / f"figure.{suffix}"
        draw(path, figure)
        assert path.stat().st_size > 1000


def test_f2_bars_keep_their_labels_and_colour_on_any_scale() -> None:
    """`Bars.color` (h18-f2) colours the bars, and the panel's scales, set before the layers,
    leave the bars' tick labels in place."""
    import matplotlib.pyplot as plt

    from tracks.plots import _draw_panel

    fig, ax = plt.subplots()
    _draw_panel(ax, Panel([Bars(["a", "b"], [1.0, 2.0], color="tab:gray")], logy=True))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    assert ax.patches[0].get_facecolor()[:3] == pytest.approx((0.498, 0.498, 0.498), abs=1e-3)
    plt.close(fig)
