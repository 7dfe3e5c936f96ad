"""Backpropagation through time — a REFERENCE and a BASELINE, never EqProp.

ℒ = mean CE(V h_T + c, y) with h_{t+1} = φ(W_eff h_t + Ux + b), h_0 given (default 0), and
autograd differentiates through all T steps. As T → ∞ on a contraction, h_T → h* and the BPTT
gradient → the implicit gradient (truncation error O(L^T)); it costs memory linear in T, which
EP does not (track 29).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .gradients import cross_entropy, one_hot_labels
from .model import LoopedMLP
from .solvers import is_positive_integer


def unrolled_loss(model: LoopedMLP, x: Tensor, y: Tensor, steps: int,
                  h0: Tensor | None = None) -> Tensor:
    """ℒ after `steps` synchronous updates from h0, as a graph autograd can differentiate."""
    if not is_positive_integer(steps):
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    x = model.validate_input(x)
    one_hot_labels(y, model.n_out, x.shape[0])  # validates the labels
    h = x.new_zeros(x.shape[0], model.n_hidden) if h0 is None else h0.to(model.dtype)
    weight = model.recurrent_weight()
    drive = model.input_drive(x)
    weight_t = weight.T
    for _ in range(int(steps)):
        h = model.activation.phi(torch.addmm(drive, h, weight_t))
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
