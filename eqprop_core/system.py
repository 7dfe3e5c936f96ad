"""The suite's own LoopedMLP as a System: one implementation among the ones the suite certifies.

State h (B, n_hidden); θ = {W, U, b, V, c} raw, with the model's own pure parametrization maps
W ↦ W_eff, U ↦ U_eff, V ↦ V_eff (`LoopedMLP.effective_*`):

    T_β(h; θ) = φ(h W_effᵀ + x U_effᵀ + b − β ∂ℓ/∂h),   ∂ℓ/∂h = V_effᵀ(softmax(V_eff h + c) − e_y)
    C(h, y; θ) = CE(V_eff h + c, y)                         (the readout is part of the cost)
    E(h, x; θ) = the model's energy (symmetric W_eff only)

`ep_gradient`, `free_phase` and `lipschitz` are eqprop_core's own (`ep_gradients`,
`LoopedMLP.equilibrium`, `LoopedMLP.lipschitz_certificate`): what the System tracks check
against the witness, exactly as they check a user's code. The cost takes θ (its readout V, c):
the protocol's extension for a cost with parameters of its own.
"""

from __future__ import annotations

import copy
from typing import cast

import numpy as np
import torch
from torch import Tensor

from .gradients import cross_entropy, ep_gradients, loss_gradient_wrt_state, one_hot_labels
from .model import LoopedMLP

RAW = ("W", "U", "b", "V", "c")
PHASE_TOL = 1e-14  # every phase solved as the suite's own gradient tracks solve it (float64): a
# phase's state error ~1e-14 over β is the estimate's floor, 1e-9 at β = 1e-5


class LoopedMLPSystem:
    """`model` (a LoopedMLP, float64 copy) through the System protocol."""

    def __init__(self, model: LoopedMLP, seed: int = 0) -> None:
        self.model = copy.deepcopy(model).double()
        self.seed = int(seed)
        self.params = {k: getattr(self.model, k).detach() for k in RAW}
        self.estimators = ("one_sided", "symmetric")

    def __repr__(self) -> str:
        return f"LoopedMLPSystem({self.model.extra_repr()})"

    def _effective(self, params: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        m = self.model
        return (m.effective_weight(params["W"]), m.effective_input_weight(params["U"]),
                m.effective_readout_weight(params["V"]))

    def sample(self, batch: int, seed: int) -> tuple[Tensor, Tensor]:
        """x ~ N(0, 1) (batch, n_in) and uniform integer labels, from `seed`."""
        rng = np.random.default_rng([self.seed, int(seed)])
        x = torch.as_tensor(rng.standard_normal((batch, self.model.n_in)))
        return x, torch.as_tensor(rng.integers(0, self.model.n_out, batch))

    def init_state(self, x: Tensor) -> Tensor:
        return torch.zeros(x.shape[0], self.model.n_hidden, dtype=torch.float64)

    def step(self, h: Tensor, x: Tensor, params: dict[str, Tensor], *, beta: float = 0.0,
             y: Tensor | None = None) -> Tensor:
        W, U, V = self._effective(params)
        pre = h @ W.T + x @ U.T + params["b"]
        if beta != 0:
            target = one_hot_labels(cast(Tensor, y), self.model.n_out, h.shape[0])
            pre = pre - beta * loss_gradient_wrt_state(h, V, params["c"], target)
        return self.model.activation.phi(pre)

    def cost(self, h: Tensor, y: Tensor, params: dict[str, Tensor] | None = None) -> Tensor:
        params = self.params if params is None else params
        _, _, V = self._effective(params)
        logits = h @ V.T + params["c"]
        return torch.nn.functional.cross_entropy(logits, torch.as_tensor(y).long(),
                                                 reduction="none")

    def energy(self, h: Tensor, x: Tensor, params: dict[str, Tensor]) -> Tensor:
        if not self.model.symmetric:
            raise ValueError("an asymmetric LoopedMLP has no energy")
        W, U, _ = self._effective(params)
        phi = self.model.activation
        return (phi.primitive_of_inverse(h).sum(1) - 0.5 * ((h @ W.T) * h).sum(1)
                - (h * (x @ U.T + params["b"])).sum(1))

    def ep_gradient(self, x: Tensor, y: Tensor, *, beta: float, estimator: str
                    ) -> dict[str, Tensor]:
        grads = ep_gradients(self.model, x, y, beta=beta, estimator=estimator, tol=PHASE_TOL)
        return {k: grads[k] for k in RAW}

    def free_phase(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return self.model.equilibrium(x)[0]

    def lipschitz(self, params: dict[str, Tensor]) -> float:
        return self.model.lipschitz_certificate()


__all__ = ["LoopedMLPSystem", "cross_entropy"]
