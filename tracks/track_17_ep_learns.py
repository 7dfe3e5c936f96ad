"""Track 17 — EP learns: real EqProp trains a LoopedMLP on real data as well as BPTT does.

Claim. A LoopedMLP (tanh, symmetric W, SN on W with γ = 0.95) trained by *real* EqProp — free
phase, nudged phases at ±β, update from the difference of ∂E/∂θ, no autograd through the dynamics
(`eqprop_core.train.EqProp`, the "standard" variant) — reaches the accuracy of the same model,
same initialization, same data order, trained by backprop through its 30 unrolled steps (BPTT,
the BASELINE), on scikit-learn's digits. A feed-forward tanh MLP trained by backprop is reported
beside them as the conventional baseline.

Setup. digits: 1,437 train / 360 test (fixed split), standardized; hidden 128, batch 64, Adam
lr 2e-3; EqProp: symmetric estimator β = 0.2, 30 free + 2×10 nudged updates (the phases as
trained in practice); BPTT: 30 steps; inference as trained (30 free updates). Seeds ctx.seed,
ctx.seed + 1, … (3 quick, 5 full), each seed one shared initialization of EP and BPTT arms.
MNIST-10k split (8,000 / 2,000 of the official MNIST test set; `../shared/data`), when present:
hidden 256, 10 epochs, the same EqProp rule.

Checks (each can fail):
(1) digits: mean test accuracy of EqProp over seeds ≥ 95% (issue 4's figure; chance is 10%,
    and the backprop MLP's accuracy is printed beside it);
(2) digits: |EqProp − BPTT| mean test accuracy ≤ 1.5 points (issue 4);
(3) MNIST-10k split, when its files are present: EqProp test accuracy ≥ 94% within 10 epochs
    (issue 4). Absent ⇒ a note with the command that fetches it (the digits checks still run).

Negative control: the same EqProp run with the training labels randomly permuted (the learning
signal carries no information about the task): check (1)'s bound must fail on it.
"""

from __future__ import annotations

import statistics
from typing import Any

import torch

from eqprop_core.data import DataUnavailable, load_dataset
from eqprop_core.train import BPTT, Backprop, FeedForwardMLP, TrainingRun, train
from eqprop_core.variants import build
from properties import at_least_bound, at_most_bound
from tracks.context import TrackContext
from tracks.plots import line_plot
from tracks.registry import track

DIGITS: dict[str, Any] = {"hidden": 128, "lr": 2e-3, "quick": (3, 15),
                          "full": (5, 30)}  # (seeds, epochs)
MNIST: dict[str, Any] = {"hidden": 256, "lr": 1e-3, "epochs": 10}
DIGITS_ACCURACY = at_least_bound(0.95, "issue 4's figure: mean digits test accuracy of EqProp "
                                       "over seeds >= 95% (chance is 10%)")
BPTT_GAP = at_most_bound(1.5, "issue 4: |EqProp - BPTT| mean digits test accuracy <= 1.5 points")
MNIST_ACCURACY = at_least_bound(0.94, "issue 4: EqProp test accuracy >= 94% on the MNIST-10k "
                                      "split within 10 epochs")


def _curve(runs: list[TrainingRun]) -> tuple[list[int], list[float]]:
    epochs = [r.epoch for r in runs[0].history]
    return epochs, [statistics.mean(r.history[i].test_accuracy for r in runs)
                    for i in range(len(epochs))]


@track(17, "EP learns", "C",
       "EqProp-trained LoopedMLP reaches BPTT's accuracy on real data (digits, MNIST-10k split)")
def run(ctx: TrackContext) -> None:
    digits = load_dataset("digits", seed=0)
    n_seeds, epochs = DIGITS["quick" if ctx.quick else "full"]
    arms: dict[str, list[TrainingRun]] = {"EqProp": [], "BPTT baseline": [],
                                          "backprop MLP baseline": []}
    for seed in range(ctx.seed, ctx.seed + n_seeds):
        for arm in ("EqProp", "BPTT baseline"):
            model, rule = build("standard", digits.n_features, DIGITS["hidden"],
                                digits.n_classes, sn="recurrent", seed=seed)
            arms[arm].append(train(model, rule if arm == "EqProp" else BPTT(30), digits,
                                   epochs=epochs, lr=DIGITS["lr"], seed=seed, progress=False))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            mlp = FeedForwardMLP(digits.n_features, DIGITS["hidden"], digits.n_classes)
        arms["backprop MLP baseline"].append(train(mlp, Backprop(), digits, epochs=epochs,
                                                   lr=DIGITS["lr"], seed=seed, progress=False))
    for arm, runs in arms.items():
        for r in runs:
            ctx.export_run(f"digits {arm}", r)
    final = {arm: [r.final_test_accuracy for r in runs] for arm, runs in arms.items()}
    mean = {arm: statistics.mean(values) for arm, values in final.items()}
    seconds = {arm: statistics.mean(r.train_seconds for r in runs) for arm, runs in arms.items()}
    for arm in arms:
        ctx.note(f"digits, {arm}: test accuracy {100 * mean[arm]:.2f}% (seeds: "
                 f"{', '.join(f'{100 * a:.1f}' for a in final[arm])})")
    ctx.check(DIGITS_ACCURACY.check("digits: EqProp mean test accuracy", mean["EqProp"],
                                    per_seed=final["EqProp"], epochs=epochs,
                                    rule=arms["EqProp"][0].rule,
                                    backprop_mlp=mean["backprop MLP baseline"], chance=0.1,
                                    training_s={arm: round(t, 2) for arm, t in seconds.items()}))
    ctx.check(BPTT_GAP.check("digits: |EqProp - BPTT| mean test accuracy (points)",
                             100 * abs(mean["EqProp"] - mean["BPTT baseline"]),
                             eqprop=mean["EqProp"], bptt=mean["BPTT baseline"],
                             bptt_per_seed=final["BPTT baseline"]))
    series = {arm: _curve(runs) for arm, runs in arms.items()}

    try:
        mnist = load_dataset("mnist10k", seed=0)
    except DataUnavailable as missing:
        ctx.note(f"MNIST-10k split not checked: {missing}")
    else:
        model, rule = build("standard", mnist.n_features, MNIST["hidden"], mnist.n_classes,
                            sn="recurrent", seed=ctx.seed)
        run_mnist = train(model, rule, mnist, epochs=MNIST["epochs"], lr=MNIST["lr"],
                          seed=ctx.seed, progress=False)
        ctx.export_run("mnist10k EqProp", run_mnist)
        ctx.check(MNIST_ACCURACY.check(f"{mnist.title}: EqProp test accuracy within 10 epochs",
                                       run_mnist.best_test_accuracy,
                                       per_epoch=run_mnist.series("test_accuracy"),
                                       epoch_s=run_mnist.train_seconds / MNIST["epochs"],
                                       converged_share=run_mnist.history[-1].converged_share))
        ctx.note(f"{mnist.title}: EqProp {100 * run_mnist.best_test_accuracy:.2f}% best of "
                 f"{MNIST['epochs']} epochs")
        series["EqProp, MNIST-10k split"] = ([r.epoch for r in run_mnist.history],
                                             run_mnist.series("test_accuracy"))
    line_plot(ctx.artifact_path("learning_curves.svg"), series,
              title="Track 17: test accuracy while training (digits: mean over seeds)",
              xlabel="epoch", ylabel="test accuracy", logy=False)

    # Control: labels permuted within the training set — the same rule learns nothing.
    shuffled = torch.randperm(digits.y_train.shape[0],
                              generator=torch.Generator().manual_seed(ctx.seed))
    scrambled = type(digits)(**{**digits.__dict__, "y_train": digits.y_train[shuffled],
                                "name": "digits (permuted labels)"})
    model, rule = build("standard", digits.n_features, DIGITS["hidden"], digits.n_classes,
                        sn="recurrent", seed=ctx.seed)
    control = train(model, rule, scrambled, epochs=epochs, lr=DIGITS["lr"], seed=ctx.seed,
                    progress=False)
    ctx.export_run("digits EqProp control (permuted labels)", control)
    ctx.negative_control(DIGITS_ACCURACY.check("digits with permuted training labels: EqProp test "
                                               "accuracy", control.final_test_accuracy))
