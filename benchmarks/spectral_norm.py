"""Spectral normalization per training step: exact σ_max vs the certified subspace bound.

What EP pays for SN each step is one evaluation of W ↦ W_eff = γW/σ̂ and one vector–Jacobian
product of it (`ep_gradients` pulls the W_eff gradient back to the raw W). Two measurements:

1. Micro: that forward + VJP for W = ½(W₀ + W₀ᵀ), n = 256, 384, 1024, float32 and float64:
       exact      `certified_spectral_norm` (float64 eigvalsh, its backward needs a full eigh)
       stale      `SubspaceSpectralNorm` on a warm reference (a step without refresh, O(n²k))
       refresh    the same with a refresh forced (eigh + residual checks + the bound)
   Methods interleaved per repeat; medians reported, as ratios to exact.
2. Training: the standard variant (symmetric, β = 0.2, T = 30 + 2×10), hidden 384, SN on the
   recurrent weight, Adam, the digits data (scikit-learn, offline; 64 inputs), two copies of
   one initialization (sn_method exact / subspace) stepped on the same batches, alternately.
   Reports refreshes per step (all, and after the first 50 steps), median time per training
   step (EP gradient + Adam), the W-gradient difference between the arms at the subspace arm's
   final weights, and σ_max(W_eff) by scipy at the end, which must lie in [γ/(1 + tol), γ].

Exit status 1 if a certified bound fails (σ_max(W_eff) > γ or below γ/(1 + tol)); the times are
reported, not judged (the machine is shared: `os.getloadavg()` is printed with them).

    python benchmarks/spectral_norm.py [--steps 200] [--lr 1e-3] [--repeats 5] [--threads 1]
                                       [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import cast

import scipy.linalg
import torch

from eqprop_core.data import load_dataset
from eqprop_core.spectral import SubspaceSpectralNorm, spectrally_normalize
from eqprop_core.variants import build

GAMMA = 0.95


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def vjp_of_normalization(W: torch.Tensor, bound: SubspaceSpectralNorm | None) -> None:
    """What one EP step pays for SN: W_eff from the raw W and the pull-back of a gradient."""
    raw = W.detach().clone().requires_grad_(True)
    effective = spectrally_normalize(0.5 * (raw + raw.T), GAMMA, symmetric=True, bound=bound)
    torch.autograd.grad(effective, raw, grad_outputs=torch.ones_like(effective))


def micro(sizes: list[int], repeats: int) -> None:
    print(f"\n1. forward + VJP of W -> W_eff per step, median of {repeats} interleaved repeats "
          f"({torch.get_num_threads()} threads; {load()})")
    print(f"{'n':>6} {'dtype':>8} {'exact ms':>10} {'stale ms':>10} {'refresh ms':>11} "
          f"{'exact/stale':>12} {'exact/refresh':>14}")
    for n in sizes:
        for dtype in (torch.float32, torch.float64):
            generator = torch.Generator().manual_seed(n)
            W = torch.randn(n, n, generator=generator, dtype=dtype) / n ** 0.5
            warm = SubspaceSpectralNorm()
            vjp_of_normalization(W, warm)  # the reference of the stale arm
            cold = SubspaceSpectralNorm()
            # Callable[..., object]: mypy cannot match a lambda with defaults to Callable[[], ...]
            arms: dict[str, Callable[..., object]] = {
                "exact": lambda W=W: vjp_of_normalization(W, None),
                "stale": lambda W=W, warm=warm: vjp_of_normalization(W, warm),
                "refresh": lambda W=W, cold=cold: (cold.reset(),
                                                   cast(None, vjp_of_normalization(W, cold))),
            }
            times: dict[str, list[float]] = {arm: [] for arm in arms}
            for _ in range(repeats):
                for arm, run in arms.items():
                    started = time.perf_counter()
                    run()
                    times[arm].append(time.perf_counter() - started)
            assert warm.refreshes == 1, "the stale arm refreshed: its timing would be wrong"
            med = {arm: statistics.median(t) * 1e3 for arm, t in times.items()}
            print(f"{n:>6} {str(dtype)[6:]:>8} {med['exact']:>10.1f} {med['stale']:>10.2f} "
                  f"{med['refresh']:>11.1f} {med['exact'] / med['stale']:>12.1f} "
                  f"{med['exact'] / med['refresh']:>14.2f}")


def sigma_max(weight: torch.Tensor) -> float:
    return float(scipy.linalg.svdvals(weight.detach().double().numpy())[0])


def training(steps: int, lr: float, hidden: int, batch: int) -> bool:
    data = load_dataset("digits", seed=0)
    x, y = data.x_train.flatten(1).float(), data.y_train
    arms = {method: build("standard", x.shape[1], hidden, 10, sn="recurrent", seed=0,
                          gamma=GAMMA, sn_method=method) for method in ("exact", "subspace")}
    optimizers = {m: torch.optim.Adam(model.parameters(), lr=lr) for m, (model, _) in
                  arms.items()}
    times: dict[str, list[float]] = {m: [] for m in arms}
    bound = arms["subspace"][0].spectral_bounds["W"]
    refreshed_at: list[int] = []
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(x.shape[0], generator=generator)
    print(f"\n2. training: standard EqProp {x.shape[1]}-{hidden}-10, SN recurrent, Adam lr "
          f"{lr:g}, batch {batch}, digits, {steps} steps per arm ({load()})")
    position = 0
    for step in range(steps):
        if position + batch > x.shape[0]:
            order, position = torch.randperm(x.shape[0], generator=generator), 0
        index = order[position:position + batch]
        position += batch
        for method, (model, rule) in arms.items():
            before = bound.refreshes
            started = time.perf_counter()
            signal = rule.gradients(model, x[index], y[index])
            for name, p in model.named_parameters():
                p.grad = signal.grads[name].to(p.dtype)
            optimizers[method].step()
            times[method].append(time.perf_counter() - started)
            if method == "subspace" and bound.refreshes > before:
                refreshed_at.append(step)
    late = [s for s in refreshed_at if s >= 50]
    per_step = {m: statistics.median(t) * 1e3 for m, t in times.items()}
    model = arms["subspace"][0]
    final = sigma_max(model.recurrent_weight())
    floor = GAMMA / (1 + bound.tolerance)
    exact_twin, rule = build("standard", x.shape[1], hidden, 10, sn="recurrent", gamma=GAMMA)
    exact_twin.load_state_dict(model.state_dict())
    g_sub = rule.gradients(model, x[:batch], y[:batch]).grads["W"]
    g_exact = rule.gradients(exact_twin, x[:batch], y[:batch]).grads["W"]
    difference = float((g_sub - g_exact).norm() / g_exact.norm())
    print(f"   refreshes per step: {len(refreshed_at) / steps:.3f} overall, "
          f"{len(late) / max(steps - 50, 1):.3f} after step 50 "
          f"({len(refreshed_at)} refreshes in {steps} steps; rank {bound.rank}, tolerance "
          f"{bound.tolerance:g})")
    print(f"   median training step: exact {per_step['exact']:.1f} ms, subspace "
          f"{per_step['subspace']:.1f} ms, exact/subspace = "
          f"{per_step['exact'] / per_step['subspace']:.2f}")
    print(f"   W-gradient of the subspace arm vs exact at the same weights: relative "
          f"difference {difference:.2e}")
    ok = floor <= final <= GAMMA
    exact_final = sigma_max(arms["exact"][0].recurrent_weight())
    print(f"   sigma_max(W_eff) by scipy at the end: {final:.9f} in [{floor:.9f}, {GAMMA}]: "
          f"{'PASS' if ok else 'FAIL'}; exact arm {exact_final:.9f}")
    print(f"   ({load()})")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=384)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: stable medians on a shared "
                             "machine)")
    parser.add_argument("--quick", action="store_true", help="n = 256, 384 only; 60 steps")
    args = parser.parse_args(argv)
    for label in ("steps", "hidden", "batch", "repeats", "threads"):
        if getattr(args, label) < 1:
            parser.error(f"--{label} must be >= 1, got {getattr(args, label)}")
    torch.set_num_threads(args.threads)
    micro([256, 384] if args.quick else [256, 384, 1024], args.repeats)
    ok = training(60 if args.quick else args.steps, args.lr, args.hidden, args.batch)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
