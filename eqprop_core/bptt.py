"""Backpropagation through time — a REFERENCE and a BASELINE, never EqProp.

ℒ = mean CE(V h_T + c, y) with h_{t+1} = φ(W_eff h_t + Ux + b), h_0 given (default 0), and
autograd differentiates through all T steps. As T → ∞ on a contraction, h_T → h* and the BPTT
gradient → the implicit gradient (truncation error O(L^T)); it costs memory linear in T, which
EP does not (track 29).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .gradients import cross_entropy, one_hot_labels
from .model import LoopedMLP
from .solvers import is_positive_integer


def unroll(model: LoopedMLP, x: Tensor, steps: int, h0: Tensor | None = None
           ) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """(h_T, T): the state after `steps` synchronous updates from h0 (default 0), as a graph
    autograd can differentiate, and the update map T itself (W_eff and Ux + b computed once)."""
    if not is_positive_integer(steps):
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    x = model.validate_input(x)
    weight_t = model.recurrent_weight().T
    drive = model.input_drive(x)
    phi = model.activation.phi

    def T(h: Tensor) -> Tensor:
        return phi(torch.addmm(drive, h, weight_t))

    h = x.new_zeros(x.shape[0], model.n_hidden) if h0 is None else h0.to(model.dtype)
    for _ in range(int(steps)):
        h = T(h)
    return h, T


def unrolled_loss(model: LoopedMLP, x: Tensor, y: Tensor, steps: int,
                  h0: Tensor | None = None) -> Tensor:
    """ℒ after `steps` synchronous updates from h0, as a graph autograd can differentiate."""
    x = model.validate_input(x)
    one_hot_labels(y, model.n_out, x.shape[0])  # validates the labels
    h, _ = unroll(model, x, steps, h0)
    return cross_entropy(model.readout(h), y)


def bptt_gradients(model: LoopedMLP, x: Tensor, y: Tensor, *, steps: int,
                   h0: Tensor | None = None) -> dict[str, Tensor]:
    """REFERENCE: ∇_θ ℒ by autograd through `steps` unrolled updates, keyed like
    `model.named_parameters()` (the model's .grad fields are not touched)."""
    with torch.enable_grad():
        loss = unrolled_loss(model, x, y, steps, h0)
        names = [name for name, _ in model.named_parameters()]
        grads = torch.autograd.grad(loss, list(model.parameters()))
    return {name: g.detach() for name, g in zip(names, grads)}
