"""Run tracks at many seeds: `python -m tracks.sweep --seeds 0-19 --group A B C`.

A certificate that holds at seed 0 and fails at seed 1 certifies the seed, not the property. The
sweep runs every selected track at every seed, each seed as one ordinary runner invocation
(`python -m tracks.run --seed S --out OUT/seed-SS`, so a sweep cell is exactly what a user gets
from the runner), and writes

- `OUT/seed-SS/`     that seed's records, plots and manifest, as the runner writes them;
- `OUT/sweep.json`   {"seeds", "tracks", "profile", "cells": {track: {seed: status}},
                      "failures": {track: {seed: [failed check names]}}, "wall_s", ...};
- `OUT/SWEEP.md`     the table track × seed (✓ certified, ✗ failed, – skipped), "certified at
                     k/n seeds" per track, and the failed checks of each failed cell.

`--jobs N` runs N seeds at once (separate processes, each seed's tracks one after another; each
track keeps its own thread limit); with `--jobs 1` each seed's runner spreads its tracks over
the cores (`tracks.run --jobs auto`). Exit status: 0 every cell certified or skipped, 1 some
cell failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .context import PROFILES
from .manifest import MAX_SEED, writable_directory
from .records import atomic_write_json, atomic_write_text
from .registry import all_tracks
from .report import certify
from .run import OneLineParser, UsageError, parse_track_numbers, select_groups

MARK = {"pass": "✓", "fail": "✗", "skip": "–", "missing": "?"}


def parse_seeds(tokens: Sequence[str]) -> list[int]:
    """'0-19', '3', '1,5,7' → seeds in order without repeats; UsageError naming a bad token."""
    seeds: list[int] = []
    for token in (part for t in tokens for part in t.split(",") if part):
        lo, sep, hi = token.partition("-")
        try:
            span = range(int(lo), int(hi) + 1) if sep else [int(token)]
        except ValueError:
            raise UsageError(f"invalid seed {token!r}: expected a number like 3 or a range like "
                             "0-19") from None
        for seed in span:
            if not 0 <= seed <= MAX_SEED:
                raise UsageError(f"invalid seed {seed}: seeds lie in 0..{MAX_SEED}")
            if seed not in seeds:
                seeds.append(seed)
    if not seeds:
        raise UsageError(f"empty seed range {list(tokens)!r}")
    return seeds


def seed_dir(out: Path, seed: int) -> Path:
    return out / f"seed-{seed:02d}"


def run_seed(seed: int, numbers: Sequence[int], *, out: Path, profile: str,
             model: str | None, echo: threading.Lock, system: str | None = None,
             track_jobs: str = "auto") -> int:
    """One runner invocation for `seed`; its one-line-per-track output is echoed with the seed.
    `track_jobs`: the runner's --jobs (1 when the sweep itself runs seeds at once)."""
    command = [sys.executable, "-m", "tracks.run", "--track", *map(str, numbers),
               "--seed", str(seed), "--profile", profile, "--out", str(seed_dir(out, seed)),
               "--quiet", "--jobs", track_jobs]
    if model is not None:
        command += ["--model", model]
    if system is not None:
        command += ["--system", system]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert process.stdout is not None
    for line in process.stdout:
        with echo:
            print(f"[seed {seed}] {line.rstrip()}", flush=True)
    return process.wait()


def read_cells(out: Path, seeds: Sequence[int], numbers: Sequence[int]
               ) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, list[str]]]]:
    """(status per track and seed, failed check names per failed cell) from the records."""
    cells: dict[str, dict[str, str]] = {str(n): {} for n in numbers}
    failures: dict[str, dict[str, list[str]]] = {}
    for seed in seeds:
        for n in numbers:
            path = seed_dir(out, seed) / f"track-{n:02d}.json"
            try:
                record = json.loads(path.read_text())
                status = record["status"]
            except (OSError, ValueError, KeyError, TypeError):
                status, record = "missing", {}
            cells[str(n)][str(seed)] = status if status in MARK else "missing"
            if status != "pass" and status != "skip":
                failed = [c.get("name", "?") for c in record.get("checks", [])
                          if not c.get("passed")]
                control = record.get("negative_control") or {}
                if record and not control.get("failed_as_expected", True):
                    failed.append(f"negative control did not fail: {control.get('name')}")
                if record.get("error"):
                    failed.append(f"error: {record['error']}")
                failures.setdefault(str(n), {})[str(seed)] = failed or ["no record"]
    return cells, failures


def certified_count(row: dict[str, str]) -> tuple[int, int]:
    """(seeds certified, seeds run) of one track: skips count as neither."""
    ran = [s for s in row.values() if s != "skip"]
    return sum(s == "pass" for s in ran), len(ran)


def sweep_markdown(summary: dict[str, Any]) -> str:
    seeds = summary["seeds"]
    names = {int(n): t.name for n, t in all_tracks().items()}
    lines = [f"# Seed sweep: {len(summary['tracks'])} tracks × {len(seeds)} seeds "
             f"(profile {summary['profile']})", "",
             f"{summary['certified_cells']}/{summary['cells_run']} cells certified, "
             f"{summary['failed_cells']} failed, {summary['skipped_cells']} skipped; wall "
             f"time {summary['wall_s']:.0f} s.", "",
             "| track | name | certified at | " + " | ".join(str(s) for s in seeds) + " |",
             "|---|---|---|" + "---|" * len(seeds)]
    for n in summary["tracks"]:
        row = summary["cells"][str(n)]
        k, ran = certified_count(row)
        lines.append(f"| {n} | {names.get(n, '?')} | {k}/{ran} | "
                     + " | ".join(MARK[row[str(s)]] for s in seeds) + " |")
    if summary["failures"]:
        lines += ["", "## Failed cells", ""]
        for n, by_seed in summary["failures"].items():
            for seed, failed in by_seed.items():
                lines.append(f"- track {n}, seed {seed}: {'; '.join(failed)}")
    return "\n".join(lines) + "\n"


def build_parser(prog: str = "python -m tracks.sweep") -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog,
        description="Run tracks at many seeds and write the table track × seed (sweep.json, "
        "SWEEP.md): a certificate is evidence only if it holds beyond one seed.",
        epilog="examples:\n  python -m tracks.sweep --seeds 0-19 --group A B C --jobs 2\n"
        "  python -m tracks.sweep --seeds 1,5 --track 1 4\n"
        "exit status: 0 every cell certified or skipped, 1 a cell failed, 2 bad usage",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--track", nargs="+", metavar="N", help="track numbers or ranges (1-8)")
    what.add_argument("--group", nargs="+", metavar="G", help="every track of these groups")
    parser.add_argument("--seeds", nargs="+", default=["0-19"], metavar="S",
                        help="seeds: ranges and lists such as 0-19 or 1,5,7 (default 0-19)")
    parser.add_argument("--profile", default="quick", help=f"one of {', '.join(PROFILES)}")
    parser.add_argument("--out", default="sweep", type=Path, help="sweep directory (default "
                        "sweep/): one runner results directory per seed, sweep.json, SWEEP.md")
    parser.add_argument("--jobs", default="1", help="seeds run at once (default 1)")
    parser.add_argument("--model", metavar="MODULE:FACTORY", help="certify this model at every "
                        "seed (as the runner's --model)")
    parser.add_argument("--system", metavar="MODULE:FACTORY", help="certify this System at "
                        "every seed (as the runner's --system)")
    parser.add_argument("--badges", type=Path, metavar="DIR", help="also write badges and "
                        "CERTIFICATE.md/.html of the first seed's run into DIR, stating per "
                        "track 'certified at k/n seeds'")
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m tracks.sweep") -> int:
    try:
        args = build_parser(prog).parse_args(argv)
        implemented = all_tracks()
        numbers = (select_groups(args.group, implemented) if args.group
                   else parse_track_numbers(args.track, implemented))
        seeds = parse_seeds(args.seeds)
        if args.profile not in PROFILES:
            raise UsageError(f"unknown profile {args.profile!r}; choose one of "
                             f"{', '.join(PROFILES)}")
        if not args.jobs.isdigit() or int(args.jobs) < 1:
            raise UsageError(f"invalid --jobs {args.jobs!r}: expected a positive integer")
        if args.model is not None and args.system is not None:
            raise UsageError("give --model or --system, not both")
        writable_directory(args.out, "--out")
        if args.badges is not None:
            writable_directory(args.badges, "--badges")
    except (UsageError, ValueError) as err:
        print(f"tracks.sweep: error: {err}", file=sys.stderr)
        return 2
    print(f"sweep: tracks {', '.join(map(str, numbers))} at seeds "
          f"{', '.join(map(str, seeds))} ({len(numbers) * len(seeds)} cells, {args.jobs} at "
          f"once) into {args.out}/", flush=True)
    started = time.perf_counter()
    echo = threading.Lock()
    # Seeds at once take the cores; one seed at a time lets its runner spread the tracks.
    track_jobs = "1" if int(args.jobs) > 1 else os.environ.get("EQPROP_JOBS", "auto")
    with ThreadPoolExecutor(max_workers=int(args.jobs)) as pool:
        codes = list(pool.map(lambda s: run_seed(s, numbers, out=args.out, profile=args.profile,
                                                 model=args.model, echo=echo,
                                                 system=args.system, track_jobs=track_jobs),
                              seeds))
    if 2 in codes:  # the runner refused its arguments: no cell ran for that seed
        print("tracks.sweep: error: the runner refused a seed's run (see its line above)",
              file=sys.stderr)
        return 2
    cells, failures = read_cells(args.out, seeds, numbers)
    statuses = [s for row in cells.values() for s in row.values()]
    summary = {
        "seeds": seeds, "tracks": numbers, "profile": args.profile,
        "model": args.model if args.system is None else args.system,
        "cells": cells, "failures": failures, "wall_s": round(time.perf_counter() - started, 1),
        "cells_run": sum(s != "skip" for s in statuses),
        "certified_cells": statuses.count("pass"),
        "failed_cells": sum(s in ("fail", "missing") for s in statuses),
        "skipped_cells": statuses.count("skip"),
    }
    atomic_write_json(args.out / "sweep.json", summary)
    table = sweep_markdown(summary)
    atomic_write_text(args.out / "SWEEP.md", table)
    print(table)
    if args.badges is not None:
        # A missing record certifies nothing: it is a failed cell for the certificate too.
        reported = {**summary, "cells": {n: {seed: "fail" if status == "missing" else status
                                             for seed, status in row.items()}
                                         for n, row in cells.items()}}
        try:
            written = certify(seed_dir(args.out, seeds[0]), args.badges, numbers,
                              sweep=reported)
        except ValueError as err:
            print(f"tracks.sweep: error: {err}", file=sys.stderr)
            return 2
        print(f"badges and certificate ({len(written)} files) in {args.badges}/")
    return 1 if summary["failed_cells"] else 0


if __name__ == "__main__":
    sys.exit(main())
