"""Event-driven (lazy) and asynchronous dynamics for h = T(h) = φ(h W_effᵀ + d), d = Ux + b.

Every scheme keeps the pre-activations a = h W_effᵀ + d and changes them *incrementally*: when
neuron j changes by δ_j, a ← a + δ_j·W_eff[:, j]. A *neuron update* (set h_j ← φ(a_j) and
broadcast δ_j to its fan-out, n multiply-adds) is the unit of work; a synchronous sweep is n of
them. Three schemes, all batched over samples (rows):

    synchronous   every round, every neuron of an unconverged sample updates (plain iteration,
                  h_{k+1} = T(h_k), in this accounting);
    lazy          every round, neuron i updates only if its pending change |φ(a_i) − h_i| > θ;
                  θ lives on the grid θ₀·shrinkᵐ and is lowered (never below tol/√n) whenever
                  no neuron of the sample exceeds it, so the scheme reaches the tolerance;
                  shrink = 1 freezes θ (it stalls above the tolerance, as track 30 records);
    asynchronous  Gauss–Seidel sweeps: neurons update one at a time in a per-sample order
                  (random permutation each sweep, cyclic, or reversed), each seeing the others'
                  latest values.

Accounting per sample, exact by construction and checked by track 30: rounds·n = updates +
skipped. The batched implementation applies, per round, the columns of W_eff that fired in any
sample of the batch (`extra["columns_applied"]` counts them); the per-sample counts are what one
neuron-per-core (neuromorphic) implementation would do.

Convergence: ‖T(h) − h‖₂ ≤ tol, confirmed with a freshly computed h W_effᵀ + d (the maintained
a drifts by round-off). When T is a contraction in a weighted max-norm
(`theory.asynchronous`) every scheme converges to the unique h* (Bertsekas & Tsitsiklis). SN's
2-norm certificate L₂ < 1 does not imply that: for symmetric W_eff the Hopfield energy still
descends under every partial update (so every scheme converges), for asymmetric W_eff cyclic
Gauss–Seidel can cycle forever (track 30 exhibits one). L₂ < 1 does bound the returned error:
‖h − h*‖₂ ≤ ‖T(h) − h‖₂/(1 − L₂) for *any* h, whichever scheme produced it (`error_bound`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import Tensor

from .activations import Activation, get_activation
from .solvers import Outcome, SolverStats, check_options, is_positive_integer

if TYPE_CHECKING:
    from .model import LoopedMLP

ORDERS = ("random", "cyclic", "reverse")
REFRESH_RATIO = 8.0  # recompute a when the states that built it were this much larger


@dataclass(kw_only=True)
class EventStats(SolverStats):
    """SolverStats plus the work accounting of an event-driven or asynchronous solve.

    residual, converged, error_bound: as in SolverStats (2-norm; converged ⇔ residual ≤ tol),
    with error_bound = residual/(1 − L₂), valid for any h. steps: rounds (sweeps) of the batch.
    updates, skipped, rounds: (B,) int64 per sample — neuron updates made, neuron updates a
    synchronous sweep would have made but this scheme skipped, rounds the sample took part in.
    residual_max: (B,) ‖T(h) − h‖_∞. update_trace: cumulative updates over the batch after each
    round, aligned with residual_trace. history: (rounds + 1, B, n) states after every round
    when asked for (`record=True`), else None. stalled: (B,) the threshold could not fire any
    neuron above the tolerance (only with a frozen threshold). preactivation_drift: max
    |a_maintained − (h W_effᵀ + d)| at the end.
    """

    updates: Tensor
    skipped: Tensor
    rounds: Tensor
    n_neurons: int
    residual_max: Tensor
    update_trace: list[int] = field(default_factory=list)
    history: Tensor | None = None
    stalled: Tensor | None = None
    preactivation_drift: float = 0.0

    @property
    def skipped_share(self) -> float:
        """Σ skipped / Σ rounds·n: the share of a synchronous schedule's updates not made."""
        total = int(self.rounds.sum()) * self.n_neurons
        return int(self.skipped.sum()) / total if total else 0.0

    @property
    def accounting_exact(self) -> bool:
        """updates + skipped = rounds · n for every sample."""
        return bool((self.updates + self.skipped == self.rounds * self.n_neurons).all())

    def summary(self) -> str:
        return (f"{super().summary()}; {int(self.updates.sum())} neuron updates, "
                f"{100 * self.skipped_share:.1f}% skipped")


# -- validation -----------------------------------------------------------------------------
def _check_positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value)
                                       and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _check_problem(weight: Tensor, drive: Tensor, h0: Tensor) -> tuple[int, int]:
    if weight.ndim != 2 or weight.shape[0] != weight.shape[1]:
        raise ValueError(f"weight must be a square (n, n) matrix, got shape {tuple(weight.shape)}")
    n = weight.shape[0]
    if drive.ndim != 2 or drive.shape[1] != n:
        raise ValueError(f"drive must have shape (batch, {n}), got {tuple(drive.shape)}")
    if h0.shape != drive.shape:
        raise ValueError(f"h0 must have shape {tuple(drive.shape)}, got {tuple(h0.shape)}")
    for name, t in (("weight", weight), ("drive", drive), ("h0", h0)):
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} contains non-finite values (NaN or ±inf)")
    return drive.shape[0], n


def _phi(activation: Activation | str) -> Callable[[Tensor], Tensor]:
    return (get_activation(activation) if isinstance(activation, str) else activation).phi


def _row_norm(v: Tensor) -> Tensor:
    return torch.linalg.vector_norm(v, dim=1)


# -- shared pieces ----------------------------------------------------------------------------
class _Run:
    """The state every scheme shares: h, maintained pre-activations, counters, traces."""

    def __init__(self, weight: Tensor, drive: Tensor, h0: Tensor, phi: Callable[[Tensor], Tensor],
                 tol: float, record: bool) -> None:
        self.weight, self.drive, self.phi, self.tol = weight, drive, phi, tol
        self.h = h0.clone()
        self.a = self.h @ weight.T + drive  # the one full product; afterwards only columns
        batch, n = h0.shape
        self.n = n
        self.active = torch.ones(batch, dtype=torch.bool, device=h0.device)
        self.updates = torch.zeros(batch, dtype=torch.int64, device=h0.device)
        self.skipped = torch.zeros_like(self.updates)
        self.rounds = torch.zeros_like(self.updates)
        self.trace: list[float] = []
        self.update_trace: list[int] = []
        self.refreshes = 0
        self.columns = 0  # columns of W_eff applied by the batched implementation
        self.history: list[Tensor] | None = [self.h.clone()] if record else None
        self.peak = self.h.abs().amax(dim=1) if n else self.h.new_zeros(batch)

    def pending(self) -> Tensor:
        """r = φ(a) − h for every sample; retires samples whose residual meets tol.

        A sample that looks converged by its maintained a is re-checked with a fresh product
        (one refresh): drift in a must not fake convergence.
        """
        r = self.phi(self.a) - self.h
        done = self.active & (_row_norm(r) <= self.tol)
        if done.any():
            self.refreshes += 1
            self.a[done] = self.h[done] @ self.weight.T + self.drive[done]
            r[done] = self.phi(self.a[done]) - self.h[done]
            self.active &= ~(done & (_row_norm(r) <= self.tol))
        self.trace.append(float(_row_norm(r).max()))
        self.update_trace.append(int(self.updates.sum()))
        return r

    def commit(self) -> None:
        """End of a round. Cancellation: a built from states of size P carries an absolute
        error ~ε‖W‖P however small the states became since, so a sample whose states shrank
        more than 8-fold (a huge start) gets a fresh product — counted in `refreshes`."""
        size = self.h.abs().amax(dim=1) if self.n else self.peak
        stale = self.peak > REFRESH_RATIO * size.clamp_min(1.0)
        if stale.any():
            self.refreshes += 1
            self.a[stale] = self.h[stale] @ self.weight.T + self.drive[stale]
        self.peak = torch.where(stale, size, torch.maximum(self.peak, size))
        if self.history is not None:
            self.history.append(self.h.clone())

    def finish(self, name: str, lipschitz: float | None, stalled: Tensor | None,
               extra: dict[str, Any]) -> tuple[Tensor, EventStats]:
        fresh = self.h @ self.weight.T + self.drive
        drift = float((self.a - fresh).abs().max()) if self.a.numel() else 0.0
        r = self.phi(fresh) - self.h
        residual = _row_norm(r)
        finite = torch.isfinite(residual) & torch.isfinite(_row_norm(self.h))
        inf = torch.full_like(residual, float("inf"))
        residual = torch.where(finite, residual, inf)
        bound = None
        if lipschitz is not None and lipschitz < 1:
            bound = torch.where(finite, residual / (1 - lipschitz), inf)
        stats = EventStats(
            solver=name, tol=self.tol, residual=residual, residual_trace=self.trace,
            steps=int(self.rounds.max()) if self.rounds.numel() else 0,
            converged=finite & (residual <= self.tol), error_bound=bound, lipschitz=lipschitz,
            outcome=Outcome.of(finite & (residual <= self.tol), finite),
            extra={"refreshes": self.refreshes, "columns_applied": self.columns, **extra},
            updates=self.updates, skipped=self.skipped, rounds=self.rounds, n_neurons=self.n,
            residual_max=torch.where(finite, r.abs().amax(dim=1) if self.n else residual, inf),
            update_trace=self.update_trace,
            history=torch.stack(self.history) if self.history is not None else None,
            stalled=stalled, preactivation_drift=drift,
        )
        return self.h, stats


def _common(weight: Tensor, drive: Tensor, h0: Tensor, tol: float, max_rounds: int,
            lipschitz: float | None) -> None:
    _check_problem(weight, drive, h0)
    _check_positive("tol", tol)
    if not is_positive_integer(max_rounds):
        raise ValueError(f"max_rounds must be a positive integer, got {max_rounds!r}")
    if lipschitz is not None and not (isinstance(lipschitz, (int, float)) and lipschitz >= 0):
        raise ValueError(f"lipschitz must be >= 0, got {lipschitz!r}")


# -- the schemes ------------------------------------------------------------------------------
@torch.no_grad()
def thresholded_iteration(
    weight: Tensor, drive: Tensor, activation: Activation | str, h0: Tensor, *, tol: float,
    threshold: float | None, shrink: float = 0.5, max_rounds: int = 10_000,
    lipschitz: float | None = None, record: bool = False,
) -> tuple[Tensor, EventStats]:
    """Jacobi rounds h_i ← φ(a_i) for the neurons with |φ(a_i) − h_i| > θ (all: threshold None).

    weight (n, n) = W_eff, drive (B, n) = Ux + b, h0 (B, n). θ starts at `threshold` per sample
    and is multiplied by `shrink` ∈ (0, 1] (floored at tol/√n, so that ‖r‖₂ > tol always fires
    a neuron) until some pending change exceeds it; with shrink = 1 a sample whose pending
    changes all fall to ≤ θ > tol/√n stops, `stalled`. See the module docstring.
    """
    _common(weight, drive, h0, tol, max_rounds, lipschitz)
    if threshold is not None:
        threshold = _check_positive("threshold", threshold)
    if isinstance(shrink, bool) or not (isinstance(shrink, (int, float)) and 0 < shrink <= 1):
        raise ValueError(f"shrink must lie in (0, 1], got {shrink!r}")
    run = _Run(weight, drive, h0, _phi(activation), tol, record)
    batch, n = h0.shape
    floor = 0.999 * tol / math.sqrt(max(n, 1))
    theta = None if threshold is None else h0.new_full((batch,), threshold)
    stalled = torch.zeros(batch, dtype=torch.bool, device=h0.device)
    for _ in range(int(max_rounds)):
        r = run.pending()
        if not run.active.any():
            break
        size = r.abs()
        if theta is None:
            fire = run.active[:, None].expand(batch, n)
        else:
            top = size.amax(dim=1)
            while shrink < 1:
                lower = run.active & (theta >= top) & (theta > floor)
                if not lower.any():
                    break
                theta = torch.where(lower, (theta * shrink).clamp_min(floor), theta)
            fire = run.active[:, None] & (size > theta[:, None])
            stuck = run.active & ~fire.any(dim=1)
            stalled |= stuck
            run.active &= ~stuck
            if not run.active.any():
                break
        run.updates += fire.sum(dim=1)
        run.skipped += (run.active[:, None] & ~fire).sum(dim=1)
        run.rounds += run.active
        new = torch.where(fire, run.phi(run.a), run.h)
        delta = new - run.h
        run.h = new
        columns = fire.any(dim=0)
        run.columns += int(columns.sum())
        run.a = run.a + delta[:, columns] @ weight[:, columns].T
        run.commit()
    name = "synchronous" if threshold is None else (
        "lazy(frozen)" if shrink == 1 else "lazy")
    extra = {} if threshold is None else {"threshold": threshold, "shrink": shrink,
                                          "final_threshold": cast(Tensor, theta).tolist()}
    return run.finish(name, lipschitz, None if threshold is None else stalled, extra)


def synchronous_iteration(
    weight: Tensor, drive: Tensor, activation: Activation | str, h0: Tensor, *, tol: float,
    max_rounds: int = 10_000, lipschitz: float | None = None, record: bool = False,
) -> tuple[Tensor, EventStats]:
    """h_{k+1} = T(h_k) with the event accounting: every round is n updates per sample."""
    return thresholded_iteration(weight, drive, activation, h0, tol=tol, threshold=None,
                                 max_rounds=max_rounds, lipschitz=lipschitz, record=record)


def lazy_iteration(
    weight: Tensor, drive: Tensor, activation: Activation | str, h0: Tensor, *, tol: float,
    threshold: float = 0.1, shrink: float = 0.5, max_rounds: int = 10_000,
    lipschitz: float | None = None, record: bool = False,
) -> tuple[Tensor, EventStats]:
    """Event-driven updates: neuron i fires only when |φ(a_i) − h_i| > θ (θ shrinking)."""
    return thresholded_iteration(weight, drive, activation, h0, tol=tol, threshold=threshold,
                                 shrink=shrink, max_rounds=max_rounds, lipschitz=lipschitz,
                                 record=record)


def sweep_orders(order: str, batch: int, n: int, generator: torch.Generator) -> Tensor:
    """(B, n) the neuron visited at each position of one sweep, per sample."""
    if order == "random":
        return torch.argsort(torch.rand(batch, n, generator=generator), dim=1)
    positions = torch.arange(n)
    if order == "reverse":
        positions = positions.flip(0)
    return positions.expand(batch, n)


@torch.no_grad()
def asynchronous_iteration(
    weight: Tensor, drive: Tensor, activation: Activation | str, h0: Tensor, *, tol: float,
    order: str = "random", seed: int = 0, max_rounds: int = 10_000,
    lipschitz: float | None = None, record: bool = False,
) -> tuple[Tensor, EventStats]:
    """Gauss–Seidel sweeps: for p = 1…n, neuron j = π_b(p) of each sample b sets h_j ← φ(a_j)
    and a ← a + δ_j W_eff[:, j] before the next neuron moves.

    `order`: "random" (a fresh permutation per sample and sweep, from `seed`), "cyclic"
    (1…n) or "reverse" (n…1). Every visited neuron counts as an update (nothing is skipped).
    """
    _common(weight, drive, h0, tol, max_rounds, lipschitz)
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; choose one of {ORDERS}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    run = _Run(weight, drive, h0, _phi(activation), tol, record)
    batch, n = h0.shape
    generator = torch.Generator().manual_seed(seed)
    fan_out = weight.T.contiguous()  # row j = W_eff[:, j], what neuron j's change reaches
    for _ in range(int(max_rounds)):
        run.pending()
        if not run.active.any():
            break
        visit = sweep_orders(order, batch, n, generator).to(h0.device)
        if order != "random" or batch == 1:
            # One order for the whole batch: neuron-major copies, whose rows are cheap views.
            h_t, a_t = run.h.T.contiguous(), run.a.T.contiguous()
            h_rows, a_rows = h_t.unbind(0), a_t.unbind(0)
            everyone = bool(run.active.all())
            for k in visit[0].tolist():
                new = run.phi(a_rows[k])
                if not everyone:
                    new = torch.where(run.active, new, h_rows[k])
                a_t.addr_(fan_out[k], new - h_rows[k])
                h_rows[k].copy_(new)
            run.h, run.a = h_t.T.contiguous(), a_t.T.contiguous()
        else:
            live = run.active[:, None]
            for p in range(n):
                j = visit[:, p : p + 1]  # (B, 1): each sample's neuron at this position
                old = run.h.gather(1, j)
                new = torch.where(live, run.phi(run.a.gather(1, j)), old)
                run.h.scatter_(1, j, new)
                run.a += (new - old) * fan_out[j[:, 0]]
        run.columns += n
        run.updates += run.active * n
        run.rounds += run.active
        run.commit()
    return run.finish(f"asynchronous({order})", lipschitz, None, {"order": order, "seed": seed})


SCHEMES: dict[str, Callable[..., tuple[Tensor, EventStats]]] = {
    "synchronous": synchronous_iteration,
    "lazy": lazy_iteration,
    "asynchronous": asynchronous_iteration,
}


def event_driven_equilibrium(
    model: LoopedMLP, x: Tensor, h0: Tensor | None = None, *, scheme: str = "lazy",
    tol: float | None = None, **options: Any,
) -> tuple[Tensor, EventStats]:
    """h* = T(h*) for each row of x by `scheme` ("synchronous", "lazy", "asynchronous").

    The model's own W_eff, Ux + b and φ; tol defaults to `default_tolerance(dtype)`; `options`
    go to the scheme (threshold, shrink, order, seed, max_rounds, record). L₂ = the model's
    certificate gives `stats.error_bound` when < 1.
    """
    from .model import default_tolerance

    try:
        solve = SCHEMES[scheme]
    except KeyError:
        raise ValueError(f"unknown scheme {scheme!r}; choose one of {sorted(SCHEMES)}") from None
    check_options(solve, options, f"scheme {scheme!r}")
    x = model.validate_input(x)
    if h0 is None:
        h0 = x.new_zeros(x.shape[0], model.n_hidden)
    elif tuple(h0.shape) != (x.shape[0], model.n_hidden):
        raise ValueError(f"h0 must have shape ({x.shape[0]}, {model.n_hidden}), "
                         f"got {tuple(h0.shape)}")
    with torch.no_grad():
        certificate = model.lipschitz_certificate()
        return solve(model.recurrent_weight(), model.input_drive(x), model.activation,
                     h0.to(device=x.device, dtype=x.dtype),
                     tol=default_tolerance(model.dtype) if tol is None else tol,
                     lipschitz=certificate, **options)
