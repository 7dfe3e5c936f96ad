"""Fixed-point solvers for h = T(h), each returning the solution *and* its statistics.

Every solver returns `(h, SolverStats)` where h = T(h_prev) is one application of the map past
the last iterate h_prev. That makes the Banach a-posteriori bound available for any solver:
if T is an L-contraction (L < 1) then

    ‖h − h*‖ ≤ L / (1 − L) · ‖h − h_prev‖ = L / (1 − L) · ‖T(h_prev) − h_prev‖.

`stats.residual` is ‖T(h) − h‖ evaluated at the returned h (one extra map evaluation), per
sample. Non-convergence, including NaN/∞ from a diverging model, is reported in the stats with
its residual; it is never raised and never hidden.

Divergence means a non-finite *iterate* T(h). A non-finite residual ‖T(h) − h‖ alone is not:
from a huge but finite start (h0 = 1e300, or entries near 1e308 whose pre-activation overflows
to ∞ and φ(∞) = 1) the squared norm overflows while T(h0) is an ordinary state, and a
contraction goes on to its fixed point from there (Banach: from every start).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum

import torch
from torch import Tensor

Map = Callable[[Tensor], Tensor]


class Outcome(Enum):
    """How a solve ended. The value is the short label `SolverStats.summary` prints; `message`
    says what it means for the returned h."""

    CONVERGED = "converged"
    NOT_CONVERGED = "NOT converged"
    DIVERGED = "DIVERGED"
    NOT_MEASURED = "residual not measured"

    @property
    def message(self) -> str:
        return {
            Outcome.CONVERGED: "every sample's residual ||T(h) - h|| is finite and <= tol",
            Outcome.NOT_CONVERGED: "every iterate is finite, but some sample's residual is "
                                   "still above tol when the steps ran out",
            Outcome.DIVERGED: "some sample's iterate is not finite (NaN or inf): the map "
                              "diverged from its start",
            Outcome.NOT_MEASURED: "a truncated phase whose closing residual was not "
                                  "evaluated (its iterates are finite); residual NaN",
        }[self]

    @classmethod
    def of(cls, converged: Tensor, finite: Tensor, *, measured: bool = True) -> Outcome:
        """The outcome of a solve whose samples have `converged` and `finite` (B,) flags."""
        if not bool(finite.all()):
            return cls.DIVERGED
        if not measured:
            return cls.NOT_MEASURED
        return cls.CONVERGED if bool(converged.all()) else cls.NOT_CONVERGED


@dataclass
class SolverStats:
    """What a fixed-point solve measured, per sample where it makes sense.

    residual: (B,) ‖T(h) − h‖₂ at the returned h.
    residual_trace: max over the batch of ‖T(h_k) − h_k‖₂ at each iteration k.
    steps: iterations taken (map evaluations inside the loop).
    converged: (B,) residual ≤ tol (and finite).
    error_bound: (B,) ‖h − h*‖ ≤ L/(1 − L)·‖h − h_prev‖ when a Lipschitz certificate L < 1 was
        given, else None: the theorem for exact arithmetic. A map that knows its rounding ρ adds
        ρ/(1 − L) (`LoopedMLP.equilibrium` does), which makes it a bound on the computed h.
    outcome: how the solve ended (`Outcome`); omitted, it is read from `converged` (converged
        or not), so a constructor that can see a divergence must say so.
    """

    solver: str
    tol: float
    residual: Tensor
    residual_trace: list[float]
    steps: int
    converged: Tensor
    error_bound: Tensor | None = None
    lipschitz: float | None = None
    outcome: Outcome | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.outcome is None:
            self.outcome = Outcome.CONVERGED if self.all_converged else Outcome.NOT_CONVERGED
        elif (self.outcome is Outcome.CONVERGED) != self.all_converged:
            raise ValueError(f"outcome {self.outcome.name} contradicts converged "
                             f"({int(self.converged.sum())} of {self.converged.numel()})")

    @property
    def diverged(self) -> bool:
        """Some sample's iterate is not finite (`Outcome.DIVERGED`)."""
        return self.outcome is Outcome.DIVERGED

    @property
    def all_converged(self) -> bool:
        return bool(self.converged.all())

    @property
    def max_residual(self) -> float:
        return float(self.residual.max()) if self.residual.numel() else 0.0

    def summary(self) -> str:
        state = self.outcome.value if self.outcome is not None else "?"
        share = float(self.converged.float().mean()) if self.converged.numel() else 1.0
        return (
            f"{self.solver}: {state} in {self.steps} steps, max residual {self.max_residual:.3e} "
            f"(tol {self.tol:.1e}, {100 * share:.1f}% of samples)"
        )


# A solver: solver(T, h0, *, tol, max_steps, lipschitz=None, **its_own_options) -> (h, stats).
Solver = Callable[..., tuple[Tensor, SolverStats]]
COMMON_OPTIONS = ("tol", "max_steps", "lipschitz")


def _row_norm(v: Tensor) -> Tensor:
    return torch.linalg.vector_norm(v.reshape(v.shape[0], -1), dim=1)


def is_positive_integer(value: object) -> bool:
    """True for 1, 2, … (ints or integral floats); False for bools, NaN, ±inf, 0, 2.5, '3'."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and value >= 1 and int(value) == value


def all_finite(*tensors: Tensor) -> bool:
    """Whether every entry of every tensor is finite (complex: both parts), with one reduction
    per tensor and one device sync per call instead of an `isfinite` mask per tensor.

    Exact, not a heuristic: a sum containing a NaN or ±∞ is NaN or ±∞, so a finite sum proves
    every entry finite; a non-finite sum may also come from finite entries overflowing when added,
    so then the entries themselves are checked.
    """
    floating = [torch.view_as_real(t.detach()) if t.is_complex() else t.detach() for t in tensors
                if t.is_floating_point() or t.is_complex()]
    if not floating:
        return True
    total = torch.stack([t.sum(dtype=torch.float64) for t in floating]).sum()
    if math.isfinite(float(total)):
        return True
    return all(bool(torch.isfinite(t).all()) for t in floating)


def _check_fraction(name: str, value: object) -> None:
    """ValueError unless value ∈ (0, 1] (damping, Anderson mixing)."""
    if not (isinstance(value, (int, float)) and 0 < value <= 1):
        raise ValueError(f"{name} must lie in (0, 1], got {value!r}")


def _check_common(tol: float, max_steps: int, lipschitz: float | None) -> None:
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a positive finite number, got {tol!r}")
    if not is_positive_integer(max_steps):
        raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
    if lipschitz is not None and not (0 <= lipschitz):
        raise ValueError(f"lipschitz must be >= 0, got {lipschitz!r}")


@dataclass
class Iterates:
    """Where the loop of `iterate` stopped: the last iterate h_k, its image T(h_k), the steps
    taken (map evaluations), the residual trace max_b ‖T(h_k) − h_k‖, whether the stop rule
    held (rather than the steps running out), and the last step's g = T(h_k) − h_k and ‖g‖ per
    sample (None when no residual was measured)."""

    last: Tensor
    image: Tensor
    steps: int
    trace: list[float]
    stopped: bool
    change: Tensor | None = None
    change_norm: Tensor | None = None


# advance(h_k, T(h_k), g_k, ‖g_k‖) -> h_{k+1}: what makes a solver this solver.
Advance = Callable[[Tensor, Tensor, Tensor | None, Tensor | None], Tensor]


def iterate(T: Map, h0: Tensor, *, steps: int, tol: float | None, advance: Advance,
            first: Tensor | None = None) -> Iterates:
    """The one loop of every iterative solve here (plain, damped, Anderson, truncated EP):

        f_k = T(h_k);  stop if max_b ‖f_k − h_k‖ ≤ tol or f_k is not finite;
        else h_{k+1} = advance(h_k, f_k, g_k = f_k − h_k, r_k = ‖g_k‖ per sample)

    for k = 1 … `steps`; the last step's image is returned, not advanced (a solver that takes
    one more step of its own does it from `Iterates`). `tol` None: exactly `steps` applications
    with no residual measured (truncated EP: a reduction and a device sync per step saved; g, r
    are None). `first`: T(h0), when the caller has it already.
    """
    h = h0
    trace: list[float] = []
    if steps < 1:
        return Iterates(h0, h0, 0, trace, False)
    for k in range(1, int(steps) + 1):
        f = first if k == 1 and first is not None else T(h)
        g = r = None
        if tol is not None:
            g = f - h
            r = _row_norm(g)
            worst = float(r.max())
            trace.append(worst)
            if worst <= tol or not torch.isfinite(f).all():
                return Iterates(h, f, k, trace, True, g, r)
        if k == steps:
            break
        h = advance(h, f, g, r)
    return Iterates(h, f, int(steps), trace, False, g, r)


def _finish(
    name: str, T: Map, h_prev: Tensor, h: Tensor, *, tol: float, steps: int,
    trace: list[float], lipschitz: float | None, extra: dict | None = None,
) -> tuple[Tensor, SolverStats]:
    """Measure the returned h = T(h_prev): residual at h, Banach bound, convergence flags."""
    residual = _row_norm(T(h) - h)
    finite = torch.isfinite(residual) & torch.isfinite(_row_norm(h))
    residual = torch.where(finite, residual, torch.full_like(residual, float("inf")))
    bound = None
    if lipschitz is not None and lipschitz < 1:
        bound = lipschitz / (1 - lipschitz) * _row_norm(h - h_prev)
        bound = torch.where(finite, bound, torch.full_like(bound, float("inf")))
    stats = SolverStats(
        solver=name, tol=tol, residual=residual, residual_trace=trace, steps=steps,
        converged=finite & (residual <= tol), error_bound=bound, lipschitz=lipschitz,
        outcome=Outcome.of(finite & (residual <= tol), finite), extra=extra or {},
    )
    return h, stats


@torch.no_grad()
def fixed_point_iteration(
    T: Map, h0: Tensor, *, tol: float, max_steps: int, lipschitz: float | None = None,
    damping: float = 1.0,
) -> tuple[Tensor, SolverStats]:
    """h_{k+1} = (1 − α) h_k + α T(h_k); α = `damping` ∈ (0, 1] (α = 1: plain iteration).

    With damping the map iterated is T_α = (1 − α)I + αT, whose Lipschitz bound is
    (1 − α) + αL; the stop uses the residual of T itself.
    """
    _check_common(tol, max_steps, lipschitz)
    _check_fraction("damping", damping)
    if damping == 1:
        run = iterate(T, h0, steps=max_steps, tol=tol, advance=lambda h, f, g, r: f)
        h_prev, h = run.last, run.image
    else:  # the damped step from the last iterate, then one T-step past it (module doc)
        run = iterate(T, h0, steps=max_steps, tol=tol,
                      advance=lambda h, f, g, r: (1 - damping) * h + damping * f)
        h_prev = (1 - damping) * run.last + damping * run.image
        h = T(h_prev)
    name = "fixed_point" if damping == 1 else f"damped(α={damping:g})"
    return _finish(name, T, h_prev, h, tol=tol, steps=run.steps, trace=run.trace,
                   lipschitz=lipschitz)


@torch.no_grad()
def anderson_acceleration(
    T: Map, h0: Tensor, *, tol: float, max_steps: int, lipschitz: float | None = None,
    memory: int = 5, mixing: float = 1.0, regularization: float = 1e-8,
) -> tuple[Tensor, SolverStats]:
    """Anderson acceleration (type II) of h = T(h), batched with per-sample coefficients.

    With residuals g_i = T(h_i) − h_i of the last m iterates, solve per sample
        min_α ‖Σ α_i g_i‖²  s.t.  Σ α_i = 1
    (Tikhonov term λ·mean(diag GGᵀ)·I, so the regularization is scale-free and does not stall
    at tight tolerances), then h_{k+1} = Σ α_i [(1 − β) h_i + β T(h_i)], β = `mixing`.
    """
    _check_common(tol, max_steps, lipschitz)
    if not is_positive_integer(memory):
        raise ValueError(f"memory must be a positive integer, got {memory!r}")
    _check_fraction("mixing", mixing)
    if not (isinstance(regularization, (int, float)) and regularization >= 0):
        raise ValueError(f"regularization must be >= 0, got {regularization!r}")
    memory = int(memory)
    batch = h0.shape[0]
    flat = h0.reshape(batch, -1)
    dim = flat.shape[1]
    F = flat.new_zeros(batch, memory, dim)  # T(h_i)
    G = flat.new_zeros(batch, memory, dim)  # residuals g_i = T(h_i) − h_i, kept per slot
    eye = torch.eye(memory + 1, dtype=flat.dtype, device=flat.device)
    stored = 0  # residuals kept in the history (a residual of non-finite norm is not kept)

    def T_flat(h: Tensor) -> Tensor:
        return T(h.reshape(h0.shape)).reshape(batch, -1)

    def advance(h: Tensor, f: Tensor, g: Tensor | None, r: Tensor | None) -> Tensor:
        nonlocal stored
        assert g is not None and r is not None  # iterate() measures residuals when tol is set
        if not torch.isfinite(r).all():
            # A finite T(h) from a huge h: its ‖g‖² would overflow the Gram matrix; take the
            # plain step and keep g out of the history.
            return f
        slot = stored % memory
        stored += 1
        F[:, slot], G[:, slot] = f, g
        n = min(stored, memory)
        # ⟨g_i, g_j⟩ with the conjugate on the left, so complex states (holomorphic EP) work.
        gram = G[:, :n].conj() @ G[:, :n].transpose(1, 2)
        scale = gram.diagonal(dim1=1, dim2=2).real.mean(dim=1).clamp_min(
            torch.finfo(h.real.dtype).tiny
        )
        gram = gram + (regularization * scale)[:, None, None] * eye[:n, :n]
        # Bordered system [[0, 1ᵀ], [1, GGᵀ + λI]] [ν; α] = [1; 0].
        A = h.new_zeros(batch, n + 1, n + 1)
        A[:, 0, 1:] = 1
        A[:, 1:, 0] = 1
        A[:, 1:, 1:] = gram
        rhs = h.new_zeros(batch, n + 1, 1)
        rhs[:, 0] = 1
        solution, info = torch.linalg.solve_ex(A, rhs)
        alpha = solution[:, 1:, 0]
        degenerate = (info != 0) | ~torch.isfinite(alpha).all(dim=1)
        if bool(degenerate.any()):
            # A degenerate history (repeated iterates, or residuals that underflow so that the
            # bordered system is singular): those rows take a plain step, α = e_latest.
            plain = torch.zeros_like(alpha)
            plain[:, slot] = 1
            alpha = torch.where(degenerate[:, None], plain, alpha)
        # Σ α_i[(1 − β)h_i + βT(h_i)] = Σ α_i T(h_i) − (1 − β) Σ α_i g_i, as two batched
        # products instead of (B, m, d) temporaries.
        coeff = alpha.unsqueeze(1)
        out = (coeff @ F[:, :n]).squeeze(1)
        if mixing != 1:
            out = out - (1 - mixing) * (coeff @ G[:, :n]).squeeze(1)
        return out

    run = iterate(T_flat, flat, steps=max_steps, tol=tol, advance=advance)
    if run.stopped:
        h_prev, h = run.last, run.image
    else:  # out of steps: the last step's Anderson update, then one T-step past it
        h_prev = advance(run.last, run.image, run.change, run.change_norm)
        h = T_flat(h_prev)
    return _finish(
        "anderson", T, h_prev.reshape(h0.shape), h.reshape(h0.shape), tol=tol, steps=run.steps,
        trace=run.trace, lipschitz=lipschitz, extra={"memory": memory, "mixing": mixing},
    )


def damped_iteration(
    T: Map, h0: Tensor, *, tol: float, max_steps: int, lipschitz: float | None = None,
    damping: float = 0.5,
) -> tuple[Tensor, SolverStats]:
    """`fixed_point_iteration` with damping α = 0.5 unless told otherwise."""
    return fixed_point_iteration(
        T, h0, tol=tol, max_steps=max_steps, lipschitz=lipschitz, damping=damping
    )


SOLVERS: dict[str, Solver] = {
    "fixed_point": fixed_point_iteration,
    "damped": damped_iteration,
    "anderson": anderson_acceleration,
}


def solver_options(solver: Solver) -> list[str]:
    """The options a solver takes of its own: its keyword-only parameters other than the
    `tol`, `max_steps` and `lipschitz` that every caller sets."""
    return [name for name, p in inspect.signature(solver).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in COMMON_OPTIONS]


def check_options(solver: Solver, options: Iterable[str], label: str) -> None:
    """ValueError naming each option `solver` does not take, and the ones it does."""
    accepted = solver_options(solver)
    unknown = [option for option in options if option not in accepted]
    if unknown:
        raise ValueError(f"unknown option {', '.join(map(repr, unknown))} for {label}; "
                         f"it accepts {accepted}")


def get_solver(name: str, options: Iterable[str] = ()) -> Solver:
    """The registered solver called `name`, after checking the names of the `options` it will
    be given (ValueError naming an unknown solver or option, and the choices)."""
    try:
        solver = SOLVERS[name]
    except KeyError:
        raise ValueError(f"unknown solver {name!r}; choose one of {sorted(SOLVERS)}") from None
    check_options(solver, options, f"solver {name!r}")
    return solver
