"""The "Adding a track" recipe of docs/TRACKS.md works: an entry written to it
(`examples/new_track/track_31_activation_slopes.py`, measures in `properties.activation_slopes`)
registers, certifies at several seeds, its control fails, it passes the bare-threshold audit,
and it is short."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from properties.activation_slopes import (
    SlopePair,
    derivative_error,
    secant_over_max_slope,
)
from tracks import registry
from tracks.run import run_track

from .test_track_structure import bare_thresholds

ENTRY = Path(__file__).resolve().parent.parent / "examples" / "new_track" / \
    "track_31_activation_slopes.py"


@pytest.fixture
def track_31() -> Iterator[registry.Track]:
    spec = importlib.util.spec_from_file_location("example_track_31", ENTRY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        yield registry.all_tracks()[31]
    finally:
        registry._REGISTRY.pop(31, None)  # the suite's registry holds the 30 tracks only


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_recipes_entry_certifies_and_its_control_fails(track_31: registry.Track,
                                                           seed: int) -> None:
    record = run_track(31, seed=seed).record
    assert record["status"] == "pass", record
    assert record["negative_control"]["failed_as_expected"]
    assert [c["bound"] for c in record["checks"]] == ["<= 1", "<= 1e-09", ">= 0.99"]


def test_the_entry_is_short_and_has_no_bare_threshold(track_31: registry.Track) -> None:
    assert bare_thresholds(ENTRY) == []
    assert len(ENTRY.read_text().splitlines()) <= 60


def test_the_measures_are_right_on_cases_worked_by_hand() -> None:
    steepest = SlopePair("tanh", -5e-4, 1e-3)  # around 0, where tanh' = 1
    assert 1 - 1e-6 < secant_over_max_slope(steepest) <= 1
    flat = SlopePair("sigmoid", 5.0, 1.0)
    expected = (1 / (1 + math.exp(-6)) - 1 / (1 + math.exp(-5))) / 0.25
    assert secant_over_max_slope(flat) == pytest.approx(expected, rel=1e-12)
    assert secant_over_max_slope(steepest, claimed=0.9) > 1.1  # the control's wrong slope
    assert derivative_error(SlopePair("tanh", 0.3, 1.0)) < 1e-9
