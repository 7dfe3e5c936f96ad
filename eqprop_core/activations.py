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

from .solvers import all_finite


@dataclass(frozen=True)
class Activation:
    """φ, its derivative, its inverse, the primitive G of φ⁻¹ and sup|φ′|."""

    name: str
    phi: Callable[[Tensor], Tensor]
    derivative: Callable[[Tensor], Tensor]
    inverse: Callable[[Tensor], Tensor]
    primitive_of_inverse: Callable[[Tensor], Tensor]
    max_slope: float
    # φ(a + ib) from its real and imaginary parts as real tensors (holomorphic EP's complex
    # states); None: φ of torch.complex(a, b).
    phi_parts: Callable[[Tensor, Tensor], Tensor] | None = None


def _tanh_primitive(h: Tensor) -> Tensor:
    # ∫ atanh = ½[(1 + h)log(1 + h) + (1 − h)log(1 − h)], finite (= log 2) at |h| = 1.
    return 0.5 * (torch.special.xlogy(1 + h, 1 + h) + torch.special.xlogy(1 - h, 1 - h))


def tanh_of_parts(a: Tensor, b: Tensor) -> Tensor:
    """tanh(a + ib) for real tensors a, b (same shape and dtype), as a complex tensor:

        tanh(a + ib) = (t + iu) / (1 + itu) = [t(1 + u²) + i·u·sech²a] / (1 + t²u²),
        t = tanh a,  u = tan b,  sech²a = 1 − t² = 4σ(2a)σ(−2a)

    (tanh's addition theorem with tanh(ib) = i tan b). Every factor is computed to a few ulps
    relatively and nothing cancels — sech²a comes from two sigmoids, not from 1 − t², which
    loses all digits once t rounds to ±1 — so each part is accurate to a few ulps (tests: ≤ 8
    against a long-double reference, float32 and float64). On CPU it is several times faster
    than torch.tanh of a complex tensor (real functions on contiguous tensors instead of the
    complex kernel). Where it is not finite (b within rounding of a pole ±π/2 + kπ, where u²
    overflows) the value is torch.tanh's of the complex number."""
    t, u = torch.tanh(a), torch.tan(b)
    sech_sq = 4.0 * torch.sigmoid(2.0 * a) * torch.sigmoid(-2.0 * a)
    tu = t * u
    denominator = 1.0 + tu * tu
    real, imag = t * (1.0 + u * u) / denominator, u * sech_sq / denominator
    out = torch.complex(real, imag)
    if not all_finite(real, imag):
        out = torch.where(torch.isfinite(out), out, torch.tanh(torch.complex(a, b)))
    return out


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
        phi_parts=tanh_of_parts,
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
