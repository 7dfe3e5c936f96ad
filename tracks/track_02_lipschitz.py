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

from properties import Search, at_least_bound, at_most_bound, contractive_models, holds, worst_case
from properties.lipschitz_ratio import TIGHTNESS, expansion_ratio, pairs
from properties.system_checks import RATIO_ROUNDING, Witnessed, lipschitz_ratios

from .premises import contraction_premise, scipy_lipschitz, system_premises
from .registry import on_system, track

WRONG_FACTOR = 0.9  # the control's bound 0.9·L, 10% too low

CERTIFICATE_AGREEMENT = at_most_bound(1e-5, "the model's certificate and scipy's are the same "
                                            "quantity, ||W_eff||_2 sup|phi'|; the figure is "
                                            "not derived in the module (as first written)")
NEVER_UNDER = at_least_bound(1.0, "the model's certificate never under-estimates scipy's: "
                                  "model L / scipy L >= 1")
EXPANSION = at_most_bound(1.0, "the certificate: ||T(a) - T(b)|| <= L ||a - b||, so a ratio "
                               "> 1 over any pair breaks it")
REACHED = at_least_bound(TIGHTNESS, "tightness: the hunt reaches 0.9 L (pairs along the top "
                                    "singular vector near zero pre-activation approach L), so "
                                    "a vacuous bound like 10 L would be caught")
CONTRACTION = at_most_bound(1 - 1e-12, "the claimed L = lipschitz(params) is a contraction "
                                       "constant, L < 1")
SYSTEM_EXPANSION = at_most_bound(1 + RATIO_ROUNDING,
                                 "the claimed L bounds every measured ratio, up to the ratio's "
                                 "float64 rounding (properties.system_checks.RATIO_ROUNDING)")
SYSTEM_REACHED = at_least_bound(0.99, "pairs along J*'s top singular vector (the witness's) "
                                      "make the hunt reach ||J*||_2")


def certificate_ratio(spec) -> float:
    """model L / scipy L; both 0 (W_eff = 0) is exact agreement, ratio 1."""
    claimed, witnessed = spec.build().lipschitz_certificate(), scipy_lipschitz(spec)
    if witnessed == 0:
        return 1.0 if claimed == 0 else float("inf")
    return claimed / witnessed


HUNT = Search("max ||T(a)-T(b)|| / (L ||a-b||) over drawn pairs", expansion_ratio, EXPANSION)
TOO_LOW = Search("bound 0.9 L holds for every pair",
                 lambda c: expansion_ratio(c) / WRONG_FACTOR, EXPANSION)
AGREEMENT = Search("|model certificate / scipy certificate - 1|",
                   lambda s: abs(certificate_ratio(s) - 1), CERTIFICATE_AGREEMENT)


@track(2, "Lipschitz certificate", "A",
       "||T(a) - T(b)|| <= L ||a - b|| with L = ||W_eff||_2 sup|phi'| (scipy) < 1, tight to 0.9",
       model_requires=(),
       reference="scipy's ‖W_eff‖₂·sup|φ′| against ratios measured on the model's own update map")
def run(ctx) -> None:
    n = ctx.examples(150, 1500)
    models = ctx.models(contractive_models(symmetric=None))

    agree = AGREEMENT.run(models, max_examples=n // 3, seed=ctx.seed)
    low = worst_case(models, lambda s: -certificate_ratio(s),  # searched as -ratio <= -1
                     bound=-NEVER_UNDER.limit, max_examples=n // 3, seed=ctx.seed)
    ctx.check(holds("model certificate >= scipy certificate (never under-estimates)",
                    not low.falsified, ">= 1.0 x scipy L", value=-low.worst, **low.details()))
    ctx.check(CERTIFICATE_AGREEMENT.check(AGREEMENT.name, agree.worst, **agree.details()))
    contraction_premise(ctx, models, n // 3)

    hunt = ctx.search(pairs(ctx.models(contractive_models(symmetric=None, max_hidden=10))),
                      HUNT, n)
    ctx.check(REACHED.check("tightness: best ratio found / L", hunt.worst,
                            worst_example=hunt.worst_example))
    ctx.note(f"{hunt.examples} drawn pairs; tightest ratio/L = {hunt.worst:.6f} "
             f"({'bound held' if not hunt.falsified else 'BOUND BROKEN'})")

    too_low = TOO_LOW.run(pairs(contractive_models(symmetric=None, max_hidden=10)),
                          max_examples=n, seed=ctx.seed)
    ctx.negative_control(
        EXPANSION.check(TOO_LOW.name, too_low.worst, **too_low.details()),
        claimed_bound="0.9 * L",
    )


@on_system(2, requires=("lipschitz",))
def certify_system(ctx) -> None:
    """The System's claimed L = lipschitz(params) bounds every measured ‖T(a) − T(b)‖/‖a − b‖
    of its own step; pairs along J*'s top singular vector (the witness's) make the hunt reach
    ‖J*‖₂. Control: a bound 10% below the witness's ‖J*‖₂ is falsified by the same pairs."""
    w = Witnessed(ctx.system, ctx.seed)
    L = ctx.system.claimed_lipschitz()
    ctx.check(CONTRACTION.check("claimed L = lipschitz(params) < 1 (a contraction)", L))
    if not system_premises(ctx, w):
        return
    ratios = lipschitz_ratios(ctx.system, w, ctx.examples(60, 600))
    top, norm = float(ratios.max()), float(w.norm.max())
    ctx.check(SYSTEM_EXPANSION.check("max ||T(a)-T(b)|| / ||a-b|| over pairs, / claimed L",
                                     top / L, pairs=len(ratios), max_ratio=top, claimed=L))
    ctx.check(SYSTEM_REACHED.check("the hunt reaches the witness's ||J*||_2 (max ratio / "
                                   "||J*||_2)", top / norm if norm > 0 else 1.0, norm_J=norm))
    ctx.note(f"{ctx.system!r}: claimed L = {L:.6g}, max measured ratio {top:.6g}, witness "
             f"||J*||_2 = {norm:.6g} (the claim is {L / max(top, 1e-300):.3g}x the largest ratio)")
    ctx.negative_control(SYSTEM_EXPANSION.check("bound 0.9 ||J*||_2 holds for every pair",
                                                top / (WRONG_FACTOR * norm) if norm > 0
                                                else 0.0),
                         claimed_bound="0.9 * witness ||J*||_2")
