"""Track 20's procedures: the gradient batch, the training arms (ideal, INT8/INT4 states and
weights, neuron noise; digits, LoopedMLP 64 → 64 → 10, real EqProp with the arm's state
transform and quantization-aware weights) and the figures."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from eqprop_core import LoopedMLP
from eqprop_core.data import Dataset
from eqprop_core.hardware import (
    neuron_noise,
    quantization_step,
    quantize_states,
    quantize_weights,
)
from eqprop_core.train import EqProp, TrainingRun, train
from eqprop_core.variants import build
from properties.hardware_error_model import (
    BETA,
    BREAK_EVEN,
    ESTIMATORS,
    N_POINTS,
    STEPS,
    Bench,
    NoisePoint,
    PrecisionPoint,
    break_even,
)
from tracks.context import TrackContext
from tracks.plots import Figure, Layer, Level, Line, Panel, Ticks

COLORS = dict(zip(ESTIMATORS, ("C0", "C1", "C2")))
BATCH = 64
HIDDEN = 64


@dataclass(frozen=True)
class TrainingPlan:
    epochs: int
    seeds: int
    estimators: tuple[str, ...]


TRAINING = {"quick": TrainingPlan(10, 1, ("symmetric",)),
            "full": TrainingPlan(30, 3, ESTIMATORS)}
LR = 2e-3
ACCURACY_NOISE = (1e-2, 1e-1)
ACCURACY_BITS = (8, 4)


# -- training ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Arm:
    label: str
    noise: float = 0.0
    bits: int | None = None

    def transform(self, seed: int) -> Callable[[Tensor], Tensor] | None:
        if self.bits is not None:
            return quantize_states(self.bits)
        if self.noise > 0:
            return neuron_noise(self.noise, torch.Generator().manual_seed(seed))
        return None


ARMS = (Arm("ideal"),) + tuple(Arm(f"INT{b} states+weights", bits=b) for b in ACCURACY_BITS) \
    + tuple(Arm(f"noise {s:g}", noise=s) for s in ACCURACY_NOISE)


def train_arm(data: Dataset, estimator: str, arm: Arm, seed: int,
              epochs: int) -> tuple[TrainingRun, LoopedMLP]:
    model, _ = build("standard", data.n_features, HIDDEN, data.n_classes, seed=seed)
    rule = EqProp(estimator, BETA, N_POINTS if estimator == "holomorphic" else None, STEPS,
                  state_transform=arm.transform(seed))
    handle = quantize_weights(model, arm.bits) if arm.bits is not None else None
    try:
        run = train(model, rule, data, epochs=epochs, lr=LR, seed=seed, progress=False)
    finally:
        if handle is not None:
            handle.remove()
    return run, model


def gradient_batch(data: Dataset, seed: int) -> tuple[Tensor, Tensor]:
    order = torch.randperm(data.x_train.shape[0], generator=torch.Generator().manual_seed(seed))
    pick = order[:BATCH]
    return data.x_train[pick].flatten(1).double(), data.y_train[pick]


# -- figures ----------------------------------------------------------------------------------
def dash(label: str) -> str:
    """The line style of a bench: solid at the initialization, dashed after training."""
    return "-" if label == "init" else "--"


def noise_figure(sweeps: dict[tuple[str, str], list[NoisePoint]],
                 predicted: dict[tuple[str, str], float]) -> Figure:
    """Gradient cosine vs neuron noise per bench and estimator (mean ± standard error), with
    the predicted break-even σ as faint vertical lines."""
    layers: list[Layer] = []
    for (label, estimator), points in sweeps.items():
        color = COLORS[estimator]
        layers.append(Line(f"{estimator}, {label} (ideal {points[0].mean:.4f})",
                           [p.std for p in points[1:]], [p.mean for p in points[1:]],
                           f"{color}{dash(label)}o", marker_size=3,
                           error=[p.standard_error for p in points[1:]]))
        star = predicted[(label, estimator)]
        if math.isfinite(star) and star > 0:
            layers.append(Level(star, axis="x", style=dash(label), color=color, alpha=0.5))
    layers.append(Level(BREAK_EVEN, f"break-even {BREAK_EVEN}", style=":", color="gray"))
    return Figure([Panel(layers, title=f"Track 20: gradient cosine vs neuron noise (β = {BETA}, "
                         f"T = {STEPS}); faint lines: predicted break-even", title_size=9,
                         xlabel="neuron noise std σ (per update)",
                         ylabel="cosine(EP, implicit gradient)", logx=True)], size=(6.8, 4.4))


def precision_figure(sweeps: dict[tuple[str, str], list[PrecisionPoint]],
                     ideal: dict[tuple[str, str], float]) -> Figure:
    """Gradient cosine vs bits, one panel per quantized part (float64 at the right)."""
    panels = []
    for i, arm in enumerate(("states", "weights", "states+weights")):
        lines = []
        for (label, estimator), points in sweeps.items():
            rows = [p for p in points if p.arm == arm]
            xs = [p.bits for p in rows] + [64]
            ys = [p.cosine for p in rows] + [ideal[(label, estimator)]]
            order = np.argsort(xs)
            lines.append(Line(f"{estimator}, {label}", np.array(xs)[order], np.array(ys)[order],
                              f"{COLORS[estimator]}{dash(label)}o", marker_size=3))
        panels.append(Panel(lines, title=f"{arm} quantized", title_size=9, xlabel="bits",
                            ylabel="cosine(EP, implicit gradient)" if i == 0 else "",
                            logx=True, legend=i == 0,
                            xticks=Ticks([2, 4, 6, 8, 16, 64], ["2", "4", "6", "8", "16", "f64"])))
    return Figure(panels, size=(12, 4), sharey=True)


def accuracy_figure(accuracy: dict[str, dict[str, list[float]]]) -> Figure:
    """Final test accuracy per estimator (mean over seeds) vs neuron noise and vs precision,
    the ideal arm at σ = 0 and at float."""
    noise, bits = [], []
    for estimator, arms in accuracy.items():
        ideal = float(np.mean(arms["ideal"]))
        style = f"{COLORS[estimator]}-o"
        noise.append(Line(estimator, [1e-3, *ACCURACY_NOISE],
                          [ideal] + [float(np.mean(arms[f"noise {s:g}"]))
                                     for s in ACCURACY_NOISE], style))
        bits.append(Line(estimator, [64, *ACCURACY_BITS],
                         [ideal] + [float(np.mean(arms[f"INT{b} states+weights"]))
                                    for b in ACCURACY_BITS], style))
    return Figure([
        Panel(noise, title="accuracy vs neuron noise", title_size=9,
              xlabel="neuron noise std σ", ylabel="final test accuracy (digits)", logx=True,
              xticks=Ticks([1e-3, *ACCURACY_NOISE], ["0"] + [f"{s:g}" for s in ACCURACY_NOISE])),
        Panel(bits, title="accuracy vs precision", title_size=9,
              xlabel="bits (states and W_eff, U_eff, V_eff)", logx=True,
              xticks=Ticks([4, 8, 64], ["4", "8", "float"])),
    ], size=(10, 4), sharey=True)


def train_arms(ctx: TrackContext, data: Dataset, plan: TrainingPlan
               ) -> tuple[dict[str, dict[str, list[float]]], LoopedMLP]:
    """Final test accuracy per estimator and arm over the plan's seeds (0 for a diverged run),
    and the symmetric ideal arm's model at ctx.seed (the trained model of the gradient checks)."""
    accuracy: dict[str, dict[str, list[float]]] = {}
    trained: LoopedMLP | None = None
    for estimator in plan.estimators:
        accuracy[estimator] = {arm.label: [] for arm in ARMS}
        for seed in range(ctx.seed, ctx.seed + plan.seeds):
            for arm in ARMS:
                history, model = train_arm(data, estimator, arm, seed, plan.epochs)
                ctx.export_run(f"{estimator} {arm.label}", history)
                accuracy[estimator][arm.label].append(
                    history.final_test_accuracy if history.outcome == "completed" else 0.0)
                if estimator == "symmetric" and arm.label == "ideal" and seed == ctx.seed:
                    trained = model
    if trained is None:
        raise RuntimeError("the training plan must include the symmetric ideal arm")
    return accuracy, trained


def init_and_trained(data: Dataset, trained: LoopedMLP, x: Tensor, y: Tensor, seed: int
                     ) -> list[Bench]:
    """The float64 benches of the gradient checks: the initialization at `seed` and the model
    after the ideal arm's training."""
    with torch.random.fork_rng(devices=[]):
        init, _ = build("standard", data.n_features, HIDDEN, data.n_classes, seed=seed,
                        dtype=torch.float64)
    return [Bench("init", init, x, y),
            Bench("trained", copy.deepcopy(trained).double(), x, y)]


def nudge_move_note(benches: list[Bench], bits: int) -> str:
    """The nudge's RMS move over the b-bit step per bench, and what a move below 1 means."""
    moves = {b.label: b.nudge_displacement / quantization_step(bits) for b in benches}
    return ("nudge move beta*dh/dbeta (RMS) over the INT8 step: " + ", ".join(
        f"{label} {move:.2f}" for label, move in moves.items()) + (
        "; below 1 the INT8 grid cannot resolve the nudge: the phases round to the same "
        "states, the estimate shrinks towards zero and its cosine drops, as the error model "
        "says (the bound of check (4) is then vacuous for that model)"
        if min(moves.values()) < 1 else ""))


def sweep_note(estimator: str, label: str, pts: list[NoisePoint], predicted_star: float,
               int8: PrecisionPoint, margin: dict[str, Any]) -> str:
    """One model's line: ideal cosine, break-even σ measured and predicted, the INT8 cosines
    and the error model's floor, the noisy residual at the largest σ."""
    return (f"{estimator}, {label}: ideal cosine {pts[0].mean:.5f}; break-even "
            f"(cos < {BREAK_EVEN}) at sigma ~ {break_even(pts):.3g} measured, "
            f"{predicted_star:.3g} predicted; INT8 states "
            f"{int8.cosine:.4f}, INT8 states+weights "
            f"{margin['cosine']:.4f} (bound {margin['bound']:.4f}); "
            f"noisy residual at sigma={pts[-1].std:g}: {pts[-1].residual:.3g}")


def accuracy_note(estimator: str, arms: dict[str, list[float]]) -> str:
    return f"accuracy ({estimator}): " + ", ".join(
        f"{k} {100 * float(np.mean(v)):.1f}%" for k, v in arms.items())
