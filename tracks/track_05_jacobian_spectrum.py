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

from typing import cast

import numpy as np
import torch
from hypothesis import strategies as st

from properties import (
    Search,
    at_most_bound,
    contractive_models,
    find_example,
    holds,
    initial_states,
)
from properties.contraction_rate import (
    FIT_STEPS,
    LINEAR_REGIME,
    MIN_RHO,
    RATE,
    RATE_MATCH,
    RATE_TOLERANCE,
    RENORMALIZED_STEPS,
    SOLVE_TOL,
    Equilibrium,
    RateFit,
    convergence_rate,
    equilibrium_of,
    rate_deviation,
    rate_search,
)
from properties.strategies import ModelSpec
from properties.system_checks import (
    Amplified,
    Witnessed,
    amplifying_factor,
    jacobian_fd_error,
    renormalized_rate,
)

from .plots import plt, save_figure
from .premises import contraction_premise, describe_models, system_premises
from .registry import on_system, track

STRONG_DRIVE = 0.1  # the control's model: mean φ′(a*) ≤ 0.1
FD_STEP = 1e-5
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


# -- hypothesis cases -------------------------------------------------------------------------
def models_and_starts(models: st.SearchStrategy) -> st.SearchStrategy:
    """(model, start) pairs: each drawn model with hypothesis-drawn starts of its width."""
    return models.flatmap(lambda spec: st.tuples(st.just(spec), initial_states(spec.n_hidden)))


def reference_disagreement(spec: ModelSpec) -> float:
    """max |h*_torch − h*_scipy|."""
    return equilibrium_of(spec).newton_gap


def radius_over_norm(spec: ModelSpec) -> float:
    eq = equilibrium_of(spec)
    return eq.rho / eq.norm if eq.norm > 0 else 0.0


def norm_over_certificate(spec: ModelSpec) -> float:
    eq = equilibrium_of(spec)
    return eq.norm / eq.lipschitz


@torch.no_grad()
def finite_difference_jacobian(eq: Equilibrium, eps: float = FD_STEP) -> np.ndarray:
    """[T(h* + εe_j) − T(h* − εe_j)] / 2ε for every unit vector e_j, by `model.step`: (n, n)."""
    n = eq.h_star.shape[0]
    h_star = torch.as_tensor(eq.h_star, dtype=eq.weight.dtype)
    shifts = eps * torch.eye(n, dtype=eq.weight.dtype)
    columns = (eq.step(h_star + shifts) - eq.step(h_star - shifts)) / (2 * eps)
    return columns.numpy().T  # row j of `columns` is ∂T/∂h_j: column j of J


def finite_difference_gap(spec: ModelSpec) -> float:
    eq = equilibrium_of(spec)
    return float(np.max(np.abs(finite_difference_jacobian(eq) - eq.jacobian)))


REFERENCE = Search("reference h*: max |h*_anderson - h*_scipy_newton|", reference_disagreement,
                   NEWTON_AGREEMENT)
SPECTRAL = (Search("max rho(J*) / ||J*||_2", radius_over_norm, RADIUS),
            Search("max ||J*||_2 / L (model's certificate)", norm_over_certificate, NORM))
FINITE_DIFFERENCE = Search("max |J*_scipy - J_finite_difference(model.step)|",
                           finite_difference_gap, FD_AGREEMENT)


# -- negative control -------------------------------------------------------------------------
driven_models = st.tuples(
    contractive_models(gamma=0.99), st.sampled_from([2.0, 3.0, 5.0]), st.integers(0, 2**16),
).map(lambda t: (t[0].with_(drive_scale=t[1]), t[2]))


def gaussian_start(spec: ModelSpec, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(spec.n_hidden)


def wrong_jacobian_falsified(case: tuple[ModelSpec, int]) -> bool:
    """Strongly driven (mean φ′(a*) ≤ 0.1), and the rate is off ρ(W_eff) by more than 5%."""
    spec, seed = case
    eq = equilibrium_of(spec)
    if eq.slopes.mean() > STRONG_DRIVE or eq.rho < MIN_RHO:
        return False
    fit = convergence_rate(eq, gaussian_start(spec, seed))
    return fit is not None and abs(fit.rate - eq.rho_weight) > RATE_TOLERANCE * eq.rho_weight


def plot_rate(path, panels) -> None:
    """log ‖h_k − h*‖ vs k with the slopes ρ(J*)^k (and the wrong ρ(W_eff)^k) through the fit."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (title, eq, fit) in zip(axes[0], panels):
        log10 = fit.log_errors / np.log(10)
        k = np.arange(len(log10))
        ax.plot(k[:fit.switch_step + 1], log10[:fit.switch_step + 1], "k.", ms=3,
                label=r"plain iteration $\log_{10}\|h_k - h^*\|$")
        ax.plot(k[fit.switch_step:], log10[fit.switch_step:], "k-", lw=1,
                label="continued, renormalized (stitched)")
        anchor = log10[fit.first_step]
        for rate, style, label in ((eq.rho, "C0--", rf"$\rho(J^*)^k$, $\rho$ = {eq.rho:.4f}"),
                                   (eq.rho_weight, "C3:",
                                    rf"wrong $\rho(W)^k$, $\rho$ = {eq.rho_weight:.4f}")):
            ax.plot(k, anchor + (k - fit.first_step) * np.log10(rate), style, label=label)
        ax.axvspan(fit.first_step, fit.last_step, color="0.9", label="fit")
        ax.set_ylim(log10.min() - 5, log10.max() + 5)
        ax.set_xlabel("k")
        ax.set_ylabel(r"$\log_{10}$ error")
        ax.set_title(f"{title}: fitted rate {fit.rate:.4f}", fontsize=9)
        ax.legend(fontsize=7)
    save_figure(fig, path, dpi=120)


@track(5, "Jacobian spectrum", "A",
       "measured asymptotic rate of plain iteration matches rho(J*), J* = diag(phi'(a*)) W "
       "(within 5%)", model_requires=())
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

    radius, norm = (ctx.search(specs, spec, n) for spec in SPECTRAL)
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
    eq = equilibrium_of(spec)
    # not None: `found` passed wrong_jacobian_falsified, which needs this same fit
    fit = cast(RateFit, convergence_rate(eq, gaussian_start(spec, seed)))
    ctx.negative_control(
        RATE_MATCH.check("measured rate matches rho(W_eff) (wrong Jacobian J = W_eff)",
                         fit.rate, eq.rho_weight),
        model=repr(spec), start_seed=seed, rho_J_star=eq.rho, rho_W_eff=eq.rho_weight,
        measured_rate=fit.rate, deviation_from_rho_J_star=abs(fit.rate - eq.rho) / eq.rho,
        deviation_from_rho_W=abs(fit.rate - eq.rho_weight) / eq.rho_weight,
        mean_phi_prime=float(eq.slopes.mean()), max_phi_prime=float(eq.slopes.max()),
    )
    ctx.note(f"control ({spec.n_hidden} units, drive x{spec.drive_scale:g}, mean phi' "
             f"{eq.slopes.mean():.3f}): measured rate {fit.rate:.4f}, rho(J*) {eq.rho:.4f}, "
             f"wrong rho(W_eff) {eq.rho_weight:.4f}")

    path = ctx.artifact_path("rate.png")
    if path is not None:
        example = ModelSpec(n_in=3, n_hidden=10, weight_scale=1.0, structure="gaussian",
                            seed=ctx.seed, gamma=0.95, drive_scale=1.0)
        typical = equilibrium_of(example)
        plot_rate(path, [("SN model (gaussian W, 10 units)", typical,
                          convergence_rate(typical, gaussian_start(example, ctx.seed))),
                         ("control: strongly driven", eq, fit)])


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
