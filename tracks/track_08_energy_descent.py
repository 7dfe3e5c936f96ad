"""Track 8 — Energy descent: synchronous updates with symmetric W descend the Hopfield energy.

Theorem (Marcus & Westervelt 1989; restated in `theory/energy.py`). Let W be symmetric,
a = Ux + b, φ increasing with s = sup φ′, and

    E(h) = Σ_i G(h_i) − ½ hᵀWh − hᵀa,   G′ = φ⁻¹  (so G″ = 1/φ′(φ⁻¹(h)) ≥ 1/s),

on the open box φ(ℝ)ⁿ. For the synchronous update h⁺ = φ(Wh + a) and Δ = h⁺ − h,

    E(h⁺) ≤ E(h) − ½ Δᵀ(W + I/s)Δ,

because G(h) ≥ G(h⁺) + G′(h⁺)(h − h⁺) + (h − h⁺)²/(2s) with G′(h⁺) = Wh + a. Hence E decreases
along every trajectory whenever λ_min(W) > −1/s, strictly until h is a fixed point; SN with
γ < 1 guarantees it (λ_min ≥ −‖W‖₂ ≥ −γ/s). At a fixed point ∇E(h*) = φ⁻¹(h*) − Wh* − a = 0.

Checks, over hypothesis-drawn contractive symmetric models (SN, every structure, drives up to 3)
and starts h_0 = tanh(z) with z drawn (zeros, Gaussian, corners, norms up to 1e6, clipped to
|z| ≤ 15 so that h_0 lies inside the open box in float64), 30 steps of `model.step`:
(1) monotone descent: max_k [E(h_{k+1}) − E(h_k)]/(1 + |E(h_k)|) ≤ 1e-12 (round-off), energies by
`model.energy`; (2) the guaranteed decrease: max_k [½Δ_kᵀ(W + I/s)Δ_k − (E(h_k) − E(h_{k+1}))]/
(1 + |E(h_k)|) ≤ 1e-12 with the bound by `theory.guaranteed_decrease`; (3) ∇E(h*) = 0:
‖theory.energy_gradient(h*)‖ ≤ 1e-9 at `model.equilibrium`, on the components where φ⁻¹ is
conditioned well enough to evaluate it (1 − h*_i² ≥ 1e-5; a saturated h*_i rounds to within an
ulp of ±1, where one ulp moves arctanh by more than 1e-9 — those components are checked as
|h*_i − φ(Wh* + a)_i| instead); (4) `model.energy` agrees with the independent `theory.energy`
to ≤ 1e-10 relative (to 1 + |E|).

Negative control: an asymmetric, skew-dominated W ("rotation", n ≥ 2) under SN, so that ‖W‖₂ < 1
and symmetry is the only condition of the theorem that fails. The dynamics are no
longer a gradient flow of any energy, and the energy built from W (`theory.energy`, whose
quadratic form sees only ½(W + Wᵀ)) must rise somewhere along some trajectory: hypothesis finds
and shrinks one, and the increase is recorded. Recorded beside it: symmetric W = −1.5·I
(λ_min < −1/s) 2-cycles and its energy rises on the way — the theorem's condition matters.

Under `--model` (symmetric W_eff; tanh, which the starts and the conditioning rule assume): the
checks hold the user's model fixed and draw the starts. SN is not required — the theorem needs
λ_min(W_eff) > −1/s, recorded with check (1) — but (3) needs `model.equilibrium` to converge.
The control stays on the suite's models.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

import theory
from properties import (
    MeasuredOnce,
    ModelSpec,
    Search,
    as_numpy,
    at_most_bound,
    contractive_models,
    find_example,
    initial_states,
)
from properties.system_checks import Witnessed, energy_ascent, energy_stationarity

from .plots import line_plot
from .premises import system_premises
from .registry import on_system, track

STEPS = 30  # synchronous updates per trajectory
BATCH = 4  # trajectories (one input each) per drawn model
CONDITIONED = 1e-5  # component i is evaluated by φ⁻¹ when 1 − h*_i² ≥ this
STATE_CLIP = 15.0  # |z| ≤ 15: tanh(z) stays below 1 − 1e-13, inside the open box

DESCENT = at_most_bound(1e-12, "the theorem: E never rises along synchronous updates; 1e-12 is "
                               "the round-off allowance on E differences, relative to the "
                               "energy's scale (1 + |E|)")
GRADIENT = at_most_bound(1e-9, "grad E(h*) = 0 at a fixed point, evaluated on the components "
                               "where phi^-1 is well conditioned (1 - h*_i^2 >= 1e-5)")
ENERGY_AGREEMENT = at_most_bound(1e-10, "model.energy and the independent theory.energy are "
                                        "the same function: agreement to 1e-10 relative to "
                                        "1 + |E|")
STATIONARY = at_most_bound(1.0, "grad_h E(h*) = 0 up to what h*'s Newton correction and "
                                "float64 rounding allow through the Hessian "
                                "(properties.system_checks.stationarity)")
SEARCHES = (  # (metric of descent_metrics, bound, check); one trajectory per case for all four
    ("rise", DESCENT, "monotone descent: max_k (E_k+1 - E_k)/(1 + |E_k|)"),
    ("shortfall", DESCENT,
     "guaranteed decrease: max_k (1/2 D^T(W + I/s)D - (E_k - E_k+1))/(1 + |E_k|)"),
    ("gradient", GRADIENT, "max ||grad E(h*)|| (theory) at model.equilibrium"),
    ("agreement", ENERGY_AGREEMENT, "max |model.energy - theory.energy|/(1 + |E|)"),
)


def symmetric_models() -> st.SearchStrategy[ModelSpec]:
    """The suite's models for the checks: contractive symmetric SN, hidden ≤ 10."""
    return contractive_models(max_hidden=10, symmetric=True)


@st.composite
def symmetric_cases(draw: st.DrawFn, models: st.SearchStrategy) -> tuple[ModelSpec, np.ndarray]:
    """A drawn model and BATCH starts z for it (h_0 = tanh z)."""
    spec = draw(models)
    return spec, draw(initial_states(spec.n_hidden, batch=BATCH))


@st.composite
def asymmetric_cases(draw: st.DrawFn) -> tuple[ModelSpec, np.ndarray]:
    """Skew-dominated W (n ≥ 2) under SN: ‖W‖₂ ≤ γ < 1 keeps λ_min(½(W + Wᵀ)) > −1/s, so
    symmetry is the only condition of the theorem that fails."""
    spec = ModelSpec(
        n_in=draw(st.integers(1, 4)), n_hidden=draw(st.integers(2, 8)),
        weight_scale=draw(st.sampled_from([1.0, 10.0])), structure="rotation",
        seed=draw(st.integers(0, 2**16)), symmetric=False, spectral_norm=True,
        gamma=draw(st.sampled_from([0.5, 0.95, 0.99])),
        drive_scale=draw(st.sampled_from([0.0, 0.1, 1.0, 3.0])),
    )
    return spec, draw(initial_states(spec.n_hidden, batch=BATCH))


def trajectory(model, x: torch.Tensor, z: np.ndarray) -> np.ndarray:
    """[h_0, …, h_STEPS] of synchronous updates by `model.step`: (STEPS + 1, B, n)."""
    h0 = torch.tanh(torch.as_tensor(np.clip(z, -STATE_CLIP, STATE_CLIP), dtype=model.dtype))
    return model.trajectory(x, h0, STEPS).numpy()


def theory_energies(states: np.ndarray, weight: np.ndarray, drive: np.ndarray) -> np.ndarray:
    """E(h_k) per step and row by `theory.energy`: (STEPS + 1, B)."""
    return np.array([[theory.energy(h[b], weight, drive[b], "tanh") for b in range(len(h))]
                     for h in states])


def max_rise(energies: np.ndarray) -> float:
    """max_k [E(h_{k+1}) − E(h_k)] / (1 + |E(h_k)|) over steps and rows."""
    return float(np.max((energies[1:] - energies[:-1]) / (1 + np.abs(energies[:-1]))))


def descent_metrics(case: tuple[ModelSpec, np.ndarray]) -> dict[str, float]:
    spec, z = case
    model = spec.build()
    problem = as_numpy(model)
    x = spec.inputs(BATCH)
    drive = problem.drive(x)
    states = trajectory(model, x, z)
    with torch.no_grad():
        model_E = np.stack([model.energy(torch.as_tensor(h), x).numpy() for h in states])
    theory_E = theory_energies(states, problem.weight, drive)
    scale = 1 + np.abs(model_E[:-1])
    promised = np.array([[theory.guaranteed_decrease(states[k + 1, b] - states[k, b],
                                                     problem.weight, "tanh")
                          for b in range(BATCH)] for k in range(STEPS)])
    shortfall = (promised - (model_E[:-1] - model_E[1:])) / scale

    h_star: torch.Tensor | np.ndarray  # the solve's tensor, then its NumPy copy
    h_star, _ = model.equilibrium(x)
    h_star = h_star.numpy()
    conditioned = 1 - h_star**2 >= CONDITIONED
    gradient, saturated_residual = 0.0, 0.0
    for b in range(BATCH):
        with np.errstate(divide="ignore"):  # arctanh(±1) = ±inf on saturated components only
            g = theory.energy_gradient(h_star[b], problem.weight, drive[b], "tanh")
        gradient = max(gradient, float(np.linalg.norm(g[conditioned[b]])))
        image = theory.fixed_point_map(h_star[b], problem.weight, drive[b], "tanh")
        saturated = np.abs(image - h_star[b])[~conditioned[b]]
        saturated_residual = max(saturated_residual, float(saturated.max(initial=0.0)))
    return {
        "rise": max_rise(model_E),
        "shortfall": float(shortfall.max()),
        "gradient": gradient,
        "saturated_residual": saturated_residual,
        "saturated_share": float(1 - conditioned.mean()),
        "agreement": float(np.max(np.abs(model_E - theory_E) / (1 + np.abs(theory_E)))),
        "total_decrease": float(np.max(model_E[0] - model_E[-1])),
        "lambda_min_margin": float(np.linalg.eigvalsh(problem.weight).min() + 1.0),
    }


def search_details(metric: str, seen: list[dict[str, float]]) -> dict:
    """What the rise and gradient checks record beside the search, from every case measured."""
    if metric == "gradient":
        return {"conditioned_if": f"1 - h*_i^2 >= {CONDITIONED:g}",
                "max_saturated_share": max(m["saturated_share"] for m in seen),
                "max_saturated_residual": max(m["saturated_residual"] for m in seen)}
    if metric == "rise":
        return {"steps": STEPS, "trajectories_per_model": BATCH,
                "min_total_decrease": min(m["total_decrease"] for m in seen),
                "max_total_decrease": max(m["total_decrease"] for m in seen),
                "min_lambda_min_plus_1_over_s": min(m["lambda_min_margin"] for m in seen)}
    return {}


def asymmetric_rise(case: tuple[ModelSpec, np.ndarray]) -> tuple[float, dict]:
    """Largest relative rise of the energy built from the asymmetric W along model.step."""
    spec, z = case
    model = spec.build()
    problem = as_numpy(model)
    x = spec.inputs(BATCH)
    states = trajectory(model, x, z)
    energies = theory_energies(states, problem.weight, problem.drive(x))
    rises = energies[1:] - energies[:-1]
    k, b = np.unravel_index(np.argmax(rises / (1 + np.abs(energies[:-1]))), rises.shape)
    return max_rise(energies), {
        "step": int(k), "row": int(b), "E_k": float(energies[k, b]),
        "E_k_plus_1": float(energies[k + 1, b]), "absolute_rise": float(rises[k, b]),
        "asymmetry": float(np.linalg.norm(problem.weight - problem.weight.T)
                           / np.linalg.norm(problem.weight + problem.weight.T)),
        "L": theory.lipschitz_certificate(problem.weight, "tanh"),
        "lambda_min_sym_plus_1_over_s": float(
            np.linalg.eigvalsh(0.5 * (problem.weight + problem.weight.T)).min() + 1.0),
        "energy_trace": energies[:, b].round(8).tolist(),
    }


def negative_definite_cycle(seed: int) -> dict:
    """Symmetric W = −1.5·I, zero drive: λ_min(W) = −1.5 < −1/s, so the theorem says nothing;
    synchronous updates grow into the 2-cycle ±h_c (tanh(1.5h_c) = h_c) and E rises."""
    spec = ModelSpec(n_in=1, n_hidden=2, weight_scale=1.0, structure="diagonal", seed=seed,
                     spectral_norm=False, drive_scale=0.0)
    model = spec.build()
    with torch.no_grad():
        model.W.copy_(-1.5 * torch.eye(2, dtype=model.dtype))
    x = spec.inputs(1)
    z = 0.05 * np.random.default_rng(seed).standard_normal((1, 2))
    states = trajectory(model, x, z)
    with torch.no_grad():
        energies = np.array([float(model.energy(torch.as_tensor(h), x)[0]) for h in states])
    problem = as_numpy(model)
    promised = [theory.guaranteed_decrease(states[k + 1, 0] - states[k, 0], problem.weight,
                                           "tanh") for k in range(STEPS)]
    return {
        "lambda_min_W": float(np.linalg.eigvalsh(problem.weight).min()),
        "max_relative_rise": max_rise(energies[:, None]),
        "total_rise": float(energies[-1] - energies[0]),
        "period_2_return": float(np.linalg.norm(states[-1, 0] - states[-3, 0])),
        "step_on_cycle": float(np.linalg.norm(states[-1, 0] - states[-2, 0])),
        "cycle": states[-2:, 0].round(6).tolist(),
        "guaranteed_decrease_min": float(min(promised)),
        "energies": energies,
    }


@track(8, "Energy descent", "A",
       "synchronous updates with symmetric W and lambda_min(W) > -1/s descend E by at least "
       "1/2 D^T(W + I/s)D per step; grad E(h*) = 0", model_requires=("symmetric",))
def run(ctx) -> None:
    if ctx.model is not None and ctx.model.activation != "tanh":
        ctx.skip(f"{ctx.model!r} uses {ctx.model.activation!r}: track 8's starts (tanh(z)), "
                 "energy and conditioning rule are written for tanh")
    n = ctx.examples(30, 300)
    cases = symmetric_cases(ctx.models(symmetric_models()))
    measured = MeasuredOnce(descent_metrics)  # the four searches share one trajectory per case
    worst = {metric: ctx.search(cases, Search(name, measured.metric(metric), bound), n,
                                details=lambda m=metric: search_details(m, measured.values())
                                ).worst
             for metric, bound, name in SEARCHES}
    drawn = (f"{n} drawn symmetric SN models" if ctx.model is None
             else f"{ctx.model!r} x {len(measured.seen)} drawn start batches")
    ctx.note(f"{drawn} x {BATCH} starts x {STEPS} steps: worst relative "
             f"rise {worst['rise']:.2e}, worst shortfall vs guaranteed decrease "
             f"{worst['shortfall']:.2e}, worst ||grad E(h*)|| {worst['gradient']:.2e}, worst "
             f"model/theory energy gap {worst['agreement']:.2e}")

    # Control: asymmetric W — the energy built from W must rise somewhere.
    found = find_example(asymmetric_cases(), lambda c: asymmetric_rise(c)[0] > DESCENT.limit,
                         max_examples=ctx.examples(100, 500), seed=ctx.seed)
    rise, where = asymmetric_rise(found) if found is not None else (0.0, {})
    cycle = negative_definite_cycle(ctx.seed)
    ctx.negative_control(
        DESCENT.check("monotone descent of E built from an asymmetric W (shrunk example)", rise,
                      **where),
        shrunk_counterexample=None if found is None else {"model": repr(found[0]),
                                                           "starts_z": found[1].tolist()},
        symmetric_W_minus_1_5_I={k: v for k, v in cycle.items() if k != "energies"},
    )
    if found is not None:
        ctx.note(f"control: {found[0]!r}, starts {found[1].tolist()}: E rises by "
                 f"{where['absolute_rise']:.3e} from step {where['step']} to {where['step'] + 1} "
                 f"(relative {rise:.3e}; asymmetry {where['asymmetry']:.3g}, L {where['L']:.3g})")
    ctx.note(f"W = -1.5 I (lambda_min = -1.5 < -1/s): 2-cycle {cycle['cycle']}, E rises by "
             f"{cycle['total_rise']:.3e} on the way; guaranteed decrease goes negative "
             f"({cycle['guaranteed_decrease_min']:.3e})")

    typical = ModelSpec(n_in=3, n_hidden=8, weight_scale=1.0, structure="gaussian",
                        seed=ctx.seed, gamma=0.95, drive_scale=1.0)
    model = typical.build()
    x = typical.inputs(1)
    states = trajectory(model, x, np.random.default_rng(ctx.seed).standard_normal((1, 8)))
    with torch.no_grad():
        typical_E = [float(model.energy(torch.as_tensor(h), x)[0]) for h in states]
    def rescaled(energies) -> tuple[range, np.ndarray]:
        """E(h_k) mapped onto [0, 1] by its own min and max, so shapes compare across scales."""
        e = np.asarray(energies, dtype=np.float64)
        return range(len(e)), (e - e.min()) / max(e.max() - e.min(), np.finfo(float).tiny)

    series = {"symmetric SN (gamma 0.95)": rescaled(typical_E),
              "W = -1.5 I (2-cycle)": rescaled(cycle["energies"])}
    if found is not None:
        series["asymmetric control (shrunk)"] = rescaled(where["energy_trace"])
    line_plot(ctx.artifact_path("energy.png"), series,
              title="E(h_k) along synchronous updates, each rescaled to [0, 1]", xlabel="k",
              ylabel="(E_k - min E) / (max E - min E)", logy=False,
              styles={"symmetric SN (gamma 0.95)": ".-", "W = -1.5 I (2-cycle)": "s--",
                      "asymmetric control (shrunk)": "^-"})


@on_system(8, requires=("energy",))
def certify_system(ctx) -> None:
    """The System's energy is stationary at the witness's h* (∇_h E = 0 on the units T_0 does
    not pin, up to what h*'s Newton correction and float64 rounding allow through ∇²E:
    `properties.system_checks.stationarity`) and its own step descends it along every drawn
    trajectory. Control: the same trajectories ascend −E. Descent needs no contraction (for a
    Hopfield-type energy, λ_min(W_eff) > −1/s), so only Newton's h*, not ρ(J*) < 1, is a premise."""
    w = Witnessed(ctx.system, ctx.seed)
    if not system_premises(ctx, w, attracting=False):
        return
    st_ = energy_stationarity(ctx.system, w)
    ctx.check(STATIONARY.check("max |grad_h E(h*)_i| / what h*'s error and float64 allow "
                               "(free units)", st_["ratio"], **st_))
    count, steps = ctx.examples(6, 30), ctx.examples(200, 1000)
    up = energy_ascent(ctx.system, w, count, steps)
    ctx.check(DESCENT.check("max E(h_k+1) - E(h_k) along T_0, / max(1, |E(h_0)|)",
                            up["relative_increase"], **up))
    bad = energy_ascent(ctx.system, w, count, steps,
                        energy=lambda h, x, p: -ctx.system.energy(h, x, p))
    ctx.negative_control(DESCENT.check("-E is descended too", bad["relative_increase"]))
