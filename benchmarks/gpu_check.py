"""The prepared GPU check (issue 19, item 5): one script for the few minutes a device is lent.

    python -m benchmarks.gpu_check [--out results/gpu] [--skip-train]

Three parts, each printed as it finishes and written under --out, in about 8 minutes on one GPU:

1. `python -m benchmarks --device cuda --quick`: EP vs BPTT training steps, memory, solvers and
   throughput on the device (benchmarks.harness; its PASS/MISS/UNSURE lines).
2. One full-setup configuration of track 25 on the device: the standard variant, SN on W
   (the training default, `sn_method="cholesky"`), hidden 384, 5,000 / 1,000 MNIST-10k images,
   batch 64, 30 free + 10 nudged steps, 25 epochs, Adam 5e-4, seed 0 — wall time per epoch and
   test accuracy (skipped, with the command that provides the data, when the split is absent).
3. Track 24 (reproducibility) at the quick profile, whose CPU-vs-CUDA comparison runs whenever
   CUDA is present: free states, logits and EP gradients against the CPU float64 reference
   within stated tolerances.

Without CUDA it prints "CUDA absent" and exits 0: nothing here needs or fakes a device.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from tracks.setups import SETUPS, load_setup

FULL_SETUP = load_setup(SETUPS / "full.toml")
"""Track 25's full profile; its one configuration here: the standard variant, SN on W, the
write-up's rate (the grid's first), seed 0."""
VARIANT, SN = "standard", "recurrent"


def full_setup_configuration(device: str, epochs: int) -> dict:
    """Track 25's full-setup configuration trained on `device`: per-epoch seconds, accuracy."""
    from eqprop_core.data import DataUnavailable, load_dataset
    from eqprop_core.train import train
    from eqprop_core.variants import build

    try:
        data = load_dataset("mnist10k", seed=0)
    except DataUnavailable as missing:
        return {"skipped": str(missing)}
    setup = FULL_SETUP
    if setup.n_train is not None and setup.n_test is not None:
        data = data.subset(setup.n_train, setup.n_test, 0)
    data = data.to(device=torch.device(device))
    model, rule = build(VARIANT, data.n_features, setup.hidden, data.n_classes, sn=SN, seed=0,
                        steps=setup.steps)
    started = time.perf_counter()
    run = train(model.to(device), rule, data, epochs=epochs, lr=setup.rates[0],
                batch_size=setup.batch_size, progress=False)
    per_epoch = [r.train_s for r in run.history[1:]]
    return {"device": device, "epochs": len(per_epoch), "outcome": run.outcome,
            "wall_s": time.perf_counter() - started, "median_epoch_s": statistics.median(per_epoch),
            "train_s": sum(per_epoch), "final_test_accuracy": run.final_test_accuracy,
            "setup": {"variant": VARIANT, "sn": SN, "lr": setup.rates[0],
                      **{k: list(v) if isinstance(v, tuple) else v
                         for k, v in asdict(setup).items()}}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/gpu"))
    parser.add_argument("--epochs", type=int, default=FULL_SETUP.epochs)
    parser.add_argument("--skip-train", action="store_true",
                        help="leave out part 2 (the full-setup configuration)")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    if not torch.cuda.is_available():
        print(f"CUDA absent (torch {torch.__version__}, built for CUDA "
              f"{torch.version.cuda or 'none'}): no GPU check to run")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"device: {torch.cuda.get_device_name(0)}", flush=True)
    codes = []
    harness = [sys.executable, "-m", "benchmarks", "--device", "cuda", "--quick",
               "--out", str(args.out / "benchmarks.json")]
    codes.append(subprocess.call(harness))
    if not args.skip_train:
        result = full_setup_configuration("cuda", args.epochs)
        print(json.dumps(result, indent=1), flush=True)
        (args.out / "full_setup_cuda.json").write_text(json.dumps(result, indent=1))
    codes.append(subprocess.call([sys.executable, "-m", "tracks", "--track", "24",
                                  "--out", str(args.out / "track24")]))
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
