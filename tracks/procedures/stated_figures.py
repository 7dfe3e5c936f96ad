"""A stated figure (from the spec or an issue) recorded as a claim over a track's draws: the
share of the draws that meet it, the worst value, and a hunting search's shrunk counterexample."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from hypothesis.strategies import SearchStrategy

from properties import Bound, ModelSpec, worst_case


def record_stated_figure(
    ctx, name: str, source: str, strategy: SearchStrategy, seen: Sequence[ModelSpec],
    measure: Callable[[ModelSpec], float], bound: Bound, *, max_examples: int, **details: Any,
) -> None:
    """Record a stated figure as a claim: the share of the `seen` draws that meet it, the worst
    value over those and a fresh hunting search with the stated bound, and that search's shrunk
    counterexample. A lower bound (a cosine) is searched as −value ≤ −bound."""
    values = np.array([measure(spec) for spec in seen])
    lower = bound.comparator == ">="
    sign = -1.0 if lower else 1.0
    meets = values >= bound.limit if lower else values <= bound.limit
    out = worst_case(strategy, lambda spec: sign * measure(spec), bound=sign * bound.limit,
                     max_examples=max_examples, seed=ctx.seed)
    worst = values.min() if lower else values.max()
    worst = min(worst, -out.worst) if lower else max(worst, out.worst)
    evidence = bound.check(name, worst)
    ctx.claim(evidence, source=source, share_meeting=float(meets.mean()), draws=len(values),
              median=float(np.median(values)), shrunk_counterexample=out.counterexample,
              counterexample_value=None if out.counterexample_value is None
              else sign * out.counterexample_value, **details)
