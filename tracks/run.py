"""Run certification tracks: `python -m tracks.run --track 1 2 3 --out results`.

Exit status: 0 every selected track certified (skips allowed), 1 a track failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import NoReturn

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from properties.fixed_model import FixedModel, load_fixed_model

from .context import PROFILES, SkipTrack, TrackContext, TrackResult, finish
from .registry import GROUPS, Track, all_tracks
from .report import certify
from .tables import table_name, write_table


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


def run_track(
    number: int, *, profile: str = "quick", seed: int = 0, device: str = "cpu",
    out_dir: Path | None = None, model: FixedModel | None = None,
) -> TrackResult:
    """Run one track and return its JSON record (written to out_dir/track-NN.json if given).

    `model`: certify this user's model (`--model`) instead of the suite's drawn ones; a track
    that cannot, or whose requirements the model misses, is skipped with the reason.
    """
    tracks = all_tracks()
    if number not in tracks:
        raise ValueError(f"unknown track {number}; implemented: {format_numbers(tracks)}")
    spec = tracks[number]
    ctx = TrackContext(number, spec.name, profile=profile, seed=seed, device=device,
                       out_dir=out_dir, model=model)
    refused = None if model is None else model_skip_reason(spec, model)
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
            spec.run(ctx)
        result = finish(ctx, spec.group, spec.claim, started)
    except SkipTrack as skip:
        result = finish(ctx, spec.group, spec.claim, started, skip_reason=str(skip))
    except Exception as exc:  # a crash is a failed track with its reason, never a pass
        result = finish(ctx, spec.group, spec.claim, started,
                        error=f"{type(exc).__name__}: {exc}")
        result.record["traceback"] = traceback.format_exc()
    finally:
        torch.set_num_threads(threads)
    if out_dir is not None:
        if "results" in result.record:
            result.record["artifacts"].append(table_name(number))
        path = result.write(out_dir)
        if "results" in result.record:
            write_table(path)  # from the JSON just written, so the table cannot disagree with it
    return result


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
    """Tracks whose DIR/track-NN.json says status "fail" (or cannot be read as a record)."""
    if not out_dir.is_dir():
        raise UsageError(f"--failed-only reads earlier results, but {out_dir}/ does not exist "
                         "(run the tracks first, or pass --out DIR)")
    failed = []
    for n in implemented:
        path = out_dir / f"track-{n:02d}.json"
        if not path.exists():
            continue
        try:
            status = json.loads(path.read_text()).get("status")
        except (ValueError, AttributeError):
            status = "fail"  # a corrupt record certifies nothing: rerun it
        if status == "fail":
            failed.append(n)
    return failed


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse prints usage + two lines; we, one
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m tracks.run",
        description="Certify EqProp properties: each track measures a falsifiable claim against "
        "an independent reference and runs a negative control that must fail. Writes one "
        "JSON per track (DIR/track-NN.json).",
        epilog="examples:\n  python -m tracks.run --list\n  python -m tracks.run --all\n"
        "  python -m tracks.run --track 1 3 5-8 --out results --seed 1\n"
        "  python -m tracks.run --group A B\n"
        "  python -m tracks.run --failed-only --out results\n"
        "  python -m tracks.run --all --badges results/badges\n"
        "  python -m tracks.run --model examples.user_model:build --track 1-16\n"
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
    parser.add_argument("--profile", default="quick", help=f"one of {', '.join(PROFILES)} "
                        "(quick: CPU, CI-sized; full: more examples and seeds)")
    parser.add_argument("--out", default="results", type=Path, help="results directory "
                        "(default: results/)")
    parser.add_argument("--seed", default="0", help="seed for torch, numpy and hypothesis "
                        "(default 0)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument("--badges", type=Path, metavar="DIR", help="also write, from the JSON "
                        "of the tracks run, one SVG badge per track, summary.svg and "
                        "CERTIFICATE.md/.html into DIR")
    parser.add_argument("--model", metavar="MODULE:FACTORY", help="certify your own model: "
                        "FACTORY() (in package.module or path/to/file.py) returns an "
                        "eqprop_core.LoopedMLP (or subclass); the tracks hold it fixed and draw "
                        "everything else; tracks that cannot take it are skipped with the reason "
                        "(protocol: properties/fixed_model.py)")
    parser.add_argument("--quiet", action="store_true", help="one line per track")
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        implemented = all_tracks()
        if args.profile not in PROFILES:
            raise UsageError(f"unknown profile {args.profile!r}; choose one of "
                             f"{', '.join(PROFILES)}")
        if args.list:
            for n, t in implemented.items():
                print(f"{n:2d}  {t.name:<32s} group {t.group} ({GROUPS[t.group]})")
            return 0
        try:
            seed = int(args.seed)
        except ValueError:
            raise UsageError(f"invalid seed {args.seed!r}: expected an integer") from None
        if seed < 0:
            raise UsageError(f"invalid seed {seed}: must be >= 0")
        device = resolve_device(args.device)
        model = None
        if args.model is not None:
            try:
                model = load_fixed_model(args.model, seed)
            except ValueError as err:
                raise UsageError(str(err)) from None
        if args.all:
            numbers = list(implemented)
        elif args.group:
            numbers = select_groups(args.group, implemented)
        elif args.failed_only:
            numbers = failed_tracks(args.out, implemented)
            if not numbers:
                print(f"no failed tracks recorded in {args.out}/ — nothing to rerun")
                return 0
        else:
            numbers = parse_track_numbers(args.track, implemented)
    except UsageError as err:
        print(f"tracks.run: error: {err}", file=sys.stderr)
        return 2
    statuses = []
    for n in numbers:
        result = run_track(n, profile=args.profile, seed=seed, device=device, out_dir=args.out,
                           model=model)
        print_result(result, args.quiet)
        statuses.append(result.status)
    passed, failed, skipped = (statuses.count(s) for s in ("pass", "fail", "skip"))
    subject = f" for {model!r}" if model is not None else ""
    print(f"{passed} certified, {failed} failed, {skipped} skipped{subject} — results in "
          f"{args.out}/")
    if args.badges is not None:
        written = certify(args.out, args.badges, numbers)
        print(f"badges and certificate ({len(written)} files) in {args.badges}/")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
