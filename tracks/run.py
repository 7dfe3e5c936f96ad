"""Run certification tracks: `python -m tracks.run --track 1 2 3 --out results`.

Exit status: 0 every selected track certified (skips allowed), 1 a track failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from properties.fixed_model import FixedModel, load_fixed_model
from properties.system import SystemUnderTest, load_system

from .context import PROFILES, SkipTrack, TrackContext, TrackResult, finish
from .executors import EXECUTORS, RAY_INSTALL, MatrixOptions, ray_module
from .exports import TENSORBOARD_INSTALL, check_formats
from .manifest import (
    MANIFEST,
    MAX_SEED,
    Run,
    check_seed,
    reopen_run,
    resume_run,
    run_records,
    start_run,
    writable_directory,
)
from .premises import records_failed_premise
from .records import read_manifest
from .registry import GROUPS, Track, all_tracks, system_entries
from .report import certify, environments
from .setups import load_setup
from .tables import table_name, write_table

# `--model` wider than this is refused unless `--max-hidden` lifts it: the witness's
# eigendecompositions and Jacobians cost ~n³ per drawn example (hidden 4000: one equilibrium
# alone took 28 s, and a track draws dozens).
MAX_HIDDEN = 1000
# `run_track(..., out_dir=DIR)` without a run waits this long for DIR's lock (other callers
# joining the run hold it only while they record; a whole CLI run holds it throughout).
JOIN_WAIT_S = 30.0


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit status 2."""


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here (use cpu or auto)")
    if device not in ("cpu", "cuda"):
        raise UsageError(f"unknown device {device!r}; choose cpu, cuda or auto")
    return device


def model_skip_reason(spec: Track, model: FixedModel) -> str | None:
    """Why track `spec` cannot certify the user's `model` (None: it can)."""
    if spec.model_requires is None:
        return f"track {spec.number} does not certify a given model: {spec.model_reason}"
    unmet = model.unmet(spec.model_requires)
    if unmet:
        return f"{model!r} lacks {'; '.join(unmet)}, which track {spec.number} needs"
    return None


def system_skip_reason(number: int, system: SystemUnderTest) -> str | None:
    """Why track `number` cannot certify the System (None: it can)."""
    entry = system_entries().get(number)
    if entry is None:
        runs = ", ".join(str(n) for n in system_entries())
        return (f"track {number} does not run on a System yet (tracks that do: {runs}); it "
                "certifies the suite's own models")
    unmet = system.unmet(entry.requires)
    if unmet:
        return f"{system!r} has no {'; '.join(unmet)}, which track {number} needs"
    return None


def run_track(
    number: int, *, profile: str = "quick", seed: int = 0, device: str = "cpu",
    out_dir: Path | None = None, model: FixedModel | None = None, run: Run | None = None,
    system: SystemUnderTest | None = None, matrix: MatrixOptions | None = None,
    exports: Sequence[str] = (),
) -> TrackResult:
    """Run one track and return its JSON record (written to out_dir/track-NN.json if given).

    `model`: certify this user's model (`--model`) instead of the suite's drawn ones; a track
    that cannot, or whose requirements the model misses, is skipped with the reason.
    `system`: certify this System (`--system`, `properties.system`) through the track's System
    entry (`tracks.registry.on_system`); a track without one, or whose requirements the System
    misses, is skipped with the reason.
    `matrix`: how a dataset benchmark (tracks 25–28) runs its cells — executor (serial, the
    default, or Ray), setup file, `fresh` to ignore the cell cache (`tracks.executors`).
    `exports`: formats (`tracks.exports.FORMATS`) in which a training track writes every
    training run's per-epoch history under out_dir/runs/track-NN/ (needs out_dir or run).
    `run`: the open run (`tracks.manifest.start_run`) the record belongs to; its directory is
    the default `out_dir`. Without one, a record written to `out_dir` joins the run recorded
    there if it has this seed, profile and model, else starts a new one (superseding it); the
    directory's lock is taken only to join and to record, so parallel callers (`pytest tracks/
    -n auto` with $EQPROP_RESULTS) share one run. A record not written gets a run id of its own.
    ValueError on an unknown track, a bad seed or a run of other settings.
    """
    tracks = all_tracks()
    if number not in tracks:
        raise ValueError(f"unknown track {number}; implemented: {format_numbers(tracks)}")
    check_seed(seed)
    if model is not None and system is not None:
        raise ValueError("give a model or a system, not both")
    subject = model if system is None else system
    joined = None
    if run is None and out_dir is not None:  # join the directory's run, lock only to record
        joined = start_run(out_dir, seed=seed, profile=profile, device=device, model=subject,
                           tracks=[number], join=True, wait_s=JOIN_WAIT_S)
        joined.release()
    if run is not None:
        run.check_matches(seed=seed, profile=profile, model=subject)
        if out_dir is not None and Path(out_dir).resolve() != run.out_dir.resolve():
            raise ValueError(f"out_dir {out_dir} is not the directory of run "
                             f"{run.run_id} ({run.out_dir})")
        out_dir = run.out_dir
        run.begin(number)
    owner = run or joined
    result = execute_track(number, profile=profile, seed=seed, device=device, out_dir=out_dir,
                           model=model, system=system, matrix=matrix, exports=exports,
                           run_id=None if owner is None else owner.run_id)
    if joined is not None:
        with reopen_run(joined.out_dir, joined.run_id, wait_s=JOIN_WAIT_S) as recording:
            record(result, recording)
    elif run is not None:
        record(result, run)
    return result


def track_entry(number: int, system: SystemUnderTest | None) -> tuple[Callable[[TrackContext],
                                                                              None], str]:
    """The body and claim a track runs: its own, or its System entry's under `--system`."""
    spec = all_tracks()[number]
    if system is not None and number in system_entries():
        entry = system_entries()[number]
        return entry.run, entry.claim
    return spec.run, spec.claim


def skip_reason(number: int, model: FixedModel | None, system: SystemUnderTest | None
                ) -> str | None:
    """Why track `number` cannot certify the given model or System (None: it can, or neither
    was given)."""
    if system is not None:
        return system_skip_reason(number, system)
    return None if model is None else model_skip_reason(all_tracks()[number], model)


def execute_track(
    number: int, *, profile: str, seed: int, device: str, out_dir: Path | None,
    model: FixedModel | None, system: SystemUnderTest | None, matrix: MatrixOptions | None,
    exports: Sequence[str], run_id: str | None,
) -> TrackResult:
    """Run track `number` and return its record, writing only its artifacts (plots, cells) into
    out_dir: the record itself is the caller's to write (`run_track`, or the CLI's parallel
    jobs, which run this in worker processes). Seeds torch and numpy with `seed` and holds the
    track's thread count while it runs, so the record does not depend on what ran before it
    in the process."""
    spec = all_tracks()[number]
    identity: dict[str, Any] = {} if run_id is None else {"run_id": run_id}
    ctx = TrackContext(number, spec.name, profile=profile, seed=seed, device=device,
                       out_dir=out_dir, model=model, system=system, matrix=matrix,
                       exports=check_formats(exports), **identity)
    refused = skip_reason(number, model, system)
    # A System's entry replaces the track's body only where the System can run it.
    body, claim = track_entry(number, system if refused is None else None)
    torch.manual_seed(seed)
    np.random.seed(seed)
    threads = torch.get_num_threads()
    if spec.threads is not None:
        torch.set_num_threads(spec.threads)
    # scipy's BLAS gets the same limit as torch: OpenBLAS threads on small matrices cost far
    # more than they gain, and oversubscribe the cores under `pytest -n auto`.
    blas = threadpool_limits(spec.threads, user_api="blas") if spec.threads is not None \
        else nullcontext()
    started = time.perf_counter()
    try:
        if refused is not None:
            ctx.skip(refused)
        with blas:
            # A failed premise or an unconverged phase escaping the track is its failed check,
            # with the measured value, not a crash.
            records_failed_premise(body)(ctx)
        result = finish(ctx, spec.group, claim, started)
    except SkipTrack as skip:
        result = finish(ctx, spec.group, claim, started, skip_reason=str(skip))
    except Exception as exc:  # a crash is a failed track with its reason, never a pass
        result = finish(ctx, spec.group, claim, started,
                        error=f"{type(exc).__name__}: {exc}")
        result.record["traceback"] = traceback.format_exc()
    finally:
        torch.set_num_threads(threads)
    return result


# -- parallel jobs ----------------------------------------------------------------------------
# The order parallel jobs start in: the longest first (the dataset benchmarks, then the training
# tracks), so that no long track starts last and runs alone.
START_ORDER = ("D", "C", "B", "A")
JOBS_VARIABLE = "EQPROP_JOBS"  # --jobs's default where set (the unit tests set 1)


@dataclass(frozen=True)
class Job:
    """What a worker process needs to run a track as the CLI would. The model or System goes by
    name and each worker loads it again (a factory's module is not picklable), seeded alike."""

    profile: str
    seed: int
    device: str
    out_dir: Path
    run_id: str
    matrix: MatrixOptions
    exports: tuple[str, ...] = ()
    model_target: str | None = None
    system_target: str | None = None
    system_batch: int = 8

    def subjects(self) -> tuple[FixedModel | None, SystemUnderTest | None]:
        model = None if self.model_target is None else load_fixed_model(self.model_target,
                                                                         self.seed)
        system = None if self.system_target is None else load_system(
            self.system_target, batch=self.system_batch, seed=self.seed)
        return model, system


def run_job(number: int, job: Job) -> dict[str, Any]:
    """A worker process's task: track `number`'s record (the parent writes it)."""
    model, system = job.subjects()
    return execute_track(number, profile=job.profile, seed=job.seed, device=job.device,
                         out_dir=job.out_dir, model=model, system=system, matrix=job.matrix,
                         exports=job.exports, run_id=job.run_id).record


def crashed(number: int, job: Job, model: FixedModel | None, system: SystemUnderTest | None,
            error: str) -> TrackResult:
    """The failed record of a track whose worker process died (no pass without a record)."""
    spec = all_tracks()[number]
    ctx = TrackContext(number, spec.name, profile=job.profile, seed=job.seed, device=job.device,
                       out_dir=job.out_dir, model=model, system=system, run_id=job.run_id)
    refused = skip_reason(number, model, system)
    _, claim = track_entry(number, system if refused is None else None)
    return finish(ctx, spec.group, claim, time.perf_counter(), error=error)


def run_parallel(numbers: Sequence[int], jobs: int, job: Job, run: Run,
                 model: FixedModel | None, system: SystemUnderTest | None
                 ) -> Iterator[TrackResult]:
    """Run the tracks in `jobs` worker processes (spawned: a fresh interpreter each), longest
    first; yield each result as it completes, after writing it into `run`. Every track seeds
    itself and holds its own thread count (`execute_track`), so its record is the one a serial
    run gives; the parent alone writes records and the manifest."""
    tracks = all_tracks()
    order = sorted(numbers, key=lambda n: START_ORDER.index(tracks[n].group))
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {}
        for number in order:
            run.begin(number)
            futures[pool.submit(run_job, number, job)] = number
        for future in as_completed(futures):
            number = futures[future]
            try:
                result = TrackResult(future.result())
            except Exception as exc:  # the worker died (killed, out of memory): a failed track
                result = crashed(number, job, model, system,
                                 f"worker process failed: {type(exc).__name__}: {exc}")
            record(result, run)
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_jobs(text: str, n_tracks: int, device: str, matrix: MatrixOptions) -> int:
    """`--jobs`: a positive integer, or auto — the cores this process may use, but 1 on CUDA
    and with Ray (which spreads the benchmark cells itself); never more than the tracks.
    UsageError otherwise."""
    if text == "auto":
        if device == "cuda" or matrix.executor == "ray":
            return 1
        return max(1, min(available_cores(), n_tracks))
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"invalid --jobs {text!r} (or ${JOBS_VARIABLE}): expected a positive "
                         "integer or auto")
    if int(text) > 1 and matrix.executor == "ray":
        raise UsageError("--jobs with --executor ray: Ray already spreads the benchmark cells; "
                         "use --jobs 1 (or the serial executor with --jobs N)")
    return min(int(text), max(n_tracks, 1))


def record(result: TrackResult, run: Run) -> None:
    """Write a track's record (and its benchmark table) into its run's directory."""
    if "results" in result.record:
        result.record["artifacts"].append(table_name(result.record["track"]))
    path = result.write(run.out_dir)
    if "results" in result.record:
        write_table(path)  # from the JSON just written, so the table cannot disagree with it
    run.completed(result.record["track"])


def format_numbers(tracks: dict) -> str:
    return ", ".join(str(n) for n in tracks)


def parse_track_numbers(tokens: Sequence[str], implemented: dict) -> list[int]:
    """'3', '1-8' → track numbers; UsageError naming the bad token otherwise."""
    numbers: list[int] = []
    for token in tokens:
        lo, sep, hi = token.partition("-")
        try:
            span = range(int(lo), int(hi) + 1) if sep else [int(token)]
        except ValueError:
            raise UsageError(f"invalid track {token!r}: expected a number like 12 or a range "
                             f"like 1-8") from None
        for n in span:
            if n not in implemented:
                raise UsageError(f"unknown track {n}: implemented tracks are "
                                 f"{format_numbers(implemented)} (see --list)")
            if n not in numbers:
                numbers.append(n)
    if not numbers:
        raise UsageError(f"empty track range {tokens!r}")
    return numbers


def select_groups(groups: Sequence[str], implemented: dict) -> list[int]:
    """Every implemented track of the named groups (A–D), in track order."""
    for group in groups:
        if group.upper() not in GROUPS:
            raise UsageError(f"unknown group {group!r}: choose from {', '.join(GROUPS)}")
    wanted = {g.upper() for g in groups}
    return [n for n, t in implemented.items() if t.group in wanted]


def failed_tracks(out_dir: Path, implemented: dict) -> list[int]:
    """The tracks `--failed-only` reruns: those whose record in DIR says "fail", and those the
    run requested but did not complete (interrupted). UsageError, naming the file or the runs,
    when DIR holds no manifest, an invalid record or records of several runs."""
    if not out_dir.is_dir():
        raise UsageError(f"--failed-only reads earlier results, but {out_dir}/ does not exist "
                         "(run the tracks first, or pass --out DIR)")
    if not (out_dir / MANIFEST).exists():
        raise UsageError(f"--failed-only reruns inside the run recorded in {out_dir}/{MANIFEST}, "
                         "but there is none (records of an older version?): run the tracks")
    try:
        manifest, records = run_records(out_dir)
    except ValueError as err:
        raise UsageError(str(err)) from None
    unknown = sorted({r["track"] for r in records} - set(implemented))
    if unknown:
        raise UsageError(f"{out_dir}/ holds records of unknown tracks {unknown}")
    failed = {r["track"] for r in records if r["status"] == "fail"}
    assert manifest is not None  # its file exists (checked above) and was read
    unfinished = set(manifest["tracks"]) - set(manifest["completed"])
    return sorted((failed | unfinished) & set(implemented))


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse prints usage + two lines; we, one
        raise UsageError(message)


def build_parser(prog: str = "python -m tracks.run") -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog,
        description="Certify EqProp properties: each track measures a falsifiable claim against "
        "an independent reference and runs a negative control that must fail. Writes one "
        "JSON per track (DIR/track-NN.json).",
        epilog="examples:\n  python -m tracks.run --list\n  python -m tracks.run --all\n"
        "  python -m tracks.run --track 1 3 5-8 --out results --seed 1\n"
        "  python -m tracks.run --group A B\n"
        "  python -m tracks.run --failed-only --out results\n"
        "  python -m tracks.run --all --badges results/badges\n"
        "  python -m tracks.run --model examples.user_model:build --track 1-16\n"
        "  python -m tracks.run --system examples/systems/primitive_mlp.py:build --track 2-11\n"
        "  python -m tracks.run --track 25 --executor ray --workers 2\n"
        "  python -m tracks.run --track 25-28 --setup my-setup.toml --executor ray "
        "--ray-address HOST:6379\n"
        "exit status: 0 all certified (skips allowed), 1 a track failed, 2 bad usage",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--list", action="store_true", help="list the implemented tracks")
    what.add_argument("--track", nargs="+", metavar="N", help="track numbers or ranges (1-8)")
    what.add_argument("--all", action="store_true", help="run every implemented track")
    what.add_argument("--group", nargs="+", metavar="G", help="every implemented track of "
                      f"these groups ({', '.join(f'{g}: {d}' for g, d in GROUPS.items())})")
    what.add_argument("--failed-only", action="store_true", help="rerun the tracks whose "
                      "JSON in --out records a failure (status fail, or unreadable)")
    parser.add_argument("--profile", help=f"one of {', '.join(PROFILES)} (quick, the "
                        "default: CPU, CI-sized; full: more examples and seeds)")
    parser.add_argument("--out", default="results", type=Path, help="results directory "
                        "(default: results/)")
    parser.add_argument("--seed", help=f"seed for torch, numpy and hypothesis, 0 to {MAX_SEED} "
                        "(default 0; --failed-only: the run's)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument("--badges", type=Path, metavar="DIR", help="also write, from the JSON "
                        "of the tracks run, one SVG badge per track, summary.svg and "
                        "CERTIFICATE.md/.html into DIR")
    parser.add_argument("--template", type=Path, metavar="DIR", help="with --badges: Jinja2 "
                        "templates certificate.md.j2 and/or certificate.html.j2 that restyle "
                        "the certificate (start from tracks/templates/)")
    parser.add_argument("--model", metavar="MODULE:FACTORY", help="certify your own model: "
                        "FACTORY() (in package.module or path/to/file.py) returns an "
                        "eqprop_core.LoopedMLP (or subclass); the tracks hold it fixed and draw "
                        "everything else; tracks that cannot take it are skipped with the reason "
                        "(protocol: properties/fixed_model.py)")
    parser.add_argument("--system", metavar="MODULE:FACTORY", help="certify your own EqProp "
                        "code: FACTORY() returns an object with params, init_state, step, cost "
                        "(and optionally energy, ep_gradient, free_phase, lipschitz, sample); "
                        "the tracks check it against a witness that calls only step, cost and "
                        "energy (protocol: properties/system.py)")
    parser.add_argument("--system-batch", default="8", metavar="B", help="samples the "
                        "--system checks certify on (default 8)")
    parser.add_argument("--max-hidden", default=str(MAX_HIDDEN), metavar="N", help="refuse a "
                        f"--model wider than N hidden units (default {MAX_HIDDEN}: the witness "
                        "costs ~n^3 per drawn example)")
    parser.add_argument("--quiet", action="store_true", help="one line per track")
    parser.add_argument("--jobs", default=os.environ.get(JOBS_VARIABLE, "auto"), metavar="N",
                        help="tracks run at once, each in its own worker process (default "
                        f"${JOBS_VARIABLE} or auto: one per core; 1 on CUDA and with Ray). "
                        "Every track seeds itself and runs on its own thread count, so the "
                        "records are those of --jobs 1")
    parser.add_argument("--export", nargs="+", default=[], metavar="FORMAT", help="also write "
                        "every training run's per-epoch history (tracks 17-22, 25-28) under "
                        "OUT/runs/track-NN/<arm>/: csv (one row per epoch) and/or tensorboard "
                        f"(event files; {TENSORBOARD_INSTALL})")
    matrix = parser.add_argument_group(
        "dataset benchmarks (tracks 25-28)", "each training run is a cell, cached in "
        "OUT/cells/track-NN/: rerunning a command computes only the missing cells")
    matrix.add_argument("--setup", metavar="FILE", help="a setup TOML (sizes, width, epochs, "
                        "seeds, rate grid, phases, variants, SN arms) instead of the profile's; "
                        "the built-in ones are tracks/setups/quick.toml and full.toml")
    matrix.add_argument("--executor", default="serial", choices=EXECUTORS, help="serial (the "
                        "default: in this process) or ray (Ray core tasks on a local instance, "
                        f"or on the cluster at $RAY_ADDRESS / --ray-address; {RAY_INSTALL})")
    matrix.add_argument("--ray-address", metavar="ADDR", help="an existing Ray cluster "
                        "(default $RAY_ADDRESS; unset: a local instance started on demand)")
    matrix.add_argument("--workers", metavar="N", help="CPUs of the local Ray instance "
                        "(default: all)")
    matrix.add_argument("--gpus-per-cell", default="0", metavar="F", help="GPUs per cell, "
                        "fractions share one (Ray's fractional scheduling; default 0)")
    matrix.add_argument("--fresh", action="store_true", help="ignore cached cells (they are "
                        "rewritten)")
    return parser


def shown(value: object) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def print_result(result: TrackResult, quiet: bool) -> None:
    r = result.record
    mark = {"pass": "CERTIFIED", "fail": "FAILED", "skip": "SKIPPED"}[r["status"]]
    print(f"track {r['track']:2d} · {r['name']} · {mark} ({r['duration_s']:.1f}s)")
    if quiet:
        if r["status"] == "fail":
            failed = [c["name"] for c in r["checks"] if not c["passed"]]
            print(f"    failed: {', '.join(failed) or r.get('error', 'negative control')}")
        return
    print(f"    claim: {r['claim']}")
    if r.get("model"):
        print(f"    model: {r['model']}")
    for line in r["notes"]:
        print(f"    {line}")
    for c in r["checks"]:
        print(f"    [{'ok' if c['passed'] else 'FAIL'}] {c['name']}: {shown(c['value'])} "
              f"(bound {c['bound']})")
    for c in r.get("claims", []):
        verdict = c.get("verdict", "confirmed" if c["holds"] else "refuted")
        print(f"    [claim {verdict if verdict != 'refuted' else 'REFUTED'}] {c['name']} "
              f"({c['source']}): "
              f"{shown(c['value'])} (stated {c['bound']})")
    control = r["negative_control"]
    if control:
        verdict = "failed as expected" if control["failed_as_expected"] else \
            "DID NOT FAIL — the check cannot tell good from bad"
        measured = ""
        if "value" in control:
            measured = f" {shown(control['value'])} (bound {control['bound']}) —"
        print(f"    negative control: {control['name']}:{measured} {verdict}")
    if r["skip_reason"]:
        print(f"    skipped: {r['skip_reason']}")
    if "error" in r:
        print(f"    error: {r['error']}")
    if r["artifacts"]:
        print(f"    artifacts: {', '.join(r['artifacts'])}")


def parse_seed(text: str) -> int:
    try:
        return check_seed(int(text))
    except ValueError:
        raise UsageError(f"invalid seed {text!r}: expected an integer in [0, {MAX_SEED}] "
                         "(numpy's range, 2**32 - 1)") from None


def check_model_size(model: FixedModel, limit_text: str) -> None:
    """UsageError for a `--model` wider than --max-hidden (the cost of the witness ~n³)."""
    try:
        limit = int(limit_text)
        if limit < 1:
            raise ValueError
    except ValueError:
        raise UsageError(f"invalid --max-hidden {limit_text!r}: expected a positive "
                         "integer") from None
    n = model.n_hidden
    if n > limit:
        raise UsageError(
            f"--model {model.source}: n_hidden {n} ({n * n / 1e6:.3g}M recurrent weights) is "
            f"above the limit {limit}: the witness's eigendecompositions and Jacobians cost "
            f"~n^3 per drawn example, {(n / limit) ** 3:.3g}x a model at the limit, and each "
            f"track draws dozens; to run it anyway pass --max-hidden {n}")


def load_cli_system(target: str, batch_text: str, seed: int) -> SystemUnderTest:
    """`--system`'s System (UsageError with the loader's one line on any protocol error)."""
    try:
        batch = int(batch_text)
        if not 1 <= batch <= 4096:
            raise ValueError
    except ValueError:
        raise UsageError(f"invalid --system-batch {batch_text!r}: expected an integer in "
                         "[1, 4096]") from None
    try:
        return load_system(target, batch=batch, seed=seed)
    except ValueError as err:
        raise UsageError(str(err)) from None


def matrix_options(args: argparse.Namespace) -> MatrixOptions:
    """The benchmark options (UsageError, one line, for a bad value, an unreadable setup file,
    or --executor ray without Ray)."""
    try:
        workers = None if args.workers is None else int(args.workers)
    except ValueError:
        raise UsageError(f"invalid --workers {args.workers!r}: expected a positive "
                         "integer") from None
    try:
        gpus = float(args.gpus_per_cell)
    except ValueError:
        raise UsageError(f"invalid --gpus-per-cell {args.gpus_per_cell!r}: expected a "
                         "number") from None
    try:
        options = MatrixOptions(args.executor, args.ray_address, workers, gpus,
                                fresh=args.fresh, setup=args.setup)
        if options.setup is not None:
            load_setup(options.setup)
        if options.executor == "ray":
            ray_module()
    except ValueError as err:
        raise UsageError(str(err)) from None
    return options


def rerun_settings(args: argparse.Namespace) -> tuple[int, str]:
    """Seed and profile of the run `--failed-only` reopens; UsageError if the options given
    differ (a directory holds one run)."""
    path = args.out / MANIFEST
    try:
        manifest = read_manifest(path)
    except ValueError as err:
        raise UsageError(str(err)) from None
    for option, given, recorded in (("--seed", args.seed, manifest["seed"]),
                                    ("--profile", args.profile, manifest["profile"])):
        if given is not None and given != str(recorded):
            raise UsageError(f"--failed-only reruns inside run {manifest['run_id'][:12]} of "
                             f"{path}, recorded with {option} {recorded}; {option} {given} "
                             "would mix two runs (omit it, or use another --out)")
    return manifest["seed"], manifest["profile"]


def main(argv: Sequence[str] | None = None, prog: str = "python -m tracks.run") -> int:
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
        implemented = all_tracks()
        if args.profile is not None and args.profile not in PROFILES:
            raise UsageError(f"unknown profile {args.profile!r}; choose one of "
                             f"{', '.join(PROFILES)}")
        if args.list:
            for n, t in implemented.items():
                print(f"{n:2d}  {t.name:<32s} group {t.group} ({GROUPS[t.group]})")
            return 0
        if args.failed_only:
            numbers = failed_tracks(args.out, implemented)
            seed, profile = rerun_settings(args)
        else:
            seed = parse_seed("0" if args.seed is None else args.seed)
            profile = args.profile or "quick"
        device = resolve_device(args.device)
        matrix = matrix_options(args)
        try:
            exports = check_formats(args.export)
        except ValueError as err:
            raise UsageError(str(err)) from None
        model = None
        if args.model is not None:
            try:
                model = load_fixed_model(args.model, seed)
            except ValueError as err:
                raise UsageError(str(err)) from None
            check_model_size(model, args.max_hidden)
        system = None
        if args.system is not None:
            if model is not None:
                raise UsageError("give --model or --system, not both")
            system = load_cli_system(args.system, args.system_batch, seed)
        if args.all:
            numbers = list(implemented)
        elif args.group:
            numbers = select_groups(args.group, implemented)
        elif args.failed_only:
            if not numbers:
                print(f"no failed tracks recorded in {args.out}/ — nothing to rerun")
                return 0
        else:
            numbers = parse_track_numbers(args.track, implemented)
        jobs = resolve_jobs(args.jobs, len(numbers), device, matrix)
        if args.badges is not None:
            writable_directory(args.badges, "--badges")
        if args.template is not None:
            if args.badges is None:
                raise UsageError("--template restyles the certificate: give --badges DIR too")
            environments(args.template)  # ValueError: not a directory
        if args.failed_only:
            run = resume_run(args.out, numbers, model=model or system)
        else:
            run = start_run(args.out, seed=seed, profile=profile, device=device,
                            model=model or system, tracks=numbers)
    except (UsageError, ValueError) as err:  # ValueError: --out, --badges, the lock, a record
        print(f"tracks.run: error: {err}", file=sys.stderr)
        return 2
    for notice in run.notices:
        print(f"tracks.run: note: {notice}", file=sys.stderr)
    statuses = []
    try:
        with run:
            if jobs > 1:
                job = Job(profile, seed, device, run.out_dir, run.run_id, matrix, tuple(exports),
                          args.model, args.system,
                          int(args.system_batch) if system is not None else 8)
                results: Iterator[TrackResult] = run_parallel(numbers, jobs, job, run, model,
                                                              system)
                print(f"tracks.run: {len(numbers)} tracks in {jobs} worker processes (--jobs)",
                      file=sys.stderr)
            else:
                results = (run_track(n, profile=profile, seed=seed, device=device, model=model,
                                     run=run, system=system, matrix=matrix, exports=exports)
                           for n in numbers)
            for result in results:
                print_result(result, args.quiet)
                statuses.append(result.status)
            run.settle()
            passed, failed, skipped = (statuses.count(s) for s in ("pass", "fail", "skip"))
            subject = f" for {(model or system)!r}" if (model or system) is not None else ""
            print(f"{passed} certified, {failed} failed, {skipped} skipped{subject} — results "
                  f"in {args.out}/ (run {run.run_id})")
            if args.badges is not None:
                written = certify(args.out, args.badges, numbers, template_dir=args.template)
                print(f"badges and certificate ({len(written)} files) in {args.badges}/")
    except KeyboardInterrupt:
        done = run.manifest["completed"]
        print(f"tracks.run: interrupted: {len(done)} of {len(run.manifest['tracks'])} tracks "
              f"completed; {args.out}/{MANIFEST} marks run {run.run_id[:12]} interrupted "
              f"(--failed-only --out {args.out} finishes it)", file=sys.stderr)
        return 130
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
