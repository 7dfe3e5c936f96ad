"""The seed sweep (`python -m tracks.sweep`): seeds parsed with one-line errors, one runner run
per seed, the table track × seed with 'certified at k/n seeds', failures named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracks.run import UsageError
from tracks.sweep import certified_count, main, parse_seeds, read_cells, sweep_markdown


def test_seeds_are_ranges_and_lists_in_order_without_repeats() -> None:
    assert parse_seeds(["0-3"]) == [0, 1, 2, 3]
    assert parse_seeds(["5,1", "1-2"]) == [5, 1, 2]
    for bad, message in (("x", "invalid seed 'x'"), ("3-", "invalid seed '3-'"),
                         ("4294967296", "seeds lie in 0..4294967295"), ("-1", "invalid seed")):
        with pytest.raises(UsageError, match=message):
            parse_seeds([bad])


def record(track: int, status: str, failed: str | None = None) -> dict:
    checks = [{"name": "a check", "value": 1.0, "bound": "<= 1", "passed": True}]
    if failed:
        checks.append({"name": failed, "value": 2.0, "bound": "<= 1", "passed": False})
    return {"track": track, "status": status, "checks": checks,
            "negative_control": {"name": "c", "failed_as_expected": True}}


def test_cells_name_the_failed_checks_and_a_missing_record_is_a_failure(tmp_path: Path) -> None:
    for seed, status in ((0, "pass"), (1, "fail")):
        d = tmp_path / f"seed-{seed:02d}"
        d.mkdir()
        (d / "track-04.json").write_text(json.dumps(record(4, status, "a posteriori"
                                                           if status == "fail" else None)))
        (d / "track-07.json").write_text(json.dumps(record(7, "skip")))
    cells, failures = read_cells(tmp_path, [0, 1, 2], [4, 7])
    assert cells["4"] == {"0": "pass", "1": "fail", "2": "missing"}
    assert failures["4"] == {"1": ["a posteriori"], "2": ["no record"]}
    assert certified_count(cells["4"]) == (1, 3)
    assert certified_count({"0": "skip", "1": "skip"}) == (0, 0)
    table = sweep_markdown({"seeds": [0, 1, 2], "tracks": [4, 7], "profile": "quick",
                            "cells": cells, "failures": failures, "wall_s": 1.0,
                            "cells_run": 3, "certified_cells": 1, "failed_cells": 2,
                            "skipped_cells": 3})
    assert "| 4 | Banach rate | 1/3 | ✓ | ✗ | ? |" in table
    assert "| 7 | When SN is critical | 0/1 | – | – | ? |" in table
    assert "- track 4, seed 1: a posteriori" in table


def test_a_sweep_runs_the_runner_once_per_seed_and_writes_the_table(tmp_path: Path,
                                                                     capsys) -> None:
    out = tmp_path / "sweep"
    assert main(["--seeds", "1,2", "--track", "3", "--out", str(out), "--jobs", "2"]) == 0
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["cells"] == {"3": {"1": "pass", "2": "pass"}}
    assert summary["certified_cells"] == 2 and summary["failed_cells"] == 0
    for seed in (1, 2):
        assert json.loads((out / f"seed-{seed:02d}" / "track-03.json").read_text())["seed"] == seed
    assert "| 3 | Fixed-point uniqueness | 2/2 | ✓ | ✓ |" in (out / "SWEEP.md").read_text()
    assert "[seed 2] track  3" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "0-x", "--track", "3"], "invalid seed '0-x'"),
    (["--seeds", "0", "--track", "99"], "unknown track 99"),
    (["--seeds", "0", "--track", "3", "--jobs", "0"], "invalid --jobs '0'"),
    (["--seeds", "0", "--track", "3", "--profile", "fast"], "unknown profile 'fast'"),
])
def test_bad_usage_is_one_line_and_exit_2(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_an_out_that_is_a_file_is_refused_before_anything_runs(tmp_path: Path, capsys) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["--seeds", "0", "--track", "3", "--out", str(target)]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err


def test_a_sweep_certificate_states_certified_at_k_of_n_seeds(tmp_path: Path) -> None:
    out, badges = tmp_path / "sweep", tmp_path / "badges"
    assert main(["--seeds", "1,2", "--track", "3", "--out", str(out),
                 "--badges", str(badges)]) == 0
    page = (badges / "CERTIFICATE.md").read_text()
    assert "| 3 | Fixed-point uniqueness | certified | 6/6 | yes | certified at 2/2 seeds |" in page
    assert "Seed sweep: 1/1 tracks certified at every one of 2 seeds (1–2)" in page
    assert (badges / "CERTIFICATE.html").exists()
