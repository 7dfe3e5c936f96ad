"""Measurements behind the benchmark harness and track 29 (one source of truth for both).

A *training step* is what `eqprop_core.train.train` does per mini-batch: the rule's gradient
estimate, then one Adam update (`apply_update`). Compared, same model and initialization:

    EP    `EqProp("symmetric", beta=0.2, steps=(T, T // 3))`: T plain free updates and two
          nudged phases of T // 3 updates (±β), no autograd through any phase (real EqProp)
    BPTT  `BPTT(T)`: autograd through T unrolled updates (BASELINE, not EqProp)

At T = 30 that is the issue's setting, 30 free + 2×10 nudged vs 30 unrolled.

Memory: peak *live tensor bytes* (`LiveTensorBytes`): a TorchDispatchMode sees every storage a
torch op returns during the call (forward, backward and torch.func's VJP alike) and follows it
until it is freed; the peak of the sum over live storages, each counted once. Deterministic
(no allocator, no timing), blind to allocator slack and BLAS workspaces; storages that existed
before the call are counted only once an op returns them (in-place updates of parameters and
Adam's moments), a constant in T. BPTT must keep at least tanh's output h_t for every step
(the backward of tanh reads it), so its peak grows by ≥ one state B·n·itemsize per step; EP
keeps O(1) states whatever T.

Time: `interleaved_medians` — the calls of the compared methods alternate, after warm-up calls,
so background load hits them alike; medians are reported with min and max.

Throughput: the free phase's loop (T updates h ← φ(h W_effᵀ + d)) performs 2·B·n²·T flops in
its matrix products; `matmul_ceiling` times T plain `torch.mm` of the same shapes, in the same
run, as the practical ceiling of the same machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from eqprop_core import LoopedMLP
from eqprop_core.gradients import phases
from eqprop_core.train import BPTT, EqProp, LearningRule, apply_update

METHODS = ("EP", "BPTT")
BETA = 0.2  # the standard variant's nudge (eqprop_core.variants)
N_OUT = 10


def nudged_steps(steps: int) -> int:
    """Updates per nudged phase for a free phase of `steps`: T // 3 (30 → 10), at least 1."""
    return max(1, steps // 3)


def rule_for(method: str, steps: int) -> LearningRule:
    """The trainer's rule: real EqProp (T free + 2 × T//3 nudged) or the BPTT baseline (T)."""
    if method == "EP":
        return EqProp("symmetric", beta=BETA, steps=(steps, nudged_steps(steps)))
    if method == "BPTT":
        return BPTT(steps)
    raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")


SN_CHOICES = ("cholesky", "exact", "subspace", "off")


def build_problem(n_in: int, hidden: int, batch: int, *, seed: int, device: str = "cpu",
                  dtype: torch.dtype = torch.float32, sn: str = "cholesky"
                  ) -> tuple[LoopedMLP, Tensor, Tensor]:
    """The benchmark model (symmetric, SN γ = 0.95, tanh, N_OUT outputs), x ~ N(0, 1) (B, n_in)
    and uniform labels (B,): the cost of a step does not depend on the data.

    `sn`: "cholesky" (the training default, `sn_method="cholesky"`), "exact" (a float64
    eigendecomposition per step), "subspace" (`sn_method="subspace"`) or "off" (no SN); the raw
    parameters are the same for all four."""
    if sn not in SN_CHOICES:
        raise ValueError(f"unknown sn {sn!r}; choose one of {list(SN_CHOICES)}")
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LoopedMLP(n_in, hidden, N_OUT, symmetric=True, spectral_norm=sn != "off",
                          sn_method=sn if sn in ("subspace", "cholesky") else "exact",
                          gamma=0.95, dtype=dtype)
    x = torch.randn(batch, n_in, generator=generator, dtype=dtype)
    y = torch.randint(0, N_OUT, (batch,), generator=generator)
    return model.to(device), x.to(device), y.to(device)


def training_step(method: str, model: LoopedMLP, x: Tensor, y: Tensor, steps: int, *,
                  lr: float = 1e-3) -> Callable[[], None]:
    """A closure running one training step of `method` on (x, y): gradient, then Adam(lr)."""
    rule = rule_for(method, steps)
    params = dict(model.named_parameters())
    optimizer = torch.optim.Adam(params.values(), lr=lr)

    def step() -> None:
        apply_update(optimizer, params, rule.gradients(model, x, y).grads)

    return step


def synchronize(device: str | torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


# A timing whose repeats spread more than this (interquartile range over the median) is not
# to be trusted: a figure read from it could be the machine's load, not the code.
UNSTEADY_SPREAD = 0.25


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the median of `walls_s`, with its extremes and spread; `attempts`:
    how many times it was measured (a too-wide spread is re-measured)."""

    walls_s: tuple[float, ...]
    attempts: int = 1

    @property
    def spread(self) -> float:
        """Interquartile range over the median (range over the median below 4 repeats)."""
        walls = sorted(self.walls_s)
        if len(walls) >= 4:
            q = statistics.quantiles(walls, n=4)
            return (q[2] - q[0]) / statistics.median(walls)
        return (walls[-1] - walls[0]) / statistics.median(walls)

    @property
    def steady(self) -> bool:
        return self.spread <= UNSTEADY_SPREAD

    @property
    def median_s(self) -> float:
        return statistics.median(self.walls_s)

    @property
    def min_s(self) -> float:
        return min(self.walls_s)

    @property
    def max_s(self) -> float:
        return max(self.walls_s)


def interleaved_medians(calls: Mapping[str, Callable[[], object]], *, repeats: int, warmup: int,
                        device: str = "cpu", remeasure: int = 2) -> dict[str, Timing]:
    """Wall seconds of each call, `repeats` rounds in which every call runs once (in the
    dict's order), after `warmup` such rounds. When a call's spread exceeds UNSTEADY_SPREAD
    all are measured again (up to `remeasure` more times) and the steadiest attempt is kept;
    a Timing still unsteady then says so (`steady` False), for the report to flag."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")
    best: dict[str, Timing] | None = None
    attempts = 0
    while attempts <= remeasure:
        attempts += 1
        walls: dict[str, list[float]] = {name: [] for name in calls}
        for round_ in range(warmup + repeats):
            for name, call in calls.items():
                synchronize(device)
                started = time.perf_counter()
                call()
                synchronize(device)
                if round_ >= warmup:
                    walls[name].append(time.perf_counter() - started)
        found = {name: Timing(tuple(w)) for name, w in walls.items()}
        if best is None or max(t.spread for t in found.values()) < \
                max(t.spread for t in best.values()):
            best = found
        if all(t.steady for t in best.values()):
            break
    assert best is not None
    return {name: Timing(t.walls_s, attempts) for name, t in best.items()}


class LiveTensorBytes(TorchDispatchMode):
    """Peak bytes of the tensor storages torch ops returned while active and are still alive."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        out = func(*args, **(kwargs or {}))
        for key in [k for k, (ref, _) in self.live.items() if ref.expired()]:
            del self.live[key]
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                storage = t.untyped_storage()
                ref = StorageWeakRef(storage)
                self.live.setdefault(ref.cdata, (ref, storage.nbytes()))
        self.peak = max(self.peak, sum(n for _, n in self.live.values()))
        return out


def live_tensor_peak(call: Callable[[], object]) -> int:
    """Peak live tensor bytes during one `call()` (see LiveTensorBytes)."""
    with LiveTensorBytes() as tracker:
        call()
    return tracker.peak


def cuda_peak(call: Callable[[], object]) -> int:
    """torch.cuda.max_memory_allocated growth over one `call()` (bytes): exact for the caching
    allocator. Make a warm-up call first (lazy state such as Adam's moments)."""
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    call()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


@dataclass(frozen=True)
class LinearFit:
    """Least-squares y ≈ slope·x + intercept and its coefficient of determination R²."""

    slope: float
    intercept: float
    r_squared: float


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> LinearFit:
    """Least-squares line through (xs, ys); R² = 1 − SS_res/SS_tot (1.0 when ys are constant
    : a flat line). ValueError on fewer than two distinct xs or non-finite values."""
    x, y = np.asarray(xs, float), np.asarray(ys, float)
    if x.shape != y.shape or x.ndim != 1 or len(np.unique(x)) < 2:
        raise ValueError(f"a line needs >= 2 distinct x values, got {list(xs)}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("linear_fit got non-finite values")
    slope, intercept = np.polyfit(x, y, 1)
    residual = float(np.sum((y - (slope * x + intercept)) ** 2))
    total = float(np.sum((y - y.mean()) ** 2))
    # Constant ys: the line of slope 0 fits them exactly (what is left is round-off): R² = 1.
    r_squared = 1.0 - residual / total if total > 0 else 1.0
    return LinearFit(float(slope), float(intercept), r_squared)


def memory_by_steps(method: str, steps: Sequence[int], *, n_in: int, hidden: int, batch: int,
                    seed: int, step: Callable[..., Callable[[], None]] = training_step
                    ) -> dict[int, int]:
    """Peak live tensor bytes of one training step of `method` at each T (CPU, a fresh model
    per T, one warm-up step first so that Adam's lazily made moments are not counted)."""
    peaks = {}
    for T in steps:
        model, x, y = build_problem(n_in, hidden, batch, seed=seed)
        call = step(method, model, x, y, T)
        call()
        peaks[int(T)] = live_tensor_peak(call)
    return peaks


def leaky_ep_step(method: str, model: LoopedMLP, x: Tensor, y: Tensor, steps: int
                  ) -> Callable[[], None]:
    """NEGATIVE CONTROL ONLY, not EqProp as implemented: symmetric EP's phases (T free, 2 × T//3
    nudged, ±β) run with autograd *recording* through W_eff and the drive, so every state keeps
    the graph of all the steps before it alive until the estimate is formed — the memory of BPTT
    in an EP estimator. Its estimate of ∂ℒ/∂W_eff, −(h_βᵀh_β − h_−βᵀh_−β)/(4βB), is formed and
    discarded (`method` is ignored; the signature matches `training_step`)."""
    del method
    numbers = phases(model, x, y)
    labels_drive = numbers.target @ numbers.V

    def step() -> None:
        with torch.enable_grad():
            weight = model.recurrent_weight()
            drive = model.input_drive(x)

            def T(h: Tensor, beta: float) -> Tensor:
                nudge = beta * (torch.softmax(h @ numbers.V.T + numbers.c, dim=1) @ numbers.V
                                - labels_drive)
                return torch.tanh(h @ weight.T + drive - nudge)

            h = x.new_zeros(x.shape[0], model.n_hidden)
            for _ in range(steps):
                h = T(h, 0.0)
            ends = []
            for beta in (BETA, -BETA):
                h_k = h
                for _ in range(nudged_steps(steps)):
                    h_k = T(h_k, beta)
                ends.append(h_k)
            estimate = -(ends[0].T @ ends[0] - ends[1].T @ ends[1]) / (4 * BETA * x.shape[0])
            del estimate

    return step


def free_phase_loop(model: LoopedMLP, x: Tensor, y: Tensor, steps: int) -> Callable[[], Tensor]:
    """EP's free phase as `ep_gradients` runs it (the map of `gradients.Phases`, W_eff and the
    drive computed once, outside the timed call), `steps` plain updates from h = 0."""
    T = phases(model, x, y).nudged_map(0)
    h0 = x.new_zeros(x.shape[0], model.n_hidden)

    def loop() -> Tensor:
        with torch.no_grad():
            h = h0
            for _ in range(steps):
                h = T(h)
            return h

    return loop


def matmul_ceiling(model: LoopedMLP, x: Tensor, steps: int) -> Callable[[], Tensor]:
    """The practical ceiling for the free phase: `steps` products h ← h W_effᵀ of the same
    shapes (B, n) × (n, n), nothing else, into a preallocated buffer."""
    with torch.no_grad():
        weight_t = model.recurrent_weight().detach().T.contiguous()
    h = torch.randn(x.shape[0], model.n_hidden, dtype=x.dtype, device=x.device) / 16
    out = torch.empty_like(h)

    def loop() -> Tensor:
        a, b = h, out
        for _ in range(steps):
            torch.mm(a, weight_t, out=b)
            a, b = b, a
        return a

    return loop


def free_phase_flops(batch: int, hidden: int, steps: int) -> float:
    """Floating-point operations of the free phase's matrix products: 2·B·n²·T."""
    return 2.0 * batch * hidden * hidden * steps


def parametrization_time(model: LoopedMLP, *, repeats: int, warmup: int,
                         device: str = "cpu") -> Timing:
    """Seconds of one W ↦ W_eff set up for its VJP and pulled back (SN's float64
    eigendecomposition with eigenvectors, and its backward): a fixed cost inside every EP and
    BPTT step alike, whatever T."""
    def call() -> None:
        raw = model.W.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            weight = model.effective_weight(raw)
        torch.autograd.grad(weight, raw, grad_outputs=torch.ones_like(weight))

    return interleaved_medians({"W_eff": call}, repeats=repeats, warmup=warmup,
                               device=device)["W_eff"]


def cosine(a: Tensor, b: Tensor) -> float:
    """⟨a, b⟩ / (‖a‖‖b‖) of two tensors flattened, in float64 (0 when either is zero)."""
    a, b = a.detach().double().flatten(), b.detach().double().flatten()
    denominator = float(torch.linalg.vector_norm(a) * torch.linalg.vector_norm(b))
    return float(a @ b) / denominator if denominator > 0 else 0.0
