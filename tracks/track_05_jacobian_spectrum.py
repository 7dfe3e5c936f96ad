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
    stitched — see `convergence_rate` for why a fixed float64 window is not enough;
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

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

import theory
from eqprop_core import LoopedMLP
from properties import (
    as_numpy,
    at_most,
    contractive_models,
    find_example,
    holds,
    initial_states,
    within,
    worst_case,
)
from properties.search import SearchOutcome
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

RATE_TOLERANCE = 0.05  # the claim: measured rate within 5% of ρ(J*)
LINEAR_REGIME = 1e-6  # ‖h − h*‖ ≤ 1e-6·√n: second-order terms are ~1e-6 of the first-order ones
RENORMALIZED_STEPS = 600  # steps in the linear regime: transients of |λ₂|/ρ ≤ 0.96 fall by 1e-10
FIT_STEPS = 300  # the log-linear fit uses the last 300 of them
MIN_RHO = 1e-3  # one linear step yields ρ·1e-6·√n; the ~1e-16 round-off of T(h*) is ≤ 1e-7 of it
MAX_STEPS = 20_000
STRONG_DRIVE = 0.1  # the control's model: mean φ′(a*) ≤ 0.1
SOLVE_TOL = 1e-14
NEWTON_AGREEMENT = 1e-12  # max |h*_torch − h*_scipy| accepted for the reference h*
FD_STEP = 1e-5
FD_TOLERANCE = 1e-7  # central differences: O(ε²) truncation ≈ 1e-10, O(eps/ε) round-off ≈ 1e-11
ROUNDING = 1e-12  # relative allowance for comparing two float64 spectral quantities


@dataclass
class Equilibrium:
    """A model at its fixed point, with scipy's spectral account of J* there."""

    spec: ModelSpec
    model: LoopedMLP
    x: torch.Tensor  # (1, n_in)
    weight: torch.Tensor  # W_eff, what model.step uses
    h_star: np.ndarray  # (n,) the model's Anderson solve
    newton_gap: float  # max |h*_torch − h*_scipy|, scipy's Newton from h = 0
    jacobian: np.ndarray  # J* by theory.jacobian_at_equilibrium
    slopes: np.ndarray  # φ′(a*) per unit
    rho: float  # ρ(J*) by scipy.linalg.eigvals
    norm: float  # ‖J*‖₂ by scipy.linalg.svdvals
    rho_weight: float  # ρ(W_eff): the rate the wrong Jacobian J = W_eff predicts
    lipschitz: float  # the model's certificate L
    lipschitz_scipy: float  # ‖W_eff‖₂·sup|φ′| by scipy

    def step(self, h: torch.Tensor) -> torch.Tensor:
        """One update of the code under test, T(h) = model.step(h, x), for a (B, n) batch."""
        # contiguous: a stride-0 (expanded) operand sends the matmul down a slow path
        return self.model.step(h, self.x.expand(h.shape[0], -1).contiguous(), weight=self.weight)


@lru_cache(maxsize=512)
def equilibrium_of(spec: ModelSpec) -> Equilibrium:
    """Build the model, solve for h* (torch, Anderson, tol 1e-14) and take J* by scipy."""
    model = spec.build()
    x = spec.inputs(1)
    h, _ = model.equilibrium(x, solver="anderson", tol=SOLVE_TOL, max_steps=5000)
    h_star = h[0].detach().numpy().astype(np.float64)
    reference = as_numpy(model)
    drive = reference.drive(x)[0]
    newton = theory.find_fixed_point(reference.weight, drive, reference.activation)
    jacobian = theory.jacobian_at_equilibrium(h_star, reference.weight, drive,
                                              reference.activation)
    slopes = theory.nonlinearity(reference.activation).slope(reference.weight @ h_star + drive)
    with torch.no_grad():
        weight = model.recurrent_weight()
    return Equilibrium(
        spec=spec, model=model, x=x, weight=weight, h_star=h_star,
        newton_gap=float(np.max(np.abs(h_star - newton.h))), jacobian=jacobian, slopes=slopes,
        rho=theory.spectral_radius(jacobian), norm=theory.spectral_norm(jacobian),
        rho_weight=theory.spectral_radius(reference.weight),
        lipschitz=model.lipschitz_certificate(),
        lipschitz_scipy=theory.lipschitz_certificate(reference.weight, reference.activation),
    )


@torch.no_grad()
def iteration_errors(eq: Equilibrium, h0: np.ndarray, steps: int) -> np.ndarray:
    """‖h_k − h*‖₂, k = 0 … steps, for rows h0 (B, n) under plain iteration of `model.step`."""
    h = torch.as_tensor(np.atleast_2d(h0), dtype=eq.weight.dtype)
    h_star = torch.as_tensor(eq.h_star, dtype=eq.weight.dtype)
    # contiguous: a stride-0 (expanded) operand sends the matmul down a slow path
    states = eq.model.trajectory(eq.x.expand(h.shape[0], -1).contiguous(), h, steps)
    return torch.linalg.vector_norm(states - h_star, dim=2).numpy()


@dataclass
class RateFit:
    """The asymptotic rate: exp of the slope of the stitched log ‖e_k‖ over its last steps.

    log_errors (K + 1,): log ‖h_k − h*‖ of plain iteration, continued past the switch step by
    the renormalized iteration (rescalings divided back out, so it reads as one sequence).
    """

    rate: float
    points: int
    first_step: int  # first and last k of the fit
    last_step: int
    switch_step: int  # where plain iteration reached the linear regime ‖e_k‖ ≤ ε·√n
    log_errors: np.ndarray


@torch.no_grad()
def convergence_rate(eq: Equilibrium, h0: np.ndarray) -> RateFit | None:
    """Asymptotic rate of plain iteration of `model.step` from h0 (n,) towards h*.

    Phase 1, plain iteration, until ‖e_k‖ ≤ ε√n (ε = 1e-6, the state lives in [−1, 1]^n): the
    linear regime, e_{k+1} = J*e_k up to a relative 1e-6. Phase 2, the same iteration with the
    deviation rescaled back to ε√n before every step (h ← h* + ε√n·e/‖e‖; Benettin's method):
    exact for the linearization, which is homogeneous, and it keeps ‖e‖ far above round-off
    however many steps the transient of a subdominant eigenvalue needs to die out — a fixed
    float64 window (1e-5 … 1e-11) holds only ln(1e6)/ln(1/ρ) steps and, at ρ ≈ 0.4 with
    |λ₂| ≈ 0.96ρ or a start nearly orthogonal to the dominant mode, fits |λ₂| instead of ρ.
    The rate is the log-linear fit over the last FIT_STEPS of the stitched sequence.

    None if the start is h* itself (e = 0 exactly) or plain iteration never gets there.
    """
    h = torch.as_tensor(np.atleast_2d(h0), dtype=eq.weight.dtype)
    h_star = torch.as_tensor(eq.h_star, dtype=eq.weight.dtype)[None, :]
    size = LINEAR_REGIME * np.sqrt(h_star.shape[1])
    error = float(torch.linalg.vector_norm(h - h_star))
    if error == 0:
        return None
    log_errors = [np.log(error)]
    for _ in range(MAX_STEPS):
        if error <= size:
            break
        h = eq.step(h)
        error = float(torch.linalg.vector_norm(h - h_star))
        if not 0 < error < np.inf:
            return None
        log_errors.append(np.log(error))
    else:
        return None
    switch = len(log_errors) - 1
    for _ in range(RENORMALIZED_STEPS):
        h = eq.step(h_star + (h - h_star) * (size / error))
        grown = float(torch.linalg.vector_norm(h - h_star))
        if not 0 < grown < np.inf:
            return None
        log_errors.append(log_errors[-1] + np.log(grown / size))
        error = grown
    log_errors = np.asarray(log_errors)
    steps = np.arange(len(log_errors) - FIT_STEPS, len(log_errors))
    slope = np.polyfit(steps.astype(np.float64), log_errors[steps], 1)[0]
    return RateFit(float(np.exp(slope)), FIT_STEPS, int(steps[0]), int(steps[-1]), switch,
                   log_errors)


# -- hypothesis cases -------------------------------------------------------------------------
def models_and_starts(models: st.SearchStrategy) -> st.SearchStrategy:
    """(model, start) pairs: each drawn model with hypothesis-drawn starts of its width."""
    return models.flatmap(lambda spec: st.tuples(st.just(spec), initial_states(spec.n_hidden)))


def rate_deviation(case: tuple[ModelSpec, np.ndarray], excluded: dict | None = None) -> float:
    """|measured rate − ρ(J*)| / ρ(J*) for one model and start.

    Skipped with `assume` (and counted in `excluded`): ρ(J*) < MIN_RHO, where the linearized
    step ρ·ε√n sinks towards round-off, and starts exactly at h* (no error to follow). A start
    from which plain iteration never reaches h* (a model that is not a contraction: another
    attractor, a cycle) is no exclusion but a failure: infinite deviation.
    """
    spec, h0 = case
    eq = equilibrium_of(spec)
    fit = convergence_rate(eq, h0) if eq.rho >= MIN_RHO else None
    if fit is not None:
        return abs(fit.rate - eq.rho) / eq.rho
    if eq.rho >= MIN_RHO and np.linalg.norm(np.atleast_2d(h0) - eq.h_star) > 0:
        return float("inf")
    if excluded is not None:
        reason = "rho_below_min" if eq.rho < MIN_RHO else "start_at_h_star"
        excluded[reason] = excluded.get(reason, 0) + 1
    assume(False)
    return float("nan")  # unreachable: assume(False) rejects the example


def rate_search(cases: st.SearchStrategy, deviation, n: int, seed: int) -> SearchOutcome:
    """`worst_case` of a rate deviation. If every draw is excluded — only a fixed model (`--model`)
    can do that, with ρ(J*) < MIN_RHO — the rate is unmeasured: NaN, which fails the check."""
    try:
        return worst_case(cases, deviation, bound=RATE_TOLERANCE, max_examples=n, seed=seed)
    except Unsatisfiable:
        return SearchOutcome(0, math.nan, None, "every draw excluded", math.nan)


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

    agree = worst_case(specs, reference_disagreement, bound=NEWTON_AGREEMENT, max_examples=n,
                       seed=ctx.seed)
    ctx.check(at_most("reference h*: max |h*_anderson - h*_scipy_newton|", agree.worst,
                      NEWTON_AGREEMENT, solver_tol=SOLVE_TOL, **agree.details()))

    excluded: dict = {}
    # A user's model has to earn the premise that plain iteration reaches h* from every start;
    # without it the rate search is not run (each start that never arrives costs MAX_STEPS).
    contracts = ctx.model is None or contraction_premise(ctx, specs, n)
    if contracts:
        rate = rate_search(models_and_starts(specs), lambda c: rate_deviation(c, excluded), n,
                           ctx.seed)
        ctx.check(at_most("max |measured rate - rho(J*)| / rho(J*)", rate.worst, RATE_TOLERANCE,
                          linear_regime=LINEAR_REGIME, renormalized_steps=RENORMALIZED_STEPS,
                          fit_steps=FIT_STEPS, min_rho=MIN_RHO, excluded_draws=excluded,
                          **rate.details()))

    radius = worst_case(specs, radius_over_norm, bound=1.0 + ROUNDING, max_examples=n,
                        seed=ctx.seed)
    ctx.check(at_most("max rho(J*) / ||J*||_2", radius.worst, 1.0 + ROUNDING,
                      **radius.details()))
    norm = worst_case(specs, norm_over_certificate, bound=1.0, max_examples=n, seed=ctx.seed)
    ctx.check(at_most("max ||J*||_2 / L (model's certificate)", norm.worst, 1.0,
                      **norm.details()))

    fd = worst_case(specs, finite_difference_gap, bound=FD_TOLERANCE, max_examples=n,
                    seed=ctx.seed)
    ctx.check(at_most("max |J*_scipy - J_finite_difference(model.step)|", fd.worst,
                      FD_TOLERANCE, step=FD_STEP, **fd.details()))
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
    fit = convergence_rate(eq, gaussian_start(spec, seed))
    ctx.negative_control(
        within("measured rate matches rho(W_eff) (wrong Jacobian J = W_eff)", fit.rate,
               eq.rho_weight, RATE_TOLERANCE),
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
    ctx.check(at_most("autograd J* vs central FD of step: max |diff| / max |J*|", fd, 1e-6))
    if ctx.system.has("lipschitz"):
        L = ctx.system.claimed_lipschitz()
        ctx.check(at_most("rho(J*) <= ||J*||_2 <= claimed L: max ||J*||_2 / L",
                          float(w.norm.max()) / L, 1 + 1e-9, claimed=L))
    measurable = w.rho >= 1e-3
    rate = renormalized_rate(ctx.system, w)
    dev = np.abs(rate / np.where(measurable, w.rho, 1.0) - 1)[measurable]
    ctx.check(at_most("measured asymptotic rate vs rho(J*): max |rate/rho - 1|",
                      float(dev.max()) if dev.size else 0.0, RATE_TOLERANCE,
                      rho=w.rho.tolist(), rate=rate.tolist(), samples=int(measurable.sum())))
    ctx.note(f"{ctx.system!r}: rho(J*) in [{w.rho.min():.4g}, {w.rho.max():.4g}], ||J*||_2 <= "
             f"{w.norm.max():.4g}; measured rates {np.round(rate, 4).tolist()}")
    a = amplifying_factor(w)
    bad = Witnessed(Amplified(ctx.system, a), ctx.seed)
    ctx.negative_control(at_most("over-relaxed map: rho(J') < 1", float(bad.rho.max()),
                                 1 - 1e-12), over_relaxation=a)
