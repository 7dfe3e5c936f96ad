"""Track 17's training arms: EqProp, the BPTT baseline and a feed-forward backprop MLP on digits
(one shared initialization of the EqProp and BPTT arms per seed), EqProp on the MNIST-10k split,
and EqProp on digits with the training labels permuted (the control)."""

from __future__ import annotations

import statistics
from typing import Any

import torch

from eqprop_core.data import Dataset
from eqprop_core.train import BPTT, Backprop, FeedForwardMLP, TrainingRun, train
from eqprop_core.variants import build
from tracks.plots import line_plot

DIGITS: dict[str, Any] = {"hidden": 128, "lr": 2e-3, "quick": (3, 15),
                          "full": (5, 30)}  # (seeds, epochs)
MNIST: dict[str, Any] = {"hidden": 256, "lr": 1e-3, "epochs": 10}


def curve(runs: list[TrainingRun]) -> tuple[list[int], list[float]]:
    """Test accuracy per epoch, the mean over the runs (seeds) of one arm."""
    epochs = [r.epoch for r in runs[0].history]
    return epochs, [statistics.mean(r.history[i].test_accuracy for r in runs)
                    for i in range(len(epochs))]


def digits_arms(ctx, digits: Dataset, n_seeds: int, epochs: int) -> dict[str, list[TrainingRun]]:
    """The three arms on digits over seeds ctx.seed, ctx.seed + 1, …, each run exported."""
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
    return arms


def mnist_arm(ctx, mnist: Dataset) -> TrainingRun:
    """EqProp on the MNIST-10k split, exported."""
    model, rule = build("standard", mnist.n_features, MNIST["hidden"], mnist.n_classes,
                        sn="recurrent", seed=ctx.seed)
    run_mnist = train(model, rule, mnist, epochs=MNIST["epochs"], lr=MNIST["lr"],
                      seed=ctx.seed, progress=False)
    ctx.export_run("mnist10k EqProp", run_mnist)
    return run_mnist


def permuted_labels_arm(ctx, digits: Dataset, epochs: int) -> TrainingRun:
    """Control: labels permuted within the training set — the same rule learns nothing."""
    shuffled = torch.randperm(digits.y_train.shape[0],
                              generator=torch.Generator().manual_seed(ctx.seed))
    scrambled = type(digits)(**{**digits.__dict__, "y_train": digits.y_train[shuffled],
                                "name": "digits (permuted labels)"})
    model, rule = build("standard", digits.n_features, DIGITS["hidden"], digits.n_classes,
                        sn="recurrent", seed=ctx.seed)
    control = train(model, rule, scrambled, epochs=epochs, lr=DIGITS["lr"], seed=ctx.seed,
                    progress=False)
    ctx.export_run("digits EqProp control (permuted labels)", control)
    return control


def arm_summary(ctx, arms: dict[str, list[TrainingRun]]
                ) -> tuple[dict[str, list[float]], dict[str, float], dict[str, float]]:
    """Final test accuracies per seed, their mean and the mean training time per arm; a note
    per arm."""
    final = {arm: [r.final_test_accuracy for r in runs] for arm, runs in arms.items()}
    mean = {arm: statistics.mean(values) for arm, values in final.items()}
    seconds = {arm: statistics.mean(r.train_seconds for r in runs) for arm, runs in arms.items()}
    for arm in arms:
        ctx.note(f"digits, {arm}: test accuracy {100 * mean[arm]:.2f}% (seeds: "
                 f"{', '.join(f'{100 * a:.1f}' for a in final[arm])})")
    return final, mean, seconds


def learning_curves(ctx, arms: dict[str, list[TrainingRun]], run_mnist: TrainingRun | None
                    ) -> None:
    """`learning_curves.svg`: test accuracy per epoch of each digits arm (mean over seeds) and of
    the MNIST-10k run when there is one."""
    series = {arm: curve(runs) for arm, runs in arms.items()}
    if run_mnist is not None:
        series["EqProp, MNIST-10k split"] = ([r.epoch for r in run_mnist.history],
                                             run_mnist.series("test_accuracy"))
    line_plot(ctx.artifact_path("learning_curves.svg"), series,
              title="Track 17: test accuracy while training (digits: mean over seeds)",
              xlabel="epoch", ylabel="test accuracy", logy=False)
