"""Instant stand-ins for the runner's tracks (fixture `fake_tracks` in conftest): the run,
manifest and report machinery is tested in milliseconds instead of a track's seconds."""

from __future__ import annotations

from properties import at_most
from tracks.context import TrackContext
from tracks.registry import Track


def passing(ctx: TrackContext) -> None:
    ctx.check(at_most("fine", 0.5, 1.0))
    ctx.negative_control(at_most("must break", 5.0, 1.0))
    path = ctx.artifact_path("plot.svg")
    if path is not None:
        path.write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")


def failing(ctx: TrackContext) -> None:
    ctx.check(at_most("broken", 2.0, 1.0))
    ctx.negative_control(at_most("must break", 5.0, 1.0))


def interrupted(ctx: TrackContext) -> None:
    ctx.artifact_path("half.svg").write_text("<svg/>")  # an artifact, then Ctrl-C
    raise KeyboardInterrupt


def registry() -> dict[int, Track]:
    """Tracks 1–3 (2 fails) and 4 (Ctrl-C in the middle)."""
    return {1: Track(1, "one", "A", "claim one", passing),
            2: Track(2, "two", "A", "claim two", failing),
            3: Track(3, "three", "A", "claim three", passing),
            4: Track(4, "four", "A", "claim four", interrupted)}
