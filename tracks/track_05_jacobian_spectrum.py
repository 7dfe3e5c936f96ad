"""Track 5 — Jacobian spectrum: plain iteration converges at the rate ρ(J*), J* = diag(φ′(a*))W.

At the fixed point h* = φ(W_eff h* + Ux + b) the update map T has the Jacobian

    J* = ∂T/∂h (h*) = diag(φ′(a*)) W_eff,   a* = W_eff h* + Ux + b,

so near h* the error of plain iteration h_{k+1} = T(h_k) obeys e_{k+1} ≈ J* e_k and shrinks
asymptotically as ρ(J*)^k (Gelfand: ‖J^k‖^{1/k} → ρ(J)). Claims, each measured against scipy
(`theory`, float64) applied to the model's own weights:

(a) the measured asymptotic rate of `model.step` iterated from hypothesis-drawn starts (zeros,
    Gaussian, 1e6-norm, corners) matches ρ(J*) within 5%, for hypothesis-drawn symmetric SN
    models with ρ(J*) ≥ 1e-3. The rate is a log-linear fit of log ‖h_k − h*‖ over 300 steps in
    the linear regime ‖h_k − h*‖ ≈ 1e-6·√n, which plain iteration keeps only for ln(1e5)/ln(1/ρ)
    steps before round-off; the deviation is therefore renormalized after every step there
    (Benettin's method, exact for the homogeneous linearization) and the error sequence
    stitched — see `properties.contraction_rate.convergence_rate` for why a fixed float64
    window is not enough;
(b) ρ(J*) ≤ ‖J*‖₂ ≤ L, the model's Lipschitz certificate;
(c) scipy's J* equals a central finite-difference Jacobian of `model.step` to 1e-7.
h* is the model's own Anderson solve at tol 1e-14, cross-checked against scipy's Newton solve
from an independent start.

Negative control: the plausible wrong Jacobian J = W_eff (dropping diag(φ′)) predicts the rate
ρ(W_eff). On a strongly driven model (γ = 0.99, drive ×2…5, mean φ′(a*) ≤ 0.1; the minimal one
hypothesis finds) the same rate measurement falsifies that prediction by far more than the 5%
tolerance, while ρ(J*) still predicts it. (With zero drive, h* = 0 and φ′ = 1, the two agree:
that is why the control needs the drive.)

Under `--model` (any model): checks (a)–(c) hold the user's model fixed and draw the starts. (a)
presupposes that plain iteration reaches h* from every start, so the model must first pass the
premise "certified L < 1" (`tracks.premises`), recorded as a check; without it (a) is not run.
A start that never reaches h* fails (a) with an infinite deviation rather than being excluded.
The control stays on the suite's models.
"""

from __future__ import annotations

import numpy as np

from properties import Search, at_most_bound, contractive_models, find_example, holds
from properties.contraction_rate import (
    FIT_STEPS,
    LINEAR_REGIME,
    MIN_RHO,
    RATE,
    RATE_MATCH,
    RATE_TOLERANCE,
    RENORMALIZED_STEPS,
    SOLVE_TOL,
    rate_deviation,
    rate_search,
)
from properties.jacobian_spectrum import (
    FD_STEP,
    driven_models,
    finite_difference_gap,
    models_and_starts,
    norm_over_certificate,
    radius_over_norm,
    reference_disagreement,
    wrong_jacobian_falsified,
    wrong_jacobian_rates,
)
from properties.system_checks import (
    Amplified,
    Witnessed,
    amplifying_factor,
    jacobian_fd_error,
    renormalized_rate,
)

from .plots import draw
from .premises import contraction_premise, describe_models, system_premises
from .procedures.jacobian_spectrum import rate_figure
from .registry import on_system, track

NEWTON_AGREEMENT = at_most_bound(1e-12, "the largest |h*_torch - h*_scipy| accepted for the "
                                        "reference h* (the Anderson solve is at tol 1e-14)")
RADIUS = at_most_bound(1.0 + 1e-12, "rho(J*) <= ||J*||_2, with a relative 1e-12 for comparing "
                                    "two float64 spectral quantities")
NORM = at_most_bound(1.0, "||J*||_2 <= L, the model's Lipschitz certificate")
FD_AGREEMENT = at_most_bound(1e-7, "central differences at step 1e-5: O(eps^2) truncation "
                                   "~1e-10, O(eps_mach/eps) round-off ~1e-11")
SYSTEM_FD = at_most_bound(1e-6, "autograd J* equals the central difference of the step (step "
                                "1e-6, error O(s^2) + eps/s); the figure is not derived")
SYSTEM_NORM = at_most_bound(1 + 1e-9, "rho(J*) <= ||J*||_2 <= the claimed L, up to 1e-9 "
                                      "(not derived)")
CONTRACTION = at_most_bound(1 - 1e-12, "a contraction: rho(J') < 1")


REFERENCE = Search("reference h*: max |h*_anderson - h*_scipy_newton|", reference_disagreement,
                   NEWTON_AGREEMENT)
SPECTRAL = (Search("max rho(J*) / ||J*||_2", radius_over_norm, RADIUS),
            Search("max ||J*||_2 / L (model's certificate)", norm_over_certificate, NORM))
FINITE_DIFFERENCE = Search("max |J*_scipy - J_finite_difference(model.step)|",
                           finite_difference_gap, FD_AGREEMENT)


@track(5, "Jacobian spectrum", "A",
       "measured asymptotic rate of plain iteration matches rho(J*), J* = diag(phi'(a*)) W "
       "(within 5%)", model_requires=(),
       reference=("J* = diag(φ′(a*))W_eff and its spectrum by scipy (`theory`), the FD Jacobian, "
                  "against the rate fitted to the model's iterates"))
def run(ctx) -> None:
    n = ctx.examples(30, 300)
    specs = ctx.models(contractive_models())

    ctx.search(specs, REFERENCE, n, details=lambda: {"solver_tol": SOLVE_TOL})

    excluded: dict = {}
    # A user's model has to earn the premise that plain iteration reaches h* from every start;
    # without it the rate search is not run (each start that never arrives costs MAX_STEPS).
    contracts = ctx.model is None or contraction_premise(ctx, specs, n)
    if contracts:
        rate = rate_search(models_and_starts(specs), lambda c: rate_deviation(c, excluded), n,
                           ctx.seed)
        ctx.check(RATE.check("max |measured rate - rho(J*)| / rho(J*)", rate.worst,
                             linear_regime=LINEAR_REGIME, renormalized_steps=RENORMALIZED_STEPS,
                             fit_steps=FIT_STEPS, min_rho=MIN_RHO, excluded_draws=excluded,
                             **rate.details()))

    radius, norm = [ctx.search(specs, spec, n) for spec in SPECTRAL]
    fd = ctx.search(specs, FINITE_DIFFERENCE, n, details=lambda: {"step": FD_STEP})
    if contracts:
        ctx.note(f"{describe_models(ctx, n, 'drawn symmetric SN models per check')}; worst rate "
                 f"deviation {rate.worst:.3e} (tolerance {RATE_TOLERANCE}); worst rho/||J*|| "
                 f"{radius.worst:.6f}, ||J*||/L {norm.worst:.6f}; worst finite-difference gap "
                 f"{fd.worst:.2e}")
    else:
        ctx.note(f"{ctx.model!r} is not a certified contraction: the rate check was not run; "
                 f"rho/||J*|| {radius.worst:.6f}, ||J*||/L {norm.worst:.6f}, finite-difference "
                 f"gap {fd.worst:.2e}")

    # The same rate measurement, predicted by the wrong Jacobian J = W_eff.
    found = find_example(driven_models, wrong_jacobian_falsified,
                         max_examples=ctx.examples(200, 1000), seed=ctx.seed)
    if found is None:
        ctx.negative_control(holds("a strongly driven model falsifies J = W_eff", True,
                                   "a model with mean phi'(a*) <= 0.1 is found"),
                             note="no strongly driven model found: the control did not run")
        return
    spec, seed = found
    eq, fit, details = wrong_jacobian_rates(spec, seed)
    ctx.negative_control(RATE_MATCH.check("measured rate matches rho(W_eff) (wrong Jacobian J = "
                                          "W_eff)", fit.rate, eq.rho_weight), **details)
    ctx.note(f"control ({spec.n_hidden} units, drive x{spec.drive_scale:g}, mean phi' "
             f"{eq.slopes.mean():.3f}): measured rate {fit.rate:.4f}, rho(J*) {eq.rho:.4f}, "
             f"wrong rho(W_eff) {eq.rho_weight:.4f}")

    path = ctx.artifact_path("rate.png")
    if path is not None:
        draw(path, rate_figure(ctx.seed, eq, fit))


@on_system(5, requires=())
def certify_system(ctx) -> None:
    """At the witness's h*, J* = ∂T_0/∂h (autograd of the System's step) equals a central
    finite-difference Jacobian of the step; ρ(J*) < 1 ≤ … ρ ≤ ‖J*‖₂ (≤ the claimed L, if any);
    the System's plain iteration near h* converges at the rate ρ(J*) within 5% (Benettin's
    renormalized deviation). Control: the over-relaxed map has ρ(J') ≥ 3."""
    w = Witnessed(ctx.system, ctx.seed)
    if not system_premises(ctx, w):
        return
    fd = jacobian_fd_error(ctx.system, w)
    ctx.check(SYSTEM_FD.check("autograd J* vs central FD of step: max |diff| / max |J*|", fd))
    if ctx.system.has("lipschitz"):
        L = ctx.system.claimed_lipschitz()
        ctx.check(SYSTEM_NORM.check("rho(J*) <= ||J*||_2 <= claimed L: max ||J*||_2 / L",
                                    float(w.norm.max()) / L, claimed=L))
    measurable = w.rho >= MIN_RHO
    rate = renormalized_rate(ctx.system, w)
    dev = np.abs(rate / np.where(measurable, w.rho, 1.0) - 1)[measurable]
    ctx.check(RATE.check("measured asymptotic rate vs rho(J*): max |rate/rho - 1|",
                         float(dev.max()) if dev.size else 0.0,
                         rho=w.rho.tolist(), rate=rate.tolist(), samples=int(measurable.sum())))
    ctx.note(f"{ctx.system!r}: rho(J*) in [{w.rho.min():.4g}, {w.rho.max():.4g}], ||J*||_2 <= "
             f"{w.norm.max():.4g}; measured rates {np.round(rate, 4).tolist()}")
    a = amplifying_factor(w)
    bad = Witnessed(Amplified(ctx.system, a), ctx.seed)
    ctx.negative_control(CONTRACTION.check("over-relaxed map: rho(J') < 1",
                                           float(bad.rho.max())), over_relaxation=a)
