"""σ_max(W_eff)/γ by scipy after raw updates: the spectral bound SN promises, measured (track 1).

For a drawn model and a raw update of a drawn size, `sigma_after_update` is σ_max(W_eff)/γ in
train mode, in eval mode and after a state_dict round trip; `subspace_sigmas` follows a warm-
started SN ("subspace", "cholesky") through a drawn sequence of updates, with a subspace rank
below the width so a stale one can miss directions; `stock_sigma` is σ_max of torch's own
`spectral_norm` after the same update (the negative control).
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
from hypothesis import strategies as st

import theory
from eqprop_core import LoopedMLP
from eqprop_core.spectral import WARM_BOUNDS

from .strategies import DTYPES, ModelSpec, contractive_models


def mixed_precision_models() -> st.SearchStrategy[ModelSpec]:
    """Contractive models up to 24 units, symmetric or not, in float32 and float64."""
    return st.sampled_from(["float32", "float64"]).flatmap(
        lambda dt: contractive_models(max_hidden=24, symmetric=None, dtype=dt))


updates = st.tuples(st.sampled_from([0.0, 1.0, 1e3]), st.integers(0, 2**16))


def sigma_after_update(case: tuple[ModelSpec, tuple[float, int]], mode: str) -> float:
    """σ_max(W_eff)/γ by scipy after a raw update of the given size, in `mode`."""
    spec, (size, seed) = case
    model = spec.build()
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        model.W.add_(torch.as_tensor(size * rng.standard_normal(model.W.shape),
                                     dtype=model.W.dtype))
    if mode == "eval":
        model.eval()
    elif mode == "state_dict":
        fresh = spec.build()
        fresh.load_state_dict(model.state_dict())
        model = fresh
    return theory.spectral_norm(model.recurrent_weight().detach().numpy()) / spec.gamma


update_sequences = st.lists(st.tuples(st.sampled_from([0.0, 1e-4, 1e-2, 1.0, 1e3]),
                                      st.integers(0, 2**16)), min_size=1, max_size=8)


def subspace_sigmas(case: tuple[ModelSpec, int, list[tuple[float, int]]],
                    method: str = "subspace") -> dict[str, float]:
    """σ_max(W_eff)/γ by scipy after each raw update of a `method`-SN copy of the drawn model
    (subspace of the drawn rank k < n, so a stale one can miss directions): the largest and
    smallest ratio, and how many evaluations reused a stale reference."""
    spec, rank, sequence = case
    drawn = spec.build()
    model = LoopedMLP(spec.n_in, spec.n_hidden, spec.n_out, symmetric=spec.symmetric,
                      gamma=spec.gamma, activation=spec.activation, dtype=DTYPES[spec.dtype],
                      sn_method=method)
    model.load_state_dict(drawn.state_dict())
    bound = model.spectral_bounds["W"] = WARM_BOUNDS[method](rank=rank)
    ratios = [theory.spectral_norm(model.recurrent_weight().detach().numpy()) / spec.gamma]
    for size, seed in sequence:
        with torch.no_grad():
            noise = np.random.default_rng(seed).standard_normal(model.W.shape)
            model.W.add_(torch.as_tensor(size * noise, dtype=model.W.dtype))
        ratios.append(theory.spectral_norm(model.recurrent_weight().detach().numpy())
                      / spec.gamma)
    return {"max": max(ratios), "min": min(ratios), "stale": bound.calls - bound.refreshes,
            "calls": bound.calls}


def stock_sigma(case: tuple[ModelSpec, tuple[float, int]]) -> float:
    """σ_max by scipy of torch's own `spectral_norm` after the same update, in eval mode."""
    spec, (size, seed) = case
    raw = torch.as_tensor(
        spec.weight_scale * np.random.default_rng(spec.seed).standard_normal(
            (spec.n_hidden, spec.n_hidden)), dtype=DTYPES[spec.dtype])
    layer = torch.nn.Linear(spec.n_hidden, spec.n_hidden, bias=False, dtype=DTYPES[spec.dtype])
    with torch.no_grad():
        layer.weight.copy_(raw)
    # spectral_norm returns the module it was given, still a Linear (its stub says Module)
    layer = cast(torch.nn.Linear, torch.nn.utils.parametrizations.spectral_norm(layer))
    layer.train()
    _ = layer.weight  # one refresh of the power-iteration state on the current weight
    with torch.no_grad():
        noise = np.random.default_rng(seed).standard_normal(raw.shape)
        # torch stubs: nn.Module.__getattr__ is typed Tensor | Module
        layer.parametrizations.weight.original.add_(  # type: ignore[union-attr, operator]
            torch.as_tensor(size * noise, dtype=raw.dtype))
    layer.eval()  # eval: the stored u, v are not refreshed for the update
    return theory.spectral_norm(layer.weight.detach().numpy())


def warm_sn_cases() -> st.SearchStrategy:
    """(model, subspace rank 1…6, update sequence) cases for the warm-started SNs."""
    return st.tuples(mixed_precision_models(), st.integers(1, 6), update_sequences)


class StaleReferenceCount:
    """A measure for `worst_case`: the largest σ_max(W_eff)/γ of `subspace_sigmas` per case,
    counting the SN evaluations and those on a stale reference over every case measured."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.calls: dict[str, float] = {"stale": 0, "calls": 0}

    def __call__(self, case: tuple[ModelSpec, int, list[tuple[float, int]]]) -> float:
        measured = subspace_sigmas(case, self.method)
        self.calls["stale"] += measured["stale"]
        self.calls["calls"] += measured["calls"]
        return measured["max"]
