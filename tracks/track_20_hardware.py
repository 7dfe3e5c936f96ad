"""Track 20 — Hardware non-idealities (open question 3, simulated): noisy neurons, low precision.

Claim. Real EqProp keeps a usable gradient, and learns, when its neurons are noisy or hold
low-precision (INT8) states and its matrices are INT8 — and the damage is *predicted* by a
first-order error model: a state error of size ε at the end of the phases becomes a gradient
error of size ~ε/β, with an estimator-specific constant. One-sided, symmetric and holomorphic
(N = 4) EP are compared.

Hardware model (`eqprop_core.hardware`). Every update of every phase is h ← s(T(h)):
neuron noise s(h) = h + σξ (fresh Gaussian per update; complex states noisy in both parts),
state precision s(h) = q_b(h) (symmetric b-bit grid on [−1, 1], step Δ = 1/(2^(b−1) − 1),
round to nearest); weight precision: the dynamics, readout and EP use per-tensor symmetric
b-bit fake-quantized W_eff, U_eff, V_eff, with float shadow weights updated through a
straight-through pull-back (quantization-aware training).

Setup. digits (`load_dataset("digits")`), LoopedMLP 64 → 64 → 10 ("standard" variant: symmetric
W, SN on W with γ = 0.95). Gradients in float64 on a fixed batch of 64 training images at two
points: the initialization and the model after the ideal arm's training (below). EP at the
training β = 0.2 with the phases as trained, (T_free, T_nudged) = (30, 10) plain updates — noisy
phases never meet a tolerance, so residuals are reported, not required. Reference: the scipy
implicit gradient of the *ideal* float model (`theory.implicit_gradients` on `as_numpy(model)`),
compared over the whole parameter vector (W, U, b, V, c concatenated; per parameter in the
details). Sweeps: σ ∈ {1e-4 … 1e-1} (R repeats with seeded generators), and states / weights /
both at {16, 8, 6, 4, 2} bits.

Error model (derived, then checked). Write each phase's final state as h_k + e_k. The estimate of
θ ∈ {b, U} is linear in the states, −(1/B)Σ_b Σ_k w_k h_k,b (·x_bᵀ for U), with the
estimator's weights w_k (one-sided 1/β and −1/β at h_0; symmetric ±1/2β; holomorphic
1/(Nβ_k) on the circle, free weight 0), so its error is −(1/B)Σ_b ε_b, ε_b = Re Σ_k w_k e_k,b.
For W_eff (−½hhᵀ) the first-order error is −(1/2B)Σ_b (h_b ε_bᵀ + ε_b h_bᵀ), carried to the raw
W by SN's factor r = σ(W_eff)/σ(W) (its rank-one projection removes one of n² directions and is
neglected). Hence, per sample with state-error covariance C_b,

    E‖δb‖² = (1/B²)Σ_b tr Cε_b,  E‖δU‖² = (1/B²)Σ_b ‖x_b‖² tr Cε_b,
    E‖δW‖² = (r²/2B²)Σ_b (‖h_b‖² tr Cε_b + h_bᵀ Cε_b h_b),

with Cε_b = Σ_k |w_k|² C_b for independent phase errors: Σ_k |w_k|² = 2/β² (one-sided),
1/(2β²) (symmetric), 1/(Nβ²) (holomorphic; both parts of a complex state are noisy). The
gradient error is thus ∝ (state error)/β, and the holomorphic estimator averages N independent
phases: its noise tolerance is √2 (vs symmetric) and 2√2 (vs one-sided) times larger in σ, bought
with N = 4 nudged phases of complex (two-register) states where symmetric EP runs 2 real ones.
Noise: e_k = J^T e_0 + η_k (the nudged phase starts from the noisy free state and runs
T = T_nudged updates), C_b the stationary covariance of e ← J_b e + σξ, i.e. the discrete
Lyapunov solution C_b = J_b C_b J_bᵀ + σ²I (scipy), J_b = diag(φ′(a*)) W_eff at the Newton
equilibrium (`theory`); this adds the cross term from J^T exactly. Quantization (Widrow's
additive-noise model): the iteration settles where e = J e + q, q the rounding error, taken
uniform on [−Δ/2, Δ/2] and independent between phases, so C_b = (Δ²/12)(I − J_b)⁻¹(I − J_b)⁻ᵀ.
Where it is off, and by how much: a rounding error never exceeds Δ/2, so its mean square is at
most (Δ/2)² = 3·Δ²/12 (reached e.g. by an imaginary part that starts on the grid at 0 and is
moved less than Δ/2 by the nudge: it is rounded back by a deterministic error of up to that
size) — unless the errors of different phases align in sign across neurons, which nothing
drives, the model under-predicts by at most √3 in RMS; and phases that share a grid point
round alike (a real part moved by d < Δ gets a rounding-difference variance Δ·d − d² instead of
Δ²/6), so
when the nudge moves a state by ≲ Δ the measured error falls *below* the prediction, the
estimate turning into a bias towards zero rather than noise (reported: the nudge's RMS move
β·dh/dβ over Δ, and the ratio at every bit width). INT8 weights change the gradient itself: EP
then tends to g_q, the implicit gradient of the network with the quantized matrices (scipy, on
matrices quantized by NumPy), pulled back through the float parametrization (straight-through).

Checks of the quantizers themselves (state and weight; derivation:
`properties.quantizer_promise`): (0a) over hypothesis-drawn values (grid and half-way points, a
few ulps either side, the range edges, beyond the range) |q(v) − clip(v, −r, r)| ≤ Δ/2 + the
float arithmetic's share, and q(v) on the promised grid; (0b) the mean error over uniform
samples of [0, r] and [−r, 0] is 0 within a Hoeffding bound, at every bit width. The checks below
are statistical and an offset common to all phases cancels in EP's difference, so a quantizer
that truncates passes them; (0) does not.

Checks (per estimator; each at both model points, the worse one recorded):
(1) ideal (no noise, float64, truncated phases) whole-vector cosine ≥ 0.99;
(2) noise: the measured RMS error of the (W, U, b) estimate caused by the noise (against the
    ideal EP estimate at the same β and steps) over the predicted one, within [0.8, 1.25] at
    every σ of the sweep (the model is exact for b, U up to linearization and sampling error);
(3) INT8 states: the same ratio ≤ √3 (the rounding model's upper limit above);
(4) INT8 states + weights: whole-vector cosine ≥ cos(θ_ideal + arcsin r), θ_ideal the measured
    angle between ideal EP and g, r = (‖g_q − g‖ + √3·(predicted INT8 state error))/‖ĝ_ideal‖:
    an estimate within r‖ĝ‖ of ĝ is within arcsin r of it in angle, and angles add. Taken
    over the models where the bound says something (r < 1, angle < 90°); where the nudge moves
    states by less than Δ (late training) the model itself predicts no useful bound, which is
    reported; if no model has one, the check fails;
(5) the cosine does not rise with σ: each step of the sweep is ≤ the previous + 3 standard
    errors of the repeat means;
(6) INT8 W_eff keeps the certificate: L = σ_max(q(W_eff))·sup|φ′| < 1 by scipy (trained model);
(7) accuracy: ideal − INT8 (states and weights) final test accuracy ≤ 1.5 points, same
    initialization and data order (the tolerance issue 4 sets for EP vs BPTT; measured first).
Reported: break-even σ where the cosine falls below 0.9, measured (log-interpolated) and
predicted from the error model; residuals of the noisy phases; accuracy vs noise and precision.

Negative control: 2-bit (ternary) states with the symmetric estimator at the initialization —
the nudge moves states by far less than Δ/2 = 0.5, so the phases barely differ: check (1)'s
bound (cosine ≥ 0.99) must fail.
"""

from __future__ import annotations

import math

import numpy as np

from eqprop_core.data import load_dataset
from eqprop_core.hardware import quantization_levels, quantization_step, quantize_states
from properties import agreement, holds
from properties.bounds import at_least_bound, at_most_bound
from properties.hardware_error_model import (
    BETA,
    ESTIMATORS,
    STEPS,
    cosine,
    fake_quantized,
    int8_margin,
    largest_rise,
    predicted_break_even,
    rounding_ratios,
    sweeps,
    worst,
)
from properties.quantizer_promise import quantizer_promise_evidence
from theory.spectra import lipschitz_certificate

from .context import TrackContext
from .plots import draw
from .procedures.hardware import (
    TRAINING,
    accuracy_figure,
    accuracy_note,
    gradient_batch,
    init_and_trained,
    noise_figure,
    nudge_move_note,
    precision_figure,
    sweep_note,
    train_arms,
)
from .registry import track

NOISE_STDS = {"quick": (1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
              "full": tuple(float(s) for s in np.geomspace(1e-4, 3e-1, 15))}
REPEATS = {"quick": 4, "full": 16}
BITS = (16, 8, 6, 4, 2)  # 2 bits: ternary states, the control's setting
INT8 = 8
CONTROL_BITS = 2
NOISE_MODEL_TOL = 1.25  # check (2): measured / predicted in [1/1.25, 1.25]
ROUNDING_TOL = math.sqrt(3)  # a rounding error's variance is ≤ (Δ/2)² = 3·Δ²/12
MONOTONE_SE = 3.0
IDEAL = at_least_bound(0.99, "check (1) of the module docstring: ideal EP (no noise, float64, "
                             "truncated phases) keeps a usable gradient; the control's 2-bit "
                             "states must miss the same bound")
ROUNDING = at_most_bound(ROUNDING_TOL, "check (3): a rounding error never exceeds Δ/2, so its "
                                       "mean square is at most (Δ/2)² = 3·Δ²/12 and Widrow's "
                                       "model under-predicts by at most √3 in RMS")
NO_RISE = at_most_bound(0.0, "check (5): the cosine does not rise with σ, each step of the "
                             "sweep ≤ the previous + 3 standard errors of the repeat means")
CONTRACTION = at_most_bound(1.0 - 1e-12, "check (6): INT8 W_eff keeps the contraction "
                                         "certificate, L < 1")
ACCURACY = at_most_bound(1.5, "check (7): the tolerance issue 4 sets for EP vs BPTT, in "
                              "accuracy points (measured first)")


# -- the quantizers' own promise (checks 0a, 0b): properties.quantizer_promise --------------
PROMISE_EXAMPLES = {"quick": 150, "full": 1500}


@track(20, "Hardware non-idealities", "C",
       "EP's gradient under neuron noise and INT8 states/weights follows a first-order error "
       "model (error ~ state error / beta); INT8 keeps the cosine high and the accuracy of "
       "ideal training, for one-sided, symmetric and holomorphic EP",
       reference=("the scipy implicit gradient of the ideal float model, with a first-order error "
                  "model predicting the damage"))
def run(ctx: TrackContext) -> None:
    profile = ctx.profile
    data = load_dataset("digits", seed=0)
    x, y = gradient_batch(data, ctx.seed)
    plan = TRAINING[profile]

    # (0) each quantizer keeps its own promise: error within half a step, zero mean
    for evidence in quantizer_promise_evidence(ctx.seed, PROMISE_EXAMPLES[profile], BITS):
        ctx.check(evidence)

    # Accuracy first: its ideal symmetric run provides the trained model for the gradients.
    accuracy, trained = train_arms(ctx, data, plan)

    benches = init_and_trained(data, trained, x, y, ctx.seed)

    stds, repeats = NOISE_STDS[profile], REPEATS[profile]
    noise, precision = sweeps(benches, stds, repeats, ctx.seed, BITS)

    labels = [b.label for b in benches]
    ideal_cos = {(b.label, e): cosine(b.ideal(e), b.reference) for b in benches
                 for e in ESTIMATORS}
    predicted_star = {(b.label, e): predicted_break_even(b, e) for b in benches
                      for e in ESTIMATORS}
    for estimator in ESTIMATORS:
        # (1) ideal
        at, value = worst({lab: ideal_cos[(lab, estimator)] for lab in labels})
        ctx.check(IDEAL.check(f"{estimator}: ideal EP (float64, T={STEPS}, beta={BETA}) vs "
                              "implicit gradient, whole-vector cosine (worse model)", value,
                              worst_model=at,
                              per_model={lab: ideal_cos[(lab, estimator)] for lab in labels},
                              per_parameter={lab: noise[(lab, estimator)][0].per_parameter
                                             for lab in labels},
                              max_residual={lab: noise[(lab, estimator)][0].residual
                                            for lab in labels}))
        # (2) noise error model
        ratios = {f"{lab} sigma={p.std:g}": p.ratio for lab in labels
                  for p in noise[(lab, estimator)][1:]}
        far = max(ratios, key=lambda k: abs(math.log(ratios[k])))
        ctx.check(holds(f"{estimator}: neuron noise, measured/predicted RMS error of the "
                        "(W, U, b) estimate (worst over sigma and model)",
                        1 / NOISE_MODEL_TOL <= ratios[far] <= NOISE_MODEL_TOL,
                        f"in [{1 / NOISE_MODEL_TOL:.3g}, {NOISE_MODEL_TOL:g}]",
                        value=ratios[far], worst_at=far, ratios=ratios, repeats=repeats))
        # (3) INT8 states: the rounding model bounds the error
        int8, q_ratios, all_bits = rounding_ratios(precision, labels, estimator, INT8)
        at, value = worst(q_ratios, lowest=False)
        ctx.check(ROUNDING.check(f"{estimator}: INT8 states, measured/predicted (Widrow) RMS "
                                 "error of the (W, U, b) estimate (worse model)", value,
                                 worst_model=at, per_model=q_ratios, all_bit_widths=all_bits,
                                 step=quantization_step(INT8),
                                 nudge_displacement_rms_over_step={
                                     b.label: b.nudge_displacement / quantization_step(INT8)
                                     for b in benches}))
        # (4) INT8 states + weights, cosine against the error-model bound
        margins = {bench.label: int8_margin(bench, estimator, precision[(bench.label, estimator)],
                                            int8[bench.label].predicted,
                                            ideal_cos[(bench.label, estimator)], x, y, INT8,
                                            ROUNDING_TOL)
                   for bench in benches}
        name = (f"{estimator}: INT8 states+weights whole-vector cosine vs the error-model "
                "bound cos(theta_ideal + arcsin r) (worse model with a non-vacuous bound)")
        informative = [k for k in margins if not margins[k]["vacuous"]]
        if informative:
            at = min(informative, key=lambda k: margins[k]["cosine"] - margins[k]["bound"])
            # the bound is measured (the error model's, per model), not a declared threshold
            cos, floor = float(margins[at]["cosine"]), margins[at]["bound"]
            ctx.check(holds(name, math.isfinite(cos) and cos >= floor, f">= {floor:.6g}",
                            value=cos, worst_model=at, per_model=margins))
        else:
            ctx.check(holds(name, False, "a non-vacuous bound (r < 1) on some model",
                            value="vacuous", per_model=margins))
        # (5) monotone
        rises = {lab: largest_rise(noise[(lab, estimator)], MONOTONE_SE) for lab in labels}
        at, value = worst(rises, lowest=False)
        ctx.check(NO_RISE.check(f"{estimator}: cosine vs noise, largest rise beyond "
                                f"{MONOTONE_SE:g} standard errors (worse model)", value,
                                worst_model=at,
                                curves={lab: {f"{p.std:g}": p.mean for p in
                                              noise[(lab, estimator)]} for lab in labels},
                                energy_parameter_curves={
                                    lab: {f"{p.std:g}": float(np.mean(p.energy_cosines))
                                          for p in noise[(lab, estimator)]} for lab in labels},
                                max_residual={lab: {f"{p.std:g}": p.residual
                                                    for p in noise[(lab, estimator)]}
                                              for lab in labels}))
        for lab in labels:
            pts = noise[(lab, estimator)]
            ctx.note(sweep_note(estimator, lab, pts, predicted_star[(lab, estimator)],
                                int8[lab], margins[lab]))

    ctx.note(nudge_move_note(benches, INT8))

    # (6) the contraction certificate with INT8 W_eff
    net = benches[1].net
    L = lipschitz_certificate(fake_quantized(net.weight, INT8), "tanh")
    ctx.check(CONTRACTION.check("trained model: certified L = sigma_max(INT8 W_eff) * sup|phi'| "
                                "(scipy)", L, float_L=lipschitz_certificate(net.weight, "tanh"),
                                levels=quantization_levels(INT8)))

    # (7) accuracy
    for estimator, arms in accuracy.items():
        ideal_acc = float(np.mean(arms["ideal"]))
        int8_acc = float(np.mean(arms[f"INT{INT8} states+weights"]))
        ctx.check(ACCURACY.check(f"{estimator}: ideal - INT8 states+weights final test "
                                 f"accuracy (points, digits, {plan.epochs} epochs, "
                                 f"{plan.seeds} seed(s))", 100 * (ideal_acc - int8_acc),
                                 per_arm={k: [float(a) for a in v] for k, v in arms.items()}))
        ctx.note(accuracy_note(estimator, arms))

    draw(ctx.artifact_path("cosine_vs_noise.svg"), noise_figure(noise, predicted_star))
    draw(ctx.artifact_path("cosine_vs_bits.svg"), precision_figure(precision, ideal_cos))
    draw(ctx.artifact_path("accuracy.svg"), accuracy_figure(accuracy))

    # Control: ternary states — the nudge cannot move a state across a level.
    control = benches[0].estimate("symmetric", quantize_states(CONTROL_BITS))
    ctx.negative_control(IDEAL.check(
        f"{CONTROL_BITS}-bit states, symmetric EP at init: whole-vector cosine",
        cosine(control, benches[0].reference),
        per_parameter=agreement(control, benches[0].reference).cosine,
        step=quantization_step(CONTROL_BITS)))
