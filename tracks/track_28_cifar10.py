"""Track 28 — CIFAR-10: the four variants × {no SN, SN recurrent, SN all layers}.

The write-up's claim is that SN matters "most of all on RGB data"; it gives no CIFAR-10 numbers.
The track reports the SN vs no-SN comparison of every group-D track (`tracks.benchmark`) with
verdicts on the general claims (SN improves accuracy across the variants; without SN the
recurrent Lipschitz constant grows to 5–6), on a fully connected LoopedMLP over 3,072 inputs.

Data: CIFAR-10's python batches (cifar-10-batches-py) under the data root. Absent ⇒ skip with the
command that fetches it.
"""

from __future__ import annotations

from tracks.benchmark import CIFAR10, run_benchmark
from tracks.context import TrackContext
from tracks.registry import track


@track(28, "CIFAR-10 benchmark", "D",
       "4 variants × {no SN, SN recurrent, SN all}, real EqProp, ≥ 3 seeds: SN vs no SN on RGB "
       "data with 95% CIs and Welch's t-test",
       reference=("scipy's certificates of every final model, a logistic-regression baseline "
                  "(scikit-learn), and Welch's t-test over seeds"))
def run(ctx: TrackContext) -> None:
    run_benchmark(ctx, CIFAR10)
