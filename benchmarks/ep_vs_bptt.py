"""EP vs BPTT benchmark: time per gradient and peak memory as the step count grows, side by side.

Model: a symmetric, spectrally normalized LoopedMLP (γ = 0.95, tanh), n_in 784 (an MNIST-sized
input), hidden 256, 10 outputs, batch 64, float32, random inputs and labels (the cost of a
gradient does not depend on the data). Compared, in one run:

    EP    `ep_gradients(model, x, y, beta=0.1, estimator="symmetric", steps=(T, T/3))`:
          T plain free steps and two nudged phases of T/3 steps each, no autograd through them
          (with `steps`, every update runs whatever the residual)
    BPTT  `bptt_gradients(model, x, y, steps=T)`: autograd through T unrolled steps (REFERENCE
          and BASELINE, not EqProp)

Time: at T = 30 (30 free + 2×10 nudged vs 30 unrolled; the issue's setting), the median wall
time of `--repeats` calls of each, interleaved, after `--warmup` calls of each; at the larger T
the median of a quarter as many calls is printed for information.

Memory, as T grows 30 → 300, by two methods with different limits (tracemalloc would see
neither: torch allocates outside Python's allocator):
  (1) peak live tensor bytes: a TorchDispatchMode sees every tensor a torch op returns during
      the call (forward, backward and torch.func's VJP alike) and follows each storage until
      it is freed; the peak of the sum over live storages, counted once per storage, is
      reported. Exact and deterministic for tensors made during the call — which includes
      everything autograd saves for backward — but blind to tensors that existed before (the
      parameters, x), to allocator slack and to BLAS/LAPACK workspaces. (Counting autograd's
      saved tensors by `saved_tensors_hooks` is not possible here: torch.func's VJP, which EP
      uses for the W → W_eff pull-back, refuses to run under those hooks.)
  (2) peak RSS growth (CPU): each (method, T) runs in a fresh Python process that builds the
      model, makes one warm-up call at T = 3 (lazy library initialization), resets the peak
      resident set (writing 5 to /proc/self/clear_refs, Linux ≥ 4.0) and reports VmHWM − VmRSS
      around one call. The child runs with glibc told to mmap every block ≥ 16 KiB and to
      return freed memory at once (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_), so the
      resident set follows live memory: with glibc's default caching the same measurement
      scatters by ~1–2 MiB between runs, with these settings by ~0.1 MiB. It sees every
      allocation (BLAS workspaces, allocator slack), at page granularity, and includes
      memory that is touched, not only allocated; where clear_refs is unavailable it falls
      back to the ru_maxrss delta, which misses any part of the peak below the earlier maximum.
  On CUDA (when available) also torch.cuda.max_memory_allocated − memory_allocated around one
  call: exact for the caching allocator.

Criteria (PASS/FAIL, exit 1 on any FAIL; numbers are printed whatever they are):
  * EP is faster: median EP time < median BPTT time at T = 30.
  * EP memory does not grow with T: EP's peak live tensor bytes grow by less than one state
    (B·n·4 bytes = 64 KiB) from the smallest to the largest T, and the least-squares slope of
    EP's peak-RSS growth against T is below a quarter of a state per step — storing even one
    state per step fails both. BPTT's slopes, in states per step, are printed beside them.

    python -m benchmarks.ep_vs_bptt [--n-in 784] [--steps 30 100 300] [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch

from benchmarks import measure
from eqprop_core import LoopedMLP, bptt_gradients, ep_gradients

METHODS = ("EP", "BPTT")
BETA = 0.1
# glibc: serve every block ≥ 16 KiB by mmap and give freed memory back at once, so that the
# resident set follows what is live instead of what the heap once held (less RSS noise).
STRICT_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "16384", "MALLOC_TRIM_THRESHOLD_": "0",
                 "MALLOC_TOP_PAD_": "0"}
N_OUT = 10


def build(n_in: int, hidden: int, batch: int, seed: int,
          device: str) -> tuple[LoopedMLP, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = LoopedMLP(n_in, hidden, N_OUT, symmetric=True, spectral_norm=True, gamma=0.95,
                      dtype=torch.float32).to(device)
    x = torch.randn(batch, n_in, device=device)
    y = torch.randint(0, N_OUT, (batch,), device=device)
    return model, x, y


def gradient(method: str, model: LoopedMLP, x: torch.Tensor, y: torch.Tensor, steps: int):
    """One gradient: EP with (steps, steps // 3) plain steps, or BPTT through `steps` steps."""
    if method == "EP":
        return ep_gradients(model, x, y, beta=BETA, estimator="symmetric",
                            steps=(steps, max(1, steps // 3)))
    return bptt_gradients(model, x, y, steps=steps)


def wall_times(model, x, y, steps: int, args: argparse.Namespace, *,
               repeats: int | None = None) -> dict[str, list[float]]:
    """Seconds per gradient of each method, `repeats` (default `--repeats`) calls interleaved
    after `--warmup` calls of each."""
    walls: dict[str, list[float]] = {m: [] for m in METHODS}
    for repeat in range(args.warmup + (repeats or args.repeats)):
        for method in METHODS:
            measure.synchronize(args.device)
            started = time.perf_counter()
            gradient(method, model, x, y, steps)
            measure.synchronize(args.device)
            if repeat >= args.warmup:
                walls[method].append(time.perf_counter() - started)
    return walls


def parametrization_time(model: LoopedMLP, args: argparse.Namespace) -> float:
    """Median seconds of one W ↦ W_eff evaluation set up for its VJP (the eigendecomposition
    with eigenvectors that both methods need once)."""
    walls = []
    for repeat in range(args.warmup + args.repeats):
        measure.synchronize(args.device)
        started = time.perf_counter()
        with torch.enable_grad():
            model.effective_weight(model.W.detach().clone().requires_grad_(True))
        measure.synchronize(args.device)
        if repeat >= args.warmup:
            walls.append(time.perf_counter() - started)
    return statistics.median(walls)


def live_tensor_peak(method: str, model, x, y, steps: int) -> int:
    """Peak live bytes of the tensors one gradient call makes (measure.LiveTensorBytes)."""
    return measure.live_tensor_peak(lambda: gradient(method, model, x, y, steps))


def cuda_peak(method: str, model, x, y, steps: int) -> int:
    """torch.cuda.max_memory_allocated growth over one call (bytes), after a warm-up call."""
    gradient(method, model, x, y, steps)
    return measure.cuda_peak(lambda: gradient(method, model, x, y, steps))


# -- peak RSS, one fresh process per (method, T) -------------------------------------------------
def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss_worker(method: str, steps: int, args: argparse.Namespace) -> dict:
    """Runs in the child: peak RSS growth of one call, after a warm-up call at T = 1."""
    torch.set_num_threads(args.threads)
    model, x, y = build(args.n_in, args.hidden, args.batch, args.seed, "cpu")
    gradient(method, model, x, y, 3)
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        before = _status_kib("VmRSS")
        gradient(method, model, x, y, steps)
        return {"peak_kib": _status_kib("VmHWM") - before, "how": "VmHWM - VmRSS"}
    except OSError:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        gradient(method, model, x, y, steps)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"peak_kib": after - before, "how": "ru_maxrss delta"}


def rss_in_fresh_process(method: str, steps: int, args: argparse.Namespace) -> dict:
    command = [sys.executable, "-m", "benchmarks.ep_vs_bptt", "--rss-worker", method, str(steps),
               "--n-in", str(args.n_in), "--hidden", str(args.hidden),
               "--batch", str(args.batch), "--seed", str(args.seed),
               "--threads", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env={**os.environ, **STRICT_MALLOC}, cwd=Path(__file__).parents[1])
    if done.returncode != 0:
        raise RuntimeError(f"memory worker {method} T={steps} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def slope_per_step(steps: list[int], values: list[float]) -> float:
    """Least-squares slope of values against steps."""
    return measure.linear_fit(steps, values).slope


@dataclass
class MemoryRow:
    method: str
    steps: int
    median_s: float
    live_bytes: int
    peak_rss_kib: int
    cuda_bytes: int | None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-in", type=int, default=784)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, nargs="+", default=[30, 100, 300],
                        help="step counts T for the memory table; the first is timed")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu",
                        help="where the timings run (memory by RSS is always CPU)")
    parser.add_argument("--rss-worker", nargs=2, metavar=("METHOD", "T"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device available")
    for name in ("n_in", "hidden", "batch", "repeats", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        parser.error(f"--warmup must be >= 0, got {args.warmup}")
    if len(args.steps) < 2 or min(args.steps) < 3:
        parser.error(f"--steps needs at least two step counts >= 3, got {args.steps}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rss_worker:
        method, steps = args.rss_worker
        print(json.dumps(rss_worker(method, int(steps), args)))
        return 0
    torch.set_num_threads(args.threads)
    model, x, y = build(args.n_in, args.hidden, args.batch, args.seed, args.device)
    T0 = args.steps[0]
    state_kib = args.batch * args.hidden * 4 / 1024
    print(f"LoopedMLP symmetric + SN (gamma 0.95), tanh, n_in {args.n_in}, hidden {args.hidden}, "
          f"{N_OUT} outputs, batch {args.batch}, float32, {args.device}, torch threads "
          f"{args.threads}; one state h is {state_kib:.0f} KiB")
    print(f"EP: symmetric, beta {BETA}, steps (T, T/3) plain updates, no autograd through them; "
          f"BPTT: autograd through T steps (reference/baseline)")

    walls = wall_times(model, x, y, T0, args)
    times = {m: statistics.median(w) for m, w in walls.items()}
    print()
    print(f"time per gradient at T = {T0} (EP {T0} free + 2x{T0 // 3} nudged; BPTT {T0} "
          f"unrolled), {args.repeats} interleaved calls each after {args.warmup} warm-up calls:")
    for method in METHODS:
        print(f"  {method:<5} median {1e3 * times[method]:9.2f} ms   (min "
              f"{1e3 * min(walls[method]):.2f}, max {1e3 * max(walls[method]):.2f})")
    speedup = times["BPTT"] / times["EP"]
    print(f"  BPTT / EP = {speedup:.2f}")
    fixed = 1e3 * parametrization_time(model, args)
    print(f"  fixed cost inside both: W -> W_eff ready for its VJP (SN's float64 "
          f"eigendecomposition with eigenvectors) takes {fixed:.2f} ms; ep_gradients and "
          f"bptt_gradients each evaluate it once")

    rows: list[MemoryRow] = []
    for steps in args.steps:
        at_steps = walls if steps == T0 else wall_times(model, x, y, steps, args,
                                                         repeats=max(3, args.repeats // 4))
        for method in METHODS:
            cpu_model, cpu_x, cpu_y = build(args.n_in, args.hidden, args.batch, args.seed, "cpu")
            live = live_tensor_peak(method, cpu_model, cpu_x, cpu_y, steps)
            rss = rss_in_fresh_process(method, steps, args)
            cuda = None
            if torch.cuda.is_available():
                cuda = cuda_peak(method, *build(args.n_in, args.hidden, args.batch, args.seed,
                                                "cuda"), steps)
            rows.append(MemoryRow(method, steps, statistics.median(at_steps[method]), live,
                                  rss["peak_kib"], cuda))
    how = rss["how"]
    has_cuda = rows[0].cuda_bytes is not None
    print()
    print(f"time and memory per gradient call as T grows (time: median on {args.device}, "
          f"{max(3, args.repeats // 4)} calls beyond T = {T0}; live tensors: peak bytes of "
          f"tensors the call makes, TorchDispatchMode; RSS: {how}, a fresh process each"
          + ("; CUDA: max_memory_allocated growth" if has_cuda else "") + ")")
    header = (f"{'method':<6} {'T':>5} {'steps run':>12} {'time':>10} {'live tensors':>14} "
              f"{'peak RSS growth':>16}" + (f" {'CUDA peak':>12}" if has_cuda else ""))
    print(header)
    print("-" * len(header))
    for r in rows:
        run = f"{r.steps}+2x{max(1, r.steps // 3)}" if r.method == "EP" else f"{r.steps}"
        line = (f"{r.method:<6} {r.steps:>5} {run:>12} {1e3 * r.median_s:>7.1f} ms "
                f"{r.live_bytes / 2**20:>10.2f} MiB "
                f"{r.peak_rss_kib / 1024:>12.2f} MiB")
        if has_cuda:
            line += f" {cast(int, r.cuda_bytes) / 2**20:>8.2f} MiB"
        print(line)

    def per_step(method: str, values: list[float]) -> float:
        """KiB per step: least-squares slope over the method's rows."""
        return slope_per_step([r.steps for r in rows if r.method == method], values)

    columns = {"live tensors": lambda r: r.live_bytes / 1024, "peak RSS": lambda r: r.peak_rss_kib}
    if has_cuda:
        columns["CUDA peak"] = lambda r: r.cuda_bytes / 1024
    slopes = {(m, c): per_step(m, [f(r) for r in rows if r.method == m])
              for m in METHODS for c, f in columns.items()}
    print()
    for m in METHODS:
        print(f"  {m:<5} growth per step: " + "; ".join(
            f"{c} {slopes[m, c]:8.1f} KiB = {slopes[m, c] / state_kib:6.3f} states"
            for c in columns))
    print()

    failed = False
    verdict = "PASS" if times["EP"] < times["BPTT"] else "FAIL"
    failed |= verdict == "FAIL"
    print(f"{verdict}: EP is faster than BPTT at T = {T0} (EP {1e3 * times['EP']:.2f} ms vs "
          f"BPTT {1e3 * times['BPTT']:.2f} ms, BPTT/EP {speedup:.2f})")
    ep_live = [r.live_bytes for r in rows if r.method == "EP"]
    live_growth = (ep_live[-1] - ep_live[0]) / 1024
    flat_live = abs(live_growth) < state_kib
    flat_rss = slopes["EP", "peak RSS"] < state_kib / 4
    verdict = "PASS" if flat_live and flat_rss else "FAIL"
    failed |= verdict == "FAIL"
    print(f"{verdict}: EP memory does not grow with T: live tensors grow by {live_growth:.1f} KiB "
          f"from T = {args.steps[0]} to {args.steps[-1]} (bound < {state_kib:.0f} KiB, one "
          f"state); peak-RSS slope {slopes['EP', 'peak RSS']:.1f} KiB/step (bound < "
          f"{state_kib / 4:.0f} KiB/step, a quarter state). BPTT: "
          f"{slopes['BPTT', 'live tensors'] / state_kib:.2f} and "
          f"{slopes['BPTT', 'peak RSS'] / state_kib:.2f} states/step")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
