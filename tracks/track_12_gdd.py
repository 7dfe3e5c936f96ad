"""Track 12 — GDD (Ernoult et al. 2019): EP's step-by-step updates in the nudged phase against
BPTT's gradients at the mirrored time steps.

What is compared (`eqprop_core.gdd`, whose docstring derives every statement below). Free phase
to h_* (residual ≤ 1e-13); EP runs a nudged phase of K = 30 steps from h_* and reads off, per
sample and per step, the descent updates

    ΔEP_s(t) = (h^β_{t+1} − h^β_t)/β,   ΔEP_θ(t) = −[∂E/∂θ(h^β_{t+1}) − ∂E/∂θ(h^β_t)]/β,

θ ∈ {W (the W_eff the dynamics use), U, b}. The REFERENCE is BPTT by autograd: K free steps from
h_*, loss ℓ(h_K), ∇BPTT_s(t) = ∂ℓ/∂h_{K−t} and ∇BPTT_θ(t) = ∂ℓ/∂θ at the step into h_{K−t}.
GDD: ΔEP(t) = −∇BPTT(t) for every t as β → 0. Measured over all t, samples and entries of a
quantity: relative RMSE ‖ΔEP + ∇BPTT‖/‖∇BPTT‖ and sign agreement (entries with |∇BPTT| above
1e-6 of its largest). The limit β → 0 itself is evaluated by a complex-step nudge β = i·1e-20
(Im h/|β| is the β-derivative with no cancellation, so no finite-β bias and no round-off
floor); finite β by the symmetric ±β nudges EP actually runs.

What theory predicts (linearizing around h_*, g = ∂ℓ/∂h(h_*)):
(a) primitive-function dynamics h_{t+1} = ∂Φ/∂h (`PrimitiveModel`, Φ = ½ρ(h)ᵀWρ(h) + hᵀ(Ux + b),
    W = Wᵀ, ρ ∈ {identity, tanh}, certified contraction L ≤ 0.9): both sides are H^t g with
    H = ∂²Φ/∂h² symmetric — GDD is exact for neurons and parameters;
(b) the tanh energy model (LoopedMLP, symmetric W_eff with SN): the parameter updates are exact
    (both sides carry D = diag φ′(a*)), but the neuron updates are ΔEP_s(t) → −D∇BPTT_s(t): the
    same signs (D > 0) with relative RMSE ‖(I − D)∇‖/‖∇‖ that does not shrink with β;
(c) asymmetric W (vector-field EP): EP propagates the error with DW, BPTT with WᵀD — GDD fails.

Checks, over hypothesis-drawn models (primitive: `primitive_models`; energy: `gradient_models`,
symmetric, SN or not; batch 2 each; quick 12 examples per search, full 200):
(1) [primitive] β → 0 residual, max over neurons, W, U, b ≤ 1e-10. Theory says 0; the float64
    recurrences of 30 steps leave 4e-16–1.2e-12 (over ~700 drawn models), while every wrong
    propagation seen (the control's draws) is ≥ 3e-4;
(2) [primitive] finite symmetric β: the residual falls as β² — |local slope − 2| ≤ 0.1, the
    slope of log residual vs log β over one decade (measured 1.996–2.004; the next term is
    O(β⁴)). The decade is β = 1e-2 → 1e-3 unless r(1e-3) is within 100× of its round-off scale
    ρ/β (`roundoff_scale`: one ulp of every nudged state over β‖∇‖; at β = 1e-6 measured
    residuals are 0.05–1.5 ρ/β), then 1e-1 → 1e-2; a model at round-off even at 1e-2 is exact
    to round-off at every β tried and counts as passing (the counts are recorded). Such models
    exist: a saturated readout leaves almost no β² term (linear ρ, |h_*| ~ 35: r(1e-3) = 9e-12);
(3) [energy] the same β → 0 check on W, U, b and on the D-corrected neurons −D∇BPTT_s;
(4) [energy] the same β² slope check;
(5) [energy] the raw neuron deviation is the predicted one: |RMSE(ΔEP_s, −∇BPTT_s) −
    ‖(I − D)∇‖/‖∇‖| ≤ 1e-10 (theory: 0; the triangle inequality bounds it by the D-corrected
    residual, itself round-off), and (6) no raw neuron sign disagrees (D > 0).
The raw neuron deviation itself is a measurement, not a bound: reported for the representative
model and as a range over the draws (with the model where it is largest).

Negative control: asymmetric W (vector-field EP), drawn by `gradient_models(symmetric=False)` and
shrunk by hypothesis — check (3) fails by orders of magnitude; for the representative model with
symmetric=False the residual does not shrink with β either (fitted slope ≈ 0).

Artifacts: `curves.png` (the classic GDD figure: ΔEP(t) and −∇BPTT(t) for the neurons and weights
with the largest gradients, per model) and `beta-sweep.png` (residual vs symmetric β, log–log,
fitted slopes on [1e-3, 0.1]; the round-off rise below 1e-5 is visible).

Under `--model` (symmetric W_eff; any parametrization, since GDD is stated for W_eff): part (b),
checks (3)–(6), runs on the user's model. Part (a) stays on the suite's primitive models — a
LoopedMLP has no primitive-function form — and so do the representatives and the control.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from eqprop_core.gdd import (
    PrimitiveModel,
    RecurrentProblem,
    StepUpdates,
    bptt_step_gradients,
    energy_model_problem,
    ep_step_updates,
    gdd_agreement,
)
from properties import (
    Bound,
    MeasuredOnce,
    ModelSpec,
    Search,
    at_most_bound,
    find_example,
    fitted_slope,
    gradient_models,
)
from properties.system_checks import (
    AsymmetricallyCoupled,
    DoubledNudge,
    Witnessed,
    gdd_residual,
    preconditioner_asymmetry,
)

from .plots import Series, line_plot, plt, save_figure
from .premises import system_premises
from .registry import on_system, track

SYSTEM_GDD_BETA = 1e-4
SYSTEM_GDD = at_most_bound(
    1e-6, "the System's GDD parameter residual, extrapolated to beta -> 0 from 1e-4 and 2e-4 (the "
          "O(beta^2) term removed) over 30 steps: what is left is O(beta^4) and round-off ~1e-11")

STEPS = 30  # K: nudged steps / unrolled BPTT steps from h_*
BATCH = 2  # samples per drawn model (compared per sample)
LIMIT_NUDGE = 1e-20  # complex-step nudge i·1e-20: bias O(1e-40), no cancellation
SLOPE_LADDER = (1e-1, 1e-2, 1e-3)  # the local β² slope: a decade pair of these (see `local_slope`)
ABOVE_ROUNDOFF = 100.0  # a residual counts as truncation when ≥ 100× its round-off scale
PLOT_BETA = 1e-3  # finite β of the per-step curves
PLOT_STEPS = 15  # the curves show t < 15, where the signals live (they decay as ρ(J*)^t)
LIMIT = at_most_bound(
    1e-10, "checks (1), (3), (5): theory says 0; the float64 recurrences of 30 steps leave "
           "4e-16 to 1.2e-12 (over ~700 drawn models), while every wrong propagation seen (the "
           "control's draws) is >= 3e-4")
SLOPE = at_most_bound(
    0.1, "checks (2), (4): |local slope - 2| of the residual over one decade of symmetric beta "
         "(measured 1.996 to 2.004; the next term is O(beta^4))")
NO_SIGN_DISAGREES = at_most_bound(
    0.0, "check (6): D = diag phi'(a*) > 0, so no raw neuron update's sign disagrees with BPTT's")
SWEEP_BETAS = tuple(10.0 ** (k / 2) for k in range(-12, 0))  # 1e-6 … 10^-0.5, half decades
FIT_RANGE = (1e-3, 0.1)  # fitted slopes of the sweep: above the round-off floor
LARGE_BETA = SWEEP_BETAS.index(10.0 ** -1)  # where the account quotes the finite-β residual
PARAMETERS = ("W", "U", "b")
SLOPE_CHECK = ("symmetric beta: |local slope - 2| of the residual (beta 0.01 -> 0.001, or 0.1 -> "
               "0.01 where 0.001 is at round-off)")
PRIMITIVE_SEARCHES = (  # (metric of `gdd_metrics`, bound, check)
    ("limit", LIMIT, "beta->0 limit: max relative RMSE (neurons, W, U, b) vs -BPTT"),
    ("slope_error", SLOPE, SLOPE_CHECK),
)
ENERGY_SEARCHES = (
    ("limit", LIMIT, "beta->0 limit: max relative RMSE (W, U, b and D-corrected neurons) vs -BPTT"),
    ("slope_error", SLOPE, SLOPE_CHECK),
    ("raw_gap", LIMIT, "|raw neuron deviation - predicted ||(I - D)grad||/||grad|| |"),
    ("raw_sign_disagreement", NO_SIGN_DISAGREES,
     "raw neuron updates: share of signs that disagree"),
)


@dataclass(frozen=True)
class PrimitiveSpec:
    """A `PrimitiveModel` described by numbers (so a counterexample reads and rebuilds)."""

    n_in: int
    n_hidden: int
    lipschitz: float
    drive_scale: float
    nonlinearity: str
    seed: int
    n_out: int = 3

    def build(self) -> PrimitiveModel:
        return PrimitiveModel.random(self.n_in, self.n_hidden, self.n_out,
                                     lipschitz=self.lipschitz, drive_scale=self.drive_scale,
                                     nonlinearity=self.nonlinearity, seed=self.seed)

    def inputs(self, batch: int) -> torch.Tensor:
        rng = np.random.default_rng(self.seed + 1)
        return torch.as_tensor(rng.standard_normal((batch, self.n_in)))

    def labels(self, batch: int) -> torch.Tensor:
        return torch.as_tensor(np.random.default_rng(self.seed + 2).integers(0, self.n_out, batch))


@st.composite
def primitive_models(draw: st.DrawFn) -> PrimitiveSpec:
    """Quadratic (identity ρ) and tanh-ρ primitives, certified L ∈ {0.5, 0.9}, drives up to 3
    (the linear model's h_* = (I − W)⁻¹d then reaches |h| ~ 100: saturated readouts whose β²
    term sinks below round-off, which `local_slope` has to handle)."""
    return PrimitiveSpec(
        n_in=draw(st.integers(1, 5)), n_hidden=draw(st.integers(2, 8)),
        lipschitz=draw(st.sampled_from([0.5, 0.9])),
        drive_scale=draw(st.sampled_from([0.1, 0.5, 1.0, 3.0])),
        nonlinearity=draw(st.sampled_from(["identity", "tanh"])),
        seed=draw(st.integers(0, 2**16)),
    )


def problem_of(spec: ModelSpec | PrimitiveSpec) -> RecurrentProblem:
    x, y = spec.inputs(BATCH), spec.labels(BATCH)
    if isinstance(spec, PrimitiveSpec):
        return spec.build().problem(x, y)
    return energy_model_problem(spec.build(), x, y)


def corrected(reference: StepUpdates, problem: RecurrentProblem) -> StepUpdates:
    """BPTT's neuron gradients seen through D (identity for the primitive model)."""
    return reference.scaled_neurons(problem.neuron_scale)


def limit_residual(problem: RecurrentProblem) -> float:
    """Check (3)'s statistic alone: max relative RMSE of the β → 0 updates (parameters and
    D-corrected neurons) against −∇BPTT."""
    reference = corrected(bptt_step_gradients(problem, steps=STEPS), problem)
    limit = ep_step_updates(problem, beta=LIMIT_NUDGE, steps=STEPS, estimator="complex_step")
    return max(a.relative_rmse for a in gdd_agreement(limit, reference).values())


def roundoff_scale(problem: RecurrentProblem, target: StepUpdates) -> float:
    """ρ with round-off part of the relative residual ≈ ρ/β: one ulp of each of the 2(K + 1)
    nudged states, ε‖h_*‖√(2(K + 1)), divided by β and by ‖∇BPTT_s‖ (measured at β = 1e-6,
    where round-off dominates, the residual is 0.05–1.5 ρ/β over 600 drawn models)."""
    eps = float(torch.finfo(torch.float64).eps)
    return (eps * math.sqrt(2 * (STEPS + 1)) * float(torch.linalg.vector_norm(problem.free_state))
            / float(torch.linalg.vector_norm(target.neurons)))


def local_slope(residual: list[float], roundoff: float) -> tuple[float, tuple | None]:
    """log10 r(10β)/r(β) for the smallest decade pair of SLOPE_LADDER whose smaller β still has
    r(β) ≥ ABOVE_ROUNDOFF·ρ/β (a truncation term, not round-off); (nan, None) when even r(0.01)
    is at the round-off level (exact at every β tried)."""
    for k in range(len(SLOPE_LADDER) - 1, 0, -1):
        small, large = SLOPE_LADDER[k], SLOPE_LADDER[k - 1]
        if residual[k] >= ABOVE_ROUNDOFF * roundoff / small:
            slope = math.log(residual[k - 1] / residual[k]) / math.log(large / small)
            return slope, (large, small)
    return math.nan, None


def predicted_deviation(reference: StepUpdates, problem: RecurrentProblem) -> float:
    """Theory's raw neuron deviation ‖(I − D)∇BPTT_s‖/‖∇BPTT_s‖ (0 for the primitive model)."""
    g = reference.neurons
    return float(torch.linalg.vector_norm((1 - problem.neuron_scale) * g)
                 / torch.linalg.vector_norm(g))


def gdd_metrics(problem: RecurrentProblem) -> dict[str, Any]:
    """Everything the checks need of one model: the β → 0 limit against BPTT (D-corrected
    neurons and parameters), the raw neuron deviation vs its prediction, and the β² slope."""
    reference = bptt_step_gradients(problem, steps=STEPS)
    target = corrected(reference, problem)
    limit = ep_step_updates(problem, beta=LIMIT_NUDGE, steps=STEPS, estimator="complex_step")
    exact = gdd_agreement(limit, target)
    raw = gdd_agreement(limit, reference)["neurons"]
    predicted = predicted_deviation(reference, problem)
    residual = [max(a.relative_rmse for a in gdd_agreement(
        ep_step_updates(problem, beta=beta, steps=STEPS), target).values())
        for beta in SLOPE_LADDER]
    slope, pair = local_slope(residual, roundoff_scale(problem, target))
    return {
        "limit": max(a.relative_rmse for a in exact.values()),
        "limit_parameters": max(exact[k].relative_rmse for k in PARAMETERS),
        "limit_sign": min(a.sign_agreement for a in exact.values()),
        "slope": slope, "slope_error": 0.0 if pair is None else abs(slope - 2),
        "slope_betas": pair, "at_roundoff": pair is None,
        "raw": raw.relative_rmse, "raw_sign": raw.sign_agreement,
        "raw_gap": abs(raw.relative_rmse - predicted), "predicted": predicted,
        "raw_sign_disagreement": 1 - raw.sign_agreement,
        "free_residual": problem.residual,
    }


def slope_pairs(seen: list[dict]) -> dict[str, int]:
    """How many drawn models had their β² slope taken on which decade pair."""
    return {"slope_on_0.01_0.001": sum(m["slope_betas"] == SLOPE_LADDER[1:] for m in seen),
            "slope_on_0.1_0.01": sum(m["slope_betas"] == SLOPE_LADDER[:2] for m in seen),
            "at_roundoff_for_all_beta": sum(m["at_roundoff"] for m in seen)}


def slope_summary(seen: list[dict]) -> str:
    counts = slope_pairs(seen)
    slopes = [m["slope"] for m in seen if not m["at_roundoff"]]
    line = f"local slopes {spread(slopes, '.4f')}"
    if counts["slope_on_0.1_0.01"]:
        line += (f" ({counts['slope_on_0.1_0.01']} taken on beta 0.1 -> 0.01: round-off at "
                 "0.001)")
    if counts["at_roundoff_for_all_beta"]:
        line += f", {counts['at_roundoff_for_all_beta']} at round-off for every beta"
    return line


def spread(values: list[float], spec: str = ".3g") -> str:
    """min … max (median) of a measured statistic over the drawn models."""
    return (f"{min(values):{spec}} … {max(values):{spec}} "
            f"(median {float(np.median(values)):{spec}})")


def certify(ctx, label: str, strategy, measured: MeasuredOnce, n: int,
            searches: tuple[tuple[str, Bound, str], ...]) -> dict[str, float]:
    """One search per metric over the same drawn models (this run's `measured`); returns the
    worst values. Each check records the range of every metric over the models it saw."""
    worst = {}
    for metric, bound, name in searches:
        spec = Search(f"[{label}] {name}", measured.metric(metric), bound)
        worst[metric] = ctx.search(strategy, spec, n,
                                   details=lambda: draw_ranges(measured.values())).worst
    return worst


def draw_ranges(seen: list[dict]) -> dict[str, Any]:
    """What a check records of the models it saw: the range of each metric, the slope pairs."""
    ranges = {key: [float(np.nanmin([m[key] for m in seen])),
                    float(np.nanmax([m[key] for m in seen]))]
              for key in ("limit", "slope", "raw", "raw_sign")}
    return {"steps": STEPS, "batch": BATCH, "ranges_over_draws": ranges, **slope_pairs(seen)}


def sweep(problem: RecurrentProblem, estimator: str = "symmetric") -> dict[str, list[float]]:
    """Relative RMSE vs −∇BPTT (raw and D-corrected neurons, each parameter) per β."""
    reference = bptt_step_gradients(problem, steps=STEPS)
    target = corrected(reference, problem)
    out: dict[str, list[float]] = {"raw neurons": [], "neurons": [], **{k: [] for k in PARAMETERS}}
    for beta in SWEEP_BETAS:
        ep = ep_step_updates(problem, beta=beta, steps=STEPS, estimator=estimator)
        out["raw neurons"].append(gdd_agreement(ep, reference)["neurons"].relative_rmse)
        for k, a in gdd_agreement(ep, target).items():
            out[k].append(a.relative_rmse)
    return out


def slope_in_fit_range(errors: list[float]) -> float:
    keep = [i for i, b in enumerate(SWEEP_BETAS)
            if FIT_RANGE[0] * (1 - 1e-9) <= b <= FIT_RANGE[1] * (1 + 1e-9)]
    return fitted_slope([SWEEP_BETAS[i] for i in keep], [errors[i] for i in keep])


def describe(problem: RecurrentProblem) -> dict:
    """Per-quantity limit agreement and the per-step curves at PLOT_BETA for one model."""
    reference = bptt_step_gradients(problem, steps=STEPS)
    limit = ep_step_updates(problem, beta=LIMIT_NUDGE, steps=STEPS, estimator="complex_step")
    return {
        "reference": reference,
        "finite": ep_step_updates(problem, beta=PLOT_BETA, steps=STEPS),
        "exact": gdd_agreement(limit, corrected(reference, problem)),
        "raw": gdd_agreement(limit, reference)["neurons"],
        "predicted": predicted_deviation(reference, problem),
        "D": problem.neuron_scale,
    }


def agreement_line(exact: dict) -> str:
    return ", ".join(f"{k} {a.relative_rmse:.1e}" for k, a in exact.items())


def top_entries(gradient: torch.Tensor, count: int) -> list[tuple[int, ...]]:
    """Indices (sample, entry…) of the `count` largest Σ_t |∇(t)| (upper triangle for W)."""
    score = gradient.abs().sum(dim=0)
    if score.ndim == 3:  # W: (B, n, n), symmetric in the energy and primitive models
        score = torch.triu(score)
    flat = torch.argsort(score.flatten(), descending=True)[:count]
    return [tuple(int(i) for i in np.unravel_index(int(f), tuple(score.shape))) for f in flat]


def curves_figure(path, panels: list[tuple[str, dict, bool]]) -> None:
    """The classic GDD figure: per-step ΔEP(t) (lines) and −∇BPTT(t) (markers) for the neurons
    and the weights with the largest gradients, one row per model."""
    if path is None:
        return
    fig, axes = plt.subplots(len(panels), 2, figsize=(11, 3.3 * len(panels)), squeeze=False)
    t = np.arange(PLOT_STEPS)
    shown = slice(0, PLOT_STEPS)
    for row, (title, seen, scaled) in enumerate(panels):
        for col, (key, what, heading) in enumerate((("neurons", "neuron", "neurons"),
                                                     ("W", "W", "weights W_eff"))):
            ax = axes[row][col]
            grad = seen["reference"].neurons if key == "neurons" else \
                seen["reference"].parameters["W"]
            update = seen["finite"].neurons if key == "neurons" else \
                seen["finite"].parameters["W"]
            for n, index in enumerate(top_entries(grad, 3)):
                color = f"C{n}"
                name = f"{what} {','.join(map(str, index[1:]))} (sample {index[0]})"
                ax.plot(t, update[(shown, *index)].numpy(), "-", color=color,
                        label=f"ΔEP {name}")
                ax.plot(t, -grad[(shown, *index)].numpy(), "o", color=color, ms=4,
                        mfc="none", label=f"−∇BPTT {name}")
                if key == "neurons" and scaled:
                    d = seen["D"][index]
                    ax.plot(t, -(d * grad[(shown, *index)]).numpy(), "x", color=color,
                            ms=4, label=f"−D∇BPTT (D = {float(d):.2f})")
            ax.set_title(f"{title}: {heading}", fontsize=9)
            ax.set_xlabel("t (nudged step; BPTT step K − t)")
            ax.axhline(0, color="0.7", lw=0.6)
            ax.legend(fontsize=6)
    fig.suptitle(f"GDD: EP's per-step updates (lines; symmetric β = {PLOT_BETA:g}) vs BPTT's "
                 f"per-step gradients (markers), K = {STEPS}, first {PLOT_STEPS} steps")
    save_figure(fig, path, dpi=110)


def step_table(ctx, seen: dict) -> None:
    """A few per-step numbers of the representative energy model, for the account."""
    grad, update = seen["reference"], seen["finite"]
    (b, i), = top_entries(grad.neurons, 1)
    (bw, iw, jw), = top_entries(grad.parameters["W"], 1)
    d = float(seen["D"][b, i])
    ctx.note(f"      per step, sample {b}, the neuron with the largest gradient (D = {d:.2f}) "
             f"and the weight W[{iw},{jw}] (beta = {PLOT_BETA:g}):")
    for t in (0, 1, 2, 4, 7):
        ctx.note(f"      t = {t:2d}  neuron {i}: dEP {float(update.neurons[t, b, i]):+.5f}, "
                 f"-grad {-float(grad.neurons[t, b, i]):+.5f}, "
                 f"-D grad {-d * float(grad.neurons[t, b, i]):+.5f}   W[{iw},{jw}]: dEP "
                 f"{float(update.parameters['W'][t, bw, iw, jw]):+.5f}, "
                 f"-grad {-float(grad.parameters['W'][t, bw, iw, jw]):+.5f}")


@track(12, "GDD property", "B",
       "EP's per-step nudged-phase updates equal BPTT's per-step gradients at the mirrored "
       "steps: exactly for primitive-function dynamics; for the tanh energy model exactly for "
       "the weights, and up to D = diag phi'(a*) for the neurons",
       model_requires=("symmetric",))
def run(ctx) -> None:
    n = ctx.examples(12, 200)
    K = STEPS
    for line in (
        f"What is compared (Ernoult et al. 2019), per sample and per step t = 0..{K - 1}:",
        "  EP    free phase to h* (residual <= 1e-13), then a nudged phase from h*; per step",
        "        dEP_s(t) = (h_t+1 - h_t)/beta,  dEP_theta(t) = -[dE/dtheta(h_t+1) - "
        "dE/dtheta(h_t)]/beta",
        f"  BPTT  REFERENCE (autograd): {K} free steps from h*, loss l(h_{K}); "
        f"grad_s(t) = dl/dh_({K}-t),",
        f"        grad_theta(t) = dl/dtheta at the single step into h_({K}-t)",
        "  GDD   dEP(t) = -grad(t) at every t as beta -> 0. Measured over all t and entries: "
        "relative RMSE",
        "        ||dEP + grad|| / ||grad|| and sign agreement. beta -> 0 itself: a complex-step "
        f"nudge i*{LIMIT_NUDGE:g};",
        "        finite beta: the symmetric +-beta nudges EP runs.",
    ):
        ctx.note(line)

    # (a) Primitive-function dynamics: exact GDD.
    typical_p = PrimitiveSpec(n_in=4, n_hidden=6, lipschitz=0.9, drive_scale=1.0,
                              nonlinearity="tanh", seed=ctx.seed)
    prim = describe(problem_of(typical_p))
    prim_sweep = sweep(problem_of(typical_p))
    prim_worst = [max(v) for v in zip(*(prim_sweep[k] for k in ("neurons", *PARAMETERS)),
                                      strict=True)]
    ctx.note("(a) PRIMITIVE-FUNCTION dynamics h_t+1 = dPhi/dh, Phi = 1/2 rho(h)^T W rho(h) + "
             "h^T(Ux + b), W = W^T")
    if ctx.model is not None:
        ctx.note(f"    (on the suite's primitive models: {ctx.model!r} is a LoopedMLP, which has "
                 "no primitive-function form; part (b) certifies it)")
    ctx.note(f"    representative: rho = tanh, n_hidden {typical_p.n_hidden}, batch {BATCH}, "
             f"certified L = {typical_p.build().contraction_bound():.2f}")
    ctx.note(f"      beta -> 0: relative RMSE {agreement_line(prim['exact'])}; signs agree "
             f"{100 * min(a.sign_agreement for a in prim['exact'].values()):.0f}%")
    ctx.note(f"      finite beta: {prim_worst[LARGE_BETA]:.1e} at beta = "
             f"{SWEEP_BETAS[LARGE_BETA]:g}, falling as beta^{slope_in_fit_range(prim_worst):.2f}"
             f" to a round-off floor of {min(prim_worst):.1e}")
    prim_measured = MeasuredOnce(lambda spec: gdd_metrics(problem_of(spec)))
    worst_p = certify(ctx, "primitive", primitive_models(), prim_measured, n,
                      PRIMITIVE_SEARCHES)
    seen_p = prim_measured.values()
    ctx.note(f"    over {len(seen_p)} drawn models (rho identity or tanh, L 0.5 or 0.9):")
    ctx.note(f"      worst beta -> 0 residual {worst_p['limit']:.1e}, {slope_summary(seen_p)}, "
             "signs agree "
             f"{100 * min(m['limit_sign'] for m in seen_p):.0f}%")
    ctx.note("    => GDD holds EXACTLY, for neurons and parameters.")

    # (b) The tanh energy model.
    typical_e = ModelSpec(n_in=4, n_hidden=6, weight_scale=1.0, structure="gaussian",
                          seed=ctx.seed, gamma=0.95, drive_scale=1.0)
    energy = describe(problem_of(typical_e))
    energy_sweep = sweep(problem_of(typical_e))
    D = energy["D"]
    ctx.note("(b) TANH ENERGY MODEL, LoopedMLP h_t+1 = tanh(W_eff h_t + Ux + b), symmetric W_eff, "
             f"SN gamma {typical_e.gamma}")
    if ctx.model is not None:
        ctx.note(f"    (the representative is the suite's; the checks below run on {ctx.model!r})")
    ctx.note(f"    representative: n_hidden {typical_e.n_hidden}, batch {BATCH}, D = diag phi'(a*)"
             f" = 1 - h*^2 in [{float(D.min()):.2f}, {float(D.max()):.2f}]")
    ctx.note("      weights W_eff, U, b: beta -> 0 relative RMSE "
             f"{agreement_line({k: energy['exact'][k] for k in PARAMETERS})}; finite beta "
             f"falls as beta^{slope_in_fit_range(energy_sweep['W']):.2f}")
    raw_swept = energy_sweep["raw neurons"]
    ctx.note(f"      neurons: relative RMSE {energy['raw'].relative_rmse:.4f} at beta -> 0, "
             f"{min(raw_swept):.4f} … {max(raw_swept):.4f} for beta {SWEEP_BETAS[0]:g} … "
             f"{SWEEP_BETAS[-1]:.2g}; signs agree {100 * energy['raw'].sign_agreement:.0f}%")
    ctx.note("        theory: dEP_s(t) -> -D grad_s(t); predicted ||(I - D)grad||/||grad|| = "
             f"{energy['predicted']:.4f}; D-corrected residual "
             f"{energy['exact']['neurons'].relative_rmse:.1e}")
    step_table(ctx, energy)
    energy_measured = MeasuredOnce(lambda spec: gdd_metrics(problem_of(spec)))
    worst_e = certify(ctx, "energy", ctx.models(gradient_models(symmetric=True)), energy_measured,
                      n, ENERGY_SEARCHES)
    seen_e = energy_measured.values()
    ctx.note(f"    over {len(seen_e)} drawn models (gradient_models: SN or not, spike/low-rank/"
             "Gaussian W):" if ctx.model is None else f"    on {ctx.model!r}:")
    ctx.note(f"      worst beta -> 0 residual (W, U, b, D-corrected neurons) "
             f"{worst_e['limit']:.1e}; {slope_summary(seen_e)}")
    ctx.note(f"      raw neuron deviation {spread([m['raw'] for m in seen_e])}, each equal to its "
             f"prediction (worst gap {worst_e['raw_gap']:.1e}); signs agree "
             f"{100 * min(m['raw_sign'] for m in seen_e):.0f}%")
    most_raw, most = max(energy_measured.seen.items(), key=lambda kv: kv[1]["raw"])
    ctx.note(f"      largest {most['raw']:.3f} (predicted {most['predicted']:.3f}) on {most_raw}")
    ctx.note("    => the WEIGHT updates satisfy GDD exactly; the NEURON updates are BPTT's "
             "gradients seen through D:")
    ctx.note("       same signs, deviation ||(I - D)grad||/||grad||, which no beta removes.")

    # (c) Control: asymmetric W, vector-field EP.
    found = find_example(gradient_models(symmetric=False),
                         lambda spec: limit_residual(problem_of(spec)) > LIMIT.limit,
                         max_examples=ctx.examples(20, 200), seed=ctx.seed)
    control = gdd_metrics(problem_of(found)) if found is not None else {"limit": 0.0}
    asym = describe(problem_of(typical_e.with_(symmetric=False)))
    asym_sweep = sweep(problem_of(typical_e.with_(symmetric=False)))
    ctx.negative_control(
        LIMIT.check("[energy] beta->0 limit: max relative RMSE (W, U, b and D-corrected "
                    "neurons) vs -BPTT, asymmetric W (shrunk example)", control["limit"],
                    **{k: v for k, v in control.items() if k != "limit"}),
        shrunk_counterexample=repr(found),
        representative={k: a.relative_rmse for k, a in asym["exact"].items()},
        representative_sign_agreement={k: a.sign_agreement for k, a in asym["exact"].items()},
    )
    ctx.note("(c) CONTROL: asymmetric W (vector-field EP), the representative with symmetric=False")
    ctx.note(f"      beta -> 0 relative RMSE {agreement_line(asym['exact'])}; signs agree "
             f"{100 * min(a.sign_agreement for a in asym['exact'].values()):.0f}% (worst "
             f"quantity); slope in beta {slope_in_fit_range(asym_sweep['W']):.2f}")
    ctx.note("      EP propagates the error with D W, BPTT with W^T D: GDD fails, as it must; "
             f"hypothesis's minimal failing model gives {control['limit']:.2e}:")
    ctx.note(f"      {found!r}")

    curves_figure(ctx.artifact_path("curves.png"), [
        ("primitive (tanh rho), exact", prim, False),
        ("tanh energy model", energy, True),
        ("control: asymmetric W", asym, False),
    ])
    series: dict[str, Series] = {}
    styles: dict[str, str] = {}
    for label, errors, style in (
        ("primitive: worst of neurons, W, U, b", prim_worst, "o-"),
        ("energy: W", energy_sweep["W"], "s-"),
        ("energy: D-corrected neurons", energy_sweep["neurons"], "^-"),
        ("energy: raw neurons", energy_sweep["raw neurons"], "v--"),
        ("control (asymmetric): W", asym_sweep["W"], "x--"),
    ):
        name = f"{label} (slope {slope_in_fit_range(errors):.2f})"
        series[name], styles[name] = (SWEEP_BETAS, errors), style
    line_plot(ctx.artifact_path("beta-sweep.png"), series, styles=styles, logx=True,
              title="GDD residual vs symmetric beta "
                    f"(slopes fitted on [{FIT_RANGE[0]:g}, {FIT_RANGE[1]:g}])",
              xlabel="beta", ylabel="||dEP + grad_BPTT|| / ||grad_BPTT||")


@on_system(12, requires=("energy",))
def certify_system(ctx) -> None:
    """GDD on the System: from the witness's h*, EP's step-by-step parameter updates in the
    nudged phase of the System's own step, −[∂E/∂θ(h_{t+1}) − ∂E/∂θ(h_t)]/β (symmetric ±β),
    extrapolated to β → 0 from β = 1e-4 and 2e-4 (the O(β²) term removed), equal BPTT's
    gradients through the same step at the mirrored time steps (relative RMSE ≤ 1e-6 over 30
    steps; what is left is O(β⁴) and round-off ~1e-11). Theory: exact when the linearized
    update is a symmetric-preconditioned gradient step h ← h − P∇E (the note reports
    ‖P − Pᵀ‖/‖P‖). Control: the System's map with a planted antisymmetric coupling (same h*)
    breaks it; a one-neuron state has none, and its control is the nudge doubled (T_β ↦ T_2β)."""
    w = Witnessed(ctx.system, ctx.seed)
    if not system_premises(ctx, w):
        return
    out = gdd_residual(ctx.system, w, SYSTEM_GDD_BETA)
    asym = preconditioner_asymmetry(w)
    ctx.check(SYSTEM_GDD.check(f"GDD, parameters: ||dEP(t) + dBPTT(t)|| / ||dBPTT||, beta -> 0 "
                               f"from beta = {SYSTEM_GDD_BETA:g}, {2 * SYSTEM_GDD_BETA:g}",
                               out["parameters"], at_beta=out["parameters_at_beta"],
                               neurons=out["neurons"], steps=out["steps"],
                               parameters=out["parameter_keys"], preconditioner_asymmetry=asym))
    ctx.note(f"{ctx.system!r}: GDD parameter residual {out['parameters']:.3g} as beta -> 0 "
             f"({out['parameters_at_beta']:.3g} at beta = {SYSTEM_GDD_BETA:g}), neuron residual "
             f"{out['neurons']:.3g}; the linearized update h <- h - P grad E has "
             f"||P - P^T||/||P|| = {asym:.3g}" + gdd_diagnosis(out["parameters"], asym))
    planted: AsymmetricallyCoupled | DoubledNudge
    if w.eq.h.shape[1] >= 2:
        size = 0.25 * max(1e-3, 1 - float(w.norm.max()))
        planted = AsymmetricallyCoupled(ctx.system, w.eq.h, size, ctx.seed)
        fault, details = "planted antisymmetric coupling", {"coupling_norm": size}
    else:  # one neuron: no antisymmetric coupling exists; the nudge doubled breaks GDD instead
        planted = DoubledNudge(ctx.system)
        fault, details = "planted nudge doubled (T_beta -> T_2beta)", {}
    bad = gdd_residual(planted, Witnessed(planted, ctx.seed), SYSTEM_GDD_BETA)
    ctx.negative_control(SYSTEM_GDD.check(f"{fault}: GDD parameter residual", bad["parameters"]),
                         **details)


def gdd_diagnosis(residual: float, asymmetry: float) -> str:
    """Why GDD fails, from the linearization h ← h − P∇E(h) − β P′∇C: a non-symmetric P (the
    update schedule, e.g. layer-wise asynchronous), or, with P symmetric, a nudge that does not
    enter as P∇(βC) (P′ ≠ P: the nudge applied where the dynamics do not precondition it)."""
    if residual <= SYSTEM_GDD.limit:
        return ""
    if asymmetry > 1e-8:
        return (" - GDD needs a symmetric P, which this update schedule (e.g. layer-wise "
                "asynchronous, or a unit outside the energy's stationary set) does not have")
    return (" - P is symmetric, so the mismatch is in the nudge: the nudged step does not add "
            "-beta P grad C with the free dynamics' own P")
