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

import numpy as np
import torch
from hypothesis import strategies as st

import theory
from eqprop_core import LoopedMLP
from eqprop_core.spectral import DEFAULT_TOLERANCE, WARM_BOUNDS, rounding_margin
from properties import (
    Search,
    at_least_bound,
    at_most_bound,
    contractive_models,
    find_example,
    worst_case,
)
from properties.strategies import DTYPES, ModelSpec

from .premises import describe_models
from .registry import track

SIGMA = at_most_bound(1.0, "SN's promise: sigma_max(W_eff) <= gamma by scipy, so the ratio "
                           "sigma_max/gamma is at most 1, whatever the raw weights do")
MARGIN_TIGHTNESS = at_most_bound(1e-3, "tightness: sigma_max >= 0.999 gamma shows SN keeps the "
                                       "margin it promises rather than over-shrinking")
_MARGIN = rounding_margin(24, torch.float32)
_SUBSPACE_FLOOR = (1.0 - _MARGIN) / (1.0 + DEFAULT_TOLERANCE)
WARM_TIGHTNESS = {
    # subspace: sigma_hat <= (1 + tolerance)·sigma_max, its rounding margin included; cholesky:
    # sigma_hat <= (1 + tolerance)·sigma_max·(1 + margin)·(1 + 1e-12), the margin and the
    # factorization's O(N²ε) slack on top. Either way less the rounding of W_eff to float32.
    "subspace": at_least_bound(_SUBSPACE_FLOOR,
                               "the subspace bound is within (1 + tolerance) of sigma_max, its "
                               "rounding margin included, less the rounding of W_eff to "
                               "float32 (24 units)"),
    "cholesky": at_least_bound(_SUBSPACE_FLOOR / ((1.0 + _MARGIN) * (1.0 + 1e-12)),
                               "the Cholesky-certified Ritz value is within (1 + tolerance)·"
                               "(1 + margin)·(1 + 1e-12) of sigma_max (the margin and the "
                               "factorization's O(N^2 eps) slack), less the rounding of W_eff "
                               "to float32 (24 units)"),
}
STOCK_SN = at_most_bound(0.95, "the control's property: torch's stock spectral_norm keeps "
                               "sigma_max <= 0.95, the margin the suite's contraction needs; "
                               "stock SN targets 1, so it must fail")
MEASURED_ONLY = at_most_bound(float("inf"), "the control's search only measures the stock SN's "
                                            "largest sigma_max; STOCK_SN decides")
SEARCHES = tuple(
    Search(f"max sigma_max(W_eff)/gamma, {mode} mode",
           cast(Callable[[Any], float],  # lambda with defaults
                lambda c, m=mode: sigma_after_update(c, m)), SIGMA)
    for mode in ("train", "eval", "state_dict"))
TIGHTEST_GAP = Search("margin tightness: max (1 - sigma_max/gamma)",
                      lambda c: 1.0 - sigma_after_update(c, "train"), MARGIN_TIGHTNESS)
STOCK = Search("torch stock spectral_norm keeps sigma_max <= 0.95", lambda c: stock_sigma(c),
               MEASURED_ONLY)

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


@track(1, "SN spectral bound", "A",
       "sigma_max(W_eff) <= gamma by scipy for any raw weights, train/eval/state_dict",
       model_requires=("spectral_norm",))
def run(ctx) -> None:
    models = st.sampled_from(["float32", "float64"]).flatmap(
        lambda dt: contractive_models(max_hidden=24, symmetric=None, dtype=dt))
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
    sequences = st.tuples(
        st.sampled_from(["float32", "float64"]).flatmap(
            lambda dt: contractive_models(max_hidden=24, symmetric=None, dtype=dt)),
        st.integers(1, 6),
        update_sequences,
    )
    calls: dict[str, float] = {"stale": 0, "calls": 0}

    def worst_ratio(case: tuple[ModelSpec, int, list[tuple[float, int]]]) -> float:
        measured = subspace_sigmas(case, method)
        calls["stale"] += measured["stale"]
        calls["calls"] += measured["calls"]
        return measured["max"]

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
