"""Neuron nonlinearities φ with what the dynamics and the energy need of them.

For the energy E(h) = Σ G(h_i) − ½hᵀWh − hᵀ(Ux + b) the primitive G satisfies G′ = φ⁻¹, so
∇E(h) = φ⁻¹(h) − Wh − (Ux + b) vanishes exactly at the fixed points h = φ(Wh + Ux + b).
`max_slope` = sup|φ′| enters the Lipschitz certificate L = ‖W‖₂ · sup|φ′| of the update map.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Activation:
    """φ, its derivative, its inverse, the primitive G of φ⁻¹ and sup|φ′|."""

    name: str
    phi: Callable[[Tensor], Tensor]
    derivative: Callable[[Tensor], Tensor]
    inverse: Callable[[Tensor], Tensor]
    primitive_of_inverse: Callable[[Tensor], Tensor]
    max_slope: float


def _tanh_primitive(h: Tensor) -> Tensor:
    # ∫ atanh = ½[(1 + h)log(1 + h) + (1 − h)log(1 − h)], finite (= log 2) at |h| = 1.
    return 0.5 * (torch.special.xlogy(1 + h, 1 + h) + torch.special.xlogy(1 - h, 1 - h))


def _sigmoid_primitive(h: Tensor) -> Tensor:
    # ∫ logit = h log h + (1 − h) log(1 − h), finite (= 0) at h ∈ {0, 1}.
    return torch.special.xlogy(h, h) + torch.special.xlogy(1 - h, 1 - h)


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation(
        name="tanh",
        phi=torch.tanh,
        derivative=lambda a: 1 - torch.tanh(a) ** 2,
        inverse=torch.atanh,
        primitive_of_inverse=_tanh_primitive,
        max_slope=1.0,
    ),
    "sigmoid": Activation(
        name="sigmoid",
        phi=torch.sigmoid,
        derivative=lambda a: torch.sigmoid(a) * (1 - torch.sigmoid(a)),
        inverse=torch.logit,
        primitive_of_inverse=_sigmoid_primitive,
        max_slope=0.25,
    ),
}


def get_activation(name: str) -> Activation:
    """The registered activation called `name` (ValueError naming the choices otherwise)."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}"
        ) from None
