"""Track 19's procedures: the grid of EqProp training runs (learning rate × seed × SN off/on, one
shared initialization per seed), the account per learning rate and the verdict lines, the
converged-share figure, and the control's deliberately broken model (no SN, ‖W_dyn‖₂ = 3)."""

from __future__ import annotations

import statistics
from typing import cast

import torch

from eqprop_core.data import Dataset
from eqprop_core.train import TrainingRun, train
from eqprop_core.variants import build
from properties.learning import banach_convergence
from properties.statistics import paired_difference
from tracks.context import TrackContext
from tracks.plots import line_plot

GAMMA = 0.95
TOL = 1e-5
HIDDEN = 128
GRID = {"quick": ((1e-3, 3e-3, 1e-2), 2, 6), "full": ((3e-4, 1e-3, 3e-3, 1e-2, 3e-2), 3, 15)}
Key = tuple[str, float, int]  # (SN mode, learning rate, seed)


def train_grid(ctx: TrackContext, data: Dataset, rates: tuple[float, ...], n_seeds: int,
               epochs: int) -> tuple[dict[Key, TrainingRun], dict]:
    """Every (SN mode, lr, seed) run, exported, with its final model."""
    runs: dict[Key, TrainingRun] = {}
    models = {}
    for lr in rates:
        for seed in range(ctx.seed, ctx.seed + n_seeds):
            for sn in ("off", "recurrent"):
                model, rule = build("standard", data.n_features, HIDDEN, data.n_classes, sn=sn,
                                    seed=seed, gamma=GAMMA)
                runs[sn, lr, seed] = train(model, rule, data, epochs=epochs, lr=lr, seed=seed,
                                           tol=TOL, progress=False)
                ctx.export_run(f"SN {sn} lr {lr:g}", runs[sn, lr, seed])
                models[sn, lr, seed] = model
    return runs, models


def account(ctx: TrackContext, final: dict, rates: tuple[float, ...], seeds: range,
            table: dict[str, tuple[float, float, float]]) -> None:
    """Per learning rate and arm: converged share, accuracy, ‖W_eff‖₂; then the verdicts."""
    for lr in rates:
        for sn in ("recurrent", "off"):
            share = statistics.mean(final[sn, lr, s].converged_share for s in seeds)
            acc = statistics.mean(final[sn, lr, s].test_accuracy for s in seeds)
            sigma = statistics.mean(cast(float, final[sn, lr, s].sigma_eff) for s in seeds)
            ctx.note(f"lr {lr:g}, SN {sn}: converged {100 * share:.1f}% in 30 steps, "
                     f"test accuracy {100 * acc:.2f}%, ‖W_eff‖₂ {sigma:.2f}")
    for metric, (mean, low, high) in table.items():
        verdict = "changed" if low > 0 or high < 0 else "did not measurably change"
        ctx.note(f"verdict: on digits SN {verdict} the {metric.replace('_', ' ')}: SN − no SN = "
                 f"{100 * mean:+.1f} points (95% CI {100 * low:+.1f} to {100 * high:+.1f})")


def converged_share_figure(ctx: TrackContext, runs: dict[Key, TrainingRun],
                           rates: tuple[float, ...], seeds: range) -> None:
    """`converged_share.svg`: the converged share per epoch, mean over seeds, per arm and lr."""
    series = {}
    for sn in ("recurrent", "off"):
        for lr in rates:
            history = [runs[sn, lr, s].history for s in seeds]
            epochs_seen = min(len(h) for h in history)
            series[f"SN {sn}, lr {lr:g}"] = (
                list(range(epochs_seen)),
                [statistics.mean(h[e].converged_share for h in history)
                 for e in range(epochs_seen)])
    line_plot(ctx.artifact_path("converged_share.svg"), series, logy=False,
              title="Track 19: share of test samples converged in 30 steps (mean over seeds)",
              xlabel="epoch", ylabel="share with ‖T(h) − h‖ ≤ 1e-5",
              styles={k: ("-o" if "recurrent" in k else "--x") for k in series})


def broken_model(data: Dataset, seed: int):
    """The control's model: no SN, the seed's initialization, W_dyn scaled to ‖W‖₂ = 3."""
    broken, _ = build("standard", data.n_features, HIDDEN, data.n_classes, sn="off",
                      seed=seed, gamma=GAMMA)
    with torch.no_grad():
        broken.W.mul_(3.0 / float(torch.linalg.matrix_norm(broken.recurrent_weight().double(),
                                                           ord=2)))
    return broken


COMPARED = (("converged_share", "converged share in T = 30 steps"),
            ("test_accuracy", "test accuracy"))  # (final-epoch metric, how the claim names it)


def paired_comparisons(final: dict, cells: list[tuple[float, int]]) -> dict[str, tuple]:
    """Per compared metric: (label, SN values, no-SN values, paired difference with its 95% CI)
    over the (lr, seed) cells, final epoch."""
    out = {}
    for metric, label in COMPARED:
        with_sn = [getattr(final["recurrent", lr, s], metric) for lr, s in cells]
        without = [getattr(final["off", lr, s], metric) for lr, s in cells]
        out[metric] = (label, with_sn, without, paired_difference(with_sn, without))
    return out


def divergences(runs: dict[Key, TrainingRun]) -> dict[str, object]:
    """The runs that did not complete, by cell, with their divergence record."""
    return {f"{sn} lr={lr:g} seed={seed}": r.divergence for (sn, lr, seed), r in runs.items()
            if r.outcome != "completed"}


def sn_promises(runs: dict[Key, TrainingRun], models: dict, data: Dataset) -> dict[Key, dict]:
    """The certificate's promise (`properties.learning.banach_convergence`, on the test set) for
    every SN arm's final model."""
    return {key: banach_convergence(models[key], data.x_test, TOL)
            for key in runs if key[0] == "recurrent"}
