"""Track 27 — SVHN: the write-up's headline table, re-run with real EqProp and a verdict per row.

Claimed (5,000 train / 1,000 test SVHN images, hidden 384, 30 steps, Adam lr 5e-4, 25–30 epochs,
batch 64, one seed; `tracks.benchmark.CLAIMED_SVHN`):

    | Architecture                 | With SN | Without SN | Lipschitz (SN → no SN) |
    | Standard LoopedMLP           | 57.2%   | 33.2%      | 1.02 → 5.89            |
    | Holomorphic-inspired         | 52.9%   | 27.4%      | 2.08 → 4.94            |
    | Finite-Nudge (β=0.5)         | 51.4%   | 24.3%      | 2.03 → 5.33            |
    | DEEP (asymmetric / directed) | 59.2%   | 28.6%      | 2.29 → 5.63            |

Measured: the same four variants — as real algorithms (true complex holomorphic nudges, a
one-sided nudge that uses β = 0.5, an asymmetric W) — × {no SN, SN recurrent, SN all layers},
from one shared initialization per seed, ≥ 5 seeds in full (the claimed setup, with the
learning rate chosen per arm from {5e-4, 1e-3, 2e-3} on a validation split), 3 in quick.
Verdict per row (`properties.statistics`):
- Δ = with SN − without SN: Welch's t-test over seeds; confirmed iff the 95% CI excludes 0 and
  contains the claimed Δ, refuted iff it excludes the claimed Δ, inconclusive otherwise;
- the claimed levels (with SN %, without SN %, no-SN Lipschitz): confirmed iff inside the 95%
  CI over seeds — under the full profile only, since the quick setup is not the claimed one;
- "without SN the Lipschitz constant grows to 5–6": the CI of the final ‖W_eff‖₂ against [5, 6].
The printed account and track-27-table.md show the claimed table beside the measured one.
Checks and negative control: those of every group-D track (`tracks.benchmark`).

Data: SVHN's train_32x32.mat / test_32x32.mat under the data root. Absent ⇒ skip with the command
that fetches it (`python -m eqprop_core.data fetch svhn --root DIR`).
"""

from __future__ import annotations

from tracks.benchmark import SVHN, run_benchmark
from tracks.context import TrackContext
from tracks.registry import track


@track(27, "SVHN benchmark (headline table)", "D",
       "the write-up's SVHN table (SN vs no SN per variant) re-run with real EqProp, ≥ 3 seeds, "
       "a confirmed / refuted / inconclusive verdict per row",
       reference=("scipy's certificates of every final model, a logistic-regression baseline "
                  "(scikit-learn), and Welch's t-test over seeds"))
def run(ctx: TrackContext) -> None:
    run_benchmark(ctx, SVHN)
