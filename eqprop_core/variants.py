"""The four EqProp variants of the write-up, as real algorithms, each trainable by EqProp.

    standard       symmetric W_eff, symmetric nudge ±β            (bias O(β²))
    holomorphic    symmetric W_eff, N complex nudges β_k = |β|e^{2πik/N}, complex states
                   (Laborieux & Zenke 2022; bias O(|β|^N)) — not a sine-modulated real gain
    finite_nudge   symmetric W_eff, one-sided nudge at β = 0.5: descends the surrogate L_β
                   exactly (track 14), not ℒ
    directed       asymmetric W_eff (W ≠ Wᵀ), symmetric nudge, vector-field EP: biased even as
                   β → 0 (track 15)

Spectral normalization (`SN_MODES`): "off"; "recurrent" (W_eff = γW/σ̂(W), the contraction
certificate L ≤ γ < 1); "all" (also U_eff = γU/σ̂(U) and V_eff = γV/σ̂(V)). `build` draws the raw
parameters from `seed` alone, so every variant and SN arm of one seed starts from the same raw
W, U, b, V, c (matched initialization); the arms differ only in what they do with them.
`sn_method` picks how σ̂ of W is certified (`LoopedMLP`): "cholesky" by default here, the training
default — a warm subspace's Ritz value raised by 10⁻³ and certified by two Cholesky
factorizations, no eigensolver on most steps — and "exact" (LoopedMLP's own default, one float64
eigvalsh per evaluation) the reference that tracks 1 and 18 check it against.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .model import LoopedMLP
from .train import EqProp

SN_MODES = ("off", "recurrent", "all")


@dataclass(frozen=True)
class Variant:
    """A named EqProp variant: the model family (symmetric or directed) and its learning rule."""

    name: str
    description: str
    symmetric: bool
    rule: EqProp


VARIANTS: dict[str, Variant] = {
    variant.name: variant for variant in (
        Variant("standard", "symmetric W, symmetric nudge ±β", True,
                EqProp("symmetric", beta=0.2)),
        Variant("holomorphic", "symmetric W, 4 complex nudges on |β| = 0.2 (complex states)",
                True, EqProp("holomorphic", beta=0.2, n_points=4)),
        Variant("finite_nudge", "symmetric W, one-sided nudge β = 0.5", True,
                EqProp("one_sided", beta=0.5)),
        Variant("directed", "asymmetric W (W ≠ Wᵀ), symmetric nudge, vector-field EP", False,
                EqProp("symmetric", beta=0.2)),
    )
}


def sn_flags(sn: str) -> dict[str, bool]:
    """The LoopedMLP flags of an SN mode."""
    if sn not in SN_MODES:
        raise ValueError(f"unknown SN mode {sn!r}; choose one of {list(SN_MODES)}")
    return {"spectral_norm": sn != "off", "io_spectral_norm": sn == "all"}


def get_variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose one of {list(VARIANTS)}")
    return VARIANTS[name]


def build(variant: str, n_in: int, n_hidden: int, n_out: int, *, sn: str = "recurrent",
          seed: int = 0, gamma: float = 0.95, dtype: torch.dtype = torch.float32,
          steps: tuple[int, int] | None = (30, 10),
          sn_method: str = "cholesky") -> tuple[LoopedMLP, EqProp]:
    """(model, rule) of `variant` with SN mode `sn`; raw parameters depend on `seed` only.

    `steps` = (T_free, T_nudged) of the rule's truncated phases (None: solve to tolerance).
    """
    chosen = get_variant(variant)
    flags = sn_flags(sn)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LoopedMLP(n_in, n_hidden, n_out, symmetric=chosen.symmetric, gamma=gamma,
                          dtype=dtype, spectral_norm=flags["spectral_norm"],
                          io_spectral_norm=flags["io_spectral_norm"], sn_method=sn_method)
    rule = EqProp(chosen.rule.estimator, chosen.rule.beta, chosen.rule.n_points, steps)
    return model, rule
