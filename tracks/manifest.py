"""A run is one run: the manifest beside its records, and the lock that keeps it one.

Each runner invocation is a *run*: `start_run` takes the directory's lock, writes
`DIR/manifest.json` (run id, seed, profile, device, model and its digest, verifier version,
start time, tracks requested, tracks completed, status) and every record it writes carries the
run id. A directory therefore never silently mixes runs:

- **one runner at a time.** The lock is `fcntl.flock` on `DIR/.lock`, held for the whole run
  and released by the kernel if the process dies; a second runner is refused (`RunLocked`, a
  ValueError naming the run that holds it). A lock file left by a killed run is taken over, with
  a notice.
- **a new run supersedes the old one.** Whatever an earlier run left (its manifest, its
  `track-NN.json`, its artifacts `track-NN-*`) is moved to `DIR/superseded/<its run id>/`, so
  the directory holds the new run's records only. `start_run(..., join=True)` instead continues
  an earlier run of the same seed, profile and model (what `run_track(..., out_dir=DIR)` does
  when no run is given, so per-track callers build up one run; it holds the lock only to join
  and, via `reopen_run`, to record, so parallel workers share the run) — and supersedes it
  otherwise.
- **a rerun stays in its run.** `resume_run` (`--failed-only`) reopens the run recorded in the
  manifest, with its id, seed, profile and model.
- **Ctrl-C leaves a consistent directory.** The manifest is rewritten (atomically) after every
  completed track; an interrupted run is marked `"interrupted"`, `completed` says which tracks
  finished, and artifacts of the track cut short (no record) are removed.

`one_run(out_dir, records)` is the reader's side: the records of a directory must all carry the
manifest's run id, seed, profile and model (ValueError naming the runs and seeds found).

The seed sweep runs one directory per seed:

    with start_run(sweep / "seed-03", seed=3, profile="quick", tracks=[1, 2]) as run:
        for n in (1, 2):
            run_track(n, profile="quick", seed=3, out_dir=run.out_dir, run=run)
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from .context import PROFILES
from .provenance import describe
from .records import SCHEMA_VERSION, RecordError, atomic_write_json, read_manifest, read_record

MANIFEST = "manifest.json"
LOCK = ".lock"
SUPERSEDED = "superseded"
MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit
SHOWN_ID = 12  # run ids in messages: the first 12 hex digits


class RunLocked(ValueError):
    """Another runner holds the results directory."""


def check_seed(seed: object) -> int:
    """The seed as an int in [0, 2**32 − 1] (NumPy's range); ValueError naming it otherwise."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"invalid seed {seed!r}: must be an integer in [0, {MAX_SEED}] "
                         "(numpy's range, 2**32 - 1)")
    return seed


def writable_directory(path: Path, option: str = "--out") -> Path:
    """`path` as an existing directory this process can write into (created if missing);
    ValueError with a one-line reason (a file, not writable, parent not creatable) otherwise."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path}: is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{option} {path}: cannot create the directory "
                         f"({err.strerror or err})") from None
    try:  # os.access says yes to root on a read-only mount: ask by writing
        probe = path / f".probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise ValueError(f"{option} {path}: not writable ({err.strerror or err})") from None
    return path


def verifier_version() -> str:
    """eqprop-verify's version and, from a checkout, its commit (`tracks.provenance`)."""
    return describe()


def model_fields(model: Any) -> tuple[str | None, str | None]:
    """(repr, digest) of a `--model` FixedModel, or (None, None) for the suite's own models."""
    if model is None:
        return None, None
    return repr(model), getattr(model, "digest", None)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _describe(manifest: Mapping[str, Any]) -> str:
    return f"run {manifest['run_id'][:SHOWN_ID]} (seed {manifest['seed']})"


# -- the lock ---------------------------------------------------------------------------------
def _acquire(out_dir: Path, holder: str, wait_s: float = 0.0) -> tuple[int, str]:
    """An fd holding flock(LOCK_EX) on out_dir/.lock, and what a dead holder left there;
    RunLocked if another holder keeps it longer than `wait_s` seconds.

    The lock file is removed on release, so after locking we check that the file we locked is
    still the one at the path (a releasing holder may have unlinked it meanwhile)."""
    path = out_dir / LOCK
    deadline = time.monotonic() + wait_s
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            if time.monotonic() < deadline:
                time.sleep(0.02)
                continue
            raise RunLocked(f"{out_dir}/ is in use by {held or 'another runner (starting)'}: "
                            "wait for it to finish, or use another --out") from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    stale = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    os.ftruncate(fd, 0)
    os.pwrite(fd, holder.encode(), 0)
    return fd, stale


def _release(out_dir: Path, fd: int) -> None:
    (out_dir / LOCK).unlink(missing_ok=True)
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


# -- the run ----------------------------------------------------------------------------------
@dataclass
class Run:
    """An open run: its manifest, written to `out_dir/manifest.json` at every change, and the
    directory's lock, held until `close()` (or the end of the `with` block)."""

    out_dir: Path
    manifest: dict[str, Any]
    lock_fd: int | None
    notices: list[str] = field(default_factory=list)  # lines the CLI prints to stderr
    in_flight: set[int] = field(default_factory=set)  # begun, record not yet written

    @property
    def run_id(self) -> str:
        return self.manifest["run_id"]

    @property
    def seed(self) -> int:
        return self.manifest["seed"]

    @property
    def profile(self) -> str:
        return self.manifest["profile"]

    def save(self) -> None:
        atomic_write_json(self.out_dir / MANIFEST, self.manifest)

    def request(self, numbers: Iterable[int]) -> None:
        tracks = self.manifest["tracks"]
        tracks += [n for n in numbers if n not in tracks]
        self.save()

    def begin(self, number: int) -> None:
        """Track `number` starts (its artifacts are removed if it is cut short); parallel jobs
        have several in flight."""
        self.in_flight.add(number)

    def completed(self, number: int) -> None:
        """Track `number`'s record is written."""
        done = self.manifest["completed"]
        if number not in done:
            done.append(number)
        self.in_flight.discard(number)
        self.save()

    def check_matches(self, *, seed: int, profile: str, model: Any) -> None:
        """ValueError unless a track at these settings belongs in this run."""
        ours = {"seed": self.seed, "profile": self.profile,
                "model_digest": self.manifest["model_digest"]}
        theirs = {"seed": seed, "profile": profile, "model_digest": model_fields(model)[1]}
        for key, value in theirs.items():
            if ours[key] != value:
                raise ValueError(f"{key} {value!r} differs from {ours[key]!r} of "
                                 f"{_describe(self.manifest)} in {self.out_dir}/")

    def settle(self, interrupted: bool = False) -> None:
        """Record the status: complete once every requested track completed, else interrupted
        (or still running, for a run that others have joined and whose tracks are in flight);
        artifacts of a track cut short before its record are removed."""
        for number in sorted(self.in_flight):
            if not (self.out_dir / f"track-{number:02d}.json").exists():
                for path in self.out_dir.glob(f"track-{number:02d}-*"):
                    path.unlink(missing_ok=True)
        self.in_flight.clear()
        if set(self.manifest["tracks"]) <= set(self.manifest["completed"]):
            self.manifest["status"] = "complete"
        elif interrupted:
            self.manifest["status"] = "interrupted"
        self.save()

    def release(self) -> None:
        """Release the lock, the run still open (`run_track` joining holds it only while it
        records, so that parallel workers can share a run)."""
        if self.lock_fd is not None:
            _release(self.out_dir, self.lock_fd)
            self.lock_fd = None

    def close(self, interrupted: bool = False) -> None:
        """Settle the status and release the lock (idempotent)."""
        if self.lock_fd is None:
            return
        try:
            self.settle(interrupted)
        finally:
            _release(self.out_dir, self.lock_fd)
            self.lock_fd = None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(interrupted=kind is not None)


def _earlier_run(out_dir: Path) -> tuple[dict[str, Any] | None, list[Path]]:
    """The manifest an earlier run left (None if absent or invalid) and that run's files."""
    files = [p for p in out_dir.iterdir() if p.is_file() and (
        p.name == MANIFEST or (p.name.startswith("track-") and p.name[6:8].isdigit()))]
    manifest = None
    if (out_dir / MANIFEST).exists():
        try:
            manifest = read_manifest(out_dir / MANIFEST)
        except RecordError:
            manifest = None
    return manifest, sorted(files)


def _supersede(out_dir: Path, manifest: dict[str, Any] | None, files: Sequence[Path]) -> str:
    name = manifest["run_id"] if manifest else f"unknown-{uuid.uuid4().hex[:8]}"
    target = out_dir / SUPERSEDED / name
    target.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.move(str(path), target / path.name)
    what = _describe(manifest) if manifest else "records of an unrecorded run"
    return (f"{len(files)} files of the earlier {what} moved to {target}/ (a directory holds "
            "one run)")


def start_run(out_dir: Path, *, seed: int, profile: str, device: str = "cpu",
              model: Any = None, tracks: Sequence[int] = (), join: bool = False,
              wait_s: float = 0.0) -> Run:
    """Open a run in `out_dir` (created if missing): take the lock (`RunLocked` if another
    runner holds it), supersede an earlier run's files — or, with `join`, continue an earlier
    run of the same seed, profile and model — and write the manifest. Use as a context manager
    (or call `close()`): the lock is held until then. `wait_s`: how long to wait for another
    holder before RunLocked. ValueError on a bad seed or profile."""
    check_seed(seed)
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {PROFILES}")
    out_dir = writable_directory(out_dir)
    shown, digest = model_fields(model)
    run_id = uuid.uuid4().hex
    fd, stale = _acquire(out_dir, f"run {run_id[:SHOWN_ID]} (pid {os.getpid()}, seed {seed}, "
                                  f"started {_now()})", wait_s)
    try:
        run = Run(out_dir, {}, fd)
        if stale:
            run.notices.append(f"took over the lock left by {stale} (no longer running)")
        earlier, files = _earlier_run(out_dir)
        if join and earlier is not None and (earlier["seed"], earlier["profile"],
                                             earlier["model_digest"]) == (seed, profile, digest):
            run.manifest = {**earlier, "status": "running"}
            run.request(tracks)
            return run
        if files:
            run.notices.append(_supersede(out_dir, earlier, files))
        run.manifest = {
            "schema_version": SCHEMA_VERSION, "run_id": run_id, "seed": seed,
            "profile": profile, "device": device, "model": shown, "model_digest": digest,
            "verifier": verifier_version(), "started": _now(), "tracks": list(tracks),
            "completed": [], "status": "running"}
        run.save()
        return run
    except BaseException:
        _release(out_dir, fd)
        raise


def reopen_run(out_dir: Path, run_id: str, wait_s: float = 0.0) -> Run:
    """Take the lock again for the open run `run_id` (after `Run.release`); ValueError if the
    directory now holds another run (a run started meanwhile superseded it)."""
    fd, _ = _acquire(Path(out_dir), f"run {run_id[:SHOWN_ID]} (pid {os.getpid()}, recording)",
                     wait_s)
    try:
        manifest = read_manifest(Path(out_dir) / MANIFEST)
        if manifest["run_id"] != run_id:
            raise ValueError(f"{out_dir}/ now holds {_describe(manifest)}: run "
                             f"{run_id[:SHOWN_ID]} was superseded while its track ran")
    except BaseException:
        _release(Path(out_dir), fd)
        raise
    return Run(Path(out_dir), manifest, fd)


def resume_run(out_dir: Path, tracks: Sequence[int], *, model: Any = None) -> Run:
    """Reopen the run recorded in `out_dir/manifest.json` to rerun `tracks` under its own id
    (`--failed-only`): its seed, profile and model stay. RecordError if there is no valid
    manifest, ValueError if `model` is not the run's, RunLocked if another runner holds the
    directory."""
    manifest = read_manifest(out_dir / MANIFEST)
    digest = model_fields(model)[1]
    if digest != manifest["model_digest"]:
        recorded = manifest["model"] or "the suite's own models (no --model)"
        raise ValueError(f"{_describe(manifest)} in {out_dir}/ certified {recorded}; the rerun "
                         f"must too (got {model_fields(model)[0] or 'no --model'})")
    fd, stale = _acquire(writable_directory(out_dir),
                         f"run {manifest['run_id'][:SHOWN_ID]} (pid {os.getpid()}, rerun, "
                         f"started {_now()})")
    run = Run(out_dir, {**read_manifest(out_dir / MANIFEST), "status": "running"}, fd)
    if stale:
        run.notices.append(f"took over the lock left by {stale} (no longer running)")
    run.manifest.setdefault("reruns", []).append({"started": _now(), "tracks": list(tracks)})
    run.request(tracks)
    return run


def one_run(out_dir: Path, records: Mapping[Path, Mapping[str, Any]]) -> dict[str, Any] | None:
    """The manifest (None if the directory has none) after checking that every record belongs
    to one run and agrees with the manifest on seed, profile and model; ValueError naming the
    runs and seeds found otherwise."""
    manifest = read_manifest(out_dir / MANIFEST) if (out_dir / MANIFEST).exists() else None
    runs: dict[str, tuple[int, list[int]]] = {}
    for record in records.values():
        seed, numbers = runs.setdefault(record["run_id"], (record["seed"], []))
        numbers.append(record["track"])
    if manifest is not None:
        runs.setdefault(manifest["run_id"], (manifest["seed"], []))
    if len(runs) > 1:
        found = "; ".join(
            f"run {run_id[:SHOWN_ID]} (seed {seed}: "
            f"{'tracks ' + ', '.join(map(str, sorted(n))) if n else 'manifest.json only'})"
            for run_id, (seed, n) in runs.items())
        raise ValueError(f"{out_dir}/ mixes {len(runs)} runs: {found} — certify one run: "
                         "rerun the tracks into an empty directory")
    if manifest is not None:
        expected = {"seed": manifest["seed"], "profile": manifest["profile"],
                    "model": manifest["model"]}
        for path, record in records.items():
            for key, value in expected.items():
                if record.get(key) != value:
                    raise ValueError(f"{path}: {key} {record.get(key)!r} disagrees with "
                                     f"{value!r} of {_describe(manifest)} (manifest.json)")
    return manifest


def run_records(out_dir: Path, numbers: Sequence[int] | None = None
                ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(manifest or None, the validated records of `out_dir` — all `track-NN.json`, or those
    of `numbers` — by number), checked to be one run (`one_run`). ValueError (RecordError for
    a bad file) naming the file or the runs otherwise."""
    out_dir = Path(out_dir)
    paths = (sorted(out_dir.glob("track-[0-9][0-9].json")) if numbers is None
             else [out_dir / f"track-{n:02d}.json" for n in numbers])
    records = {path: read_record(path) for path in paths}
    manifest = one_run(out_dir, records)
    return manifest, list(records.values())
