"""A track search's draws depend on its seed alone, not on which modules are imported."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from hypothesis import strategies as st

from properties.search import worst_case


def drawn_values(seed: int) -> list[int]:
    seen: list[int] = []
    worst_case(st.integers(0, 2**16), lambda v: seen.append(v) or 0.0, bound=1.0, max_examples=200,
               seed=seed, hunt=False)
    return seen


def test_importing_a_module_with_constants_does_not_change_the_draws(tmp_path: Path) -> None:
    before = drawn_values(seed=3)
    module = tmp_path / "module_full_of_constants.py"
    module.write_text("VALUES = [" + ", ".join(str(i * 37 + 11) for i in range(300)) + "]\n")
    sys.path.insert(0, str(tmp_path))
    try:
        importlib.import_module("module_full_of_constants")
        after = drawn_values(seed=3)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("module_full_of_constants", None)
    assert after == before
    assert drawn_values(seed=4) != before  # and the seed does matter


def test_same_seed_same_track_json_up_to_timing_and_run_id() -> None:
    from tracks.run import run_track

    first, second = (run_track(3, seed=5).record for _ in range(2))
    assert first["run_id"] != second["run_id"]  # two runs
    for record in (first, second):
        record.pop("duration_s")
        record.pop("run_id")
    assert first == second
    assert first["status"] == "pass"
