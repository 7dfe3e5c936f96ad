"""The premise of the contraction tracks, as a check: the certified L is below 1.

Tracks 2–4 state theorems for L-contractions. Over the suite's own `contractive_models` the
premise holds by construction (SN with γ < 1); a user's model (`--model`) has to earn it, and a
model whose scipy certificate is L ≥ 1 is refused here — measured, with its L — rather than
having Banach bounds with L ≥ 1 evaluated as if they meant something.

A measurement outside a hypothesis search whose premise fails (an unconverged phase, L ≥ 1)
raises `MeasurementFailed`; `records_failed_premise` makes that the track's failed check, with
the measured value and the bound, instead of a crash.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from hypothesis.strategies import SearchStrategy

import theory
from eqprop_core import PhaseNotConverged
from properties import Evidence, MeasurementFailed, as_numpy, holds, worst_case

from .context import TrackContext


def scipy_lipschitz(spec) -> float:
    """L = ‖W_eff‖₂ · sup|φ′| by scipy, from the matrix the model's dynamics use."""
    return theory.lipschitz_certificate(as_numpy(spec.build()).weight, spec.activation)


def contraction_premise(ctx: TrackContext, models: SearchStrategy, examples: int) -> bool:
    """Record 'max certified L < 1' over `models`; True iff it holds."""
    out = worst_case(models, scipy_lipschitz, bound=1.0, max_examples=examples, seed=ctx.seed)
    holds_ = out.worst < 1.0
    ctx.check(holds("certified contraction: max L = ||W_eff||_2 sup|phi'| (scipy) < 1", holds_,
                    "< 1", value=out.worst, **out.details()))
    return holds_


def refuses_model(ctx: TrackContext, models: SearchStrategy, consequence: str) -> bool:
    """Under `--model`: record the premise and, when it fails, note '{model} is not a certified
    contraction: {consequence}' and return True (the track then runs only its control). Without
    a user's model: False, nothing recorded (the suite's models are contractive by
    construction)."""
    if ctx.model is None or contraction_premise(ctx, models, 1):
        return False
    ctx.note(f"{ctx.model!r} is not a certified contraction: {consequence}")
    return True


def describe_models(ctx: TrackContext, n: int, default: str = "drawn contractive models") -> str:
    """What the certification checks drew: '{n} {default}', or the user's model under
    `--model` (with n draws of everything else)."""
    if ctx.model is None:
        return f"{n} {default}"
    return f"the fixed model {ctx.model!r} ({n} draws of the rest)"


def records_failed_premise(run: Callable[[TrackContext], None]) -> Callable[[TrackContext], None]:
    """A track's `run` whose `MeasurementFailed` becomes a failed check (name, value, bound)
    and a note — and so does eqprop_core's `PhaseNotConverged` (value NaN, its message, with
    the residual, in the details); the track stops there, failed, without a traceback."""

    @functools.wraps(run)
    def recorded(ctx: TrackContext) -> None:
        try:
            run(ctx)
        except MeasurementFailed as failure:
            ctx.check(failure.evidence())
            ctx.note(f"stopped: premise failed, {failure}")
        except PhaseNotConverged as failure:
            ctx.check(Evidence("EP phases converged (PhaseNotConverged)", float("nan"),
                               "every phase within its tolerance", False,
                               {"message": str(failure)}))
            ctx.note(f"stopped: a phase did not converge, {failure}")

    return recorded


def system_premises(ctx: TrackContext, w, *, attracting: bool = True) -> bool:
    """Record the witness's premises for `ctx.system` (Newton found h*; with `attracting`,
    ρ(J*) < 1, so h* is attracting and I − J* invertible) as checks; True iff they hold (else
    the track's claims about h* are not measured, and a note says why)."""
    evidence = w.equilibrium_evidence()[: 2 if attracting else 1]
    for e in evidence:
        ctx.check(e)
    if all(e.passed for e in evidence):
        return True
    ctx.note(f"{ctx.system!r}: the witness's premise failed ("
             f"{'; '.join(e.name for e in evidence if not e.passed)}): no claim about h* is "
             "measured")
    return False


def record_estimator_agreement(ctx: TrackContext, w, reference, against: str, *,
                               with_cosine: bool = True) -> None:
    """Tracks 9 and 10 on a System: the System's own estimate per estimator against
    `reference` as checks (with the diagnosis where one misses), and as the control the same
    check on the user's estimate with planted faults (−g, 2g, its largest block dropped)."""
    from properties.system_checks import AGREEMENT, FAULTS, estimator_agreement

    checks, notes, fault_error = estimator_agreement(w, reference, against,
                                                     with_cosine=with_cosine)
    for evidence in checks:
        ctx.check(evidence)
    for line in notes:
        ctx.note(line)
    ctx.negative_control(Evidence(f"planted faults (-g, 2g, a block dropped) vs {against}: min "
                                  "relative error", fault_error, f"<= {AGREEMENT:g}",
                                  fault_error <= AGREEMENT), faults=list(FAULTS))
