"""NumPy re-statement of the neuron nonlinearities, written independently of eqprop_core.

For each φ: φ′, φ⁻¹, the primitive G of φ⁻¹ (G′ = φ⁻¹) and sup|φ′|.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit, xlogy

Array = np.ndarray


def _sech_squared(a: Array) -> Array:
    with np.errstate(over="ignore"):  # cosh overflows to inf for |a| > 710: sech² → 0, exactly
        return 1.0 / np.cosh(a) ** 2


@dataclass(frozen=True)
class ScalarMap:
    phi: Callable[[Array], Array]
    slope: Callable[[Array], Array]
    inverse: Callable[[Array], Array]
    primitive_of_inverse: Callable[[Array], Array]
    sup_slope: float


NONLINEARITIES: dict[str, ScalarMap] = {
    "tanh": ScalarMap(
        phi=np.tanh,
        slope=_sech_squared,
        inverse=np.arctanh,
        primitive_of_inverse=lambda h: 0.5 * (xlogy(1 + h, 1 + h) + xlogy(1 - h, 1 - h)),
        sup_slope=1.0,
    ),
    "sigmoid": ScalarMap(
        phi=expit,
        slope=lambda a: expit(a) * expit(-a),
        inverse=logit,
        primitive_of_inverse=lambda h: xlogy(h, h) + xlogy(1 - h, 1 - h),
        sup_slope=0.25,
    ),
}


def nonlinearity(name: str) -> ScalarMap:
    try:
        return NONLINEARITIES[name]
    except KeyError:
        known = sorted(NONLINEARITIES)
        raise ValueError(f"unknown nonlinearity {name!r}; known: {known}") from None
