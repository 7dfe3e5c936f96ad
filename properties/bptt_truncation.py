"""T = ⌈log(ε(1 − L)/√n) / log L⌉: BPTT through T updates of an L-contraction is the implicit
gradient to ε.

BPTT (`eqprop_core.bptt_gradients`, a REFERENCE, never EqProp) differentiates ℒ = mean CE(V h_T
+ c, y) through T synchronous updates h_{t+1} = φ(W_eff h_t + Ux + b) from h_0 = 0. On an
L-contraction (L = ‖W_eff‖₂·sup|φ′|, `model.lipschitz_certificate()`) both the forward state
error ‖h_T − h*‖ ≤ L^T‖h*‖ ≤ L^T√n and the tail of the backward Neumann series Σ_{k≥T} (J*ᵀ)^k
(≤ L^T/(1 − L)) vanish geometrically, so BPTT → the implicit gradient; the T above makes
L^T√n/(1 − L) ≤ ε (Banach's a-priori bound from a first step of size √n,
`theory.steps_to_tolerance`). With ε = 1e-12 the truncation is ≤ 1e-12 on the O(1) scale of the
per-sample gradients (T ≈ 600 for γ = 0.95).
"""

from __future__ import annotations

import math
from functools import cached_property

import torch
from hypothesis import strategies as st

from eqprop_core import bptt_gradients
from theory.banach import steps_to_tolerance

from .evidence import MeasurementFailed
from .gradients import GradientProblem, agreement, gradient_models
from .strategies import ModelSpec
from .tolerances import SMALL_BETA

TRUNCATION = 1e-12  # ε: L^T·√n/(1 − L) ≤ ε picks T


def banach_steps(lipschitz: float, n_hidden: int, eps: float = TRUNCATION) -> int:
    """Smallest T with L^T·√n/(1 − L) ≤ ε (≥ 1)."""
    if not 0 <= lipschitz < 1:
        raise MeasurementFailed("BPTT's truncation bound: certified contraction L", lipschitz,
                                "in [0, 1)")
    return max(1, steps_to_tolerance(lipschitz, math.sqrt(n_hidden), eps))


class UnrolledProblem(GradientProblem):
    """A GradientProblem with the BPTT reference through T = banach_steps(L, n) updates."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self._unrolled: dict[int, dict[str, torch.Tensor]] = {}

    @cached_property
    def lipschitz(self) -> float:
        return self.model.lipschitz_certificate()

    @property
    def steps(self) -> int:
        return banach_steps(self.lipschitz, self.model.n_hidden)

    def bptt(self, steps: int | None = None) -> dict[str, torch.Tensor]:
        """REFERENCE gradient through `steps` unrolled updates (default: the Banach T)."""
        steps = steps or self.steps
        if steps not in self._unrolled:
            self._unrolled[steps] = bptt_gradients(self.model, self.x, self.y, steps=steps)
        return self._unrolled[steps]


SHORT_STEPS = (2, 5)  # track 10's control: BPTT truncated to this range of steps


@st.composite
def truncated_cases(draw: st.DrawFn) -> tuple[ModelSpec, int]:
    """A drawn model and a truncation T in SHORT_STEPS, too short for the Banach bound."""
    return draw(gradient_models()), draw(st.integers(*SHORT_STEPS))


def bptt_vs_implicit(p: UnrolledProblem) -> float:
    """BPTT through the Banach T vs the scipy implicit gradient: worst relative error."""
    return agreement(p.bptt(), p.implicit).worst_relative_error


def ep_vs_bptt(p: UnrolledProblem) -> float:
    """Symmetric EP at SMALL_BETA vs BPTT(T): worst per-parameter relative error."""
    return agreement(p.ep(SMALL_BETA), p.bptt()).worst_relative_error


def ep_vs_bptt_cosine_gap(p: UnrolledProblem) -> float:
    """Symmetric EP at SMALL_BETA vs BPTT(T): worst per-parameter 1 − cosine."""
    return 1.0 - agreement(p.ep(SMALL_BETA), p.bptt()).worst_cosine


def truncated_error(p: UnrolledProblem, steps: int) -> float:
    """BPTT through only `steps` updates vs the implicit gradient: worst relative error."""
    return agreement(p.bptt(steps), p.implicit).worst_relative_error


def banach_ranges(seen: list[UnrolledProblem]) -> dict[str, list]:
    """The Banach T and certified L over the problems seen."""
    steps = [p.steps for p in seen]
    return {"steps_range": [min(steps), max(steps)],
            "lipschitz_range": [min(p.lipschitz for p in seen), max(p.lipschitz for p in seen)]}
