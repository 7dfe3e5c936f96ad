"""Track 31 (an example written to the "Adding a track" recipe) — activation slopes: the declared
sup|φ′| that every Lipschitz certificate uses bounds each registered activation's secants, and
is tight; the declared φ′ is φ's derivative.

Measured against φ itself (secants and central differences in float64), never the declared
constant or derivative under test; the derivation and the rounding allowances are in
`properties.activation_slopes`.

Negative control: a slope claimed 10% too small (0.9·sup|φ′|) is falsified by a drawn pair.
"""

from __future__ import annotations

from properties import Search, at_least_bound, at_most_bound
from properties.activation_slopes import derivative_error, secant_over_max_slope, slope_pairs
from tracks.registry import track

SECANT = at_most_bound(1 + 1e-12, "mean value theorem: no secant exceeds sup|φ′|; 1e-12 is the "
                                  "float64 rounding of a secant over a gap >= 1e-3")
TIGHT = at_least_bound(0.99, "sup|φ′| is attained (at a = 0 for tanh and the sigmoid): the hunted "
                             "secants reach it, so a vacuous bound such as 2·sup|φ′| is caught")
DERIVATIVE = at_most_bound(1e-9, "central difference with ε = 1e-5: truncation ≤ sup|φ‴|ε²/6 and "
                                 "rounding ≤ 2u/ε sum to < 6e-11")
SEARCHES = (
    Search("max secant |phi(a) - phi(b)|/|a - b| / declared sup|phi'|", secant_over_max_slope,
           SECANT),
    Search("max |phi'(a) - central difference|", derivative_error, DERIVATIVE),
)
WRONG = Search("secant / a slope claimed 10% too small (0.9 sup|phi'|)",
               lambda c: secant_over_max_slope(c) / 0.9, SECANT)


@track(31, "Activation slopes", "A", "the declared sup|phi'| bounds every secant of phi and is "
       "attained; the declared phi' is phi's derivative", reference="secants and central "
       "differences of phi itself, in float64")
def run(ctx) -> None:
    n = ctx.examples(60, 600)
    secant, _ = (ctx.search(slope_pairs(), spec, n) for spec in SEARCHES)
    ctx.check(TIGHT.check("hunted secant / declared sup|phi'| (tightness)", secant.worst))
    wrong = WRONG.run(slope_pairs(), max_examples=n, seed=ctx.seed)
    ctx.negative_control(SECANT.check(WRONG.name, wrong.worst, **wrong.details()))
