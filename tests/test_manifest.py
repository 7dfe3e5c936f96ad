"""A run is one run (tracks.manifest): the manifest, the lock, superseding an earlier run,
reruns inside the same run, Ctrl-C, atomic writes, and the readers that refuse mixed
directories (tracks.report, --badges, --failed-only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tracks import run as runner
from tracks.manifest import LOCK, MANIFEST, RunLocked, start_run
from tracks.records import atomic_write_text, read_manifest, read_record
from tracks.registry import Track
from tracks.report import certify
from tracks.report import main as report_main

from .fake_tracks import passing

ROOT = Path(__file__).resolve().parents[1]


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# -- the manifest and the run id --------------------------------------------------------------
def test_a_run_writes_a_manifest_and_every_record_carries_its_id(fake_tracks, tmp_path,
                                                                   capsys) -> None:
    assert runner.main(["--track", "1", "3", "--out", str(tmp_path), "--seed", "7",
                        "--quiet"]) == 0
    manifest = read_manifest(tmp_path / MANIFEST)
    assert manifest["seed"] == 7 and manifest["profile"] == "quick"
    assert manifest["tracks"] == [1, 3] and manifest["completed"] == [1, 3]
    assert manifest["status"] == "complete" and manifest["model_digest"] is None
    assert len(manifest["run_id"]) == 32 and manifest["verifier"] and manifest["started"]
    for n in (1, 3):
        record = read_record(tmp_path / f"track-{n:02d}.json")
        assert record["run_id"] == manifest["run_id"] and record["schema_version"] == 1
    assert manifest["run_id"] in capsys.readouterr().out
    assert not (tmp_path / LOCK).exists()  # released


def test_a_new_run_supersedes_the_earlier_one(fake_tracks, tmp_path, capsys) -> None:
    assert runner.main(["--track", "1", "3", "--out", str(tmp_path), "--quiet"]) == 0
    first = read_manifest(tmp_path / MANIFEST)["run_id"]
    capsys.readouterr()
    assert runner.main(["--track", "3", "--out", str(tmp_path), "--seed", "5", "--quiet"]) == 0
    assert f"earlier run {first[:12]} (seed 0) moved" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.glob("track-*")) == ["track-03-plot.svg",
                                                                "track-03.json"]
    moved = tmp_path / "superseded" / first
    assert sorted(p.name for p in moved.iterdir()) == [
        "manifest.json", "track-01-plot.svg", "track-01.json", "track-03-plot.svg",
        "track-03.json"]
    certify(tmp_path, tmp_path / "badges")  # the directory is one run again
    assert "seed 5" in (tmp_path / "badges" / "CERTIFICATE.md").read_text()


def test_run_track_without_a_run_joins_the_directory_run_of_its_seed(fake_tracks,
                                                                    tmp_path) -> None:
    """The seed sweep's layout: run_track per (track, seed) into SWEEP/seed-SS/."""
    for seed in (0, 1):
        for n in (1, 3):
            runner.run_track(n, seed=seed, out_dir=tmp_path / f"seed-{seed:02d}")
    for seed in (0, 1):
        out = tmp_path / f"seed-{seed:02d}"
        manifest = read_manifest(out / MANIFEST)
        assert manifest["seed"] == seed and manifest["completed"] == [1, 3]
        ids = {read_record(out / f"track-0{n}.json")["run_id"] for n in (1, 3)}
        assert ids == {manifest["run_id"]}
        certify(out, out / "badges")
    other = runner.run_track(1, seed=9, out_dir=tmp_path / "seed-00")  # other seed: new run
    assert read_manifest(tmp_path / "seed-00" / MANIFEST)["run_id"] == other.record["run_id"]
    assert not (tmp_path / "seed-00" / "track-03.json").exists()


def test_parallel_run_track_callers_share_one_run(fake_tracks, tmp_path, monkeypatch) -> None:
    """`EQPROP_RESULTS=DIR pytest tracks/ -n auto`: workers write tracks into one directory at
    once; each holds the lock only to join and to record, so none is refused."""
    import time

    inside = threading.Barrier(2, timeout=10)

    def slow(ctx) -> None:
        inside.wait()  # both tracks run at the same time, neither holding the lock
        time.sleep(0.05)
        passing(ctx)

    for n in (1, 3):
        fake_tracks[n] = Track(n, f"slow {n}", "A", "claim", slow)
    results, errors = {}, []

    def work(n: int) -> None:
        try:
            results[n] = runner.run_track(n, out_dir=tmp_path)
        except Exception as exc:  # noqa: BLE001 — reported by the assertion below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in (1, 3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    manifest = read_manifest(tmp_path / MANIFEST)
    assert sorted(manifest["completed"]) == [1, 3] and manifest["status"] == "complete"
    assert {r.record["run_id"] for r in results.values()} == {manifest["run_id"]}
    certify(tmp_path, tmp_path / "badges")
    with start_run(tmp_path, seed=0, profile="quick", join=True):  # a whole run holds it
        monkeypatch.setattr(runner, "JOIN_WAIT_S", 0.1)
        with pytest.raises(RunLocked, match="is in use by run"):
            runner.run_track(1, out_dir=tmp_path)


def test_an_open_run_is_used_by_run_track(fake_tracks, tmp_path) -> None:
    with start_run(tmp_path, seed=2, profile="quick", tracks=[1, 3]) as run:
        for n in (1, 3):
            assert runner.run_track(n, seed=2, run=run).record["run_id"] == run.run_id
        with pytest.raises(ValueError, match="seed 3 differs from 2"):
            runner.run_track(1, seed=3, run=run)
    assert read_manifest(tmp_path / MANIFEST)["status"] == "complete"


# -- the lock ---------------------------------------------------------------------------------
HOLDER = """import sys
from tracks.manifest import start_run
run = start_run(sys.argv[1], seed=0, profile="quick", tracks=[3])
print(run.run_id, flush=True)
sys.stdin.read()
run.close()
"""


def test_a_second_runner_on_one_out_is_refused(tmp_path: Path) -> None:
    """Two processes on one --out: the one that finds the directory locked exits 2, naming the
    run that holds it, and writes nothing; once released, a runner goes through."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        held_by = holder.stdout.readline().strip()
        before = (tmp_path / MANIFEST).read_bytes()
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        second = subprocess.run([sys.executable, "-m", "tracks.run", "--track", "3", "--out",
                                 str(tmp_path), "--quiet"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stdout + second.stderr
        (line,) = second.stderr.splitlines()
        assert f"is in use by run {held_by[:12]} (pid {holder.pid}" in line
        assert second.stdout == "" and (tmp_path / MANIFEST).read_bytes() == before
        assert not (tmp_path / "track-03.json").exists()
    finally:
        holder.communicate("", timeout=30)
    assert holder.returncode == 0
    assert runner.main(["--track", "3", "--out", str(tmp_path), "--quiet"]) == 0


def test_the_lock_is_exclusive_within_a_process_too(tmp_path: Path) -> None:
    with start_run(tmp_path, seed=0, profile="quick") as run:
        with pytest.raises(RunLocked, match=f"in use by run {run.run_id[:12]}"):
            start_run(tmp_path, seed=0, profile="quick")
    start_run(tmp_path, seed=0, profile="quick").close()  # released: free again


def test_a_stale_lock_file_is_taken_over_with_a_notice(tmp_path: Path) -> None:
    (tmp_path / LOCK).write_text("run 0123456789ab (pid 999999, seed 0, started then)")
    with start_run(tmp_path, seed=0, profile="quick") as run:
        assert run.notices == ["took over the lock left by run 0123456789ab (pid 999999, "
                               "seed 0, started then) (no longer running)"]


# -- Ctrl-C -----------------------------------------------------------------------------------
def test_ctrl_c_leaves_a_consistent_directory(fake_tracks, tmp_path, capsys) -> None:
    assert runner.main(["--track", "1", "4", "3", "--out", str(tmp_path), "--quiet"]) == 130
    assert "interrupted: 1 of 3 tracks completed" in one_error_line(capsys)
    manifest = read_manifest(tmp_path / MANIFEST)
    assert manifest["status"] == "interrupted" and manifest["completed"] == [1]
    assert sorted(p.name for p in tmp_path.glob("track-*")) == ["track-01-plot.svg",
                                                                "track-01.json"]
    assert not (tmp_path / LOCK).exists()
    # --failed-only finishes the interrupted run inside the same run id
    fake_tracks[4] = Track(4, "four", "A", "claim four", passing)
    assert runner.main(["--failed-only", "--out", str(tmp_path), "--quiet"]) == 0
    resumed = read_manifest(tmp_path / MANIFEST)
    assert resumed["run_id"] == manifest["run_id"] and resumed["status"] == "complete"
    assert sorted(resumed["completed"]) == [1, 3, 4]
    assert {read_record(p)["run_id"] for p in tmp_path.glob("track-0?.json")} == {
        manifest["run_id"]}


def test_failed_only_reruns_inside_the_same_run(fake_tracks, tmp_path, capsys) -> None:
    assert runner.main(["--track", "1", "2", "--out", str(tmp_path), "--seed", "4",
                        "--quiet"]) == 1
    run_id = read_manifest(tmp_path / MANIFEST)["run_id"]
    fake_tracks[2] = Track(2, "two", "A", "claim two", passing)  # the defect fixed
    capsys.readouterr()
    assert runner.main(["--failed-only", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "track  2" in out and "track  1" not in out
    record = read_record(tmp_path / "track-02.json")
    assert record["status"] == "pass" and record["run_id"] == run_id and record["seed"] == 4
    manifest = read_manifest(tmp_path / MANIFEST)
    assert manifest["run_id"] == run_id and manifest["reruns"][0]["tracks"] == [2]
    assert runner.main(["--failed-only", "--out", str(tmp_path), "--seed", "5"]) == 2
    assert "recorded with --seed 4; --seed 5 would mix two runs" in one_error_line(capsys)
    assert runner.main(["--failed-only", "--out", str(tmp_path)]) == 0
    assert "nothing to rerun" in capsys.readouterr().out


# -- mixed directories are refused ------------------------------------------------------------
@pytest.fixture
def mixed(fake_tracks, tmp_path: Path) -> Path:
    """Records of two runs (seeds 0 and 5) in one directory, as two runners or a Ctrl-C used
    to leave it: track 1 from the run the manifest names, track 3 from another."""
    a, b = tmp_path / "a", tmp_path / "b"
    assert runner.main(["--track", "1", "2", "--out", str(a), "--quiet"]) == 1
    assert runner.main(["--track", "3", "--out", str(b), "--seed", "5", "--quiet"]) == 0
    (a / "track-03.json").write_bytes((b / "track-03.json").read_bytes())
    return a


def test_report_refuses_a_directory_that_mixes_runs(mixed: Path, capsys) -> None:
    capsys.readouterr()
    ours = read_manifest(mixed / MANIFEST)["run_id"]
    theirs = read_record(mixed / "track-03.json")["run_id"]
    assert report_main([str(mixed), "--badges", str(mixed / "badges")]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"tracks.report: error: {mixed}/ mixes 2 runs")
    assert f"run {ours[:12]} (seed 0: tracks 1, 2)" in line
    assert f"run {theirs[:12]} (seed 5: tracks 3)" in line
    assert not (mixed / "badges" / "CERTIFICATE.md").exists()


def test_failed_only_refuses_a_directory_that_mixes_runs(mixed: Path, capsys) -> None:
    capsys.readouterr()
    assert runner.main(["--failed-only", "--out", str(mixed)]) == 2
    assert "mixes 2 runs" in one_error_line(capsys)
    assert json.loads((mixed / "track-02.json").read_text())["status"] == "fail"  # not rerun


def test_badges_refuse_a_directory_that_disagrees_with_its_manifest(fake_tracks, tmp_path,
                                                                    capsys) -> None:
    assert runner.main(["--track", "1", "--out", str(tmp_path), "--quiet"]) == 0
    record = json.loads((tmp_path / "track-01.json").read_text())
    record["seed"] = 5  # same run id, another seed: not what the run recorded
    (tmp_path / "track-01.json").write_text(json.dumps(record))
    capsys.readouterr()
    assert report_main([str(tmp_path), "--badges", str(tmp_path / "badges")]) == 2
    assert "seed 5 disagrees with 0 of run" in one_error_line(capsys)


def test_runner_badges_certify_only_its_own_run(mixed: Path, capsys) -> None:
    """--badges after a run certifies the run just made: the stray record is not its."""
    capsys.readouterr()
    with pytest.raises(ValueError, match="mixes 2 runs"):
        certify(mixed, mixed / "badges")
    assert runner.main(["--track", "1", "--out", str(mixed), "--badges",
                        str(mixed / "badges"), "--quiet"]) == 0  # supersedes, then certifies
    assert "1/1 certified" in (mixed / "badges" / "summary.svg").read_text()


# -- fail before computing: --out and --badges ------------------------------------------------
@pytest.mark.parametrize("option", ["--out", "--badges"])
@pytest.mark.parametrize("where, reason", [
    ("file", "is a file, not a directory"),
    ("file/below", "cannot create the directory"),
    ("/proc/eqprop-verify-test", "cannot create the directory"),
    ("/proc", "not writable"),
])
def test_bad_out_or_badges_is_refused_before_any_track_runs(
        option: str, where: str, reason: str, fake_tracks, tmp_path: Path, capsys,
        monkeypatch: pytest.MonkeyPatch) -> None:
    if where.startswith("/proc") and not Path("/proc/self").exists():
        pytest.skip("needs Linux /proc (a directory nobody, root included, can write)")
    ran = []
    monkeypatch.setattr(runner, "run_track", lambda *a, **k: ran.append(a))
    (tmp_path / "file").write_text("not a directory")
    target = where if where.startswith("/") else str(tmp_path / where)
    other = str(tmp_path / ("out" if option == "--badges" else "badges"))
    args = {"--out": target, "--badges": other} if option == "--out" else \
        {"--out": other, "--badges": target}
    assert runner.main(["--track", "1", *[x for kv in args.items() for x in kv]]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"tracks.run: error: {option} {target}: {reason}"), line
    assert ran == []


# -- atomic writes ----------------------------------------------------------------------------
def test_a_reader_never_sees_a_partial_record(tmp_path: Path) -> None:
    """A reader polling while records are rewritten (as with two runners) sees a whole old or
    a whole new file, never a 0-byte or truncated one (old code: 2 in 26,103 reads)."""
    from tracks.context import TrackResult

    path = tmp_path / "track-02.json"
    records = [{"track": 2, "notes": [str(k) * (400_000 + 1000 * k)]} for k in range(2)]
    TrackResult(records[0]).write(tmp_path)
    sizes = {len(json.dumps(r, indent=2)) + 1 for r in records}
    stop, seen = threading.Event(), []

    def poll() -> None:
        while not stop.is_set():
            seen.append(len(path.read_bytes()))

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for k in range(60):
            TrackResult(records[k % 2]).write(tmp_path)
    finally:
        stop.set()
        reader.join()
    assert len(seen) > 20
    assert set(seen) <= sizes, sorted(set(seen) - sizes)[:5]
    assert [p.name for p in tmp_path.iterdir()] == ["track-02.json"]  # no temporaries left


def test_a_failed_write_leaves_the_old_file(tmp_path: Path, monkeypatch) -> None:
    path = atomic_write_text(tmp_path / "manifest.json", "old\n")

    def full_disk(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space"):
        atomic_write_text(path, "new\n")
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == [path.name]
