"""Track 29's procedures: the timed training steps (interleaved medians, `benchmarks.measure`)
recorded as a claim the run does not decide, the account of the memory measurements, and the
memory figure."""

from __future__ import annotations

from typing import Any

from benchmarks import measure
from properties.bounds import Bound
from properties.evidence import Evidence
from tracks.context import TrackContext
from tracks.plots import line_plot

SETUP = {"n_in": 784, "hidden": 256, "batch": 64}
STEPS = {"quick": [30, 100, 300], "full": [30, 100, 300, 1000]}
REPEATS = {"quick": (8, 2), "full": (20, 3)}  # (repeats, warm-up rounds) of the timing
TIMED = 30


def growth(peaks: dict[int, int]) -> float:
    """peak(T_max) / peak(T_min) − 1."""
    steps = sorted(peaks)
    return peaks[steps[-1]] / peaks[steps[0]] - 1


def step_time_claim(ctx: TrackContext, profile: str, model: Any, target: Bound) -> None:
    """EP vs BPTT training step at T = TIMED, median of interleaved repeats, held to `target`
    as an inconclusive claim: one run's wall times decide nothing."""
    repeats, warmup = REPEATS[profile]
    calls = {}
    for method in measure.METHODS:
        m, xm, ym = measure.build_problem(SETUP["n_in"], SETUP["hidden"], SETUP["batch"],
                                          seed=ctx.seed)
        calls[method] = measure.training_step(method, m, xm, ym, TIMED)
    times = measure.interleaved_medians(calls, repeats=repeats, warmup=warmup)
    fixed = measure.parametrization_time(model, repeats=repeats, warmup=warmup).median_s
    ep_s, bptt_s = times["EP"].median_s, times["BPTT"].median_s
    # Every number below is a timing (or a ratio of timings) under a key ending in `_s`, so
    # the canonical JSON (tracks.context.is_timing) drops them: same seed, same JSON.
    ctx.claim(Evidence(
        f"EP training step / BPTT training step at T={TIMED} (median of {repeats} "
        "interleaved repeats)", "timed: details.ep_over_bptt_s", target.text, False,
        {"ep_median_s": ep_s, "bptt_median_s": bptt_s, "ep_over_bptt_s": ep_s / bptt_s,
         "fixed_cost_s": fixed,
         "without_fixed_cost_s": (ep_s - fixed) / (bptt_s - fixed) if bptt_s > fixed else 0.0,
         "ep_walls_s": dict(enumerate(times["EP"].walls_s)),
         "bptt_walls_s": dict(enumerate(times["BPTT"].walls_s))}),
        "issue 7: EP training step <= 0.5 x BPTT training step (hidden 256, batch 64, CPU)",
        verdict="inconclusive",
        reason="one run's wall times on a shared machine decide no claim; the ratio is "
               "recorded (details) and the benchmark harness reports medians with the load")


def memory_account(ctx: TrackContext, peaks: dict[str, dict[int, int]], leaky: dict[int, int],
                   state: int, fit: Any, steps: list[int], cosines: dict[str, float]) -> None:
    """The notes on the memory measurements and cosines, then `memory.png`."""
    mib = 2.0 ** 20
    for method, series in (("EP", peaks["EP"]), ("BPTT baseline", peaks["BPTT"]),
                           ("leaky EP (control)", leaky)):
        ctx.note(f"{method}: peak live tensor MiB " + ", ".join(
            f"T={T}: {b / mib:.2f}" for T, b in series.items()))
    ctx.note(f"one state = {state / 1024:.0f} KiB; BPTT grows {fit.slope / state:.3f} states "
             f"per step (R^2 {fit.r_squared:.4f}); EP {growth(peaks['EP']):+.4f} from "
             f"T={steps[0]} to {steps[-1]}")
    ctx.note("EP vs BPTT cosines: " + ", ".join(f"{k} {v:.6f}" for k, v in cosines.items()))
    ctx.note(f"time per training step at T={TIMED}: recorded in the claim's details "
             "(timing fields, *_s), with the fixed W -> W_eff cost both methods contain")
    line_plot(
        ctx.artifact_path("memory.png"),
        {label: (list(series), [b / mib for b in series.values()])
         for label, series in (("EP (real EqProp)", peaks["EP"]),
                               ("BPTT baseline", peaks["BPTT"]),
                               ("leaky EP (negative control)", leaky))},
        title=f"peak live tensor memory of one training step (hidden {SETUP['hidden']}, "
              f"batch {SETUP['batch']})",
        xlabel="steps T (EP: T free + 2 x T//3 nudged)", ylabel="MiB", logy=False,
        styles={"EP (real EqProp)": "o-", "BPTT baseline": "s-",
                "leaky EP (negative control)": "x--"},
    )


def timed_setting_cosines(seed: int) -> tuple[Any, dict[str, float]]:
    """The timed setting's model and the per-parameter cosine of EP's estimate (T = TIMED free
    + 2 nudged phases) vs the BPTT baseline's gradient (TIMED steps)."""
    model, x, y = measure.build_problem(SETUP["n_in"], SETUP["hidden"], SETUP["batch"],
                                        seed=seed)
    ep = measure.rule_for("EP", TIMED).gradients(model, x, y).grads
    bptt = measure.rule_for("BPTT", TIMED).gradients(model, x, y).grads
    return model, {name: measure.cosine(ep[name], bptt[name]) for name in ep}


def memory_measurements(profile: str, seed: int
                        ) -> tuple[list[int], int, dict[str, dict[int, int]], dict[int, int]]:
    """Peak live tensor bytes of one training step per T (`STEPS[profile]`) for EP and BPTT
    and for the leaky EP of the control, with the bytes of one state (B·n·4, float32)."""
    steps = STEPS[profile]
    state = SETUP["batch"] * SETUP["hidden"] * 4
    sizes: dict[str, Any] = dict(SETUP, seed=seed)
    peaks = {m: measure.memory_by_steps(m, steps, **sizes) for m in measure.METHODS}
    leaky = measure.memory_by_steps("EP", steps, step=measure.leaky_ep_step, **sizes)
    return steps, state, peaks, leaky
