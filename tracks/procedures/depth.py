"""Track 21's procedures: the figures (per-layer cosine and nudge signal; per-layer error vs β)
and the training arm (a 2-layer LayeredEqProp on digits by real EqProp beside BPTT, one shared
initialization)."""

from __future__ import annotations

import numpy as np
import torch

from eqprop_core.data import load_dataset
from eqprop_core.layered import LayeredEqProp, path_graph_norm
from eqprop_core.train import BPTT, EqProp, TrainingRun, train
from properties.layered_gradients import DEPTHS, PLOT_BETAS, SMALL_BETA, TRAINING_BETA, rounded
from tracks.plots import Figure, Level, Line, Panel, Ticks, draw

TRAIN_LAYERS, TRAIN_LR = (64, 32), 2e-3


def cosine_figure(rows: list[dict], control: list[dict], cosine_bound: float) -> Figure:
    """Left: 1 - cosine per layer, worst draw, per arm and depth, and the control (best draw).
    Right: the nudge signal per layer relative to the readout, each draw."""
    gap, signal = [], []
    for depth, color in ((2, "C0"), (3, "C1")):
        mine = [r for r in rows if r["depth"] == depth]
        layers = list(range(1, depth + 1))
        arms = (("symmetric beta=1e-3", lambda r: r["layer_cosine"], "o-"),
                ("symmetric beta=0.1", lambda r: r["training"]["symmetric"]["layer_cosine"], "s--"),
                ("one-sided beta=0.1", lambda r: r["training"]["one_sided"]["layer_cosine"], "^:"))
        for label, get, style in arms:
            gaps = np.max([[max(1 - c, 1e-17) for c in get(r)] for r in mine], axis=0)
            gap.append(Line(f"L={depth}, {label}", layers, gaps, color + style))
        fa = [r for r in control if r["depth"] == depth]
        gaps = np.min([[max(1 - c, 1e-17) for c in r["layer_cosine"]] for r in fa], axis=0)
        gap.append(Line(f"L={depth}, control: independent feedback, beta=1e-3", layers, gaps,
                        color + "x-", width=2))
        signal += [Line(None, layers, r["signal"][SMALL_BETA]["ratio_to_output"], color + "o-",
                        width=0.8, alpha=0.5) for r in mine]
        signal.append(Line(f"L={depth} (each draw)", [], [], color + "o-"))
    xlabel, ticks = "layer (1 = input side, L = readout)", Ticks([1, 2, 3])
    return Figure([
        Panel([*gap, Level(1 - cosine_bound, "bound: 1 - cos <= 1e-5", color="tab:red")],
              title="EP vs scipy implicit gradient, per layer", xlabel=xlabel,
              ylabel="1 - cosine (worst block of the layer; worst draw)", logy=True,
              xticks=ticks, legend_size=6.5),
        Panel(signal, title="nudge signal per layer (beta = 1e-3)", xlabel=xlabel,
              ylabel="||h_beta,l - h_0,l|| / beta, relative to layer L", xticks=ticks),
    ], size=(11, 4.2))


def beta_figure(sweep: dict[str, list[list[float]]]) -> Figure:
    """Per-layer relative error vs β, L = 3, one line per estimator and layer."""
    lines = [Line(f"{label}, layer {l}", PLOT_BETAS, curve,
                  f"C{l - 1}" + ("o-" if label.startswith("symmetric") else "^--"))
             for label, curves in sweep.items() for l, curve in enumerate(curves, start=1)]
    return Figure([Panel(lines, title="per-layer EP error vs beta, L = 3 (draw 0)", xlabel="beta",
                         ylabel="relative error vs implicit gradient (layer's blocks)", logx=True,
                         logy=True)])


def plots(ctx, rows: list[dict], control: list[dict], sweep: dict[str, list[list[float]]],
          cosine_bound: float) -> None:
    draw(ctx.artifact_path("per_layer_cosine.png"), cosine_figure(rows, control, cosine_bound))
    draw(ctx.artifact_path("relative_error_vs_beta.png"), beta_figure(sweep))


def train_beside_bptt(ctx, epochs: int) -> dict[str, TrainingRun]:
    """{rule label: run}: LayeredEqProp TRAIN_LAYERS trained on digits by real EqProp
    (symmetric, β = 0.2, 30 + 2×10 phases) and by BPTT from one initialization (ctx.seed)."""
    data = load_dataset("digits", seed=ctx.seed)
    runs = {}
    for rule in (EqProp(estimator="symmetric", beta=0.2, steps=(30, 10)), BPTT(steps=30)):
        with torch.random.fork_rng():
            torch.manual_seed(ctx.seed)
            model = LayeredEqProp(data.n_features, TRAIN_LAYERS, data.n_classes)
        runs[rule.label] = train(model, rule, data, epochs=epochs, lr=TRAIN_LR, seed=ctx.seed,
                                 progress=False)
        ctx.export_run(rule.label, runs[rule.label])
    return runs


def measured_notes(rows: list[dict], control: list[dict]) -> list[str]:
    """The account's lines on what is measured, not asserted: per depth the training-beta
    agreement per layer and the nudge signal's attenuation, the control's per-layer gaps and
    the certified L per SN mode."""
    notes: list[str] = []
    for d in DEPTHS:
        mine = [r for r in rows if r["depth"] == d]
        for est in ("symmetric", "one_sided"):
            gaps = np.max([[1 - c for c in r["training"][est]["layer_cosine"]] for r in mine],
                          axis=0)
            rel = np.max([r["training"][est]["layer_relative_error"] for r in mine], axis=0)
            notes.append(f"L={d}, {est} EP at training beta={TRAINING_BETA:g}: per layer (1..L) "
                         f"worst 1 - cos {rounded(gaps, 2)}, worst relative error "
                         f"{rounded(rel, 2)}")
        for beta in (SMALL_BETA, TRAINING_BETA):
            to_output = np.array([r["signal"][beta]["ratio_to_output"] for r in mine])
            unit = np.array([np.array(r["signal"][beta]["per_unit"])
                             / r["signal"][beta]["per_unit"][-1] for r in mine])
            notes.append(f"L={d}, beta={beta:g}: nudge signal ||h_beta,l - h_0,l||/beta relative "
                         f"to layer L, per layer (1..L), min..max over draws: "
                         + ", ".join(f"{lo:.3f}..{hi:.3f}" for lo, hi in
                                     zip(to_output.min(axis=0), to_output.max(axis=0)))
                         + " (per unit: " + ", ".join(f"{lo:.3f}..{hi:.3f}" for lo, hi in
                                                      zip(unit.min(axis=0), unit.max(axis=0)))
                         + ")")
    control_gaps = [rounded([1 - c for c in r["layer_cosine"]], 3) for r in control]
    notes.append(f"control (independent feedback): per layer 1 - cos at beta={SMALL_BETA:g}: "
                 f"{control_gaps}")
    sn = {m: max(r["L"] for r in rows if r["sn_mode"] == m) for m in ("global", "per_layer")}
    notes.append(f"certified L by scipy: global SN max {sn['global']:.6f}, per-layer SN max "
                 f"{sn['per_layer']:.6f} (gamma_b = gamma/(2cos(pi/(L+1))): "
                 + ", ".join(f"L={d}: {0.95 / path_graph_norm(d):.4f}" for d in DEPTHS) + ")")
    return notes
