"""Per-cell overhead of the Ray path of the benchmark matrix (`tracks.executors`).

The same M small cells (scikit-learn's bundled digits, hidden 16, one epoch, 10 + 5 steps, one
seed each) run three ways, in one process, side by side: serially in this process, as Ray tasks
on a local instance with 1 worker, and with `--workers` workers. Reported: Ray's start-up and
the workers' warm-up (one cell per worker first: a worker process imports torch and the suite
once; the serial run is warmed up alike), both once per run; then the steady per-cell overhead
(Ray with 1 worker minus serial, over M: submission, scheduling, the spec and record through
Ray's object store) and the speed-up with more workers. Every record is compared with the
serial one (timings aside): a cell's result must not depend on where it ran.

    python -m benchmarks.ray_cells [--cells 16] [--workers 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from eqprop_core.data import load_dataset
from tracks.cells import CellSpec, DataIdentity, data_digest
from tracks.context import canonical_record
from tracks.executors import RayExecutor, SerialExecutor, ray_module


def cells(n: int) -> list[CellSpec]:
    data = load_dataset("digits", seed=0)
    identity = DataIdentity("digits", None, None, data_digest(data))
    return [CellSpec(0, "seed", "standard", "recurrent", seed, 3e-3, identity, 16, 1, (10, 5),
                     64, 0.2) for seed in range(n)]


def drain(executor, specs: list[CellSpec]) -> tuple[float, dict[int, dict]]:
    started = time.perf_counter()
    for spec in specs:
        executor.submit(spec)
    records = {}
    for _ in specs:
        spec, record = executor.next_done()
        records[spec.seed] = canonical_record(record)[0]
    return time.perf_counter() - started, records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        ray_module()
    except ValueError as err:
        print(f"benchmarks.ray_cells: {err}", file=sys.stderr)
        return 2
    specs = cells(args.cells)
    warm = [dataclasses.replace(spec, seed=10_000 + i) for i, spec in enumerate(specs)]
    serial = SerialExecutor()
    drain(serial, warm[:1])  # this process's imports and first-call costs, as a worker's
    serial_s, reference = drain(serial, specs)
    rows: list[tuple[str, float, float | None]] = [("serial (this process)", serial_s, None)]
    startup: float | None  # Ray's start-up; None in the serial row
    for workers in sorted({1, args.workers}):
        started = time.perf_counter()
        executor = RayExecutor(workers=workers)
        startup = time.perf_counter() - started
        try:
            startup += drain(executor, warm[:workers])[0]
            wall, records = drain(executor, specs)
        finally:
            executor.close()
        if records != reference:
            print(f"Ray ({workers} workers) records differ from the serial ones", file=sys.stderr)
            return 1
        rows.append((f"Ray, {workers} worker{'s' * (workers > 1)}", wall, startup))
    print(f"{args.cells} cells (digits, hidden 16, 1 epoch); records identical to serial")
    for name, wall, startup in rows:
        extra = "" if startup is None else f"  (+ {startup:.1f} s Ray start-up and warm-up)"
        print(f"  {name:24s} {wall:7.2f} s  {1000 * wall / args.cells:7.1f} ms/cell{extra}")
    overhead = (rows[1][1] - serial_s) / args.cells
    print(f"per-cell overhead of the Ray path (1 worker − serial): {1000 * overhead:.1f} ms")
    if len(rows) > 2:
        print(f"speed-up with {args.workers} workers over serial: {serial_s / rows[2][1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
