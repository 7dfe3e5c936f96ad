"""Track 25 — MNIST: the four variants × {no SN, SN recurrent, SN all layers}, real EqProp.

Claim under test (the write-up): "MNIST shows minimal difference" between SN and no SN, while
without SN the recurrent Lipschitz constant "grows to 5–6". The protocol, the checks (each can
fail) and the negative control are those of every group-D track (`tracks.benchmark`): per-arm
learning rate chosen on a validation split, one shared initialization per seed, mean ± 95% CI
over seeds, Welch's t-test of SN − no SN, scipy certificates of every final model.

"Minimal difference" is tested as equivalence with a margin fixed before measuring,
|Δ| < 2 accuracy points: confirmed iff the Welch 95% CI of Δ lies inside ±2, refuted iff it lies
outside, inconclusive otherwise — per variant.

Data. quick (CI, CPU): the MNIST-10k split (the official t10k files in ../shared/data; 3,000 /
1,000 subsets), 3 seeds, 4 epochs, hidden 128. full: full MNIST (5,000 / 1,000 subsets of the
official splits, the write-up's setup: hidden 384, T = 30, 25 epochs), 5 seeds; when full MNIST
is absent the MNIST-10k split stands in, with a note carrying the command that fetches MNIST.
"""

from __future__ import annotations

from tracks.benchmark import MNIST, run_benchmark
from tracks.context import TrackContext
from tracks.registry import track


@track(25, "MNIST benchmark", "D",
       "4 variants × {no SN, SN recurrent, SN all}, real EqProp, ≥ 3 seeds: 'MNIST shows minimal "
       "SN difference' and 'no-SN Lipschitz grows to 5–6' tested with 95% CIs",
       reference=("scipy's certificates of every final model, a logistic-regression baseline "
                  "(scikit-learn), and Welch's t-test over seeds"))
def run(ctx: TrackContext) -> None:
    run_benchmark(ctx, MNIST)
