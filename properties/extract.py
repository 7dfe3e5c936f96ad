"""Read a model's weights into NumPy for the independent witness (`theory`).

Only *reading* happens here: W_eff is the matrix the model says its dynamics use, and the input
drive Ux + b is recomputed in NumPy from the raw U and b.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from eqprop_core import LoopedMLP


@dataclass
class NumpyModel:
    weight: np.ndarray  # W_eff (n, n)
    U: np.ndarray
    b: np.ndarray
    activation: str

    def drive(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """Ux + b for each row of x: (B, n)."""
        x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        return np.atleast_2d(x).astype(np.float64) @ self.U.T + self.b


def as_numpy(model: LoopedMLP) -> NumpyModel:
    with torch.no_grad():
        return NumpyModel(
            weight=model.recurrent_weight().detach().cpu().double().numpy(),
            U=model.U.detach().cpu().double().numpy(),
            b=model.b.detach().cpu().double().numpy(),
            activation=model.activation.name,
        )
