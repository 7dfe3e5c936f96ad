"""D_v ℒ ≈ [ℒ(θ + εv) − ℒ(θ − εv)] / 2ε: the directional derivative of the model's loss by central
differences of `model.forward`, the check of a gradient against the code's own loss.

ℒ = mean CE(model(x), y) along a random unit direction v of all raw parameters, the free phase
re-solved to residual 1e-14 at θ ± εv. ε = 1e-5 balances the truncation ε²/6·|D³ℒ| against the
loss's round-off (~1e-15)/ε (measured: ε = 1e-3, 1e-4, 1e-5 agree with ⟨g*, v⟩ to 1e-4, 1e-6,
1e-8 relative — the ε² law —, ε = 1e-6 is already round-off bound). A gradient g is held to it in
the gradient-check form, |D_v ℒ − ⟨g, v⟩| ≤ tol·‖g‖: absolute, in units of the gradient norm,
because a random v can be nearly orthogonal to the gradient, where an error relative to D_v ℒ
itself explodes. For the scipy implicit gradient (the derivative of what `model.forward`
computes, SN parametrization included) tol = FD_TOL = 1e-6 (measured worst 6e-8 over 600
hunted draws).
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch

from .gradients import GradientProblem
from .strategies import ModelSpec

SOLVE_TOL = 1e-14  # residual of every forward solve
FD_STEP = 1e-5  # central-difference step ε (module doc: truncation vs round-off)
FD_TOL = 1e-6  # |D_v ℒ − ⟨g*, v⟩| in units of ‖g*‖‖v‖


def unit_direction(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """A random direction over all raw parameters, unit norm over their concatenation."""
    rng = np.random.default_rng(seed)
    v = {k: torch.as_tensor(rng.standard_normal(tuple(p.shape)), dtype=p.dtype)
         for k, p in model.named_parameters()}
    norm = float(torch.sqrt(cast(torch.Tensor, sum((t**2).sum() for t in v.values()))))
    return {k: t / norm for k, t in v.items()}


def loss_at(spec: ModelSpec, x: torch.Tensor, y: torch.Tensor,
            shift: dict[str, torch.Tensor]) -> float:
    """ℒ = mean CE(model(x), y) of a fresh model whose raw parameters are moved by `shift`,
    the free phase re-solved to SOLVE_TOL by `model.forward`."""
    model = spec.build()
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.add_(shift[name])
        logits = model(x, tol=SOLVE_TOL, max_steps=5000)
    return float(torch.nn.functional.cross_entropy(logits, y))


def directional_derivative(problem: GradientProblem, v: dict[str, torch.Tensor],
                           step: float = FD_STEP) -> float:
    """[ℒ(θ + εv) − ℒ(θ − εv)] / 2ε."""
    plus = loss_at(problem.spec, problem.x, problem.y, {k: step * t for k, t in v.items()})
    minus = loss_at(problem.spec, problem.x, problem.y, {k: -step * t for k, t in v.items()})
    return (plus - minus) / (2 * step)


def inner(gradient: dict[str, Any], v: dict[str, torch.Tensor]) -> float:
    """⟨g, v⟩ over v's parameters."""
    return float(sum((torch.as_tensor(gradient[k]) * t).sum() for k, t in v.items()))


def norm(gradient: dict[str, Any]) -> float:
    """‖g‖ over the concatenation of every parameter."""
    return float(np.sqrt(sum(float((torch.as_tensor(g) ** 2).sum())
                             for g in gradient.values())))
