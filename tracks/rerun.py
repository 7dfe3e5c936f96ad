"""Same seed ⇒ identical canonical JSON: rerun tracks in this interpreter (`run_in_process`) or a
fresh one (`run_in_fresh_interpreter`) and compare their records byte for byte
(`compare_records`).

Each `track-NN.json` is reduced to its canonical form (`tracks.context.canonical_bytes`: the
"environment" block, the run id and every timing field removed, then `json.dumps(sort_keys=True)`)
and the two byte strings are compared, with their sha256. JSON floats are written by `repr`, so
equal bytes mean bit-identical numbers. Track 24 certifies this for representative tracks.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from properties.global_rng import isolated_global_state
from tracks.context import DROPPED_KEYS, canonical_bytes, canonical_record
from tracks.records import read_record
from tracks.run import run_track

REPO = Path(__file__).resolve().parents[1]
NESTED_PROFILE = "quick"  # the nested tracks' profile, whatever track 24's own
FRESH_TIMEOUT_S = 600


def read_records(out_dir: Path, numbers: Sequence[int]) -> dict[int, dict[str, Any]]:
    records = {}
    for n in numbers:
        path = out_dir / f"track-{n:02d}.json"
        if not path.exists():
            raise RuntimeError(f"the run wrote no {path.name} in {out_dir}")
        records[n] = read_record(path)  # of the record schema, or RecordError naming it
    return records


def run_in_process(numbers: Sequence[int], seed: int, out_dir: Path) -> dict[int, dict[str, Any]]:
    """The tracks run through `run_track` in this interpreter, their JSON read back from disk."""
    with isolated_global_state():
        for n in numbers:
            run_track(n, profile=NESTED_PROFILE, seed=seed, device="cpu", out_dir=out_dir)
    return read_records(out_dir, numbers)


def run_in_fresh_interpreter(numbers: Sequence[int], seed: int,
                             out_dir: Path) -> dict[int, dict[str, Any]]:
    """The same tracks by `python -m tracks.run` in a new interpreter (own hash seed)."""
    command = [sys.executable, "-m", "tracks.run", "--track", *map(str, numbers), "--seed",
               str(seed), "--profile", NESTED_PROFILE, "--device", "cpu", "--out",
               str(out_dir), "--quiet", "--jobs", "1"]  # one fresh interpreter, no workers
    env = {**os.environ, "PYTHONHASHSEED": "random"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=FRESH_TIMEOUT_S, check=False)
    if done.returncode not in (0, 1):  # 1: a nested track failed — still a record to compare
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: "
                           f"{(done.stderr or done.stdout)[-2000:]}")
    return read_records(out_dir, numbers)


@dataclass(frozen=True)
class RecordComparison:
    """Two runs' records of one track: canonical bytes equal? (with sha256 and sizes)."""

    number: int
    same: bool
    sha256: tuple[str, str]
    size: tuple[int, int]
    first_difference: int | None  # byte offset, None when equal
    removed: list[str]
    statuses: tuple[str, str]
    errors: tuple[str | None, str | None]

    def to_json(self) -> dict[str, Any]:
        return {"track": self.number, "same": self.same, "sha256": list(self.sha256),
                "bytes": list(self.size), "first_difference": self.first_difference,
                "timing_fields_removed": self.removed, "status": list(self.statuses)}


def compare_records(first: Mapping[int, Mapping[str, Any]], second: Mapping[int, Mapping[str, Any]],
                    *, drop: Sequence[str] = DROPPED_KEYS) -> list[RecordComparison]:
    out = []
    for n in first:
        a, b = (canonical_bytes(r[n], drop=drop) for r in (first, second))
        differ = next((i for i, (p, q) in enumerate(zip(a, b)) if p != q),
                      None if len(a) == len(b) else min(len(a), len(b)))
        out.append(RecordComparison(
            n, a == b, (hashlib.sha256(a).hexdigest(), hashlib.sha256(b).hexdigest()),
            (len(a), len(b)), differ, canonical_record(first[n], drop=drop)[1],
            (first[n]["status"], second[n]["status"]),
            (first[n].get("error"), second[n].get("error"))))
    return out
