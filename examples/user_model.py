"""A user's EqProp model, outside the package, certified with `--model`.

    python -m tracks.run --model examples.user_model:build --track 1-16
    python -m tracks.run --model examples/user_model.py:broken --track 2 3 4   # refused

What a model must provide (the protocol, `properties/fixed_model.py`): an
`eqprop_core.LoopedMLP` or subclass — the dynamics h ← φ(h W_effᵀ + x U_effᵀ + b), the readout
V_eff h + c, raw parameters W, U, b, V, c, a registered activation, and an energy exactly when
W_eff is symmetric. A subclass with structured weights overrides only the pure maps
`effective_weight`, `effective_input_weight`, `effective_readout_weight`.

- `build()`: a symmetric, spectrally normalized (γ = 0.9) model whose raw recurrent weight the
  user initialized themselves (a dominant low-rank part on top of noise, at a large scale);
- `broken()`: ‖W‖₂ = 3 and no SN — the contraction tracks must refuse it;
- `banded()`: a subclass whose W_eff is SN of a banded (masked) symmetric matrix — a structured
  parametrization, which the tracks that redo the standard chain rule W ↦ W_eff skip.
"""

from __future__ import annotations

import torch
from torch import Tensor

from eqprop_core import LoopedMLP
from eqprop_core.spectral import spectrally_normalize

N_IN, N_HIDDEN, N_OUT = 5, 10, 3


def _user_weights(model: LoopedMLP, scale: float) -> LoopedMLP:
    """The user's own initialization: W = noise + a rank-2 symmetric bump, ‖sym W‖₂ = scale."""
    g = torch.Generator().manual_seed(1234)
    n = model.n_hidden
    noise = torch.randn(n, n, generator=g, dtype=torch.float64) / n ** 0.5
    u = torch.randn(n, 2, generator=g, dtype=torch.float64)
    W = noise + 0.5 * (noise.T) + u @ u.T
    W = 0.5 * (W + W.T)
    W = scale * W / torch.linalg.matrix_norm(W, ord=2)
    with torch.no_grad():
        model.W.copy_(W.to(model.W.dtype))
        model.U.copy_((torch.randn(n, model.n_in, generator=g, dtype=torch.float64)
                       / model.n_in ** 0.5).to(model.U.dtype))
        model.b.copy_((0.1 * torch.randn(n, generator=g, dtype=torch.float64)).to(model.b.dtype))
    return model


def build() -> LoopedMLP:
    """A certified-contraction model: SN with γ = 0.9 on a raw weight of norm 7."""
    return _user_weights(LoopedMLP(N_IN, N_HIDDEN, N_OUT, spectral_norm=True, gamma=0.9,
                                   dtype=torch.float64), scale=7.0)


def broken() -> LoopedMLP:
    """‖W‖₂ = 3 without SN: L = 3 > 1, and tanh(3h) has several fixed points for small drives."""
    model = _user_weights(LoopedMLP(N_IN, N_HIDDEN, N_OUT, spectral_norm=False,
                                    dtype=torch.float64), scale=3.0)
    with torch.no_grad():  # small drives, so that the multiple equilibria are reachable
        model.U.mul_(0.05)
        model.b.mul_(0.05)
    return model


class BandedLoopedMLP(LoopedMLP):
    """W_eff = γ·B/σ̂(B), B = sym(W) ⊙ band mask (|i − j| ≤ 1): a chain of neurons."""

    def effective_weight(self, W: Tensor) -> Tensor:
        n = W.shape[0]
        i = torch.arange(n)
        mask = ((i[:, None] - i[None, :]).abs() <= 1).to(W.dtype)
        return spectrally_normalize(0.5 * (W + W.T) * mask, self.gamma, symmetric=True)


def banded() -> LoopedMLP:
    return _user_weights(BandedLoopedMLP(N_IN, N_HIDDEN, N_OUT, gamma=0.9,
                                         dtype=torch.float64), scale=4.0)
