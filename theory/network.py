"""A recurrent network's numbers in float64, as read from its weights — what the witness sees.

The witness receives the raw parameters, the matrix the model says its dynamics use (W_eff), and
how W_eff was made from W (symmetrized? spectrally normalized?); it recomputes everything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

Array = np.ndarray


def as_array(value: object, dtype: type | None = np.float64) -> Array:
    """A torch tensor (read through .detach(), without importing torch) or an array-like as a
    NumPy array of `dtype` (None keeps its own)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=dtype)


@dataclass(frozen=True)
class Network:
    """h = φ(W_eff h + Ux + b), logits = V h + c; W is the raw parameter behind W_eff."""

    weight: Array  # W_eff (n, n)
    U: Array  # (n, n_in)
    b: Array  # (n,)
    activation: str
    W: Array  # raw W (n, n)
    V: Array  # (n_out, n)
    c: Array  # (n_out,)
    symmetric: bool = True
    spectral_norm: bool = False

    def drive(self, x: Array | Tensor) -> Array:
        """Ux + b for each row of x: (B, n)."""
        return np.atleast_2d(as_array(x)) @ self.U.T + self.b
