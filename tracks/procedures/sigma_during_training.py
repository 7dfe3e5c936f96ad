"""Track 18's procedures: one EqProp training arm per SN mode with scipy's spectra of the
matrix the dynamics use recorded every epoch (`properties.learning`), the worst deviations the
checks read off the epochs, the account per arm, and the three-panel figure (a spec)."""

from __future__ import annotations

from typing import Any, cast

from torch import Tensor

from eqprop_core.data import Dataset
from eqprop_core.train import TrainingRun, train
from eqprop_core.variants import build
from properties.learning import dynamics_matrix, jacobian_radius, spectrum_monitor
from tracks.context import TrackContext
from tracks.plots import Figure, Layer, Level, Line, Panel

GAMMA = 0.95
PROBE = 16


def relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def train_arm(data: Dataset, sn: str, *, hidden: int, lr: float, epochs: int,
              seed: int) -> TrainingRun:
    """Standard EqProp with SN mode `sn`, scipy's spectra of W_dyn recorded every epoch."""
    model, rule = build("standard", data.n_features, hidden, data.n_classes, sn=sn, seed=seed,
                        gamma=GAMMA)
    probe = data.x_train[:PROBE].flatten(1)

    def monitor(m: Any) -> dict[str, Any]:
        weight = dynamics_matrix(m)
        record = spectrum_monitor(m, weight)
        record["rho_scipy"] = jacobian_radius(m, weight, probe,
                                              cast(Tensor, rule.infer(m, probe).state))
        return record

    return train(model, rule, data, epochs=epochs, lr=lr, seed=seed, monitors=[monitor],
                 probe=PROBE, progress=False)


def arms_figure(name: str, runs: dict[str, TrainingRun]) -> Figure:
    """Per epoch and arm: σ_max of the matrix the dynamics use (and, for SN arms, of the raw
    W), ρ(J) at the free state, and the free-phase residual; one colour per arm."""
    sigma: list[Layer] = []
    rho: list[Layer] = []
    residual: list[Layer] = []
    for i, (sn, run) in enumerate(runs.items()):
        color, epochs = f"C{i}", run.series("epoch")
        sigma.append(Line(f"SN {sn}: σ_max(W_dyn)", epochs, run.series("sigma_scipy"),
                          f"{color}-o", marker_size=3))
        if sn != "off":
            sigma.append(Line(f"SN {sn}: raw W (not used by the dynamics)", epochs,
                              run.series("sigma_raw"), f"{color}--"))
        rho.append(Line(f"SN {sn}", epochs, run.series("rho_scipy"), f"{color}-o",
                        marker_size=3))
        residual += [Line(f"SN {sn}: median", epochs, run.series("median_residual"),
                          f"{color}-o", marker_size=3),
                     Line(f"SN {sn}: max", epochs, run.series("max_residual"), f"{color}:")]
    sigma.append(Level(GAMMA, f"γ = {GAMMA}", style=":", color="k"))
    return Figure([
        Panel(sigma, title="‖W‖₂ of the matrix the dynamics use (scipy)", xlabel="epoch"),
        Panel(rho, title="ρ(J) at the free state, probe batch (scipy)", xlabel="epoch"),
        Panel(residual, title="free-phase residual after 30 updates (test)", xlabel="epoch",
              logy=True),
    ], size=(14, 4),
        title=f"Track 18: {name}, EqProp standard variant, SN arms from one initialization")


def fold_worst(worst: dict[str, float], sn: str, run: TrainingRun) -> None:
    """Raise `worst` to this arm's worst epoch: the trainer's σ and ρ vs scipy's (relative),
    ρ(J)/L, and for SN arms σ_max(W_dyn)/γ."""
    for record in run.history:
        extra = record.extra
        worst["report"] = max(worst["report"],
                              relative(cast(float, record.sigma_eff),
                                        extra["sigma_scipy"]))
        worst["rho"] = max(worst["rho"], relative(cast(float, record.rho),
                                                   extra["rho_scipy"]))
        worst["rho_vs_L"] = max(worst["rho_vs_L"],
                                extra["rho_scipy"] / extra["lipschitz_scipy"])
        if sn != "off":
            worst["sn"] = max(worst["sn"], extra["sigma_scipy"] / GAMMA)


def arm_note(ctx: TrackContext, data: Dataset, sn: str, run: TrainingRun) -> None:
    """One arm's first and last epoch, for the account."""
    last = run.history[-1]
    first = run.history[0].extra["sigma_scipy"]
    ctx.note(f"{data.title}, SN {sn}: σ_max(W_dyn) {first:.3f} → "
             f"{last.extra['sigma_scipy']:.3f} (raw W {last.extra['sigma_raw']:.3f}), "
             f"ρ(J) {last.extra['rho_scipy']:.3f}, median residual "
             f"{last.median_residual:.2e}, converged {100 * last.converged_share:.1f}%, "
             f"test accuracy {100 * last.test_accuracy:.2f}%, {run.outcome}")


SETUPS: dict[str, dict[str, Any]] = {"digits": {"hidden": 128, "lr": 2e-3, "quick": 10, "full": 30},
          "mnist10k": {"hidden": 256, "lr": 1e-3, "quick": None, "full": 10}}


def train_arms(ctx: TrackContext, name: str, data: Dataset, setup: dict[str, Any], epochs: int,
               sn_modes: tuple[str, ...], worst: dict[str, float]) -> dict[str, TrainingRun]:
    """One arm per SN mode on `data`, each exported, folded into `worst` and noted."""
    runs = {sn: train_arm(data, sn, hidden=setup["hidden"], lr=setup["lr"], epochs=epochs,
                          seed=ctx.seed) for sn in sn_modes}
    for sn, run in runs.items():
        ctx.export_run(f"{name} SN {sn}", run)
        fold_worst(worst, sn, run)
        arm_note(ctx, data, sn, run)
    return runs


def raw_sigma_error(run: TrainingRun) -> float:
    """The control's statistic: the raw parameter's σ_max vs σ_max(W_dyn), worst relative
    difference over the epochs of an SN arm."""
    return max(relative(r.extra["sigma_raw"], r.extra["sigma_scipy"]) for r in run.history)
