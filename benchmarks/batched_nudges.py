"""Batched nudged phases: one EP gradient with the K nudged phases as one batch of K·B states
(`ep_gradients(batch_nudges=True)`, the default) against one after another (False), side by
side, interleaved, in one process; and one training epoch of the standard and holomorphic
variants at the write-up's width.

    python -m benchmarks.batched_nudges [--hidden 256] [--batch 64] [--repeats 30]

Reported: the median time of a gradient (symmetric ±β: K = 2; holomorphic: N = 4) each way,
their ratio, the spread of the repeats (interquartile range over the median) and the machine's
load average, and the largest relative difference of the two estimates (rounding only).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

from eqprop_core.gradients import ep_gradients
from eqprop_core.variants import build


def gradient(model, x, y, estimator: str, beta: float, points: int | None, batched: bool):
    return ep_gradients(model, x, y, beta=beta, estimator=estimator, n_points=points,
                        steps=(30, 10), batch_nudges=batched)


def timed(*args) -> float:
    started = time.perf_counter()
    gradient(*args)
    return time.perf_counter() - started


def spread(values: list[float]) -> float:
    q = statistics.quantiles(values, n=4)
    return (q[2] - q[0]) / statistics.median(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    x, y = torch.randn(args.batch, 784), torch.randint(0, 10, (args.batch,))
    print(f"hidden {args.hidden}, batch {args.batch}, 30 free + 10 nudged steps, float32, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    for variant, estimator, beta, points in (("standard", "symmetric", 0.2, None),
                                             ("holomorphic", "holomorphic", 0.2, 4)):
        model, _ = build(variant, 784, args.hidden, 10, sn="recurrent", seed=0)
        setting = (model, x, y, estimator, beta, points)
        a, b = gradient(*setting, True), gradient(*setting, False)
        diff = max(float((a[k] - b[k]).norm() / max(float(b[k].norm()), 1e-30)) for k in a)
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.repeats):  # interleaved: load hits both alike
            for batched in (True, False):
                times[batched].append(timed(*setting, batched))
        on, off = (statistics.median(times[v]) for v in (True, False))
        print(f"  {estimator:11s} batched {1000 * on:7.2f} ms (spread {spread(times[True]):.2f})"
              f"  one after another {1000 * off:7.2f} ms (spread {spread(times[False]):.2f})"
              f"  ratio {on / off:.3f}  max relative difference {diff:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
