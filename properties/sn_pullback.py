"""W_eff = γ·S/σ̂(S): the pull-back Gᵀ·∂W_eff/∂W of a W_eff gradient to the raw W, and the no-SN
clone that runs W_eff itself.

The parametrization (`LoopedMLP.effective_weight`): S = ½(W + Wᵀ) (symmetric models) or W, then
W_eff = r·S with r = γ/σ̂(S). A gradient G = ∂ℒ/∂W_eff reaches the raw W by the vector–Jacobian
product of W ↦ W_eff alone (never of the dynamics); its hand-derived form,
`theory.pull_back_to_raw` (scipy), is, with (u, v) the top singular pair of W_eff,

    ∂ℒ/∂S = r [G − (⟨G, W_eff⟩/σ(W_eff)) u vᵀ],   ∂ℒ/∂W = ½(∂ℒ/∂S + ∂ℒ/∂Sᵀ) if symmetrized.

`without_sn` gives the other side of that chain rule: a model without SN whose raw W is the SN
model's W_eff — the same dynamics, so its EP gradient for W is EP's W_eff gradient (tracks 16
and 24).
"""

from __future__ import annotations

import torch

from eqprop_core import LoopedMLP


def without_sn(model: LoopedMLP) -> LoopedMLP:
    """A clone whose raw W is the SN model's W_eff and which has no SN: the same dynamics, and
    its EP gradient for W is EP's W_eff gradient (symmetrization of a symmetric G is exact)."""
    clone = LoopedMLP(model.n_in, model.n_hidden, model.n_out, symmetric=model.symmetric,
                      spectral_norm=False, gamma=model.gamma, activation=model.activation.name,
                      dtype=model.dtype)
    clone.load_state_dict(model.state_dict())
    with torch.no_grad():
        clone.W.copy_(model.recurrent_weight())
    return clone


def vector_jacobian_product(model: LoopedMLP, G: torch.Tensor) -> torch.Tensor:
    """Gᵀ·∂W_eff/∂W by autograd through `model.effective_weight` alone."""
    W = model.W.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(model.effective_weight(W), W, grad_outputs=G)
    return grad
