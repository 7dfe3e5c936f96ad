"""Where the cells of a dataset benchmark run: one seam, two executors, a cache in front.

- `SerialExecutor` (the default): each cell in this process, one after another.
- `RayExecutor` (`pip install -e .[ray]`): each cell a Ray core task on a local Ray instance
  started on demand, or on the cluster at `RAY_ADDRESS` / `--ray-address`; `gpus_per_cell`
  uses Ray's fractional GPU scheduling; a task whose worker dies is retried `max_retries` times
  (a diverged training run is a recorded outcome, never an error).

`CellRunner` puts the cache (`tracks.cells.CellCache`) in front of an executor: a cached cell
is never submitted, each finished one is written at once, and one bar reports the cells done,
in flight, cached and failed with an ETA from the finished ones.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from tracks.cells import CellCache, CellSpec, run_cell

RAY_INSTALL = 'pip install -e ".[ray]"'
EXECUTORS = ("serial", "ray")


@dataclass(frozen=True)
class MatrixOptions:
    """How a benchmark matrix runs (`python -m tracks.run` options of the same names)."""

    executor: str = "serial"
    ray_address: str | None = None
    workers: int | None = None  # local Ray instance: CPUs (default: all)
    gpus_per_cell: float = 0.0
    max_retries: int = 3
    fresh: bool = False
    setup: str | None = None  # a setup TOML replacing the profile's (tracks.setups)

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ValueError(f"executor {self.executor!r}: choose one of {', '.join(EXECUTORS)}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers {self.workers!r}: expected a positive integer")
        if not 0 <= self.gpus_per_cell <= 64:
            raise ValueError(f"gpus_per_cell {self.gpus_per_cell!r}: expected a number in "
                             "[0, 64] (fractions share a GPU)")
        if (self.ray_address or self.gpus_per_cell) and self.executor != "ray":
            raise ValueError("--ray-address and --gpus-per-cell need --executor ray")


class Executor(Protocol):
    name: str
    workers: int

    def submit(self, spec: CellSpec) -> None: ...

    def next_done(self) -> tuple[CellSpec, dict[str, Any]]: ...

    def close(self) -> None: ...


class SerialExecutor:
    """Cells in this process, in submission order."""

    name = "serial"
    workers = 1

    def __init__(self) -> None:
        self._queue: deque[CellSpec] = deque()

    def submit(self, spec: CellSpec) -> None:
        self._queue.append(spec)

    def next_done(self) -> tuple[CellSpec, dict[str, Any]]:
        spec = self._queue.popleft()
        return spec, run_cell(spec)

    def close(self) -> None:
        self._queue.clear()


def ray_module() -> Any:
    """`ray`, or ValueError with the install command."""
    try:
        import ray
    except ImportError:
        raise ValueError(f"--executor ray needs Ray, which is not installed: {RAY_INSTALL}"
                         ) from None
    return ray


class RayExecutor:
    """Cells as Ray core tasks, one CPU each (and `gpus_per_cell` GPUs)."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None,
                 gpus_per_cell: float = 0.0, max_retries: int = 3) -> None:
        ray = self._ray = ray_module()
        self._started = not ray.is_initialized()
        if self._started:
            address = address or os.environ.get("RAY_ADDRESS") or None
            ray.init(address=address, num_cpus=None if address else workers,
                     include_dashboard=False, log_to_driver=False,
                     logging_level="ERROR", configure_logging=True)
        self.workers = max(1, int(ray.available_resources().get("CPU", 1)))
        if workers is not None:
            self.workers = min(self.workers, workers)
        self._task = ray.remote(num_cpus=1, num_gpus=gpus_per_cell,
                                max_retries=max_retries)(run_cell)
        self._pending: dict[Any, CellSpec] = {}

    def submit(self, spec: CellSpec) -> None:
        self._pending[self._task.remote(dataclasses.asdict(spec))] = spec

    def next_done(self) -> tuple[CellSpec, dict[str, Any]]:
        ready, _ = self._ray.wait(list(self._pending), num_returns=1)
        spec = self._pending.pop(ready[0])
        try:
            return spec, self._ray.get(ready[0])
        except self._ray.exceptions.RayTaskError as err:  # the cell's own error, re-raised
            raise err.as_instanceof_cause() from None

    def close(self) -> None:
        for ref in self._pending:
            self._ray.cancel(ref, force=True)
        self._pending.clear()
        if self._started:
            self._ray.shutdown()


def make_executor(options: MatrixOptions) -> Executor:
    if options.executor == "ray":
        return RayExecutor(options.ray_address, options.workers, options.gpus_per_cell,
                           options.max_retries)
    return SerialExecutor()


class CellBar:
    """One bar over the cells: done / in flight / cached / failed, ETA from finished cells
    (their mean wall time over the executor's workers). Off where `progress_enabled` says."""

    def __init__(self, total: int, title: str, workers: int) -> None:
        from eqprop_core.train import progress_enabled

        self.total, self.workers = total, workers
        self.done = self.cached = self.failed = self.in_flight = 0
        self.seconds: list[float] = []
        self.bar = None
        if progress_enabled(None):
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, desc=title, unit="cell", file=sys.stderr,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n}/{total} "
                                       "[{elapsed}{postfix}]")

    def update(self, *, label: str = "", finished: int = 0, seconds: float | None = None
               ) -> None:
        if seconds is not None:
            self.seconds.append(seconds)
        if self.bar is None:
            return
        remaining = self.total - self.done - self.cached - self.failed
        eta = ""
        if self.seconds:
            mean = sum(self.seconds) / len(self.seconds)
            eta = f" · ETA {remaining * mean / self.workers / 60:.1f} min"
        self.bar.set_postfix_str(f"done {self.done} · in flight {self.in_flight} · cached "
                                 f"{self.cached} · failed {self.failed}{eta} · {label}",
                                 refresh=False)
        self.bar.update(finished)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class CellRunner:
    """Cells through `executor` with `cache` in front; `add` queues, `completed` yields
    (spec, record) as cells finish (cached ones first), and cells added while iterating are
    run in the same pass."""

    def __init__(self, executor: Executor, cache: CellCache, bar: CellBar) -> None:
        self.executor, self.cache, self.bar = executor, cache, bar
        self._ready: deque[tuple[CellSpec, dict[str, Any]]] = deque()
        self._in_flight = 0
        self.computed: list[str] = []  # keys of the cells computed (not cached) in this pass

    def add(self, spec: CellSpec) -> None:
        record = self.cache.get(spec)
        if record is not None:
            self._ready.append((spec, record))
            self.bar.cached += 1
            self.bar.update(label=f"cached {spec.label()}", finished=1)
            return
        self.executor.submit(spec)
        self._in_flight += 1
        self.bar.in_flight = self._in_flight

    def completed(self) -> Iterator[tuple[CellSpec, dict[str, Any]]]:
        while self._ready or self._in_flight:
            if self._ready:
                yield self._ready.popleft()
                continue
            try:
                spec, record = self.executor.next_done()
            except BaseException:
                self.bar.failed += 1
                self.bar.update(label="failed")
                raise
            self._in_flight -= 1
            self.cache.put(spec, record)
            self.computed.append(spec.key())
            self.bar.done += 1
            self.bar.in_flight = self._in_flight
            self.bar.update(label=spec.label(), finished=1, seconds=record["cell_s"])
            yield spec, record
