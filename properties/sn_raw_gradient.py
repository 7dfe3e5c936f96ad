"""EP's raw-W gradient through spectral normalization (track 16), measured on a drawn SN model.

`SNProblem` is a drawn SN `GradientProblem` with its no-SN clone (W = W_eff): (1) EP's raw-W
gradient vs `theory.pull_back_to_raw` of EP's own W_eff gradient, (2) the pull-back's VJP vs a
central finite difference of `effective_weight`, (3) EP vs the implicit raw-W gradient, and the
control's statistic, the clone's gradient (SN ignored) vs the implicit one. `sn_models` draws
the SN models at raw weight scales 1e-3..1e3. The derivations: track 16's module docstring and
`properties.sn_pullback`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

import numpy as np
import torch
from hypothesis import strategies as st

import theory
from eqprop_core import LoopedMLP, ep_gradients

from .extract import as_numpy
from .gradients import GradientProblem, flat, gradient_models, relative_error
from .sn_pullback import vector_jacobian_product, without_sn
from .strategies import ModelSpec
from .tolerances import SMALL_BETA

SCALES = (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e3)  # raw ‖S‖₂ before SN
INVARIANCE_SCALES = (1e-3, 1e3)
PULLBACK_BETA = 1e-3  # checks (1), (4): β-independent, and 1/β amplifies ulp-level differences
FD_RELATIVE_STEP = 1e-5  # ε = 1e-5·‖W‖_F


@st.composite
def sn_models(draw: st.DrawFn, symmetric: bool | None = None) -> ModelSpec:
    """SN gradient_models with the raw weight at any scale in 1e-3..1e3."""
    sym = draw(st.booleans()) if symmetric is None else symmetric
    spec = draw(gradient_models(symmetric=sym, spectral_norm=True))
    return spec.with_(weight_scale=draw(st.sampled_from(SCALES)))


class SNProblem(GradientProblem):
    """A drawn SN model with its no-SN clone and random probes for the pull-back."""

    @cached_property
    def clone(self) -> LoopedMLP:
        return without_sn(self.model)

    def clone_gradient(self, beta: float = SMALL_BETA) -> np.ndarray:
        """EP's W_eff gradient: symmetric EP at β on the clone without SN."""
        grads = ep_gradients(self.clone, self.x, self.y, beta=beta, tol=self.tol)
        return flat(grads["W"]).reshape(self.model.W.shape)

    def pullback_error(self) -> float:
        """(1) EP's raw-W gradient vs theory.pull_back_to_raw(EP's W_eff gradient)."""
        hand = theory.pull_back_to_raw(as_numpy(self.model), self.clone_gradient(PULLBACK_BETA))
        return relative_error(self.ep(PULLBACK_BETA)["W"], hand)

    def finite_difference_error(self) -> float:
        """(2) |⟨G, central FD of W_eff along D⟩ − ⟨VJP(G), D⟩| / ‖VJP(G)‖."""
        rng = np.random.default_rng(self.spec.seed + 5)
        n = self.model.n_hidden
        G = torch.as_tensor(rng.standard_normal((n, n)), dtype=self.model.dtype)
        D = torch.as_tensor(rng.standard_normal((n, n)), dtype=self.model.dtype)
        D = D / torch.linalg.norm(D)
        W = self.model.W.detach()
        step = FD_RELATIVE_STEP * float(torch.linalg.norm(W))
        with torch.no_grad():
            change = (self.model.effective_weight(W + step * D)
                      - self.model.effective_weight(W - step * D)) / (2 * step)
        vjp = vector_jacobian_product(self.model, G)
        return abs(float((G * change).sum() - (vjp * D).sum())) / float(torch.linalg.norm(vjp))

    def implicit_error(self) -> float:
        """(3) EP raw-W gradient vs the implicit raw-W gradient."""
        return relative_error(self.ep(SMALL_BETA)["W"], self.implicit["W"])

    def naive_error(self) -> float:
        """Control: the clone's gradient (SN ignored) vs the implicit raw-W gradient."""
        return relative_error(self.naive, self.implicit["W"])

    @cached_property
    def naive(self) -> np.ndarray:
        return self.clone_gradient(SMALL_BETA)


def invariance_error(problems: Callable[[ModelSpec], SNProblem], spec: ModelSpec) -> float:
    """(4) ‖s·ĝ_W(sW) − ĝ_W(W)‖/‖ĝ_W(W)‖, worst over s in INVARIANCE_SCALES (EP at
    PULLBACK_BETA), each model solved through `problems`."""
    base = problems(spec).ep(PULLBACK_BETA)["W"]
    return max(relative_error(s * problems(spec.with_(weight_scale=spec.weight_scale * s))
                        .ep(PULLBACK_BETA)["W"], base) for s in INVARIANCE_SCALES)


def dropped_by_ignoring_sn(problem: SNProblem) -> tuple[float, float]:
    """What the control's estimator drops: r = γ/σ and the share of G that the projection
    term (⟨G, W_eff⟩/σ) u vᵀ carries."""
    net = as_numpy(problem.model)
    G = problem.naive
    sigma = np.linalg.svd(net.weight, compute_uv=False)[0]
    projected = abs(np.sum(G * net.weight)) / sigma  # ‖(⟨G, W_eff⟩/σ) u vᵀ‖_F
    r = sigma / np.linalg.svd(0.5 * (net.W + net.W.T), compute_uv=False)[0]
    return float(r), float(projected / np.linalg.norm(G))
