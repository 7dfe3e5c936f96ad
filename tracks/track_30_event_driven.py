"""Track 30 — Event-driven (lazy) and asynchronous updates reach the same h*, and what they save.

Theorem (totally asynchronous convergence; Bertsekas & Tsitsiklis 1989, §6.2–6.3; restated in
`theory/asynchronous.py`). If T(h) = φ(W_eff h + Ux + b) is a contraction in a weighted max-norm
‖v‖_w = max_i |v_i|/w_i — for sup|φ′| = s that holds with L_w = s·max_i(|W_eff|w)_i/w_i < 1,
best w the Perron vector of |W_eff|, inf_w L_w = s·ρ(|W_eff|) — then every asynchronous or
partial-update schedule (any order, any subset, each neuron updated infinitely often) converges
to the unique h*. Along any run ‖h − h*‖_w ≤ ‖T(h) − h‖_w/(1 − L_w); a partial update never
increases ‖h − h*‖_w; one Gauss–Seidel sweep shrinks it by L_w. SN certifies the 2-norm only
(L₂ = s‖W_eff‖₂ ≤ γ), which does not imply any of this: ρ(|W|) ≥ ‖W‖₂ for symmetric W.

Group A (contraction and equilibrium): the claim is about which norm T contracts in and the
fixed point every schedule reaches — measured, like tracks 2–4, on hypothesis-drawn small models
in float64 against the scipy/NumPy witness; nothing is trained and no dataset is read.

Schemes (`eqprop_core.event_driven`): synchronous (plain iteration, n updates per round), lazy
(a neuron updates only when its pending change |φ(a_i) − h_i| exceeds θ; θ₀ = 0.1, halved
whenever no neuron exceeds it, floored at tol/√n), asynchronous Gauss–Seidel (random order per
sweep, cyclic, reversed). All maintain the pre-activations incrementally (a += δ_j W[:, j]), so
the work is proportional to the neuron updates made; all stop at ‖T(h) − h‖₂ ≤ 1e-12 (float64) —
the same fixed-point error, at which updates are counted.

Checks, on drawn SN models rescaled so that their Perron-weighted L_w ∈ {0.5, 0.8, 0.95}
(structures of `contractive_models`, symmetric and not, starts to 1e6 in norm):
(1) every scheme converges; (2) all schemes, orders and starts reach one h* (spread ≤ 1e-9),
equal to the Newton witness (`theory.find_fixed_point`) and to `solvers.fixed_point_iteration`
to ≤ 1e-9; (3) the accounting is exact: updates + skipped = rounds·n per sample, the neurons
that changed between recorded rounds of the lazy run are exactly the updates counted, and the
maintained pre-activations equal h W_effᵀ + d to round-off; (4) the max-norm Banach bounds
above hold at every recorded round (weights with margin, `theory.conditioned_weights`); (5) the
certificate itself: ‖T(a) − T(b)‖_w ≤ L_w‖a − b‖_w for w = 1 and Perron w, hunted by
hypothesis (with worst-row sign directions, so its tightness is reported); (6) symmetric SN
models with *no* max-norm certificate still converge under every scheme to the Newton h* —
a theorem of a different kind: the energy of track 8 descends under any partial update
h_S ← φ(a_S), E(h⁺) ≤ E(h) − ½Δ_Sᵀ(W_SS + I/s)Δ_S, and λ_min(W_SS) ≥ −‖W‖₂ ≥ −γ/s > −1/s.

Measured and reported (claims, not checks): the share of SN models that are max-norm
contractions, weighted and unweighted, on a stated grid (5 structures × symmetric or not ×
n ∈ {2, 4, 8}, two seeds each; full: n to 32, eight seeds), and a shrunk SN model that is not;
what lazy and Gauss–Seidel updates do on the SN models without the certificate — for asymmetric
W no theorem applies, and cyclic Gauss–Seidel can cycle forever on a 2-norm contraction: hypothesis
finds a minimal SN model whose cyclic sweep has Jacobian spectral radius > 1 at h* = 0 (scipy,
`theory.gauss_seidel_iteration_matrix`) and running it confirms the cycle; the share of neuron
updates the lazy scheme skips at equal fixed-point error, per model class of the drawn models
and on n = 32 models (full: also n = 128), plus Gauss–Seidel's saving; a plot of the residual
against neuron updates (synchronous, lazy, Gauss–Seidel) on a certified n = 32 model.

Negative control: W = [[0, −2], [−2, 0]] (mutual inhibition, no SN, L₂ = L_∞ = ρ(|W|) = 2:
not a contraction in any norm), x = 0, one start (½, ½): cyclic and reversed Gauss–Seidel
reach the two different fixed points (∓p, ±p), p = tanh(2p) ≈ 0.9575, so "same h*" must fail;
synchronous and lazy updates 2-cycle. Recorded beside it: a lazy scheme with a frozen threshold
(shrink = 1) stalls above the tolerance on a certified model.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from typing import Any, cast

import numpy as np
import torch
from hypothesis import strategies as st

import theory
from eqprop_core.event_driven import EventStats, event_driven_equilibrium
from properties import (
    MeasuredOnce,
    ModelSpec,
    Search,
    as_numpy,
    contractive_models,
    find_example,
    holds,
    initial_states,
)
from properties.bounds import at_least_bound, at_most_bound
from theory.asynchronous import (
    conditioned_weights,
    gauss_seidel_iteration_matrix,
    max_norm_certificate,
    max_norm_lipschitz,
    perron_weights,
    weighted_max_norm,
)

from .plots import line_plot
from .registry import track

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

NONE = at_most_bound(0.0, "checks (1), (3): every scheme converges and the accounting is exact, "
                          "so nothing may be counted")
AGREEMENT = at_most_bound(1e-9, "check (2): h* agreement; each solve's certified error is <= "
                                "TOL/(1 - L_2) <= 1e-10")
DRIFT = at_most_bound(1e-12, "check (3): the maintained pre-activations equal h W_eff^T + d to "
                             "round-off")
BANACH = at_most_bound(1.0, "check (4): each ratio is a max-norm Banach bound's left side over "
                            "its right side, > 1 a violation")
CERTIFICATE = at_most_bound(1 + 1e-9, "check (5): ||T(a) - T(b)||_w <= L_w ||a - b||_w, the "
                                      "quotient <= 1 (the 1e-9 allowance is not derived in the "
                                      "module)")
NO_EXTRA_WORK = at_least_bound(0.0, "TRACKS.md track 30: lazy updates never need more neuron "
                                    "updates than synchronous sweeps at equal error (saving >= 0)")
EVERY_MODEL = at_least_bound(1.0, "a share of models: the claim is stated for every model")
STALLED = at_least_bound(TOL, "a frozen threshold stalls above the tolerance every scheme stops "
                              "at")


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
# Hunting (hypothesis.target) draws new cases; it is spent where the margin is thin.
SEARCHES = (
    Search("unconverged solves (6 schemes/orders x 2 starts)", measure.metric("unconverged"),
           NONE, hunt=False),
    Search("max spread of h* over schemes, orders and starts", measure.metric("spread"),
           AGREEMENT, hunt=False),
    Search("max |h_scheme - h*_newton (theory)|", measure.metric("witness"), AGREEMENT),
    Search("max |h_scheme - h_fixed_point solver|", measure.metric("solver"), AGREEMENT,
           hunt=False),
    Search("accounting mismatches: updates+skipped vs rounds*n, changed neurons vs lazy updates",
           measure.metric("mismatch"), NONE, hunt=False),
    Search("max |maintained pre-activation - (h W^T + d)|", measure.metric("drift"), DRIFT,
           hunt=False),
    Search("max-norm a posteriori: max ||h_k-h*||_w / (||T(h_k)-h_k||_w/(1-L_w))",
           measure.metric("posterior"), BANACH),
    Search("partial updates never expand: max ||h_{k+1}-h*||_w / ||h_k-h*||_w (synchronous, "
           "lazy)", measure.metric("expansion"), BANACH, hunt=False),
    Search("Gauss-Seidel sweep contracts: max ||h_{k+1}-h*||_w / (L_w ||h_k-h*||_w)",
           measure.metric("sweep"), BANACH),
)


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


CERTIFICATE_SEARCH = Search("max-norm certificate: max ||T(a)-T(b)||_w / (L_w ||a-b||_w), w = 1 "
                            "and Perron", certificate_quotient, CERTIFICATE)


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


def _census(case: tuple[ModelSpec, np.ndarray, float, int]) -> dict[str, Any]:
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


PLOT_SPEC = ModelSpec(n_in=4, n_hidden=32, weight_scale=1.0, structure="spike", seed=3,
                      gamma=0.95)


def scale_specs(sizes: tuple[int, ...]) -> list[ModelSpec]:
    """One SN model (γ = 0.95) per structure, symmetry and size: skipped share at scale."""
    return [ModelSpec(n_in=4, n_hidden=n, weight_scale=1.0, structure=s, seed=7, symmetric=sym,
                      gamma=0.95)
            for n in sizes for s in STRUCTURES for sym in (True, False)]


@track(30, "Event-driven updates", "A",
       "lazy and asynchronous updates reach the same h* when T is a weighted max-norm "
       "contraction (s*rho(|W|) < 1); skipped share measured at equal fixed-point error",
       model_reason="its checks rescale the suite's SN models to chosen max-norm certificates "
       "(s*rho(|W|) in {0.5, 0.8, 0.95}); a given model is not rescaled (tracks 2-6 certify "
       "its own contraction)")
def run(ctx) -> None:
    n = ctx.examples(12, 150)
    cases = certified_cases()
    for search in SEARCHES:
        ctx.search(cases, search, n)
    rows = measure.values()
    ctx.note(f"{n} drawn SN models rescaled to Perron-weighted L_w in {TARGETS} (max-norm "
             f"certified; {len(rows)} measured), 2 starts each to 1e6 in norm, float64, "
             f"stop at ||T(h)-h||_2 <= {TOL:g}")

    # Skipped updates at equal fixed-point error (both stop at the same residual).
    saving_lazy = [r["saving_lazy"] for r in rows if r["saving_lazy"] is not None]
    saving_gs = [r["saving_gauss_seidel"] for r in rows if r["saving_gauss_seidel"] is not None]
    ctx.check(AGREEMENT.check(
        "equal fixed-point error: max over models of lazy and synchronous |h - h*_newton|",
        max(max(r["error_lazy"], r["error_sync"]) for r in rows),
        median_error_lazy=float(np.median([r["error_lazy"] for r in rows])),
        median_error_synchronous=float(np.median([r["error_sync"] for r in rows]))))
    several = [r["saving_lazy"] for r in rows
               if r["saving_lazy"] is not None and r["n_hidden"] >= 2]
    ctx.claim(
        NO_EXTRA_WORK.check("lazy updates never need more neuron updates than synchronous "
                            "sweeps at equal fixed-point error (min saving over drawn certified "
                            "models)", min(saving_lazy),
                 saving_vs_synchronous=summarize(saving_lazy),
                 share_saving_over_zero_n_at_least_2=float(np.mean([v > 0 for v in several])),
                 saving_by_class=by_class(rows, "saving_lazy"),
                 skipped_share_within_lazy_run=by_class(rows, "skipped_share_lazy"),
                 saving_gauss_seidel_vs_synchronous=by_class(rows, "saving_gauss_seidel")),
        "TRACKS.md track 30 (measure the share of skipped updates at equal error)")
    ctx.note(f"lazy vs synchronous at equal error: {100 * np.median(saving_lazy):.1f}% of "
             f"neuron updates skipped (median over {len(saving_lazy)} models; range "
             f"{100 * min(saving_lazy):.1f}% to {100 * max(saving_lazy):.1f}%); Gauss-Seidel "
             f"vs synchronous: {100 * np.median(saving_gs):.1f}% fewer (median)")

    scale_rows: list[dict[str, Any]] = []
    for spec in scale_specs((32,) if ctx.quick else (32, 128)):
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
    ctx.claim(
        EVERY_MODEL.check("n >= 32 SN models (gamma 0.95, 4 inputs each): lazy needs fewer "
                          "neuron updates than synchronous at equal error (share of models)",
                          float(np.mean([(r["saving_lazy"] or 0) > 0 and r["converged"]
                                         for r in scale_rows])),
                          models={r["class"]: r for r in scale_rows}),
        "TRACKS.md track 30 (measure the share of skipped updates at equal error)")
    ctx.note("larger SN models, lazy vs synchronous saving: " + ", ".join(
        f"{r['class']} {100 * (r['saving_lazy'] or 0):.0f}%" for r in scale_rows))

    # The certificate, hunted (the tightest quotient is its tightness).
    ctx.search(certificate_pairs(), CERTIFICATE_SEARCH, ctx.examples(60, 600))

    # SN models: are they max-norm contractions, and what do asynchronous updates do then?
    grid = sn_census_cases((2, 4, 8) if ctx.quick else (2, 4, 8, 16, 32),
                           2 if ctx.quick else 8, ctx.seed)
    seen = [_census(case) for case in grid]
    sym_uncert = [r for r in seen if r["symmetric"] and not r["certified"]]
    asym_uncert = [r for r in seen if not r["symmetric"] and not r["certified"]]
    share = {
        "weighted (s*rho(|W|) < 1)": float(np.mean([r["certified"] for r in seen])),
        "unweighted (s*||W||_inf < 1)": float(np.mean([r["certified_unweighted"]
                                                       for r in seen])),
    }
    per_class: dict[str, dict[str, float]] = {}
    for name in sorted({r["class"] for r in seen}):
        group = [r for r in seen if r["class"] == name]
        per_class[name] = {"n": len(group),
                           "certified_weighted": float(np.mean([r["certified"] for r in group])),
                           "certified_unweighted": float(np.mean([r["certified_unweighted"]
                                                                  for r in group])),
                           "median_s_rho_abs": float(np.median([r["s_rho_abs"]
                                                                for r in group]))}
    labels = [label for label, _, _ in CENSUS_RUNS]

    def converged_share(group: list[dict[str, Any]]) -> dict[str, float | None]:
        return {label: (float(np.mean([r[f"converged_{label}"] for r in group]))
                        if group else None) for label in labels}

    def outcomes(group: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
        return {label: {kind: sum(r[f"outcome_{label}"] == kind for r in group)
                        for kind in ("converged", "no progress", "slow")} for label in labels}

    m = ctx.examples(60, 600)
    counter = find_example(contractive_models(max_hidden=10, symmetric=None),
                           lambda s: not max_norm_certificate(
                               as_numpy(s.build()).weight, s.activation).certified,
                           max_examples=m, seed=ctx.seed)
    ctx.claim(
        EVERY_MODEL.check("SN (L_2 <= gamma < 1) makes T a weighted max-norm contraction, so "
                          "asynchronous convergence is a theorem (share of drawn SN models)",
                          share["weighted (s*rho(|W|) < 1)"], shares=share, per_class=per_class,
                 shrunk_counterexample=repr(counter) if counter is not None else None),
        "issue 7 item 3 (state the contraction norm under which asynchronous updates converge)")
    ctx.note(f"{len(seen)} SN models (grid: 5 structures x sym/asym x n in "
             f"{sorted({r['n_hidden'] for r in seen})}, gamma 0.95): max-norm contractions "
             + ", ".join(f"{k}: {100 * v:.0f}%" for k, v in share.items()))

    # Symmetric SN without the max-norm certificate: energy descent still forces convergence.
    sym_error = max((r[f"error_{label}"] for r in sym_uncert for label in labels), default=0.0)
    ctx.check(AGREEMENT.check("symmetric SN models without max-norm certificate: max |h_scheme "
                              "- h*_newton| (lazy, Gauss-Seidel random and cyclic; inf = "
                              "unconverged)", sym_error, models=len(sym_uncert),
                      converged=converged_share(sym_uncert), outcomes=outcomes(sym_uncert)))
    # Where a sweep's Jacobian at h* = 0 has ρ > 1 (scipy), cyclic Gauss–Seidel cannot
    # converge to the unique h*; hypothesis finds a minimal such SN model, the run confirms it.
    unstable = find_example(
        contractive_models(max_hidden=10, symmetric=False).map(
            lambda s: s.with_(drive_scale=0.0)),
        lambda s: cyclic_radius(s) > 1, max_examples=m, seed=ctx.seed)
    asym_counter = unstable if unstable is not None and cyclic_fails(unstable) else None
    asym_share = (converged_share(asym_uncert)["gauss_seidel_cyclic"] if asym_uncert
                  else None)
    ctx.claim(
        holds("asymmetric SN models without max-norm certificate: every asynchronous "
              "schedule still converges (share converged, cyclic Gauss-Seidel; and no "
              "counterexample found)", asym_share == 1.0 and asym_counter is None,
              ">= 1 and no counterexample", value=asym_share,
              models=len(asym_uncert), converged=converged_share(asym_uncert),
              outcomes=outcomes(asym_uncert), rounds_allowed=CENSUS_ROUNDS,
              shrunk_counterexample=(repr(asym_counter) if asym_counter is not None
                                     else None),
              linearized_sweep_radius=(cyclic_radius(unstable) if unstable is not None
                                       else None),
              counterexample_search="hypothesis: an asymmetric SN model (drive 0) whose cyclic "
              "Gauss-Seidel sweep has Jacobian spectral radius > 1 at h* = 0 (scipy); confirmed "
              f"by running it: start 1/2, {CYCLE_SWEEPS} sweeps, no progress over the last "
              "half"),
        "issue 7 item 3 (what asynchronous updates do on SN models that are not max-norm "
        "contractions)",
        verdict="inconclusive" if asym_share is None and asym_counter is None else None)
    ctx.note("non-certified SN models, outcomes: symmetric "
             f"{outcomes(sym_uncert)}, asymmetric {outcomes(asym_uncert)}"
             + (f"; cyclic Gauss-Seidel never converges on {asym_counter!r}"
                if asym_counter is not None else ""))

    # A frozen threshold (shrink = 1) cannot reach the tolerance.
    frozen_spec = in_max_norm(PLOT_SPEC, 0.95)
    _, frozen = event_driven_equilibrium(frozen_spec.build(), frozen_spec.inputs(4),
                                         scheme="lazy", threshold=1e-3, shrink=1.0, tol=TOL)
    ctx.check(STALLED.check("frozen threshold 1e-3 (shrink = 1) is falsified: residual stays "
                            "above the tolerance", frozen.max_residual,
                       stalled=bool(cast(torch.Tensor, frozen.stalled).all()),  # threshold set
                       updates=int(frozen.updates.sum())))

    control = mutual_inhibition()
    ctx.note(f"control W = [[0,-2],[-2,0]], x = 0, start (1/2, 1/2): "
             f"{control['distinct']} distinct fixed points reached by Gauss-Seidel orders; "
             f"converged: {control['converged']}")
    ctx.negative_control(
        AGREEMENT.check("max spread of h* over Gauss-Seidel orders (W = [[0,-2],[-2,0]], x = 0, "
                        "one start)", control["spread"]),
        **{k: v for k, v in control.items() if k != "spread"})

    plot(ctx, frozen_spec)


def plot(ctx, spec: ModelSpec) -> None:
    """Residual vs cumulative neuron updates for one certified n = 32 model, one input."""
    model, x = spec.build(), spec.inputs(1)
    series = {}
    for label, scheme in (("synchronous", "synchronous"), ("lazy (event-driven)", "lazy"),
                          ("Gauss-Seidel, random order", "asynchronous")):
        _, stats = event_driven_equilibrium(model, x, scheme=scheme, tol=TOL,
                                            max_rounds=MAX_ROUNDS)
        series[label] = (stats.update_trace, stats.residual_trace)
    line_plot(ctx.artifact_path("updates.png"), series,
              title=f"{spec.structure}, n = {spec.n_hidden}: residual vs work",
              xlabel="neuron updates (each = one column of W_eff)",
              ylabel="||T(h) - h||_2")
