"""Track 2 — Lipschitz certificate: ‖T(a) − T(b)‖ ≤ L‖a − b‖ with L = ‖W_eff‖₂ · sup|φ′|.

L is computed by scipy from the matrix the dynamics use; the ratios are measured on the model's
own update map T(h) = φ(W_eff h + Ux + b) for hypothesis-drawn models (symmetric or not, any
weight scale) and state pairs, with `hypothesis.target` hunting the tightest pair (pairs along
the top singular vector near zero pre-activation approach L). Checks: the model's own
certificate never under-estimates scipy's; no pair exceeds L; the certificate is tight (the
hunt reaches ≥ 0.9·L, so a vacuous bound like 10·L would be caught).

Negative control: a bound set 10% too low (0.9·L) is falsified by a drawn pair.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

import theory
from properties import as_numpy, at_least, at_most, contractive_models, holds, worst_case

from .premises import contraction_premise, scipy_lipschitz
from .registry import track


def pairs(models: st.SearchStrategy) -> st.SearchStrategy:
    """(model, input scale, centre scale, top-direction share, ‖a − b‖, seed) cases."""
    return st.tuples(
        models,
        st.sampled_from([0.0, 1e-3, 1.0, 10.0]),  # input scale
        st.sampled_from([0.0, 0.1, 1.0, 1e3]),  # centre scale
        st.floats(0.0, 1.0),  # share of the top singular direction in a − b
        st.sampled_from([1e-6, 1e-3, 0.1, 1.0, 10.0]),  # ‖a − b‖
        st.integers(0, 2**16),
    )


def expansion_ratio(case: tuple) -> float:
    """‖T(a) − T(b)‖ / (L ‖a − b‖), T the model's own step, L the scipy certificate."""
    spec, x_scale, centre_scale, align, gap, seed = case
    model = spec.build()
    rng = np.random.default_rng(seed)
    W = as_numpy(model).weight
    L = theory.lipschitz_certificate(W, spec.activation)
    if L == 0:
        return 0.0
    top = np.linalg.svd(W)[2][0]
    noise = rng.standard_normal(spec.n_hidden)
    direction = align * top + (1 - align) * noise / np.linalg.norm(noise)
    if np.linalg.norm(direction) == 0:
        direction = top
    direction *= gap / np.linalg.norm(direction)
    centre = centre_scale * rng.standard_normal(spec.n_hidden)
    a, b = centre + direction / 2, centre - direction / 2
    x = spec.inputs(1, x_scale, seed)
    with torch.no_grad():
        Ta, Tb = (model.step(torch.as_tensor(v[None]), x)[0].numpy() for v in (a, b))
    return float(np.linalg.norm(Ta - Tb) / (L * np.linalg.norm(a - b)))


@track(2, "Lipschitz certificate", "A",
       "||T(a) - T(b)|| <= L ||a - b|| with L = ||W_eff||_2 sup|phi'| (scipy) < 1, tight to 0.9",
       model_requires=())
def run(ctx) -> None:
    n = ctx.examples(150, 1500)
    models = ctx.models(contractive_models(symmetric=None))

    def certificate_ratio(spec) -> float:
        return spec.build().lipschitz_certificate() / scipy_lipschitz(spec)

    agree = worst_case(models, lambda s: abs(certificate_ratio(s) - 1),
                       bound=1e-5, max_examples=n // 3, seed=ctx.seed)
    low = worst_case(models, lambda s: -certificate_ratio(s),
                     bound=-1.0, max_examples=n // 3, seed=ctx.seed)
    ctx.check(holds("model certificate >= scipy certificate (never under-estimates)",
                    not low.falsified, ">= 1.0 x scipy L", value=-low.worst, **low.details()))
    ctx.check(at_most("|model certificate / scipy certificate - 1|", agree.worst, 1e-5,
                      **agree.details()))
    contraction_premise(ctx, models, n // 3)

    hunt = worst_case(pairs(ctx.models(contractive_models(symmetric=None, max_hidden=10))),
                      expansion_ratio, bound=1.0, max_examples=n, seed=ctx.seed)
    ctx.check(at_most("max ||T(a)-T(b)|| / (L ||a-b||) over drawn pairs", hunt.worst, 1.0,
                      **hunt.details()))
    ctx.check(at_least("tightness: best ratio found / L", hunt.worst, 0.9,
                       worst_example=hunt.worst_example))
    ctx.note(f"{hunt.examples} drawn pairs; tightest ratio/L = {hunt.worst:.6f} "
             f"({'bound held' if not hunt.falsified else 'BOUND BROKEN'})")

    too_low = worst_case(pairs(contractive_models(symmetric=None, max_hidden=10)),
                         lambda c: expansion_ratio(c) / 0.9, bound=1.0, max_examples=n,
                         seed=ctx.seed)
    ctx.negative_control(
        at_most("bound 0.9 L holds for every pair", too_low.worst, 1.0, **too_low.details()),
        claimed_bound="0.9 * L",
    )
