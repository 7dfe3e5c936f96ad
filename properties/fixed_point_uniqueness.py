"""One h* from every start: the spread of the fixed points plain iteration, Anderson and the
Newton witness reach from a drawn batch of starts (track 3), and the several fixed points of
h = tanh(2h), which a map that is not a contraction has (the negative control).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from hypothesis import strategies as st

import theory

from .extract import as_numpy
from .strategies import ModelSpec, initial_states

TOL = 1e-12


@st.composite
def model_and_starts(draw: st.DrawFn, models: st.SearchStrategy
                     ) -> tuple[ModelSpec, np.ndarray, float]:
    spec = draw(models)
    starts = np.concatenate([draw(initial_states(spec.n_hidden, batch=2)) for _ in range(3)])
    x_scale = draw(st.sampled_from([0.0, 1.0, 10.0]))
    return spec, starts, x_scale


def solve_from(spec: ModelSpec, starts: np.ndarray, x_scale: float, solver: str):
    """h* from each start for one input x (replicated); returns (h (S, n), stats)."""
    model = spec.build()
    x = spec.inputs(1, x_scale).expand(len(starts), -1)
    return model.equilibrium(x, torch.as_tensor(starts), solver=solver, tol=TOL, max_steps=5000)


def uniqueness_metrics(case) -> dict[str, float]:
    """Unconverged solves, the spread of h* over starts, Anderson vs plain iteration, and
    Anderson vs the Newton witness (theory), for one drawn (model, starts, input scale)."""
    spec, starts, x_scale = case
    h_and, st_and = solve_from(spec, starts, x_scale, "anderson")
    h_fp, st_fp = solve_from(spec, starts, x_scale, "fixed_point")
    h = h_and.numpy()
    problem = as_numpy(spec.build())
    drive = problem.drive(spec.inputs(1, x_scale))[0]
    witness = theory.find_fixed_point(problem.weight, drive, spec.activation, h0=starts[0])
    return {
        "unconverged": float((~st_and.converged).sum() + (~st_fp.converged).sum()),
        "spread": cast(float,  # np.float64 norms: floats
                       max(np.linalg.norm(a - b) for a, b in itertools.combinations(h, 2))),
        "solvers": float(np.abs(h_fp.numpy() - h).max()),
        "witness": float(np.abs(witness.h - h).max()) if witness.converged else float("inf"),
    }


def distinct_fixed_points(weight: np.ndarray, starts: np.ndarray) -> list[np.ndarray]:
    """Fixed points of h = tanh(Wh) reached by the model's solvers and by Newton, clustered."""
    from eqprop_core import LoopedMLP

    n = weight.shape[0]
    model = LoopedMLP(1, n, 1, spectral_norm=False, dtype=torch.float64)
    with torch.no_grad():
        model.W.copy_(torch.as_tensor(weight))
        model.U.zero_()
        model.b.zero_()
    x = torch.zeros(len(starts), 1, dtype=torch.float64)
    found = []
    for solver in ("fixed_point", "anderson"):
        h, stats = model.equilibrium(x, torch.as_tensor(starts), solver=solver, tol=TOL)
        found += [row for row, ok in zip(h.numpy(), stats.converged.numpy()) if ok]
    for start in starts:
        root = theory.find_fixed_point(weight, np.zeros(n), "tanh", h0=start)
        if root.converged:
            found.append(root.h)
    return sorted(theory.distinct_points(found, 1e-6), key=lambda v: tuple(v))


@dataclass
class FixedPoints:
    """Distinct fixed points by dimension n, ρ(J*) at each, and how many there are."""

    fixed_points: dict[int, list[np.ndarray]]
    stable: dict[int, list[float]]
    counts: dict[int, int]


def two_identity_fixed_points() -> FixedPoints:
    """The distinct fixed points of h = tanh(2h) in n = 1 and 2 (W = 2I, x = 0: L = 2), from a
    grid of starts, with ρ(J*) at each and their number."""
    grid = np.array([-2.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 2.0])
    fixed_points = {}
    for dim in (1, 2):
        starts = np.array(list(itertools.product(grid, repeat=dim)))
        fixed_points[dim] = distinct_fixed_points(2.0 * np.eye(dim), starts)
    stable = {
        dim: [theory.spectral_radius(theory.jacobian_at_equilibrium(p, 2 * np.eye(dim),
                                                                     np.zeros(dim), "tanh"))
              for p in pts]
        for dim, pts in fixed_points.items()
    }
    counts = {dim: len(pts) for dim, pts in fixed_points.items()}
    return FixedPoints(fixed_points, stable, counts)
