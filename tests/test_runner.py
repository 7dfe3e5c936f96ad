"""The runner contract of TRACKS.md: exit status, one-line usage errors, the per-track JSON."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from properties import at_least, at_most
from tracks.context import TrackContext, finish, jsonable
from tracks.run import main, run_track

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two xdist workers share two cores
    return subprocess.run([sys.executable, "-m", "tracks.run", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def strict_json(text: str) -> dict:
    """json.loads that refuses NaN / Infinity (which the JSON standard does not have)."""
    def refuse(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


# -- usage errors -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "named"),
    [(["--track", "99"], "99"), (["--track", "abc"], "'abc'"),
     (["--track", "1", "--profile", "turbo"], "'turbo'"), (["--track", "1", "--seed", "x"], "'x'")],
    ids=["unknown-track", "non-numeric-track", "bad-profile", "bad-seed"],
)
def test_bad_usage_exits_2_with_one_line(args: list[str], named: str, tmp_path: Path) -> None:
    result = run_cli(*args, "--out", str(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert named in lines[0]
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize(
    ("args", "named"),
    [(["--track", "1", "--seed", "-1"], "-1"), (["--track"], "--track"), ([], "--list"),
     (["--track", "1-0"], "'1-0'"), (["--track", "1", "--all"], "--all"),
     (["--track", "1", "--device", "tpu"], "'tpu'")],
    ids=["negative-seed", "track-without-number", "nothing-selected", "empty-range",
         "track-and-all", "bad-device"],
)
def test_more_bad_usage_in_process(args: list[str], named: str, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*args, "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and named in lines[0], captured.err
    assert captured.out == ""
    assert list(tmp_path.iterdir()) == []


def test_list_names_track_1() -> None:
    result = run_cli("--list")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0].split()
    assert first[:4] == ["1", "SN", "spectral", "bound"]
    assert "group A" in result.stdout.splitlines()[0]


def test_track_1_writes_its_json_record(tmp_path: Path) -> None:
    result = run_cli("--track", "1", "--out", str(tmp_path), "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CERTIFIED" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "track-01.json"]
    record = strict_json((tmp_path / "track-01.json").read_text())
    assert record["schema_version"] == 1
    assert record["run_id"] == strict_json((tmp_path / "manifest.json").read_text())["run_id"]

    assert record["track"] == 1 and record["name"] == "SN spectral bound"
    assert record["status"] == "pass" and record["profile"] == "quick" and record["seed"] == 0
    assert isinstance(record["duration_s"], float) and 0 < record["duration_s"] < 120
    assert record["skip_reason"] is None
    assert len(record["checks"]) >= 1
    for check in record["checks"]:
        assert {"name", "value", "bound", "passed"} <= set(check)
        assert isinstance(check["name"], str) and isinstance(check["bound"], str)
        assert check["passed"] is True
    control = record["negative_control"]
    assert isinstance(control["name"], str) and control["failed_as_expected"] is True
    env = record["environment"]
    assert env["python"] == platform.python_version()
    assert env["torch"] == torch.__version__
    assert env["device"] == "cpu"


def test_a_non_default_seed_is_recorded(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--track", "1", "--out", str(tmp_path), "--seed", "3", "--quiet"]) == 0
    assert strict_json((tmp_path / "track-01.json").read_text())["seed"] == 3
    assert "1 certified, 0 failed" in capsys.readouterr().out


# -- tracks.context.finish --------------------------------------------------------------------
def context(tmp_path: Path | None = None) -> TrackContext:
    return TrackContext(99, "test track", out_dir=tmp_path)


def test_a_track_without_negative_control_fails() -> None:
    ctx = context()
    ctx.check(at_most("fine", 0.5, 1.0))
    record = finish(ctx, "A", "claim", time.perf_counter()).record
    assert record["status"] == "fail"
    assert record["negative_control"]["name"] == "missing"
    assert record["negative_control"]["failed_as_expected"] is False


def test_a_track_whose_control_did_not_fail_fails() -> None:
    ctx = context()
    ctx.check(at_most("fine", 0.5, 1.0))
    ctx.negative_control(at_most("should break", 0.1, 1.0))  # it passed: the check is blind
    record = finish(ctx, "A", "claim", time.perf_counter()).record
    assert record["status"] == "fail"
    assert record["negative_control"]["failed_as_expected"] is False


def test_a_track_with_passing_checks_and_failing_control_passes() -> None:
    ctx = context()
    ctx.check(at_most("fine", 0.5, 1.0))
    ctx.negative_control(at_most("must break", 5.0, 1.0))
    record = finish(ctx, "A", "claim", time.perf_counter()).record
    assert record["status"] == "pass"
    assert record["negative_control"]["failed_as_expected"] is True


def test_a_failed_check_fails_the_track() -> None:
    ctx = context()
    ctx.check(at_most("fine", 0.5, 1.0))
    ctx.check(at_least("broken", 0.5, 1.0))
    ctx.negative_control(at_most("must break", 5.0, 1.0))
    assert finish(ctx, "A", "claim", time.perf_counter()).status == "fail"


def test_a_refuted_claim_is_recorded_and_printed_but_leaves_the_status_alone(capsys) -> None:
    from tracks.context import TrackResult
    from tracks.run import print_result

    ctx = context()
    ctx.check(at_most("fine", 0.5, 1.0))
    ctx.negative_control(at_most("must break", 5.0, 1.0))
    ctx.claim(at_most("stated figure", 3e-3, 1e-3), source="TRACKS.md track 99", share=0.8)
    record = finish(ctx, "B", "claim", time.perf_counter()).record
    assert record["status"] == "pass"
    (claim,) = record["claims"]
    assert claim["holds"] is False and claim["value"] == 3e-3
    assert claim["details"]["share"] == 0.8 and claim["source"] == "TRACKS.md track 99"
    print_result(TrackResult(record), quiet=False)
    assert "[claim REFUTED] stated figure (TRACKS.md track 99): 0.003" in capsys.readouterr().out


def test_a_track_without_checks_fails() -> None:
    ctx = context()
    ctx.negative_control(at_most("must break", 5.0, 1.0))
    assert finish(ctx, "A", "claim", time.perf_counter()).status == "fail"


def test_an_error_fails_the_track_and_a_skip_skips_it() -> None:
    ctx = context()
    ctx.check(at_most("fine", 0.5, 1.0))
    ctx.negative_control(at_most("must break", 5.0, 1.0))
    errored = finish(ctx, "A", "claim", time.perf_counter(), error="RuntimeError: boom").record
    assert errored["status"] == "fail" and errored["error"] == "RuntimeError: boom"
    skipped = finish(context(), "D", "claim", time.perf_counter(), skip_reason="no data").record
    assert skipped["status"] == "skip" and skipped["skip_reason"] == "no data"


def test_two_negative_controls_are_refused() -> None:
    ctx = context()
    ctx.negative_control(at_most("one", 5.0, 1.0))
    with pytest.raises(RuntimeError, match="two negative controls"):
        ctx.negative_control(at_most("two", 5.0, 1.0))


def test_unknown_profile_is_refused_by_the_context() -> None:
    with pytest.raises(ValueError, match="'turbo'"):
        TrackContext(1, "x", profile="turbo")


def test_jsonable_turns_non_finite_floats_into_strings() -> None:
    assert jsonable(math.nan) == "nan"
    assert jsonable(math.inf) == "inf" and jsonable(-math.inf) == "-inf"
    assert jsonable(np.float32("nan")) == "nan"
    assert jsonable({"a": [1.5, math.nan], 2: (np.int64(3), np.bool_(True), None)}) == {
        "a": [1.5, "nan"], "2": [3, True, None]}
    assert jsonable(np.array([0.25, np.inf])) == [0.25, "inf"]


def test_a_nan_measurement_is_written_as_strict_json(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    ctx.check(at_most("diverged", math.nan, 1.0, residual=math.inf))
    ctx.negative_control(at_most("must break", math.inf, 1.0))
    result = finish(ctx, "A", "claim", time.perf_counter())
    assert result.status == "fail"  # a NaN measurement never passes
    record = strict_json(result.write(tmp_path).read_text())
    assert record["checks"][0]["value"] == "nan"
    assert record["checks"][0]["details"] == {"residual": "inf"}
    assert record["negative_control"]["value"] == "inf"


# -- selection: groups and reruns of failures ---------------------------------------------------
def test_group_selects_every_track_of_the_group_in_order() -> None:
    from tracks.registry import all_tracks
    from tracks.run import select_groups

    implemented = all_tracks()
    assert select_groups(["A"], implemented) == [1, 2, 3, 4, 5, 6, 7, 8, 30]  # 30: event-driven
    assert select_groups(["b", "A"], implemented)[:9] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert all(implemented[n].group == "C" for n in select_groups(["C"], implemented))


def test_unknown_group_and_missing_results_are_usage_errors(capsys, tmp_path: Path) -> None:
    assert main(["--group", "Z"]) == 2
    assert "unknown group 'Z'" in capsys.readouterr().err
    assert main(["--failed-only", "--out", str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_failed_only_reruns_the_failed_records(capsys, tmp_path: Path) -> None:
    from tracks.manifest import start_run
    from tracks.registry import all_tracks
    from tracks.run import failed_tracks

    with start_run(tmp_path, seed=0, profile="quick", tracks=[3, 8]) as run:
        for n in (3, 8):
            run_track(n, run=run)
    record = strict_json((tmp_path / "track-03.json").read_text())
    (tmp_path / "track-03.json").write_text(json.dumps({**record, "status": "fail"}))
    assert failed_tracks(tmp_path, all_tracks()) == [3]
    assert main(["--failed-only", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "track  3" in out and "track  8" not in out and run.run_id in out
    assert strict_json((tmp_path / "track-03.json").read_text())["status"] == "pass"
    assert main(["--failed-only", "--out", str(tmp_path)]) == 0
    assert "nothing to rerun" in capsys.readouterr().out


# -- seeds: numpy's range ---------------------------------------------------------------------
@pytest.mark.parametrize("seed", ["4294967296", "99999999999999999999", "-1", "1.5"])
def test_a_seed_outside_numpys_range_is_a_one_line_usage_error(seed: str, tmp_path: Path,
                                                               capsys) -> None:
    assert main(["--track", "1", "--seed", seed, "--out", str(tmp_path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (f"tracks.run: error: invalid seed {seed!r}: expected an integer in "
                    "[0, 4294967295] (numpy's range, 2**32 - 1)")
    assert list(tmp_path.iterdir()) == []


def test_the_largest_seed_is_accepted_and_the_api_names_a_bad_one(fake_tracks,
                                                                 tmp_path: Path) -> None:
    assert main(["--track", "1", "--seed", "4294967295", "--out", str(tmp_path),
                 "--quiet"]) == 0
    assert strict_json((tmp_path / "track-01.json").read_text())["seed"] == 2**32 - 1
    with pytest.raises(ValueError, match=r"invalid seed 4294967296: must be an integer in "
                                         r"\[0, 4294967295\]"):
        run_track(1, seed=2**32)


def test_a_premise_that_fails_inside_any_track_is_a_failed_check_with_its_value(
        fake_tracks: dict) -> None:
    """Not an opaque crash: the runner records MeasurementFailed (and PhaseNotConverged) as the
    track's failed check, value and bound included, for every track."""
    from properties.evidence import MeasurementFailed
    from tracks.registry import Track

    def unconverged(ctx) -> None:
        ctx.check(at_most("fine", 0.5, 1.0))
        raise MeasurementFailed("free phase converged: max residual", 3.2e-3, "<= tol 1e-08")

    fake_tracks[5] = Track(5, "five", "A", "claim five", unconverged)
    record = run_track(5).record
    assert record["status"] == "fail" and "error" not in record
    failed = [c for c in record["checks"] if not c["passed"]]
    assert [(c["name"], c["value"], c["bound"]) for c in failed] == [
        ("free phase converged: max residual", 3.2e-3, "<= tol 1e-08")]
