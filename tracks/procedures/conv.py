"""Track 22's procedures: the digits ConvEqProp (c = (4, 4), 3×3 kernels, FFT SN γ = 0.95), its
training by real EqProp beside the readout-only baseline (same initialization, loop and data
order; kernels and bias reset after every step), the figures and the lines of the account."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from eqprop_core.conv import (
    ConvEqProp,
)
from eqprop_core.data import Dataset
from eqprop_core.train import EqProp, TrainingRun, train
from properties.conv_eqprop import scipy_lipschitz
from tracks.plots import Figure, Level, Line, Panel, Points, Series, draw, line_plot

CHANNELS, KERNEL, LR, GAMMA = (4, 4), 3, 1e-2, 0.95  # the digits model and its training
RUNS = {"quick": (1, 5), "full": (3, 15)}  # (seeds, epochs)


def digits_model(seed: int, sn: str = "fft", dtype: torch.dtype = torch.float32) -> ConvEqProp:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ConvEqProp((1, 8, 8), CHANNELS, 10, kernel_size=KERNEL,
                          sn=sn, gamma=GAMMA, dtype=dtype)


def readout_only(model: ConvEqProp) -> Callable[[torch.nn.Module], None]:
    """weight_transform that resets the kernels and bias after every step (the baseline)."""
    frozen = {name: getattr(model, name).detach().clone() for name in ("W", "U", "b")}

    def reset(m: torch.nn.Module) -> None:
        for name, value in frozen.items():
            getattr(m, name).copy_(value)

    return reset


# -- plots ----------------------------------------------------------------------------------
def norm_figure(kernels: list[dict[str, float]]) -> Figure:
    """Left: σ vs σ_max(R) for every drawn kernel; right: the ratio against its ceiling."""
    reshaped = np.array([m["reshaped"] for m in kernels])
    sigma = np.array([m["sigma"] for m in kernels])
    taps = np.array([m["taps"] for m in kernels])
    line = np.geomspace(reshaped.min(), reshaped.max(), 10)
    span = np.array([1.0, 5.0])
    return Figure([
        Panel([Points(None, reshaped, sigma, color=taps, colorbar="sqrt(k_h k_w)", size=18,
                      color_range=(1, 5)),
               Line("sigma = sigma(R) (floor)", line, line, "k-", width=1),
               Line("sigma = 5 sigma(R) (ceiling of 5x5 kernels)", line, 5 * line, "k:",
                    width=1)],
              title=f"{len(kernels)} drawn kernels", xlabel="reshaped-kernel norm sigma_max(R)",
              ylabel="operator norm sigma_max(K *) (scipy, dense)", logx=True, logy=True),
        Panel([Points(None, taps, sigma / reshaped, color=taps, size=18, color_range=(1, 5)),
               Line("ceiling sqrt(k_h k_w)", span, span, "k:", width=1),
               Level(1.0, "floor 1 (reshaped SN never over-estimates)", style="-", color="k")],
              title="reshaped-kernel SN: ||W_eff||_2 = gamma x this ratio",
              xlabel="sqrt(k_h k_w)", ylabel="under-estimation sigma / sigma(R)"),
    ], size=(11.5, 4.6))


def norm_scatter(ctx, kernels: list[dict[str, float]]) -> None:
    """`operator_vs_reshaped_norm.png` (nothing without an output directory)."""
    path = ctx.artifact_path("operator_vs_reshaped_norm.png")
    if path is not None:
        draw(path, norm_figure(kernels))


def train_arms(ctx, digits: Dataset, n_seeds: int, epochs: int
               ) -> tuple[dict[str, list[TrainingRun]], dict[str, list[torch.nn.Module]],
                          list[float]]:
    """(runs per arm, trained models per arm, scipy L of each EqProp-trained model), EqProp and
    the readout-only baseline from one initialization per seed (ctx.seed on)."""
    rule = EqProp()
    arms: dict[str, list[TrainingRun]] = {"EqProp": [], "readout-only baseline": []}
    models: dict[str, list[torch.nn.Module]] = {arm: [] for arm in arms}
    trained_L = []
    for seed in range(ctx.seed, ctx.seed + n_seeds):
        for arm in arms:
            model = digits_model(seed)
            models[arm].append(model)
            transform = readout_only(model) if arm != "EqProp" else None
            arms[arm].append(train(model, rule, digits, epochs=epochs, lr=LR,
                                   seed=seed, progress=False, weight_transform=transform))
            ctx.export_run(arm, arms[arm][-1])
            if arm == "EqProp":
                trained_L.append(scipy_lipschitz(model))
    return arms, models, trained_L


def learning_curve(ctx, arms: dict[str, list[TrainingRun]]) -> None:
    """Mean test accuracy per epoch over seeds, per arm."""
    curves: dict[str, Series] = {arm: ([r.epoch for r in runs[0].history],
                    [float(np.mean([r.history[i].test_accuracy for r in runs]))
                     for i in range(len(runs[0].history))]) for arm, runs in arms.items()}
    line_plot(ctx.artifact_path("learning_curve.png"), curves,
              title="ConvEqProp on digits: test accuracy (EqProp vs readout-only baseline)",
              xlabel="epoch", ylabel="test accuracy", logy=False)


# -- the account's lines ----------------------------------------------------------------------
def kernels_note(seen: list[dict[str, Any]], worst_ratio: float, worst_example: str | None
                 ) -> str:
    return (f"(a) {len(seen)} drawn kernels: FFT vs scipy worst relative error "
            f"{max(m['relative_error'] for m in seen):.1e}; sigma/sigma(R) from "
            f"{min(m['ratio'] for m in seen):.3f} to {worst_ratio:.3f} (worst: "
            f"{worst_example})")


def gradients_note(grads_seen: list[dict[str, Any]], per_parameter: dict[str, float]) -> str:
    return (f"(c) {len(grads_seen)} drawn models: EP vs implicit worst relative error "
            + ", ".join(f"{k} {v:.1e}" for k, v in per_parameter.items())
            + f"; FD vs reference <= {max(g['fd_error'] for g in grads_seen):.1e} "
            "sum_k ||g_k|| ||v_k||")


def learning_note(epochs: int, ep_acc: list[float], ep_loss: list[float],
                  base_acc: list[float], base_loss: list[float]) -> str:
    return (f"(d) digits, {epochs} epochs: EqProp {', '.join(f'{100 * a:.1f}%' for a in ep_acc)}"
            f" (test CE {', '.join(f'{v:.3f}' for v in ep_loss)}), readout-only baseline "
            f"{', '.join(f'{100 * a:.1f}%' for a in base_acc)} (test CE "
            f"{', '.join(f'{v:.3f}' for v in base_loss)})")


def control_note(control_L: float, gamma: float, ratio: float, worst_ratio: float) -> str:
    return (f"control: reshaped SN leaves L = {control_L:.3f} (gamma {gamma}), its norm "
            f"under-estimates by {ratio:.3f}x on the digits model's kernel; worst found "
            f"{worst_ratio:.3f}x")
