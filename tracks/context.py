"""What a track records while it runs, and the JSON result it becomes.

A track calls `ctx.check(evidence)` for each property it measures and `ctx.negative_control(...)`
exactly once with the evidence of a case that must fail. Status: `pass` iff every check passed
*and* the negative control failed as expected; a missing control is a failure, not a pass.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import numpy as np
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from properties.evidence import Evidence
from properties.search import Search, SearchOutcome

from .provenance import provenance
from .records import SCHEMA_VERSION, atomic_write_json

PROFILES = ("quick", "full")
T = TypeVar("T")


class SkipTrack(Exception):
    """Raised by `ctx.skip(reason)`: the track cannot run here (e.g. data absent)."""


def jsonable(value: Any) -> Any:
    """Numbers, lists, dicts and strings only; non-finite floats become 'nan' / 'inf' strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else repr(value)
    if value is None or isinstance(value, str):
        return value
    return repr(value)


# A timing field: seconds, which differ between identical runs. `…_by_s` / `…_over_s` keys are
# indexed by, or divided by, a slope s (tracks 7 and 8): data, not timings.
TIMING_SUFFIX = "_s"
NOT_SECONDS = ("_by_s", "_over_s")
# Not results: the environment (versions, platform) and the run id (a fresh uuid per run).
DROPPED_KEYS = ("environment", "run_id", "execution", "exports")  # how it ran, not what it found


def is_timing(key: str, value: Any) -> bool:
    """A timing field: a key ending in `_s` (seconds) holding a number or a mapping of numbers;
    not `…_by_s` / `…_over_s` (indexed by, or divided by, a slope s: tracks 7 and 8)."""
    if (not key.endswith(TIMING_SUFFIX) or key.endswith(NOT_SECONDS)
            or isinstance(value, bool)):
        return False
    if isinstance(value, (int, float)):
        return True
    return (isinstance(value, Mapping) and bool(value)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                    for v in value.values()))


def canonical_record(record: Mapping[str, Any], *, drop: Sequence[str] = DROPPED_KEYS
                     ) -> tuple[dict[str, Any], list[str]]:
    """(record without `drop`ped top-level keys and timing fields at any depth, removed paths)."""
    removed: list[str] = []

    def strip(value: Any, path: str) -> Any:
        if isinstance(value, Mapping):
            kept = {}
            for key, item in value.items():
                if is_timing(str(key), item):
                    removed.append(f"{path}{key}")
                else:
                    kept[key] = strip(item, f"{path}{key}.")
            return kept
        if isinstance(value, list):
            return [strip(item, f"{path}[].") for item in value]
        return value

    top = {k: v for k, v in record.items() if k not in drop}
    return strip(top, ""), sorted(set(removed))


def canonical_bytes(record: Mapping[str, Any], *, drop: Sequence[str] = DROPPED_KEYS) -> bytes:
    """The canonical serialization: timing, environment and run id removed, keys sorted, no
    spaces."""
    stripped, _ = canonical_record(record, drop=drop)
    return json.dumps(stripped, sort_keys=True, separators=(",", ":"),
                      allow_nan=False).encode()


def fingerprint(record: Mapping[str, Any], *, drop: Sequence[str] = DROPPED_KEYS) -> str:
    """sha256 of the canonical bytes."""
    return hashlib.sha256(canonical_bytes(record, drop=drop)).hexdigest()



def environment(device: str) -> dict[str, str]:
    import hypothesis
    import scipy
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "hypothesis": hypothesis.__version__,
        "platform": platform.platform(),
        "device": device,
        **provenance(),
    }


@dataclass
class TrackContext:
    number: int
    name: str
    profile: str = "quick"
    seed: int = 0
    device: str = "cpu"
    out_dir: Path | None = None
    checks: list[Evidence] = field(default_factory=list)
    control: dict[str, Any] | None = None
    artifacts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    model: Any = None  # a properties.fixed_model.FixedModel under `--model`, else None
    system: Any = None  # a properties.system.SystemUnderTest under `--system`, else None
    matrix: Any = None  # tracks.executors.MatrixOptions of a dataset benchmark (None: serial)
    execution: dict[str, Any] | None = None  # how a benchmark's cells ran (executor, cached)
    exports: tuple[str, ...] = ()  # training trajectories to write (tracks.exports.FORMATS)
    exporter: Any = None  # the tracks.exports.RunExporter, made on the first export_run
    # The run (tracks.manifest) whose record this becomes; a context outside any run gets an
    # id of its own (its record is one run of one track).
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; choose one of {PROFILES}")

    @property
    def quick(self) -> bool:
        return self.profile == "quick"

    def examples(self, quick: int, full: int) -> int:
        """How many hypothesis examples a search gets under this profile."""
        return self.by_profile(quick, full)

    def by_profile(self, quick: T, full: T) -> T:
        """`quick` under the quick profile, `full` under the full one: the one place a track's
        sizes (examples, seeds, epochs, grids) depend on the profile."""
        return quick if self.quick else full

    def models(self, default: SearchStrategy) -> SearchStrategy:
        """The models a certification check draws: the user's model under `--model`
        (`st.just`, everything else still drawn), else `default` (the suite's own)."""
        return default if self.model is None else st.just(self.model)

    def check(self, evidence: Evidence) -> Evidence:
        self.checks.append(evidence)
        return evidence

    def search(self, draws: SearchStrategy, spec: Search, examples: int, *,
               details: Callable[[], Mapping[str, Any]] | None = None,
               name: str | None = None) -> SearchOutcome:
        """Run `spec` over `draws` (at this run's seed) and record its check: the worst value
        against the spec's bound, with the search's details and `details()` (evaluated after
        the search, when it can read what the search measured); `name` overrides the check's
        name (a spec shared by several searches)."""
        out = spec.run(draws, max_examples=examples, seed=self.seed)
        extra = dict(details()) if details is not None else {}
        self.check(spec.bound.check(name or spec.name, out.worst, **extra, **out.details()))
        return out

    def negative_control(self, evidence: Evidence, **details: Any) -> None:
        """Record the control: `evidence` states the property on a case where it must fail."""
        if self.control is not None:
            raise RuntimeError(f"track {self.number} recorded two negative controls")
        self.control = {
            "name": evidence.name,
            "failed_as_expected": not evidence.passed,
            "value": evidence.value,
            "bound": evidence.bound,
            "details": {**evidence.details, **details},
        }

    def claim(self, evidence: Evidence, source: str, *, verdict: str | None = None,
              **details: Any) -> None:
        """Record the verdict on a *stated* figure (from the spec, an issue or the write-up):
        `evidence` holds the measurement against the stated bound. A refuted claim is a
        result, not a failure of the track — the checks are what certify the measurement.
        `verdict`: "confirmed" | "refuted" | "inconclusive" (default: from evidence.passed)."""
        if verdict is None:
            verdict = "confirmed" if evidence.passed else "refuted"
        if verdict not in ("confirmed", "refuted", "inconclusive"):
            raise ValueError(f"unknown verdict {verdict!r}")
        self.claims.append({"name": evidence.name, "source": source, "holds": evidence.passed,
                            "verdict": verdict, "value": evidence.value,
                            "bound": evidence.bound, "details": {**evidence.details, **details}})

    def note(self, line: str) -> None:
        """A line of the human-readable account printed by the runner."""
        self.notes.append(line)

    def skip(self, reason: str) -> NoReturn:
        raise SkipTrack(reason)

    def export_run(self, arm: str, run: Any) -> None:
        """Write a training run's per-epoch history (`tracks.exports`) in the formats asked
        for (`--export`), grouped by track and `arm`; nothing without --export or out_dir."""
        if not self.exports or self.out_dir is None:
            return
        if self.exporter is None:
            from .exports import RunExporter

            self.exporter = RunExporter(self.out_dir / "runs" / f"track-{self.number:02d}",
                                        self.exports)
        self.exporter.export(arm, run)

    def artifact_path(self, suffix: str) -> Path | None:
        """Where to save a plot or table next to the JSON (None when no out_dir)."""
        if self.out_dir is None:
            return None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"track-{self.number:02d}-{suffix}"
        self.artifacts.append(path.name)
        return path


@dataclass
class TrackResult:
    record: dict[str, Any]

    @property
    def status(self) -> str:
        return self.record["status"]

    def write(self, out_dir: Path) -> Path:
        """out_dir/track-NN.json, atomically: a reader never sees a partial record."""
        out_dir.mkdir(parents=True, exist_ok=True)
        return atomic_write_json(out_dir / f"track-{self.record['track']:02d}.json", self.record)


def finish(ctx: TrackContext, group: str, claim: str, started: float,
           error: str | None = None, skip_reason: str | None = None) -> TrackResult:
    """Turn a context into the JSON record of the runner contract."""
    if skip_reason is not None:
        status = "skip"
    elif error is not None or ctx.control is None or not ctx.checks:
        status = "fail"
    else:
        ok = all(c.passed for c in ctx.checks) and ctx.control["failed_as_expected"]
        status = "pass" if ok else "fail"
    control = ctx.control
    if control is None and skip_reason is None:
        control = {"name": "missing", "failed_as_expected": False,
                   "details": {"reason": "the track recorded no negative control"}}
    record = {
        "schema_version": SCHEMA_VERSION,
        "track": ctx.number,
        "name": ctx.name,
        "group": group,
        "claim": claim,
        "status": status,
        "profile": ctx.profile,
        "seed": ctx.seed,
        "run_id": ctx.run_id,
        "duration_s": round(time.perf_counter() - started, 3),
        "checks": [c.to_json() for c in ctx.checks],
        "negative_control": control,
        "environment": environment(ctx.device),
        "skip_reason": skip_reason,
        "artifacts": ctx.artifacts,
        "notes": ctx.notes,
        "claims": ctx.claims,
    }
    if ctx.model is not None:
        record["model"] = repr(ctx.model)
    if ctx.system is not None:
        record["model"] = repr(ctx.system)
    if ctx.execution is not None:
        record["execution"] = ctx.execution
    if ctx.exporter is not None:
        record["exports"] = {"formats": list(ctx.exports), "files": len(ctx.exporter.written),
                             "folder": str(ctx.exporter.root)}
    if ctx.results:  # a benchmark's tables, rendered to markdown from this JSON by tracks.tables
        record["results"] = ctx.results
    if error is not None:
        record["error"] = error
    return TrackResult(jsonable(record))
