"""Asynchronous and event-driven updates of T(h) = φ(W_eff h + Ux + b), measured (track 30).

Theorem (Bertsekas & Tsitsiklis 1989, §6.2–6.3; `theory/asynchronous.py`): if T contracts in a
weighted max-norm ‖v‖_w = max_i |v_i|/w_i with L_w < 1, every asynchronous or partial-update
schedule converges to the unique h*, ‖h − h*‖_w ≤ ‖T(h) − h‖_w/(1 − L_w), a partial update never
increases ‖h − h*‖_w and a Gauss–Seidel sweep shrinks it by L_w.

`certified_cases` draws SN models rescaled to a chosen Perron-weighted L_w (`in_max_norm`) and
`measure` solves each by every scheme and order (`solve_all`, stop at ‖T(h) − h‖₂ ≤ TOL) and
scores convergence, agreement with the Newton witness and the solver, the update accounting, the
pre-activation drift, the max-norm Banach ratios and the savings. `certificate_pairs` /
`certificate_quotient` test the certificate itself; `sn_census_cases` / `census` are the plain
grid of SN models (shares of a stated population); `cyclic_radius` / `cyclic_fails` find and
confirm a cyclic Gauss–Seidel cycle; `mutual_inhibition` is the negative control.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

import theory
from eqprop_core.event_driven import EventStats, event_driven_equilibrium
from theory.asynchronous import (
    conditioned_weights,
    gauss_seidel_iteration_matrix,
    max_norm_certificate,
    max_norm_lipschitz,
    perron_weights,
    weighted_max_norm,
)

from .extract import as_numpy
from .search import MeasuredOnce, find_example
from .strategies import ModelSpec, contractive_models, initial_states

TOL = 1e-12  # ‖T(h) − h‖₂ at which every scheme stops: the common fixed-point error
MAX_ROUNDS = 5000
CENSUS_ROUNDS = 1000  # rounds (sweeps) allowed per scheme on the SN census
EPS = np.finfo(np.float64).eps
RUNS: tuple[tuple[str, str, dict[str, Any]], ...] = (  # (label, scheme, options)
    ("synchronous", "synchronous", {}),
    ("lazy", "lazy", {}),
    ("gauss_seidel_random_a", "asynchronous", {"order": "random"}),
    ("gauss_seidel_random_b", "asynchronous", {"order": "random"}),
    ("gauss_seidel_cyclic", "asynchronous", {"order": "cyclic"}),
    ("gauss_seidel_reverse", "asynchronous", {"order": "reverse"}),
)
TARGETS = (0.5, 0.8, 0.95)  # Perron-weighted L_w of the certified models
CYCLE_SWEEPS = 1000  # a Gauss–Seidel run without progress over its last half cycles


def model_class(spec: ModelSpec) -> str:
    return f"{spec.structure}/{'sym' if spec.symmetric else 'asym'}"


def in_max_norm(spec: ModelSpec, target: float) -> ModelSpec:
    """The spec with γ lowered (W_eff = γS/σ̂(S) is linear in γ) until the Perron-weighted L_w
    is at most `target`; the repr keeps the exact γ, so the model rebuilds."""
    l_w = max_norm_certificate(as_numpy(spec.build()).weight, spec.activation).l_weighted
    return spec if l_w <= target else spec.with_(gamma=spec.gamma * target / l_w)


@st.composite
def certified_cases(draw: st.DrawFn) -> tuple[ModelSpec, np.ndarray, float, int]:
    spec = in_max_norm(draw(contractive_models(max_hidden=10, symmetric=None)),
                       draw(st.sampled_from(TARGETS)))
    starts = np.concatenate([draw(initial_states(spec.n_hidden)) for _ in range(2)])
    return spec, starts, draw(st.sampled_from([0.0, 1.0, 10.0])), draw(st.integers(0, 2**16))


def solve_all(spec: ModelSpec, starts: np.ndarray, x_scale: float, seed: int,
              runs: tuple = RUNS, record: bool = True, max_rounds: int = MAX_ROUNDS
              ) -> dict[str, tuple[np.ndarray, EventStats]]:
    """Every scheme from every start, one input x replicated over the starts."""
    model = spec.build()
    x = spec.inputs(1, x_scale).expand(len(starts), -1)
    h0 = torch.as_tensor(starts)
    out = {}
    for k, (label, scheme, options) in enumerate(runs):
        opts = {"seed": seed + k, **options} if scheme == "asynchronous" else options
        h, stats = event_driven_equilibrium(model, x, h0, scheme=scheme, tol=TOL,
                                            max_rounds=max_rounds, record=record, **opts)
        out[label] = (h.numpy(), stats)
    return out


def spread(states: list[np.ndarray]) -> float:
    """max ‖h_i − h_j‖₂ over all final states (rows) of all runs: 0 iff one h* is reached."""
    rows = np.concatenate(states)
    return max((float(np.linalg.norm(a - b)) for a, b in itertools.combinations(rows, 2)),
               default=0.0)


def changed_entries(history: torch.Tensor) -> np.ndarray:
    """(B,) neurons whose value changed between consecutive recorded rounds, summed."""
    return (history[1:] != history[:-1]).sum(dim=(0, 2)).numpy()


def weighted_errors(history: torch.Tensor, star: np.ndarray, w: np.ndarray,
                    weight: np.ndarray, drive: np.ndarray, activation: str
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(‖h_k − h*‖_w, ‖T(h_k) − h_k‖_w) for every recorded round k and sample: (K, B) each,
    with T evaluated by the NumPy witness map."""
    H = history.numpy()
    T = theory.nonlinearity(activation).phi(H @ weight.T + drive)
    return weighted_max_norm(H - star, w), weighted_max_norm(T - H, w)


def saving(scheme: EventStats, sync: EventStats) -> float | None:
    """1 − updates(scheme)/updates(synchronous) at the same stopping error; None when the
    start already met the tolerance (no work to save)."""
    baseline = int(sync.updates.sum())
    return 1 - int(scheme.updates.sum()) / baseline if baseline else None


def _measure(case: tuple[ModelSpec, np.ndarray, float, int]) -> dict[str, Any]:
    spec, starts, x_scale, seed = case
    model = spec.build()
    net = as_numpy(model)
    drive = net.drive(spec.inputs(1, x_scale))[0]
    witness = theory.find_fixed_point(net.weight, drive, spec.activation)
    star = witness.h if witness.converged else np.full(spec.n_hidden, np.nan)
    w, l_w = conditioned_weights(net.weight, spec.activation)
    slack = 64 * EPS * math.sqrt(spec.n_hidden) * (1 + float(np.linalg.norm(star))) / w.min()
    runs = solve_all(spec, starts, x_scale, seed)
    x = spec.inputs(1, x_scale).expand(len(starts), -1)
    reference, _ = model.equilibrium(x, torch.as_tensor(starts), solver="fixed_point", tol=TOL,
                                     max_steps=MAX_ROUNDS)
    n = spec.n_hidden
    mismatch = 0
    posterior, expansion, sweep = 0.0, 0.0, 0.0
    for label, (_, stats) in runs.items():
        mismatch += int((stats.updates + stats.skipped != stats.rounds * n).sum())
        mismatch += abs(stats.update_trace[-1] - int(stats.updates.sum()))
        assert stats.history is not None  # solve_all records (record=True) by default
        if label == "lazy":
            mismatch += int(np.abs(changed_entries(stats.history)
                                   - stats.updates.numpy()).sum())
        err, res = weighted_errors(stats.history, star, w, net.weight, drive, spec.activation)
        scored = err > 10 * slack
        if scored.any():
            posterior = max(posterior, float(np.max(
                err[scored] / (res[scored] / (1 - l_w) + slack))))
        # Transition k → k + 1 is a round of sample b only while b was still iterating.
        took_part = np.arange(len(err) - 1)[:, None] < stats.rounds.numpy()[None, :]
        nxt, prev = err[1:], err[:-1]
        scored = took_part & (nxt > 10 * slack)
        if scored.any():
            gauss_seidel = label.startswith("gauss_seidel")
            rate = l_w if gauss_seidel else 1.0
            ratio = float(np.max(nxt[scored] / (rate * prev[scored] + slack)))
            if gauss_seidel:
                sweep = max(sweep, ratio)
            else:
                expansion = max(expansion, ratio)
    sync, lazy = runs["synchronous"][1], runs["lazy"][1]
    gauss = runs["gauss_seidel_random_a"][1]
    return {
        "class": model_class(spec),
        "n_hidden": spec.n_hidden,
        "unconverged": float(sum(int((~s.converged).sum()) for _, s in runs.values())),
        "spread": spread([h for h, _ in runs.values()]),
        "witness": max(float(np.abs(h - star).max()) for h, _ in runs.values()),
        "solver": max(float(np.abs(h - reference.numpy()).max()) for h, _ in runs.values()),
        "mismatch": float(mismatch),
        "drift": max(s.preactivation_drift for _, s in runs.values()),
        "posterior": posterior,
        "expansion": expansion,
        "sweep": sweep,
        "l_w": l_w,
        "saving_lazy": saving(lazy, sync),
        "saving_gauss_seidel": saving(gauss, sync),
        "skipped_share_lazy": lazy.skipped_share,
        "error_lazy": float(np.abs(runs["lazy"][0] - star).max()),
        "error_sync": float(np.abs(runs["synchronous"][0] - star).max()),
    }


measure = MeasuredOnce(_measure)  # the checks below score one set of solves per drawn case


# -- the certificate itself ---------------------------------------------------------------
@st.composite
def certificate_pairs(draw: st.DrawFn) -> tuple[ModelSpec, np.ndarray, np.ndarray, float, str]:
    """(spec, a, b, x_scale, weighting): b − a along a Gaussian direction or the sign pattern
    of one row of |W_eff| (the worst case of the unweighted bound in the linear regime)."""
    spec = draw(contractive_models(max_hidden=10, symmetric=None))
    a = draw(initial_states(spec.n_hidden))[0] * draw(st.sampled_from([1e-6, 1e-2, 1.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if draw(st.booleans()):
        weight = as_numpy(spec.build()).weight
        direction = np.sign(weight[draw(st.integers(0, spec.n_hidden - 1))])
        direction[direction == 0] = 1.0
    else:
        direction = rng.standard_normal(spec.n_hidden)
    step = draw(st.sampled_from([1e-6, 1e-3, 1.0]))
    x_scale = draw(st.sampled_from([0.0, 1.0]))
    return spec, a, a + step * direction, x_scale, draw(st.sampled_from(["unit", "perron"]))


def certificate_quotient(case: tuple[ModelSpec, np.ndarray, np.ndarray, float, str]) -> float:
    """‖T(a) − T(b)‖_w / (L_w ‖a − b‖_w) with T the model's own map, L_w by theory (≤ 1)."""
    spec, a, b, x_scale, weighting = case
    model = spec.build()
    weight = as_numpy(model).weight
    w = np.ones(spec.n_hidden) if weighting == "unit" else perron_weights(weight)
    L = max_norm_lipschitz(weight, spec.activation, w)
    with torch.no_grad():
        T = model.update_map(spec.inputs(1, x_scale))
        ta, tb = (T(torch.as_tensor(v[None]))[0].numpy() for v in (a, b))
    gap = float(weighted_max_norm(a - b, w))
    return float(weighted_max_norm(ta - tb, w)) / (L * gap) if L * gap > 0 else 0.0


# -- what SN models are, and what asynchronous updates do on them --------------------------
STRUCTURES = ("gaussian", "spike", "low_rank", "diagonal", "orthogonal")


def sn_census_cases(sizes: tuple[int, ...], seeds: int, seed: int
                    ) -> list[tuple[ModelSpec, np.ndarray, float, int]]:
    """A plain grid, not a search: every structure × {symmetric, not} × size × `seeds` SN
    models (γ = 0.95, unit drive), one Gaussian start each — so shares are shares of a stated
    population (hypothesis would favour the smallest models)."""
    rng = np.random.default_rng(seed)
    cases = []
    for structure, symmetric, n in itertools.product(STRUCTURES, (True, False), sizes):
        for _ in range(seeds):
            spec = ModelSpec(n_in=4, n_hidden=n, weight_scale=1.0, structure=structure,
                             seed=int(rng.integers(2**16)), symmetric=symmetric, gamma=0.95)
            cases.append((spec, rng.standard_normal((1, n)), 1.0, int(rng.integers(2**16))))
    return cases


CENSUS_RUNS = (RUNS[1], RUNS[2], RUNS[4])  # lazy, Gauss–Seidel random and cyclic


def census(case: tuple[ModelSpec, np.ndarray, float, int]) -> dict[str, Any]:
    spec, start, x_scale, seed = case
    net = as_numpy(spec.build())
    cert = max_norm_certificate(net.weight, spec.activation)
    out: dict[str, Any] = {"class": model_class(spec), "symmetric": spec.symmetric,
                           "n_hidden": spec.n_hidden,
                           **cert.summary()}
    if cert.certified:
        return out
    drive = net.drive(spec.inputs(1, x_scale))[0]
    witness = theory.find_fixed_point(net.weight, drive, spec.activation)
    runs = solve_all(spec, start, x_scale, seed, runs=CENSUS_RUNS, record=False,
                     max_rounds=CENSUS_ROUNDS)
    for label, (h, stats) in runs.items():
        out[f"converged_{label}"] = stats.all_converged
        out[f"outcome_{label}"] = outcome(stats)
        out[f"error_{label}"] = (float(np.abs(h - witness.h).max()) if stats.all_converged
                                 else float("inf"))
    return out


def scale_specs(sizes: tuple[int, ...]) -> list[ModelSpec]:
    """One SN model (γ = 0.95) per structure, symmetry and size: skipped share at scale."""
    return [ModelSpec(n_in=4, n_hidden=n, weight_scale=1.0, structure=s, seed=7, symmetric=sym,
                      gamma=0.95)
            for n in sizes for s in STRUCTURES for sym in (True, False)]


def scale_savings(sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    """Lazy vs synchronous on `scale_specs(sizes)`, 4 inputs each: class, convergence, saving
    and whether the model is max-norm certified."""
    scale_rows: list[dict[str, Any]] = []
    for spec in scale_specs(sizes):
        x = spec.inputs(4)
        model = spec.build()
        _, sync = event_driven_equilibrium(model, x, scheme="synchronous", tol=TOL,
                                           max_rounds=MAX_ROUNDS)
        _, lazy = event_driven_equilibrium(model, x, scheme="lazy", tol=TOL,
                                           max_rounds=MAX_ROUNDS)
        scale_rows.append({
            "class": f"{model_class(spec)}/n={spec.n_hidden}",
            "converged": sync.all_converged and lazy.all_converged,
            "saving_lazy": saving(lazy, sync),
            "certified": max_norm_certificate(as_numpy(model).weight, "tanh").certified})
    return scale_rows


def certified_shares(seen: list[dict[str, Any]]) -> dict[str, float]:
    """The share of census models that are max-norm contractions, weighted and unweighted."""
    return {
        "weighted (s*rho(|W|) < 1)": float(np.mean([r["certified"] for r in seen])),
        "unweighted (s*||W||_inf < 1)": float(np.mean([r["certified_unweighted"]
                                                       for r in seen])),
    }


def certified_per_class(seen: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per model class: count, certified shares and the median s·ρ(|W|)."""
    per_class: dict[str, dict[str, float]] = {}
    for name in sorted({r["class"] for r in seen}):
        group = [r for r in seen if r["class"] == name]
        per_class[name] = {"n": len(group),
                           "certified_weighted": float(np.mean([r["certified"] for r in group])),
                           "certified_unweighted": float(np.mean([r["certified_unweighted"]
                                                                  for r in group])),
                           "median_s_rho_abs": float(np.median([r["s_rho_abs"]
                                                                for r in group]))}
    return per_class


CENSUS_LABELS = [label for label, _, _ in CENSUS_RUNS]


def converged_share(group: list[dict[str, Any]]) -> dict[str, float | None]:
    return {label: (float(np.mean([r[f"converged_{label}"] for r in group]))
                    if group else None) for label in CENSUS_LABELS}


def outcomes(group: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    return {label: {kind: sum(r[f"outcome_{label}"] == kind for r in group)
                    for kind in ("converged", "no progress", "slow")} for label in CENSUS_LABELS}


def outcome(stats: EventStats) -> str:
    """"converged", "no progress" (the residual did not halve over the second half of the run:
    a cycle) or "slow" (still shrinking when the rounds ran out)."""
    if stats.all_converged:
        return "converged"
    trace = stats.residual_trace
    return "no progress" if trace[-1] > 0.5 * trace[len(trace) // 2] else "slow"


def cyclic_radius(spec: ModelSpec) -> float:
    """ρ of one cyclic Gauss–Seidel sweep's Jacobian at h* = 0 (drive 0, tanh′(0) = 1), by
    scipy (`theory.asynchronous.gauss_seidel_iteration_matrix`)."""
    return theory.spectral_radius(gauss_seidel_iteration_matrix(as_numpy(spec.build()).weight))


def cyclic_fails(spec: ModelSpec) -> bool:
    """Cyclic Gauss–Seidel from h₀ = ½·1 makes no progress: after 1000 sweeps the residual is
    above 1e-6 and above half of what it was at sweep 500 (a cycle, not slow convergence)."""
    model = spec.build()
    x = spec.inputs(1, 0.0)
    h0 = torch.full((1, spec.n_hidden), 0.5, dtype=torch.float64)
    _, stats = event_driven_equilibrium(model, x, h0, scheme="asynchronous", order="cyclic",
                                        tol=TOL, max_rounds=CYCLE_SWEEPS)
    return outcome(stats) == "no progress" and stats.residual_trace[-1] > 1e-6


def uncertified_sn_model(examples: int, seed: int) -> ModelSpec | None:
    """The minimal SN model hypothesis finds that is not a weighted max-norm contraction."""
    return find_example(contractive_models(max_hidden=10, symmetric=None),
                        lambda s: not max_norm_certificate(
                            as_numpy(s.build()).weight, s.activation).certified,
                        max_examples=examples, seed=seed)


def unstable_cyclic_model(examples: int, seed: int) -> ModelSpec | None:
    """A minimal asymmetric SN model (drive 0) whose cyclic Gauss–Seidel sweep has Jacobian
    spectral radius > 1 at h* = 0 (scipy): cyclic Gauss–Seidel cannot converge to h* on it."""
    return find_example(
        contractive_models(max_hidden=10, symmetric=False).map(
            lambda s: s.with_(drive_scale=0.0)),
        lambda s: cyclic_radius(s) > 1, max_examples=examples, seed=seed)


def cyclic_counterexample(examples: int, seed: int
                          ) -> tuple[ModelSpec | None, ModelSpec | None, float | None]:
    """(the model `unstable_cyclic_model` finds, that model if running it confirms the cycle
    (`cyclic_fails`) else None, its linearized sweep radius)."""
    unstable = unstable_cyclic_model(examples, seed)
    confirmed = unstable if unstable is not None and cyclic_fails(unstable) else None
    return unstable, confirmed, cyclic_radius(unstable) if unstable is not None else None


PLOT_SPEC = ModelSpec(n_in=4, n_hidden=32, weight_scale=1.0, structure="spike", seed=3,
                      gamma=0.95)


def certified_plot_spec() -> ModelSpec:
    """PLOT_SPEC (n = 32) rescaled to a Perron-weighted L_w <= 0.95."""
    return in_max_norm(PLOT_SPEC, 0.95)


def frozen_threshold_run(spec: ModelSpec) -> EventStats:
    """The lazy scheme with its threshold frozen at 1e-3 (shrink = 1), 4 inputs: it stalls."""
    _, frozen = event_driven_equilibrium(spec.build(), spec.inputs(4),
                                         scheme="lazy", threshold=1e-3, shrink=1.0, tol=TOL)
    return frozen


def summarize(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    return {"n": int(v.size), "mean": float(v.mean()), "median": float(np.median(v)),
            "min": float(v.min()), "max": float(v.max())}


def by_class(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, float]]:
    """summarize(row[key]) per model class, over the rows where it is measured (not None)."""
    groups: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        if row[key] is not None:
            groups[row["class"]].append(row[key])
    return {name: summarize(values) for name, values in sorted(groups.items())}


def saving_details(rows: list[dict[str, Any]], saving_lazy: list[float]) -> dict[str, Any]:
    """What the lazy-saving claim records beside its value: the saving's summary, the share of
    n ≥ 2 models with a positive saving, and per class the savings and skipped shares."""
    several = [r["saving_lazy"] for r in rows
               if r["saving_lazy"] is not None and r["n_hidden"] >= 2]
    return {"saving_vs_synchronous": summarize(saving_lazy),
            "share_saving_over_zero_n_at_least_2": float(np.mean([v > 0 for v in several])),
            "saving_by_class": by_class(rows, "saving_lazy"),
            "skipped_share_within_lazy_run": by_class(rows, "skipped_share_lazy"),
            "saving_gauss_seidel_vs_synchronous": by_class(rows, "saving_gauss_seidel")}


def mutual_inhibition() -> dict[str, Any]:
    """The control: W = [[0, −2], [−2, 0]], x = 0, start (½, ½), every scheme and order."""
    from eqprop_core.event_driven import SCHEMES

    weight = torch.tensor([[0.0, -2.0], [-2.0, 0.0]], dtype=torch.float64)
    drive = torch.zeros(1, 2, dtype=torch.float64)
    h0 = torch.full((1, 2), 0.5, dtype=torch.float64)
    reached, converged = {}, {}
    options = [("cyclic", {"order": "cyclic"}), ("reverse", {"order": "reverse"})] + [
        (f"random_seed{s}", {"order": "random", "seed": s}) for s in range(4)]
    for label, opts in options:
        h, stats = SCHEMES["asynchronous"](weight, drive, "tanh", h0, tol=TOL, max_rounds=500,
                                           **opts)
        reached[f"gauss_seidel_{label}"], converged[f"gauss_seidel_{label}"] = (
            h.numpy(), stats.all_converged)
    for label in ("synchronous", "lazy"):
        h, stats = SCHEMES[label](weight, drive, "tanh", h0, tol=TOL, max_rounds=500)
        converged[label] = stats.all_converged
    finals = [h for label, h in reached.items() if converged[label]]
    witness = [theory.find_fixed_point(weight.numpy(), np.zeros(2), "tanh", h0=h[0])
               for h in finals]
    cert = max_norm_certificate(weight.numpy(), "tanh")
    return {"spread": spread(finals), "reached": {k: v[0].tolist() for k, v in reached.items()},
            "converged": converged, "witness_residuals": [r.residual for r in witness],
            "distinct": len(theory.distinct_points([h[0] for h in finals], 1e-6)),
            "certificate": cert.summary()}
