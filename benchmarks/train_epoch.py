"""One training epoch: real EqProp vs BPTT on the MNIST-10k split (issue 4's performance figure).

Setup: the 8,000 training images of the MNIST-10k split (`eqprop_core.data`, from the data root
or $EQPROP_DATA), a LoopedMLP 784 → 256 → 10 (symmetric, SN γ = 0.95, tanh, float32), batch 64,
Adam lr 1e-3, the trainer of `eqprop_core.train`:

    EqProp   symmetric β = 0.2, 30 free + 2×10 nudged updates (no autograd through them)
    BPTT     BASELINE: autograd through 30 unrolled updates, same initialization and data order

Each arm trains `--epochs` epochs (default 2) from the same initialization; the time of an epoch
is the trainer's training time (evaluation excluded; each epoch is one `train` call, so Adam's
moments restart each epoch — irrelevant to its cost), and the median over epochs is reported, EP
and BPTT interleaved epoch by epoch so that background load hits both alike.

Criteria (PASS/FAIL, exit 1 on any FAIL): EqProp's epoch ≤ 5 s on the CPU, and ≤ BPTT's epoch
(the ratio is printed). `--device cuda` (or auto) times the same on a GPU, where the 5 s bound
is not applied.

    python benchmarks/train_epoch.py [--epochs 2] [--threads N] [--device cpu|cuda|auto]
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch

from eqprop_core.data import DataUnavailable, load_dataset
from eqprop_core.model import LoopedMLP
from eqprop_core.train import BPTT, EqProp, train
from eqprop_core.variants import build

BUDGET_S = 5.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    if device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    try:
        data = load_dataset("mnist10k", seed=0)
    except DataUnavailable as missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    data = data.to(device=torch.device(device))
    times: dict[str, list[float]] = {"EqProp": [], "BPTT": []}
    models: dict[str, tuple[LoopedMLP, EqProp | BPTT]] = {}
    rule: EqProp | BPTT
    for arm in times:
        model, rule = build("standard", data.n_features, 256, data.n_classes, seed=0)
        models[arm] = (model.to(device), rule if arm == "EqProp" else BPTT(30))
    for epoch in range(args.epochs):
        for arm, (model, rule) in models.items():
            run = train(model, rule, data, epochs=1, lr=1e-3, seed=epoch, progress=False)
            times[arm].append(run.history[-1].train_s)
            print(f"epoch {epoch + 1} {rule.label}: {run.history[-1].train_s:.2f} s, test "
                  f"accuracy {100 * run.final_test_accuracy:.2f}%")
    ep, bptt = (statistics.median(times[a]) for a in ("EqProp", "BPTT"))
    print(f"\n{data.title}, 8,000 samples, hidden 256, batch 64, float32, device {device}, "
          f"{torch.get_num_threads()} threads")
    print(f"median epoch: EqProp {ep:.2f} s, BPTT {bptt:.2f} s, ratio EqProp/BPTT {ep / bptt:.2f}")
    verdicts = [("EqProp epoch <= BPTT epoch", ep <= bptt)]
    if device == "cpu":
        verdicts.append((f"EqProp epoch <= {BUDGET_S:g} s", ep <= BUDGET_S))
    for name, ok in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}: {name}")
    return 0 if all(ok for _, ok in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
