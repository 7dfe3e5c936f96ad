"""Track 26 — Fashion-MNIST: the four variants × {no SN, SN recurrent, SN all layers}.

The write-up states no Fashion-MNIST numbers; the track reports the same SN vs no-SN comparison
as every group-D track (`tracks.benchmark`), with verdicts on its general claims: SN improves
accuracy across the variants (Welch 95% CI of SN − no SN above 0: confirmed; below 0: refuted;
containing 0: inconclusive) and without SN the recurrent Lipschitz constant grows to 5–6.

Data: Fashion-MNIST's official splits under the data root (5,000 / 1,000 subsets in full, 3,000 /
1,000 in quick). Absent ⇒ skip with the command that fetches it.
"""

from __future__ import annotations

from tracks.benchmark import FASHION_MNIST, run_benchmark
from tracks.context import TrackContext
from tracks.registry import track


@track(26, "Fashion-MNIST benchmark", "D",
       "4 variants × {no SN, SN recurrent, SN all}, real EqProp, ≥ 3 seeds: SN vs no SN with "
       "95% CIs and Welch's t-test",
       reference=("scipy's certificates of every final model, a logistic-regression baseline "
                  "(scikit-learn), and Welch's t-test over seeds"))
def run(ctx: TrackContext) -> None:
    run_benchmark(ctx, FASHION_MNIST)
