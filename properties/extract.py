"""Read a model's weights into NumPy for the independent witness (`theory`).

Only *reading* happens here: W_eff is the matrix the model says its dynamics use; the raw
parameters and the parametrization flags (symmetrized, spectrally normalized) come with it so the
witness can redo the chain rule W ↦ W_eff itself. U and V are read as the matrices the dynamics
and readout use (U_eff, V_eff); for a model with `io_spectral_norm` the witness's gradients for
them are therefore gradients w.r.t. U_eff and V_eff.
"""

from __future__ import annotations

import torch

from eqprop_core import LoopedMLP
from theory.network import Network

NumpyModel = Network  # the name tracks 1–8 know it by


def as_numpy(model: LoopedMLP) -> Network:
    def read(t: torch.Tensor):
        return t.detach().cpu().double().numpy().copy()  # a snapshot, not a view of the model

    with torch.no_grad():
        return Network(
            weight=read(model.recurrent_weight()), U=read(model.input_weight()),
            b=read(model.b), activation=model.activation.name, W=read(model.W),
            V=read(model.readout_weight()),
            c=read(model.c), symmetric=model.symmetric, spectral_norm=model.spectral_norm,
        )
