"""Group D — the dataset benchmarks behind tracks 25–28: the write-up's claims table, measured.

One matrix per dataset: the four variants (`eqprop_core.variants`: standard, holomorphic,
finite-nudge β = 0.5, directed) × the three SN arms (off; recurrent weight only; all layers) ×
seeds, every run trained by real EqProp (free phase, nudged phases, update from the difference
of ∂E/∂θ) from ONE shared initialization per seed (`build` draws raw parameters from the seed
alone, so the arms of a seed differ only in what they do with them).

Protocol (fixed before measuring, identical for every arm):

1. Learning rate. Each arm (variant × SN mode) picks its Adam rate from a small fixed grid by
   validation accuracy: a fixed 20% of the train subset is held out, the arm is trained on the
   rest for the full epoch budget, and the rate with the highest final validation accuracy wins
   (a diverged run scores −∞; ties go to the smaller rate). No arm loses to a bad rate.
2. Matrix. Every arm is trained on the whole train subset at its chosen rate, for each seed,
   and evaluated on the test subset with inference exactly as trained (T free updates).
3. Per arm: test accuracy mean ± 95% CI over seeds (t interval), ‖W_eff‖₂ of the matrix the
   dynamics use (and the raw, pre-normalization σ for contrast — the write-up's Lipschitz column
   mixed the two), the certificate L = ‖W_eff‖₂·sup|φ′|, ρ(J) at the inferred state (16-sample
   probe), the share of test samples whose free phase met the residual tolerance in T steps,
   the divergence count and the training wall time.
4. SN vs no SN: per variant, Welch's t-test over seeds of the accuracy difference (SN − no SN,
   in points; the paired difference by seed is reported beside it), for both SN arms.

Checks (each can fail; a refuted claim never fails the track — claims are verdicts):
(1) SN arms: L = σ_max(W_dyn)·sup|φ′| ≤ γ by scipy on every final model (the contraction the
    write-up's SN did not deliver: σ ≈ 1.02 is not < 1);
(2) the reported ‖W_eff‖₂ is the dynamics' matrix: trainer σ vs scipy σ_max(W_dyn), relative
    error ≤ 1e-5 on every completed run;
(3) matched initialization: every arm of a seed starts from bit-identical raw W, U, b, V, c;
(4) no SN-arm run diverged (a no-SN divergence is a measurement, counted in the table);
(5) the benchmark learns beyond a linear model: the best arm's mean test accuracy ≥ a
    logistic-regression baseline (scikit-learn) fitted on the same train subset;
(6) at least 3 seeds per arm (group D's rule), so every interval rests on ≥ 2 degrees of freedom.

Negative control: the standard SN-recurrent arm at its chosen rate with the training labels
permuted (no information about the task): check (5)'s bound must fail on it.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eqprop_core.data import Dataset, DataUnavailable, data_root, load_dataset
from eqprop_core.train import EpochRecord, TrainingRun
from eqprop_core.variants import SN_MODES, VARIANTS
from properties import holds
from properties.bounds import at_least_bound, at_most_bound
from properties.evidence import Evidence
from properties.statistics import (
    CONFIRMED,
    INCONCLUSIVE,
    Interval,
    Verdict,
    direction_verdict,
    effect_verdict,
    equivalence_verdict,
    mean_ci,
    paired_difference,
    range_verdict,
    value_verdict,
    welch,
)
from tracks.cells import (
    GAMMA,
    CellCache,
    CellSpec,
    DataIdentity,
    data_digest,
    rate_score,
    remember_data,
    subset,
    training_run,
)
from tracks.context import TrackContext
from tracks.executors import CellBar, CellRunner, MatrixOptions, make_executor
from tracks.plots import Bars, Figure, Layer, Level, Line, Panel, Ticks, draw
from tracks.setups import PROFILES, Setup, load_setup
from tracks.tables import mean_pm

SN_LABELS = {"off": "no SN", "recurrent": "SN recurrent", "all": "SN all layers"}
WRITE_UP = "write-up 'Equilibrium Propagation with Spectral Normalization'"


@dataclass(frozen=True)
class ClaimedRow:
    """One row of the write-up's SVHN table: accuracies in %, Lipschitz SN → no SN."""

    architecture: str
    with_sn: float
    without_sn: float
    lipschitz_sn: float
    lipschitz_no_sn: float

    @property
    def delta(self) -> float:
        return self.with_sn - self.without_sn


CLAIMED_SVHN: dict[str, ClaimedRow] = {
    "standard": ClaimedRow("Standard LoopedMLP", 57.2, 33.2, 1.02, 5.89),
    "holomorphic": ClaimedRow("Holomorphic-inspired", 52.9, 27.4, 2.08, 4.94),
    "finite_nudge": ClaimedRow("Finite-Nudge (β=0.5)", 51.4, 24.3, 2.03, 5.33),
    "directed": ClaimedRow("DEEP (asymmetric / directed)", 59.2, 28.6, 2.29, 5.63),
}
CLAIMED_GROWTH = (5.0, 6.0)  # "without SN the recurrent Lipschitz constant grows to 5–6"
# "MNIST shows minimal difference": equivalence margin in accuracy points, fixed before measuring.
MINIMAL_DIFFERENCE_POINTS = 2.0

CERTIFIED = at_most_bound(GAMMA, "check (1): SN arms deliver the contraction L <= gamma (what the "
                                 "write-up's SN did not: sigma ~ 1.02 is not < 1)")
REPORTED_SIGMA = at_most_bound(1e-5, "check (2): the reported ||W_eff||_2 is the dynamics' matrix, "
                                     "trainer sigma vs scipy's to 1e-5 relative")
MIN_SEEDS = at_least_bound(3, "check (6): group D's rule, >= 3 seeds per arm so every interval "
                              "rests on >= 2 degrees of freedom")


# quick: CI on 2 CPU cores (≈ 5 min for track 25); full: the write-up's setup (5,000 / 1,000
# subsets, hidden 384, 30 steps, 25 epochs, batch 64; its lr 5e-4 is in the grid), 5 seeds.
# Both are files (tracks/setups/*.toml); `--setup FILE` replaces the profile's.


@dataclass(frozen=True)
class Benchmark:
    """A dataset benchmark: the dataset per profile and which of the write-up's claims it tests.

    `fallback`: a dataset used (with a note) when `dataset` is absent, e.g. the MNIST-10k split
    from ../shared/data for full MNIST; without one an absent dataset skips the track.
    """

    dataset: str
    quick_dataset: str | None = None
    fallback: str | None = None
    claimed: dict[str, ClaimedRow] | None = None
    minimal_difference: bool = False


# The benchmarks of tracks 25–28 (each track's docstring states the claims its entry tests).
MNIST = Benchmark("mnist", quick_dataset="mnist10k", fallback="mnist10k",
                  minimal_difference=True)
FASHION_MNIST = Benchmark("fashion_mnist")
SVHN = Benchmark("svhn", claimed=CLAIMED_SVHN)
CIFAR10 = Benchmark("cifar10")


# -- one arm -------------------------------------------------------------------------------
@dataclass
class ArmRun:
    """One trained (variant, SN mode, seed) cell and the scipy measurements of its final model,
    read from the cell's record (`tracks.cells.run_cell`)."""

    variant: str
    sn: str
    seed: int
    lr: float
    run: TrainingRun
    accuracy: float
    sigma_scipy: float | None
    lipschitz_scipy: float | None
    sigma_raw: float
    init_digest: str

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ArmRun:
        spec = record["spec"]
        return cls(spec["variant"], spec["sn"], spec["seed"], spec["lr"], training_run(record),
                   record["accuracy"], record["sigma_scipy"], record["lipschitz_scipy"],
                   record["sigma_raw"], record["init_digest"])

    @property
    def final(self) -> EpochRecord:
        return self.run.history[-1]


def choose_rate(setup: Setup, records: dict[float, dict[str, Any]]
                ) -> tuple[float, dict[str, float]]:
    """The arm's rate from its rate cells: best final validation accuracy over the grid
    (diverged: −∞; ties: the smaller rate). Returns (rate, {rate: validation accuracy})."""
    scores: dict[str, float] = {}
    best, best_score = setup.rates[0], -math.inf
    for lr in sorted(setup.rates):
        score = rate_score(records[lr])
        scores[f"{lr:g}"] = score if math.isfinite(score) else float("nan")
        if score > best_score:
            best, best_score = lr, score
    return best, scores


def linear_baseline(data: Dataset, seed: int) -> float:
    """Test accuracy of multinomial logistic regression (scikit-learn, lbfgs) on the same split."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    x_train = data.x_train.flatten(1).double().cpu().numpy()
    x_test = data.x_test.flatten(1).double().cpu().numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier = LogisticRegression(max_iter=300, random_state=seed)
        classifier.fit(x_train, data.y_train.cpu().numpy())
    return float(classifier.score(x_test, data.y_test.cpu().numpy()))


# -- the matrix ----------------------------------------------------------------------------
def load_benchmark_data(ctx: TrackContext, bench: Benchmark, setup: Setup
                        ) -> tuple[Dataset, DataIdentity]:
    """The dataset of this profile, subset as the setup says (absent ⇒ fallback or skip), and
    its identity for the cells (loader name, sizes, sha256 of the tensors)."""
    name = bench.quick_dataset if ctx.quick and bench.quick_dataset else bench.dataset
    try:
        data = load_dataset(name, seed=0)
    except DataUnavailable as missing:
        if bench.fallback is None or bench.fallback == name:
            ctx.skip(str(missing))
        try:
            data = load_dataset(bench.fallback, seed=0)
        except DataUnavailable as also_missing:
            ctx.skip(f"{missing}; the stand-in {bench.fallback} is absent too: "
                     f"{also_missing.command}")
        ctx.note(f"{name} is absent ({missing.command} obtains it); measured on "
                 f"{bench.fallback} instead")
        name = bench.fallback
    data = subset(data, setup.n_train, setup.n_test)
    identity = DataIdentity(name, setup.n_train, setup.n_test, data_digest(data))
    remember_data(identity, str(data_root()), data)  # in-process cells need not reload it
    return data, identity


def _summary(values: Sequence[float | None]) -> dict[str, Any]:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    interval = mean_ci(finite) if finite else Interval(math.nan, math.nan, math.nan, 0)
    return {**interval.to_json(), "per_seed": [None if v is None else float(v) for v in values]}


def _trajectory(runs: Sequence[ArmRun], key: str) -> list[float]:
    """Mean over seeds, per epoch, of a history metric (epochs every run reached)."""
    length = min(len(r.run.history) for r in runs)
    series = [[r.run.series(key)[e] for r in runs] for e in range(length)]
    return [float(statistics.mean(v for v in values if v is not None)) for values in series]


def summarize_arm(runs: Sequence[ArmRun], sweep: dict[str, float]) -> dict[str, Any]:
    first = runs[0]
    return {
        "variant": first.variant, "sn": first.sn, "label": SN_LABELS[first.sn],
        "lr": first.lr, "sweep_validation_accuracy": sweep,
        "accuracy": _summary([r.accuracy for r in runs]),
        "sigma_eff": _summary([r.final.sigma_eff for r in runs]),
        "sigma_raw": _summary([r.sigma_raw for r in runs]),
        "lipschitz": _summary([r.lipschitz_scipy for r in runs]),
        "rho": _summary([r.final.rho for r in runs]),
        "converged_share": _summary([r.final.converged_share for r in runs]),
        "divergences": sum(r.run.outcome != "completed" for r in runs),
        "divergence_details": [r.run.divergence for r in runs if r.run.divergence],
        "train_s": statistics.mean(r.run.train_seconds for r in runs),
        "trajectory": {key: _trajectory(runs, key)
                       for key in ("sigma_eff", "sigma_raw", "test_accuracy")},
    }


def compare(arms: dict[tuple[str, str], list[ArmRun]], variant: str, sn: str) -> dict[str, Any]:
    """SN arm `sn` − no SN for `variant`, in accuracy points: Welch over seeds, and paired."""
    with_sn = [100 * r.accuracy for r in arms[variant, sn]]
    without = [100 * r.accuracy for r in arms[variant, "off"]]
    test = welch(with_sn, without)
    paired = paired_difference(with_sn, without)
    return {"variant": variant, "sn": sn, "welch": test.to_json(), "paired": paired.to_json()}


def cell_specs(ctx: TrackContext, setup: Setup, data: DataIdentity, role: str,
               variant: str, sn: str, seeds: Sequence[int], rates: Sequence[float]
               ) -> list[CellSpec]:
    """The cells of one arm: each seed at each rate, in that order."""
    root = str(data_root())
    return [CellSpec(ctx.number, role, variant, sn, seed, lr, data, setup.hidden, setup.epochs,
                     setup.steps, setup.batch_size, setup.validation,
                     ctx.seed if role == "control" else None, ctx.device, root)
            for seed in seeds for lr in rates]


def benchmark_setup(ctx: TrackContext) -> Setup:
    """`--setup FILE` when given, else the profile's (ctx.skip-free: a bad file was refused at
    the command line; from the API it is a ValueError)."""
    options = ctx.matrix or MatrixOptions()
    return load_setup(options.setup) if options.setup else PROFILES[ctx.profile]


def run_benchmark(ctx: TrackContext, bench: Benchmark, setup: Setup | None = None) -> None:
    """Run the matrix of `bench` under `setup` (default: `--setup`, else the profile's) and
    record everything. Every training run is a cell (`tracks.cells`) run by the executor of
    `ctx.matrix` behind the cache in OUT/cells/track-NN: each arm's rate cells first, and as
    soon as an arm's rate is chosen, its seed cells (no barrier across arms)."""
    options = ctx.matrix or MatrixOptions()
    setup = setup or benchmark_setup(ctx)
    data, identity = load_benchmark_data(ctx, bench, setup)
    ctx.note(f"data: {data.title}; setup: {setup.describe()}")
    seeds = list(range(ctx.seed, ctx.seed + setup.seeds))
    baseline = linear_baseline(data, ctx.seed)
    control_arm = ("standard" if "standard" in setup.variants else setup.variants[0],
                   "recurrent" if "recurrent" in setup.sn_modes else setup.sn_modes[-1])

    arms_order = [(v, sn) for v in setup.variants for sn in setup.sn_modes]
    total = len(arms_order) * (len(setup.rates) + setup.seeds) + 1
    cache = CellCache(None if ctx.out_dir is None else
                      ctx.out_dir / "cells" / f"track-{ctx.number:02d}", fresh=options.fresh)
    executor = make_executor(options)
    bar = CellBar(total, f"track {ctx.number} ({ctx.profile})", executor.workers)
    runner = CellRunner(executor, cache, bar)
    rate_cells: dict[tuple[str, str], dict[float, dict[str, Any]]] = {k: {} for k in arms_order}
    seed_cells: dict[tuple[str, str, int], dict[str, Any]] = {}
    rates: dict[tuple[str, str], tuple[float, dict[str, float]]] = {}
    control: dict[str, Any] | None = None
    try:
        for variant, sn in arms_order:
            for spec in cell_specs(ctx, setup, identity, "rate", variant, sn, [ctx.seed],
                                   setup.rates):
                runner.add(spec)
        for spec, record in runner.completed():
            arm = (spec.variant, spec.sn)
            if spec.role == "rate":
                rate_cells[arm][spec.lr] = record
                if len(rate_cells[arm]) == len(setup.rates):
                    rates[arm] = choose_rate(setup, rate_cells[arm])
                    for cell in cell_specs(ctx, setup, identity, "seed", *arm, seeds,
                                           [rates[arm][0]]):
                        runner.add(cell)
                    if arm == control_arm:
                        runner.add(cell_specs(ctx, setup, identity, "control", *arm,
                                              [ctx.seed], [rates[arm][0]])[0])
            elif spec.role == "seed":
                seed_cells[spec.variant, spec.sn, spec.seed] = record
            else:
                control = record
    finally:
        executor.close()
        bar.close()
    ctx.execution = {"executor": executor.name, "workers": executor.workers,
                     "cells": total, "computed": len(runner.computed),
                     "cached": bar.cached, "cache": None if cache.folder is None
                     else str(cache.folder)}
    rates = {arm: rates[arm] for arm in arms_order}
    arms = {arm: [ArmRun.from_record(seed_cells[(*arm, seed)]) for seed in seeds]
            for arm in arms_order}
    for (variant, sn), runs in arms.items():
        for r in runs:
            ctx.export_run(f"{variant} {SN_LABELS[sn]}", r.run)
    assert control is not None  # submitted with its arm's seed cells
    ctx.export_run("control (permuted labels)", training_run(control))
    # Matched initialization: per seed, every arm starts from the first arm's parameters.
    mismatched = [f"{r.variant}/{r.sn}/seed {r.seed}"
                  for i, first in enumerate(arms[arms_order[0]])
                  for r in (runs[i] for runs in arms.values())
                  if r.init_digest != first.init_digest]

    summaries = {key: summarize_arm(runs, rates[key][1]) for key, runs in arms.items()}
    comparisons = [compare(arms, variant, sn) for variant in setup.variants
                   for sn in setup.sn_modes if sn != "off"]
    _record_checks(ctx, arms, summaries, baseline, mismatched, seeds)
    ctx.negative_control(beats_baseline(
        f"{control_arm[0]}/{SN_LABELS[control_arm[1]]} trained on permuted labels: test "
        "accuracy vs the logistic-regression baseline", control["accuracy"], baseline))
    verdicts = _record_claims(ctx, bench, setup, summaries, comparisons)
    ctx.results.update({
        "kind": "dataset benchmark",
        "dataset": data.title,
        "setup": {**dataclasses.asdict(setup), "description": setup.describe(), "gamma": GAMMA},
        "linear_baseline_accuracy": baseline,
        "arms": list(summaries.values()),
        "comparisons": comparisons,
        "verdicts": verdicts,
        "verdict": verdict_line(verdicts),
        "claimed": None if bench.claimed is None else {
            v: dataclasses.asdict(row) for v, row in bench.claimed.items()},
    })
    _notes(ctx, summaries, comparisons, baseline, bench.claimed)
    ctx.note(ctx.results["verdict"])
    draw(ctx.artifact_path("results.svg"),
         results_figure(ctx.number, summaries, bench.claimed, baseline, data.title))


def _record_checks(ctx: TrackContext, arms: dict[tuple[str, str], list[ArmRun]],
                   summaries: dict[tuple[str, str], dict[str, Any]], baseline: float,
                   mismatched: list[str], seeds: list[int]) -> None:
    sn_runs = [r for (_, sn), runs in arms.items() if sn != "off" for r in runs]
    lipschitz = [r.lipschitz_scipy if r.lipschitz_scipy is not None else math.inf
                 for r in sn_runs]
    worst = max(lipschitz) if lipschitz else math.nan
    ctx.check(CERTIFIED.check("SN arms: max certified L = σ_max(W_dyn)·sup|φ′| (scipy) over final "
                              "models", worst, runs=len(sn_runs)))
    errors = [abs(r.final.sigma_eff - r.sigma_scipy) / r.sigma_scipy
              for runs in arms.values() for r in runs
              if r.run.outcome == "completed" and r.sigma_scipy and r.final.sigma_eff is not None]
    ctx.check(REPORTED_SIGMA.check("reported ‖W_eff‖₂ vs scipy σ_max(W_dyn): max relative error",
                                   max(errors) if errors else math.nan, runs=len(errors)))
    ctx.check(holds("matched initialization: every arm of a seed starts from identical raw "
                    "W, U, b, V, c", not mismatched, "0 mismatched arms", len(mismatched),
                    mismatched=mismatched))
    diverged = [f"{r.variant}/{r.sn}/seed {r.seed}" for r in sn_runs
                if r.run.outcome != "completed"]
    ctx.check(holds("no SN-arm run diverged", not diverged, "0 diverged SN runs", len(diverged),
                    diverged=diverged))
    best_key = max(summaries, key=lambda k: summaries[k]["accuracy"]["mean"])
    ctx.check(beats_baseline("best arm's mean test accuracy vs a logistic-regression baseline",
                             summaries[best_key]["accuracy"]["mean"], baseline,
                             arm=f"{best_key[0]}/{SN_LABELS[best_key[1]]}"))
    ctx.check(MIN_SEEDS.check("seeds per arm (group D: ≥ 3)", len(seeds)))


def beats_baseline(name: str, accuracy: float, baseline: float, **details: Any) -> Evidence:
    """Check (5): `accuracy` ≥ the logistic-regression baseline's — a measured floor (fitted
    on the same train subset), not a declared threshold."""
    accuracy = float(accuracy)
    return holds(name, math.isfinite(accuracy) and accuracy >= baseline, f">= {baseline:.6g}",
                 value=accuracy, **details)


# -- verdicts --------------------------------------------------------------------------------
def _claim(ctx: TrackContext, kind: str, variant: str, name: str, verdict: Verdict,
           value: float, bound: str, source: str, **details: Any) -> dict[str, Any]:
    """Record the verdict on `variant`'s instance of the claim `kind`."""
    name = f"{variant}: {name}"
    ctx.claim(holds(name, verdict.verdict == CONFIRMED, bound, value, **details), source,
              verdict=verdict.verdict, reason=verdict.reason)
    return {"claim": name, "kind": kind, "variant": variant, "value": value, "stated": bound,
            **verdict.to_json(), "source": source}


def _record_claims(ctx: TrackContext, bench: Benchmark, setup: Setup,
                   summaries: dict[tuple[str, str], dict[str, Any]],
                   comparisons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The write-up's claims on this dataset, each with a three-valued verdict and its test."""
    verdicts = []
    claimed_setup = setup == PROFILES["full"]
    for comparison in comparisons:
        if comparison["sn"] != "recurrent":
            continue
        variant = comparison["variant"]
        test = comparison["welch"]
        low, high, delta = test["low"], test["high"], test["difference"]
        details = {"test": "Welch's t-test over seeds (SN − no SN, accuracy points)",
                   "p": test["p"], "df": test["df"], "ci": [low, high]}
        if bench.claimed is not None and variant in bench.claimed:
            row = bench.claimed[variant]
            verdicts.append(_claim(
                ctx, "SN − no SN = the claimed Δ", variant,
                f"SN − no SN test accuracy = {row.delta:+.1f} points",
                effect_verdict(low, high, row.delta, " points"), delta,
                f"{row.delta:+.1f} points", WRITE_UP, **details))
        elif bench.minimal_difference:
            verdicts.append(_claim(
                ctx, "MNIST shows minimal difference", variant,
                "MNIST shows minimal SN vs no-SN difference",
                equivalence_verdict(low, high, MINIMAL_DIFFERENCE_POINTS, " points"), delta,
                f"|Δ| < {MINIMAL_DIFFERENCE_POINTS:g} points (margin fixed in advance)",
                WRITE_UP, **details))
        else:
            verdicts.append(_claim(
                ctx, "SN improves accuracy", variant, "SN improves test accuracy",
                direction_verdict(
                    low, high, " points"), delta, "Δ > 0", WRITE_UP + " (benefit across variants)",
                **details))
    for variant in setup.variants:
        off = summaries[variant, "off"]["sigma_eff"]
        verdicts.append(_claim(
            ctx, "no-SN Lipschitz grows to 5–6", variant,
            "without SN the recurrent Lipschitz constant grows to 5–6",
            range_verdict(off["low"], off["high"], *CLAIMED_GROWTH), off["mean"],
            "in [5, 6]", WRITE_UP, test="95% t-interval over seeds of ‖W_eff‖₂·sup|φ′| "
            "(tanh: sup|φ′| = 1), final epoch"))
    if bench.claimed is None:
        return verdicts
    for variant in setup.variants:
        stated_row = bench.claimed.get(variant)
        if stated_row is None:
            continue
        levels = (("with SN test accuracy", "recurrent", "accuracy", stated_row.with_sn, 100, "%"),
                  ("without SN test accuracy", "off", "accuracy", stated_row.without_sn, 100,
                   "%"),
                  ("without SN Lipschitz", "off", "sigma_eff", stated_row.lipschitz_no_sn, 1, ""))
        for label, sn, key, stated, scale, unit in levels:
            measured = summaries[variant, sn][key]
            verdict = value_verdict(scale * measured["low"], scale * measured["high"], stated,
                                    unit) if claimed_setup else Verdict(
                INCONCLUSIVE, f"not tested: the {ctx.profile} profile's setup is not the "
                              "claimed one (see setup); run --profile full")
            verdicts.append(_claim(ctx, f"{label} = the claimed value", variant,
                                   f"{label} = {stated:g}{unit}", verdict,
                                   scale * measured["mean"], f"{stated:g}{unit}", WRITE_UP,
                                   test="claimed value inside the 95% t-interval over seeds"))
    return verdicts


def verdict_line(verdicts: list[dict[str, Any]]) -> str:
    """One line: per kind of claim, how many variants confirm, refute or cannot decide it,
    e.g. "verdict — no-SN Lipschitz grows to 5–6: 4 refuted"."""
    tally: dict[str, dict[str, int]] = {}
    for v in verdicts:
        counts = tally.setdefault(v["kind"], {})
        counts[v["verdict"]] = counts.get(v["verdict"], 0) + 1
    return "verdict — " + "; ".join(
        f"{claim}: " + ", ".join(f"{n} {word}" for word, n in sorted(counts.items()))
        for claim, counts in tally.items())


# -- the account -----------------------------------------------------------------------------
def _notes(ctx: TrackContext, summaries: dict[tuple[str, str], dict[str, Any]],
           comparisons: list[dict[str, Any]], baseline: float,
           claimed: dict[str, ClaimedRow] | None) -> None:
    ctx.note(f"logistic-regression baseline (same split): {100 * baseline:.2f}%")
    for variant, row in (claimed or {}).items():
        if (variant, "off") not in summaries or (variant, "recurrent") not in summaries:
            continue
        sn, off = summaries[variant, "recurrent"], summaries[variant, "off"]
        ctx.note(f"claimed | measured — {row.architecture}: with SN {row.with_sn:.1f}% | "
                 f"{mean_pm(sn['accuracy'], 100, 1)}%; without SN {row.without_sn:.1f}% | "
                 f"{mean_pm(off['accuracy'], 100, 1)}%; Lipschitz {row.lipschitz_sn:.2f} → "
                 f"{row.lipschitz_no_sn:.2f} | L {mean_pm(sn['lipschitz'])} → "
                 f"{mean_pm(off['lipschitz'])} (raw σ {mean_pm(sn['sigma_raw'])} → "
                 f"{mean_pm(off['sigma_raw'])})")
    for (variant, _), s in summaries.items():
        ctx.note(f"{variant:12s} {s['label']:13s} lr {s['lr']:<6g} accuracy "
                 f"{mean_pm(s['accuracy'], 100)}%  ‖W_eff‖₂ {mean_pm(s['sigma_eff'])}  raw σ "
                 f"{mean_pm(s['sigma_raw'])}  ρ(J) {mean_pm(s['rho'])}  converged "
                 f"{mean_pm(s['converged_share'], 100, 1)}%  diverged {s['divergences']}")
    for c in comparisons:
        w = c["welch"]
        ctx.note(f"{c['variant']}: {SN_LABELS[c['sn']]} − no SN = {w['difference']:+.2f} points "
                 f"(Welch 95% CI {w['low']:+.2f} to {w['high']:+.2f}, p = {w['p']:.3g}; paired "
                 f"{c['paired']['mean']:+.2f}, CI {c['paired']['low']:+.2f} to "
                 f"{c['paired']['high']:+.2f})")
    for claim in ctx.claims:
        ctx.note(f"verdict: {claim['name']}: {claim['verdict'].upper()} — "
                 f"{claim['details']['reason']}")


def accuracy_panel(summaries: dict[tuple[str, str], dict[str, Any]],
                   claimed: dict[str, ClaimedRow] | None, baseline: float) -> Panel:
    """Test accuracy per arm, bars with 95% CIs grouped by variant, the write-up's claims as
    stars and the linear baseline, the axis zoomed onto the measured range."""
    variants = list(dict.fromkeys(v for v, _ in summaries))
    modes = list(dict.fromkeys(sn for _, sn in summaries))
    width = 0.8 / len(modes)
    colors = dict(zip(SN_MODES, ("tab:gray", "tab:blue", "tab:green")))
    layers: list[Layer] = []
    tops = [100 * baseline]
    for j, sn in enumerate(modes):
        accuracy = [summaries[v, sn]["accuracy"] for v in variants]
        means = np.array([100 * a["mean"] for a in accuracy])
        errors = np.nan_to_num([100 * 0.5 * (a["high"] - a["low"]) for a in accuracy])
        offset = (j - (len(modes) - 1) / 2) * width
        layers.append(Bars(variants, means, low=means - errors, high=means + errors,
                           label=SN_LABELS[sn], offset=offset, width=width,
                           color=colors[sn]))
        tops += list(means + errors)
        if claimed is not None and sn in ("off", "recurrent"):
            stated = [getattr(claimed[v], "with_sn" if sn == "recurrent" else "without_sn")
                      if v in claimed else np.nan for v in variants]
            layers.append(Line("claimed (write-up)" if sn == "recurrent" else None,
                               np.arange(len(variants)) + offset, stated, "k*",
                               marker_size=9))
            tops += stated
    layers.append(Level(100 * baseline, "logistic-regression baseline", style=":",
                        color="tab:red"))
    # Zoom onto the measured range (bars from 0 would hide differences of a point or two).
    floor = [100 * baseline] + [100 * summaries[k]["accuracy"]["low"] for k in summaries] + (
        [min(r.without_sn for r in claimed.values())] if claimed else [])
    finite_floor = [f for f in floor if math.isfinite(f)]
    finite_tops = [t for t in tops if math.isfinite(t)]
    bottom = max(0.0, min(finite_floor) - 5) if finite_floor else 0.0
    top = 1.05 * max(finite_tops) if finite_tops else 100.0
    return Panel(layers, title="test accuracy per arm", title_size=9,
                 ylabel="test accuracy (%), mean ± 95% CI over seeds (axis zoomed)",
                 ylim=(bottom, max(top, bottom + 1)))


def norm_panels(summaries: dict[tuple[str, str], dict[str, Any]]) -> list[Panel]:
    """‖W_eff‖₂ (the norm the dynamics use) and the raw σ(W) per epoch, one colour per variant
    and one line style per SN mode, against γ and L = 1; the first panel holds the legend."""
    styles = {"off": "--", "recurrent": "-", "all": ":"}
    palette = dict(zip(VARIANTS, ("C0", "C1", "C2", "C4")))
    variants = list(dict.fromkeys(v for v, _ in summaries))
    modes = list(dict.fromkeys(sn for _, sn in summaries))
    epochs = max(len(s["trajectory"]["sigma_eff"]) for s in summaries.values())
    step = max(1, -(-epochs // 10))
    legend: list[Layer] = [Line(v, [], [], f"{palette[v]}-") for v in variants]
    legend += [Line(SN_LABELS[sn], [], [], f"k{styles[sn]}") for sn in modes]
    panels = []
    for i, (key, label) in enumerate((("sigma_eff", "‖W_eff‖₂ (the dynamics' matrix)"),
                                      ("sigma_raw", "raw σ_max(W), before SN"))):
        layers: list[Layer] = [
            Line(None, range(len(s["trajectory"][key])), s["trajectory"][key],
                 f"{palette[variant]}{styles[sn]}.") for (variant, sn), s in summaries.items()]
        layers += [Level(GAMMA, f"γ = {GAMMA}" if i == 0 else None, style="-", color="k"),
                   Level(1.0, "L = 1" if i == 0 else None, style=":", color="tab:red")]
        panels.append(Panel((legend if i == 0 else []) + layers,
                            title=f"{label}, mean over seeds", title_size=9, xlabel="epoch",
                            xticks=Ticks(list(range(0, epochs, step)))))
    return panels


def results_figure(number: int, summaries: dict[tuple[str, str], dict[str, Any]],
                   claimed: dict[str, ClaimedRow] | None, baseline: float, title: str) -> Figure:
    """Left: test accuracy per arm, bars with 95% CIs (the write-up's claims as stars); middle:
    ‖W_eff‖₂, the norm the dynamics use, per epoch; right: the raw σ(W) per epoch (what the
    write-up's Lipschitz column reported for most rows). Means over seeds."""
    return Figure([accuracy_panel(summaries, claimed, baseline), *norm_panels(summaries)],
                  size=(15, 5.2), title=f"Track {number}: {title}")
