"""Track 19 — Convergence under stress: does SN change how many free phases converge in T steps?

Claim under test (the write-up): without SN the recurrent weight grows and "disrupts equilibrium
convergence"; SN fixes the instability. Measured here: the share of test samples whose free phase
meets the residual tolerance (‖T(h) − h‖₂ ≤ 1e-5, float32) after the T = 30 updates the model
is trained with, at every epoch, for every learning rate of a grid, SN (recurrent weight, γ =
0.95) vs no SN from one shared initialization per seed; plus accuracy and divergences. Either
answer is a result; the track states which one this data gives, with the numbers.

Setup. digits, hidden 128, real EqProp ("standard" variant: β = 0.2, 30 free + 2×10 nudged
updates), Adam, batch 64. Quick: lr ∈ {1e-3, 3e-3, 1e-2}, 2 seeds, 6 epochs; full: lr ∈ {3e-4,
1e-3, 3e-3, 1e-2, 3e-2}, 3 seeds, 15 epochs.

Checks (each can fail):
(1) SN arms: L = σ_max(W_dyn)·sup|φ′| ≤ γ by scipy on the final model of every run;
(2) SN arms, the certificate's promise: from h = 0, plain iteration meets the tolerance on every
    test sample within the Banach step count k* = ⌈log(tol(1 − L)/((1 + L)‖T(0)‖))/log L⌉
    (`properties.learning.banach_convergence`, float64) — share = 1 for every final model;
(3) every run completes (a divergence is recorded with its residual, and fails this check).
Verdicts (claims; both outcomes are acceptable): "SN improves convergence in T steps" — the mean
converged share (final epoch, over lr × seed cells) of SN minus that of no SN, with its 95% CI
(paired by cell, t distribution), holds iff the CI lies above 0; "SN improves accuracy" likewise.

Negative control: check (2) on a model without SN (the seed's initialization) whose W_dyn is
scaled to ‖W‖₂ = 3, run for the step count that an L = γ certificate would promise: it must not
converge on every sample. (Trained no-SN models mostly still converge — that is the measurement
above — so the control is the deliberately broken model, not a trained arm.)
"""

from __future__ import annotations

from eqprop_core.data import load_dataset
from properties import at_least_bound, at_most_bound, holds
from properties.learning import banach_convergence
from tracks.context import TrackContext
from tracks.procedures import convergence_under_stress as stress
from tracks.procedures.convergence_under_stress import GAMMA, GRID, TOL
from tracks.registry import track

CERTIFIED = at_most_bound(GAMMA, "check (1): SN on the recurrent weight with gamma = 0.95 "
                                 "certifies L = sigma_max(W_dyn) sup|phi'| <= gamma")
EVERY_SAMPLE = at_least_bound(
    1.0, "check (2), the certificate's promise: from h = 0 plain iteration meets the tolerance on "
         "every test sample within the Banach step count k*, so the share is 1")


@track(19, "Convergence under stress", "C",
       "share of samples reaching tolerance in T steps across epochs and learning rates, "
       "SN vs no SN (both outcomes reported)",
       reference=("the free phase's residual measured at every epoch against its tolerance, SN and "
                  "no SN from one shared initialization"))
def run(ctx: TrackContext) -> None:
    data = load_dataset("digits", seed=0)
    rates, n_seeds, epochs = GRID[ctx.profile]
    runs, models = stress.train_grid(ctx, data, rates, n_seeds, epochs)

    promises = stress.sn_promises(runs, models, data)
    ctx.check(CERTIFIED.check("SN arms: max certified L (scipy) over final models",
                              max(p["measured_lipschitz"] for p in promises.values())))
    worst = min(promises.values(), key=lambda p: p["share"])
    ctx.check(EVERY_SAMPLE.check("SN arms: share of test samples within tol after the Banach step "
                                 "count", worst["share"], steps=worst["steps"],
                                 lipschitz=worst["lipschitz"], max_residual=worst["max_residual"]))
    diverged = stress.divergences(runs)
    ctx.check(holds("every run completed (no divergence)", not diverged, "no divergence",
                    len(diverged), diverged=diverged))

    final = {key: r.history[-1] for key, r in runs.items()}
    seeds = range(ctx.seed, ctx.seed + n_seeds)
    cells = [(lr, seed) for lr in rates for seed in seeds]
    table = {}
    for metric, (label, with_sn, without, d) in stress.paired_comparisons(final, cells).items():
        mean, low, high = d.mean, d.low, d.high
        table[metric] = (mean, low, high)
        ctx.claim(holds(f"SN improves {label} (final epoch, paired over lr × seed)", low > 0,
                        "95% CI of SN − no SN above 0", mean, ci=[low, high],
                        sn=with_sn, no_sn=without,
                        cells=[f"lr={lr:g} seed={s}" for lr, s in cells]),
                  "write-up: without SN the Lipschitz constant disrupts equilibrium convergence; "
                  "SN fixes the instability")
    stress.account(ctx, final, rates, seeds, table)
    stress.converged_share_figure(ctx, runs, rates, seeds)

    # Control: no SN, W_dyn scaled to norm 3, held to the step count an L = γ certificate gives.
    promise = banach_convergence(stress.broken_model(data, ctx.seed), data.x_test, TOL,
                                 lipschitz=GAMMA)
    ctx.negative_control(EVERY_SAMPLE.check(
        "‖W‖₂ = 3 without SN: share within tol after the step count of a claimed L = γ",
        promise["share"]), steps=promise["steps"],
        measured_lipschitz=promise["measured_lipschitz"], max_residual=promise["max_residual"])
