"""Training trajectories in the formats researchers already read: CSV and TensorBoard.

`python -m tracks.run --track 18 --export csv tensorboard` writes, for every training run of a
training track (17–22, 25–28), its per-epoch history — accuracy, loss, converged share, σ, L,
ρ and the run's own monitors — as

    OUT/runs/track-NN/<arm>/seed-S.csv        one row per recorded epoch (epoch 0: the start)
    OUT/runs/track-NN/<arm>/seed-S/events.*   a TensorBoard event file, one scalar per metric

so that `tensorboard --logdir OUT/runs` groups the runs by track and arm. A run whose
(arm, seed) was exported already in the same track (a control beside its arm, say) gets a
`-2`, `-3` … suffix, never overwrites. TensorBoard is an optional extra:
`pip install -e ".[tensorboard]"`; the CSV needs nothing.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from eqprop_core.train import TrainingRun
from tracks.records import atomic_write_text

FORMATS = ("csv", "tensorboard")
TENSORBOARD_INSTALL = 'pip install -e ".[tensorboard]"'
# The per-epoch fields that are not metrics of their own (the step, the run's constants).
NOT_SCALARS = ("epoch", "extra")
RUN_CONSTANTS = ("lr", "seed", "outcome")


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    """The formats, validated (ValueError naming a bad one, or TensorBoard not installed)."""
    chosen = tuple(dict.fromkeys(formats))
    for fmt in chosen:
        if fmt not in FORMATS:
            raise ValueError(f"--export {fmt!r}: choose from {', '.join(FORMATS)}")
    if "tensorboard" in chosen:
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise ValueError(f"--export tensorboard needs TensorBoard, which is not installed: "
                             f"{TENSORBOARD_INSTALL}") from None
    return chosen


def slug(text: str) -> str:
    """A file-name-safe form of an arm's name: 'EqProp (symmetric)' → 'EqProp_symmetric'."""
    cleaned = re.sub(r"[^\w.+-]+", "_", str(text), flags=re.UNICODE).strip("_.")
    return cleaned[:120] or "run"


def rows(run: TrainingRun) -> list[dict[str, Any]]:
    """One flat dict per recorded epoch: the EpochRecord fields, its monitors' extras, and the
    run's rate, seed and outcome (the same on every row)."""
    out = []
    for epoch in run.history:
        row: dict[str, Any] = {"epoch": epoch.epoch}
        for key, value in vars(epoch).items():
            if key not in NOT_SCALARS:
                row[key] = value
        for key, value in epoch.extra.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                row[key] = value
        row.update(lr=run.lr, seed=run.seed, outcome=run.outcome)
        out.append(row)
    return out


def csv_text(table: Sequence[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(key for row in table for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    for row in table:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return buffer.getvalue()


def write_tensorboard(folder: Path, table: Sequence[dict[str, Any]]) -> Path:
    """One event file under `folder`: every numeric metric of every row as a scalar at its
    epoch (tag `<metric>`; the run's rate and seed are in the folder's name and the CSV)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("events.out.tfevents.*"):
        stale.unlink()
    writer = EventFileWriter(str(folder))
    try:
        for row in table:
            values = [summary_pb2.Summary.Value(tag=key, simple_value=float(value))
                      for key, value in row.items()
                      if key not in ("epoch", *RUN_CONSTANTS) and isinstance(value, (int, float))
                      and not isinstance(value, bool) and math.isfinite(float(value))]
            writer.add_event(event_pb2.Event(step=int(row["epoch"]),
                                             summary=summary_pb2.Summary(value=values)))
    finally:
        writer.close()
    return next(folder.glob("events.out.tfevents.*"))


class RunExporter:
    """Writes the runs of one track under `root` (OUT/runs/track-NN) in `formats`."""

    def __init__(self, root: Path, formats: Sequence[str]) -> None:
        self.root, self.formats = root, tuple(formats)
        self.written: list[Path] = []
        self._seen: dict[tuple[str, int], int] = {}

    def export(self, arm: str, run: TrainingRun) -> list[Path]:
        name = slug(arm)
        count = self._seen[name, run.seed] = self._seen.get((name, run.seed), 0) + 1
        stem = f"seed-{run.seed}" + (f"-{count}" if count > 1 else "")
        table = rows(run)
        paths = []
        if "csv" in self.formats:
            (self.root / name).mkdir(parents=True, exist_ok=True)
            paths.append(atomic_write_text(self.root / name / f"{stem}.csv", csv_text(table)))
        if "tensorboard" in self.formats:
            paths.append(write_tensorboard(self.root / name / stem, table))
        self.written.extend(paths)
        return paths
