"""Track 1 — SN spectral bound: σ_max(W_eff) ≤ γ, by scipy, whatever the raw weights do.

For hypothesis-drawn raw weights (shapes up to 24, scales 1e-3…1e3, rank-1 spikes, orthogonal
matrices, float32 and float64, symmetric or not), followed by a large raw update, the matrix the
dynamics use satisfies σ_max(W_eff) ≤ γ in train mode, in eval mode and after a state_dict
round trip into a fresh model. Tightness (σ_max ≥ 0.999·γ) shows SN keeps the margin it
promises rather than over-shrinking.

The same for the warm-started methods — "subspace" (a certified subspace bound refreshed only
when loose) and "cholesky" (the training default: a Ritz value raised by the tolerance,
certified by Cholesky factorizations) — with a drawn subspace rank 1…6 below the width: after
a drawn sequence of raw updates (sizes 0…1e3, small ones evaluated on the stale subspace, large ones
forcing refreshes), σ_max(W_eff) ≤ γ by scipy after every update, and σ_max(W_eff) ≥
γ/(1 + tolerance) (less float32 rounding).

Negative control: torch's stock `spectral_norm` (one power iteration, target 1) on the same
weights — σ_max ≥ 1: non-expansive at best, never the margin a contraction needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
from hypothesis import strategies as st

from eqprop_core.spectral import DEFAULT_TOLERANCE, WARM_BOUNDS, rounding_margin
from properties import Search, at_least_bound, at_most_bound, find_example, worst_case
from properties.spectral_bound import (
    StaleReferenceCount,
    mixed_precision_models,
    sigma_after_update,
    stock_sigma,
    subspace_sigmas,
    updates,
    warm_sn_cases,
)

from .premises import describe_models
from .registry import track

SIGMA = at_most_bound(1.0, "SN's promise: sigma_max(W_eff) <= gamma by scipy, so the ratio "
                           "sigma_max/gamma is at most 1, whatever the raw weights do")
MARGIN_TIGHTNESS = at_most_bound(1e-3, "tightness: sigma_max >= 0.999 gamma shows SN keeps the "
                                       "margin it promises rather than over-shrinking")
_MARGIN = rounding_margin(24, torch.float32)
_SUBSPACE_FLOOR = (1.0 - _MARGIN) / (1.0 + DEFAULT_TOLERANCE)
# subspace: sigma_hat <= (1 + tolerance)·sigma_max, its rounding margin included; cholesky:
# sigma_hat <= (1 + tolerance)·sigma_max·(1 + margin)·(1 + 1e-12), the margin and the
# factorization's O(N²ε) slack on top. Either way less the rounding of W_eff to float32.
SUBSPACE_TIGHTNESS = at_least_bound(_SUBSPACE_FLOOR,
                                    "the subspace bound is within (1 + tolerance) of sigma_max, "
                                    "its rounding margin included, less the rounding of W_eff "
                                    "to float32 (24 units)")
CHOLESKY_TIGHTNESS = at_least_bound(_SUBSPACE_FLOOR / ((1.0 + _MARGIN) * (1.0 + 1e-12)),
                                    "the Cholesky-certified Ritz value is within (1 + "
                                    "tolerance)·(1 + margin)·(1 + 1e-12) of sigma_max (the "
                                    "margin and the factorization's O(N^2 eps) slack), less the "
                                    "rounding of W_eff to float32 (24 units)")
WARM_TIGHTNESS = {"subspace": SUBSPACE_TIGHTNESS, "cholesky": CHOLESKY_TIGHTNESS}
STOCK_SN = at_most_bound(0.95, "the control holds torch's stock spectral_norm to the margin "
                               "the suite's SN keeps, sigma_max <= 0.95 (LoopedMLP's default "
                               "gamma); stock SN targets 1, so it must fail")
MEASURED_ONLY = at_most_bound(float("inf"), "the control's search only measures the stock SN's "
                                            "largest sigma_max; STOCK_SN decides")
SEARCHES = tuple(
    Search(f"max sigma_max(W_eff)/gamma, {mode} mode",
           cast(Callable[[Any], float],  # lambda with defaults
                lambda c, m=mode: sigma_after_update(c, m)), SIGMA)
    for mode in ("train", "eval", "state_dict"))
TIGHTEST_GAP = Search("margin tightness: max (1 - sigma_max/gamma)",
                      lambda c: 1.0 - sigma_after_update(c, "train"), MARGIN_TIGHTNESS)
STOCK = Search("torch stock spectral_norm keeps sigma_max <= 0.95", stock_sigma, MEASURED_ONLY)


@track(1, "SN spectral bound", "A",
       "sigma_max(W_eff) <= gamma by scipy for any raw weights, train/eval/state_dict",
       model_requires=("spectral_norm",),
       reference="scipy's `svdvals` of the matrix the dynamics use, in float64")
def run(ctx) -> None:
    models = mixed_precision_models()
    cases = st.tuples(models, updates)  # the suite's own: the control's draws
    certified = st.tuples(ctx.models(models), updates)
    n = ctx.examples(60, 600)
    worst = [ctx.search(certified, spec, n).worst for spec in SEARCHES]
    ctx.search(certified, TIGHTEST_GAP, n)
    ctx.note(f"{describe_models(ctx, n, 'drawn models')} per mode; worst sigma_max/gamma: "
             + ", ".join(f"{m} {v:.9f}" for m, v in zip(("train", "eval", "state_dict"), worst)))
    if ctx.model is None:  # the suite's own warm-started SNs; a given model brings its own SN
        for method in WARM_BOUNDS:
            subspace_checks(ctx, n, method)
    control(ctx, cases, n)


def subspace_checks(ctx, n: int, method: str) -> None:
    """`sn_method=method` ("subspace" or "cholesky", the training default): σ_max(W_eff) ≤ γ
    after drawn update sequences, and tightness."""
    sequences = warm_sn_cases()
    worst_ratio = StaleReferenceCount(method)
    calls = worst_ratio.calls
    subspace = worst_case(sequences, worst_ratio, bound=SIGMA, max_examples=n, seed=ctx.seed)
    ctx.check(SIGMA.check(f"{method} SN: max sigma_max(W_eff)/gamma by scipy over drawn "
                          "sequences of large raw updates between refreshes", subspace.worst,
                          evaluations=calls["calls"], on_stale_reference=calls["stale"],
                          **subspace.details()))
    floor = WARM_TIGHTNESS[method]  # searched as -min <= -floor
    loosest = worst_case(sequences, lambda c: -subspace_sigmas(c, method)["min"],
                         bound=-floor.limit, max_examples=n, seed=ctx.seed)
    ctx.check(floor.check(f"{method} SN tightness: min sigma_max(W_eff)/gamma", -loosest.worst,
                          tolerance=DEFAULT_TOLERANCE, **loosest.details()))
    ctx.note(f"{method} SN: {calls['calls']} evaluations, {calls['stale']} on a stale "
             f"reference; sigma_max/gamma in [{-loosest.worst:.9f}, {subspace.worst:.9f}]")


def control(ctx, cases: st.SearchStrategy, n: int) -> None:
    """The property under test, applied to torch's stock SN on the suite's draws."""
    stock = STOCK.run(cases, max_examples=n, seed=ctx.seed)
    shrunk = find_example(cases, lambda c: stock_sigma(c) > STOCK_SN.limit, max_examples=n,
                          seed=ctx.seed)
    ctx.negative_control(
        STOCK_SN.check(STOCK.name, stock.worst, worst_example=stock.worst_example,
                       shrunk_counterexample=repr(shrunk),
                       counterexample_sigma=None if shrunk is None else stock_sigma(shrunk)),
        note="stock SN divides by a one-step power-iteration estimate of sigma (target 1); "
             "in eval mode after an update the estimate is stale",
    )
    ctx.note(f"control: torch stock spectral_norm reaches sigma_max = {stock.worst:.4g}")
