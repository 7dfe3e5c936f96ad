"""`python -m tracks.run --jobs N`: tracks in worker processes give the records of a serial run,
a worker that dies is a failed record, and bad values are one-line usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracks.context import canonical_bytes
from tracks.executors import MatrixOptions
from tracks.manifest import MANIFEST, start_run
from tracks.records import read_manifest
from tracks.run import Job, UsageError, available_cores, main, resolve_jobs, run_parallel


def records(out: Path) -> dict[str, bytes]:
    return {p.name: canonical_bytes(json.loads(p.read_text()))
            for p in sorted(out.glob("track-??.json"))}


def test_parallel_jobs_write_the_records_of_a_serial_run(tmp_path: Path, capsys) -> None:
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    common = ["--track", "3", "8", "--seed", "4", "--quiet"]
    assert main([*common, "--out", str(serial), "--jobs", "1"]) == 0
    assert main([*common, "--out", str(parallel), "--jobs", "2"]) == 0
    assert "2 tracks in 2 worker processes" in capsys.readouterr().err
    assert records(serial) == records(parallel) and len(records(serial)) == 2
    manifest = read_manifest(parallel / MANIFEST)
    assert manifest["status"] == "complete" and sorted(manifest["completed"]) == [3, 8]
    assert {json.loads(p.read_text())["run_id"] for p in parallel.glob("track-??.json")} == {
        manifest["run_id"]}


def test_a_worker_that_dies_is_a_failed_record_not_a_pass(tmp_path: Path) -> None:
    factory = tmp_path / "dies.py"
    factory.write_text("import os\n\n\ndef build():\n    os._exit(3)  # the process dies\n")
    out = tmp_path / "out"
    run = start_run(out, seed=0, profile="quick", device="cpu", model=None, tracks=[3, 8])
    job = Job("quick", 0, "cpu", out, run.run_id, MatrixOptions(),
              system_target=f"{factory}:build")
    with run:
        results = list(run_parallel([3, 8], 2, job, run, None, None))
    assert sorted(r.record["track"] for r in results) == [3, 8]
    for result in results:
        assert result.status == "fail"
        assert "worker process failed" in result.record["error"]
    assert read_manifest(out / MANIFEST)["status"] == "complete"  # each has its (failed) record


def test_jobs_values() -> None:
    serial, ray = MatrixOptions(), MatrixOptions(executor="ray")
    assert resolve_jobs("auto", 30, "cpu", serial) == min(available_cores(), 30)
    assert resolve_jobs("auto", 1, "cpu", serial) == 1
    assert resolve_jobs("auto", 30, "cuda", serial) == 1
    assert resolve_jobs("auto", 30, "cpu", ray) == 1
    assert resolve_jobs("3", 2, "cpu", serial) == 2  # never more workers than tracks
    for bad in ("0", "-1", "two", ""):
        with pytest.raises(UsageError, match="invalid --jobs"):
            resolve_jobs(bad, 4, "cpu", serial)
    with pytest.raises(UsageError, match="Ray already spreads"):
        resolve_jobs("2", 4, "cpu", ray)


def test_bad_jobs_is_one_line_and_exit_2(tmp_path: Path, capsys, monkeypatch) -> None:
    assert main(["--track", "3", "--jobs", "0", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "invalid --jobs '0'" in err[0]
    monkeypatch.setenv("EQPROP_JOBS", "many")
    assert main(["--track", "3", "--out", str(tmp_path)]) == 2
    assert "$EQPROP_JOBS" in capsys.readouterr().err
