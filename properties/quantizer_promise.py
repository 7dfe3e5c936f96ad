"""|q(v) − clip(v, −r, r)| ≤ Δ/2 + a(v), Δ = r/(2^(b−1) − 1), with zero mean error and q(v) on the
grid: what a b-bit round-to-nearest quantizer of [−r, r] promises for a single value, checked for
the state quantizer (`hardware.quantize_states`) and the weight quantizer
(`hardware.fake_quantize`, per-tensor range max|M|).

Track 20's sweeps measure what rounding does to EP; they are statistical, and an offset common
to every phase cancels in the difference EP takes (a quantizer that truncates passes them).
So each quantizer is first held to what it promises for a single value: with Δ = r/Q,
Q = 2^(b−1) − 1 (computed here, not by the code under test), round to nearest gives

    |q(v) − clip(v, −r, r)| ≤ Δ/2 + a(v)                       for every v,

a(v) the float arithmetic's share. Derivation, u the unit roundoff of the values' dtype and
Δ' = Δ(1 + δ₀) the step as the working precision holds it: y = fl(v/Δ') = (v/Δ')(1 + δ₁),
k = clamp(round(y), −Q, Q) (exact), q = fl(kΔ') = kΔ'(1 + δ₂), all |δ| ≤ u, so for |v| ≤ r
q − v = Δ'(k − y) + vδ₁ + kΔ'δ₂ with |k − y| ≤ ½ and |k|Δ' ≤ |v|(1 + u) + Δ'/2, hence
|q − v| ≤ Δ/2 + u(2|v| + Δ) + u²(|v| + Δ) =: Δ/2 + a(v); beyond ±r, q saturates at ±QΔ' = ±r
within the same a(r). A truncating quantizer errs by up to Δ and fails at once.
Second, its error has zero mean: for v uniform on [0, r] (or [−r, 0]) the cells k = 1 … Q − 1
are whole and the two half cells at 0 and ±r have means ∓Δ/4 over equal widths, so E[q(v) − v]
= 0 exactly, up to the mean of the float part, |·| ≤ a(r). The n errors are independent and lie
in an interval of width w = Δ + 2a(r), so Hoeffding's inequality bounds the sample mean:

    P(|ē − E e| ≥ t) ≤ 2 exp(−2n t²/w²),  t = w √(ln(2/α)/2n),  α = PROMISE_FALSE_ALARM,

and |ē| ≤ t + a(r) must hold (floor or truncation towards zero: |ē| ≈ Δ/2 on one half, i.e.
~26 t at n = 20 000). Third, q(v) lies on the promised grid: q = kΔ(1 + δ₀)(1 + δ₂), so
|q − kΔ| ≤ (2u + u²)|k|Δ, and the check's own float64 product Δ·k adds u₆₄|k|Δ (the
difference of two numbers this close is exact), |k|Δ ≤ |q| + Δ: the distance to the grid is
at most g(q) = (2u + u² + u₆₄)(|q| + Δ), which a grid finer than promised (more levels than
2Q + 1) fails though its errors are smaller. The weight quantizer q(M) = quantize(M, b,
max|M|) is held to the same with r = max|M|: the values are quantized as one tensor with a
peak entry ±r added.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import torch
from hypothesis import strategies as st
from torch import Tensor

from eqprop_core import hardware

from .evidence import Evidence, at_most
from .rounding_tolerances import unit_roundoff
from .search import worst_case

PROMISE_SAMPLES = 20_000
PROMISE_FALSE_ALARM = 1e-6
PROMISE_RANGES = (1.0, 0.37, 3.0, 1e-3)
QUANTIZER_DTYPES = {"float64": torch.float64, "float32": torch.float32}
VALUE_KINDS = ("grid", "half-way", "inside", "edge", "beyond")
PROMISE_BITS = (16, 8, 6, 4, 2)  # the bit widths of the mean-error check


def grid_step(bits: int, limit: float) -> float:
    """Δ = r / (2^(b−1) − 1): the step the symmetric b-bit grid of [−r, r] promises."""
    return limit / (2 ** (bits - 1) - 1)


def rounding_allowance(magnitude: np.ndarray | float, step: float, u: float
                       ) -> np.ndarray | float:
    """a(v) = u(2|v| + Δ) + u²(|v| + Δ): the float arithmetic's share of |q(v) − v|."""
    return u * (2 * magnitude + step) + u * u * (magnitude + step)


@st.composite
def quantizer_cases(draw: st.DrawFn) -> tuple[int, float, str, list[float]]:
    """(bits, r, dtype, values): values on grid points kΔ, half-way points (k + ½)Δ, a few ulps
    either side of those, anywhere inside a cell, at and next to ±r, and beyond ±r."""
    bits = draw(st.integers(2, 16))
    limit = draw(st.sampled_from(PROMISE_RANGES))
    dtype = draw(st.sampled_from(sorted(QUANTIZER_DTYPES)))
    levels, step = 2 ** (bits - 1) - 1, grid_step(bits, limit)
    values = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(VALUE_KINDS))
        sign = draw(st.sampled_from((-1.0, 1.0)))
        k = draw(st.integers(0, levels))
        if kind == "grid":
            v = k * step
        elif kind == "half-way":
            v = min(k + 0.5, levels) * step
        elif kind == "inside":
            v = (min(k, levels - 1) + draw(st.floats(0, 1))) * step
        elif kind == "edge":
            v = limit
        else:
            v = limit * (1 + draw(st.floats(1e-6, 1.0)))
        for _ in range(draw(st.integers(-3, 3)) % 7 if kind != "beyond" else 0):
            v = math.nextafter(v, -math.inf if draw(st.booleans()) else math.inf)
        values.append(sign * v)
    return bits, limit, dtype, values


def state_quantizer(values: Tensor, bits: int, limit: float) -> Tensor:
    """The state quantizer as the dynamics apply it (`quantize_states`), looked up at call time."""
    return hardware.quantize_states(bits, limit)(values)


def weight_quantizer(values: Tensor, bits: int, limit: float) -> Tensor:
    """The weight quantizer as `quantize_weights` applies it: the per-tensor scale comes from the
    peak, so the tensor gets one entry at r (its range) ahead of the values (dropped after)."""
    peak = torch.cat([values.new_tensor([limit]), values.clamp(-limit, limit)])
    return hardware.fake_quantize(peak.reshape(-1, 1), bits).reshape(-1)[1:]


QUANTIZERS = {"state quantizer (quantize_states)": state_quantizer,
              "weight quantizer (fake_quantize, per-tensor scale max|M|)": weight_quantizer}


def promise_ratio(quantizer, case: tuple[int, float, str, list[float]]) -> float:
    """max_v of |q(v) − clip(v, −r, r)| / (Δ/2 + a(v)) and of the distance of q(v) to the grid
    over g(q(v)), over the case's values (≤ 1 promised); a complex tensor is quantized part by
    part, so its parts are held to the same."""
    bits, limit, dtype_name, values = case
    dtype = QUANTIZER_DTYPES[dtype_name]
    v = torch.tensor(values, dtype=torch.float64).to(dtype)
    if quantizer is weight_quantizer:
        # Its range is the tensor's peak entry as the working dtype holds it, fl(r), not r: at
        # float32 the two grids differ by a relative u, which the allowances do not cover
        # (seed 16: ratio 1.22 at b = 13, r = 1e-3).
        limit = float(v.new_tensor(limit))
    step, u = grid_step(bits, limit), unit_roundoff(dtype)
    truth = v.double().clamp(-limit, limit).numpy()
    allowed = step / 2 + rounding_allowance(np.abs(truth), step, u)
    outputs = [quantizer(v, bits, limit)]
    if quantizer is state_quantizer:
        both = quantizer(torch.complex(v, v.flip(0)), bits, limit)
        outputs += [both.real, both.imag.flip(0)]
    worst = 0.0
    for q in (q.double().numpy() for q in outputs):
        on_grid = (2 * u + u * u + unit_roundoff(torch.float64)) * (np.abs(q) + step)
        off_grid = np.abs(q - step * np.round(q / step)) / on_grid
        worst = max(worst, float(np.max(np.abs(q - truth) / allowed)), float(np.max(off_grid)))
    return worst


def mean_error_ratio(quantizer, bits: int, seed: int, limit: float = 1.0
                     ) -> tuple[float, dict[str, float | dict[str, float]]]:
    """max over the halves [0, r] and [−r, 0] of |mean(q(v) − v)| / (t + a(r)), v uniform
    (float64, `PROMISE_SAMPLES` draws), t Hoeffding's half-width at `PROMISE_FALSE_ALARM`."""
    step, u = grid_step(bits, limit), unit_roundoff(torch.float64)
    slack = cast(float, rounding_allowance(limit, step, u))  # a float for a float limit
    t = (step + 2 * slack) * math.sqrt(math.log(2 / PROMISE_FALSE_ALARM) / (2 * PROMISE_SAMPLES))
    generator = torch.Generator().manual_seed(seed * 1_000_003 + bits)
    means = {}
    for half, sign in (("[0, r]", 1.0), ("[-r, 0]", -1.0)):
        v = sign * limit * torch.rand(PROMISE_SAMPLES, generator=generator, dtype=torch.float64)
        means[half] = float((quantizer(v, bits, limit) - v).mean()) / step
    return max(abs(m) for m in means.values()) * step / (t + slack), {
        "mean_error_over_step": means, "bound_over_step": (t + slack) / step}


def quantizer_promise_evidence(seed: int, examples: int, bits: Sequence[int] = PROMISE_BITS
                               ) -> list[Evidence]:
    """Per quantizer: the hypothesis-searched worst |q(v) − clip(v)| / (Δ/2 + a(v)) ≤ 1, and the
    worst |mean error| / Hoeffding bound over the bit widths `bits` ≤ 1."""
    evidence = []
    for name, quantizer in QUANTIZERS.items():
        out = worst_case(quantizer_cases(),
                         cast(Callable[[Any], float],  # a lambda with defaults: cast for mypy
                              lambda case, q=quantizer: promise_ratio(q, case)),
                         bound=1.0, max_examples=examples, seed=seed)
        evidence.append(at_most(f"{name}: max over drawn v (grid, half-way, edge, beyond) of "
                                "|q(v) - clip(v, -r, r)| / (Delta/2 + float rounding) and "
                                "distance of q(v) to the grid / float rounding",
                                out.worst, 1.0, **out.details()))
        means = {b: mean_error_ratio(quantizer, b, seed) for b in bits}
        worst_bits = max(means, key=lambda b: means[b][0])
        evidence.append(at_most(f"{name}: |mean error| over {PROMISE_SAMPLES} uniform v on "
                                "[0, r] and [-r, 0] / Hoeffding bound (alpha = "
                                f"{PROMISE_FALSE_ALARM:g}), worst bit width", means[worst_bits][0],
                                1.0, worst_bits=worst_bits,
                                per_bits={b: {"ratio": r, **d} for b, (r, d) in means.items()}))
    return evidence
