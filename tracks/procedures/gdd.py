"""Track 12's account: the checks' searches over one family of drawn models, the notes that
read the measured numbers (spreads, slope pairs, the per-step table) and the two figures (the
classic GDD curves, the residual vs β sweep). The measures themselves: `properties.gdd`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from properties import MeasuredOnce, Search
from properties.bounds import Bound
from properties.gdd import (
    BATCH,
    FIT_RANGE,
    LIMIT_NUDGE,
    PARAMETERS,
    PLOT_BETA,
    STEPS,
    SWEEP_BETAS,
    PrimitiveSpec,
    slope_in_fit_range,
    slope_pairs,
)
from tracks.plots import Figure, Layer, Level, Line, Panel, Series, draw, line_plot

PLOT_STEPS = 15  # the curves show t < 15, where the signals live (they decay as ρ(J*)^t)
LARGE_BETA = SWEEP_BETAS.index(10.0 ** -1)  # where the account quotes the finite-β residual


def slope_summary(seen: list[dict]) -> str:
    counts = slope_pairs(seen)
    slopes = [m["slope"] for m in seen if not m["at_roundoff"]]
    line = f"local slopes {spread(slopes, '.4f')}"
    if counts["slope_on_0.1_0.01"]:
        line += (f" ({counts['slope_on_0.1_0.01']} taken on beta 0.1 -> 0.01: round-off at "
                 "0.001)")
    if counts["at_roundoff_for_all_beta"]:
        line += f", {counts['at_roundoff_for_all_beta']} at round-off for every beta"
    return line


def spread(values: list[float], spec: str = ".3g") -> str:
    """min … max (median) of a measured statistic over the drawn models."""
    return (f"{min(values):{spec}} … {max(values):{spec}} "
            f"(median {float(np.median(values)):{spec}})")


def certify(ctx, label: str, strategy, measured: MeasuredOnce, n: int,
            searches: tuple[tuple[str, Bound, str], ...]) -> dict[str, float]:
    """One search per metric over the same drawn models (this run's `measured`); returns the
    worst values. Each check records the range of every metric over the models it saw."""
    worst = {}
    for metric, bound, name in searches:
        spec = Search(f"[{label}] {name}", measured.metric(metric), bound)
        worst[metric] = ctx.search(strategy, spec, n,
                                   details=lambda: draw_ranges(measured.values())).worst
    return worst


def draw_ranges(seen: list[dict]) -> dict[str, Any]:
    """What a check records of the models it saw: the range of each metric, the slope pairs."""
    ranges = {key: [float(np.nanmin([m[key] for m in seen])),
                    float(np.nanmax([m[key] for m in seen]))]
              for key in ("limit", "slope", "raw", "raw_sign")}
    return {"steps": STEPS, "batch": BATCH, "ranges_over_draws": ranges, **slope_pairs(seen)}


def agreement_line(exact: dict) -> str:
    return ", ".join(f"{k} {a.relative_rmse:.1e}" for k, a in exact.items())


def top_entries(gradient: torch.Tensor, count: int) -> list[tuple[int, ...]]:
    """Indices (sample, entry…) of the `count` largest Σ_t |∇(t)| (upper triangle for W)."""
    score = gradient.abs().sum(dim=0)
    if score.ndim == 3:  # W: (B, n, n), symmetric in the energy and primitive models
        score = torch.triu(score)
    flat = torch.argsort(score.flatten(), descending=True)[:count]
    return [tuple(int(i) for i in np.unravel_index(int(f), tuple(score.shape))) for f in flat]


def curves_figure(panels: list[tuple[str, dict, bool]]) -> Figure:
    """The classic GDD figure: per-step ΔEP(t) (lines) and −∇BPTT(t) (markers) for the neurons
    and the weights with the largest gradients, one row per model."""
    t = np.arange(PLOT_STEPS)
    shown = slice(0, PLOT_STEPS)
    drawn = []
    for title, seen, scaled in panels:
        for key, what, heading in (("neurons", "neuron", "neurons"), ("W", "W", "weights W_eff")):
            grad = seen["reference"].neurons if key == "neurons" else \
                seen["reference"].parameters["W"]
            update = seen["finite"].neurons if key == "neurons" else \
                seen["finite"].parameters["W"]
            lines: list[Layer] = []
            for n, index in enumerate(top_entries(grad, 3)):
                color = f"C{n}"
                name = f"{what} {','.join(map(str, index[1:]))} (sample {index[0]})"
                lines += [Line(f"ΔEP {name}", t, update[(shown, *index)].numpy(), color + "-"),
                          Line(f"−∇BPTT {name}", t, -grad[(shown, *index)].numpy(), color + "o",
                               marker_size=4, marker_face="none")]
                if key == "neurons" and scaled:
                    d = seen["D"][index]
                    lines.append(Line(f"−D∇BPTT (D = {float(d):.2f})", t,
                                      -(d * grad[(shown, *index)]).numpy(), color + "x",
                                      marker_size=4))
            drawn.append(Panel([*lines, Level(0, style="-", color="0.7")],
                               title=f"{title}: {heading}", title_size=9,
                               xlabel="t (nudged step; BPTT step K − t)", legend_size=6))
    return Figure(drawn, columns=2, size=(11, 3.3 * len(panels)), dpi=110,
                  title=f"GDD: EP's per-step updates (lines; symmetric β = {PLOT_BETA:g}) vs "
                        f"BPTT's per-step gradients (markers), K = {STEPS}, first {PLOT_STEPS} "
                        "steps")


def step_table(ctx, seen: dict) -> None:
    """A few per-step numbers of the representative energy model, for the account."""
    grad, update = seen["reference"], seen["finite"]
    (b, i), = top_entries(grad.neurons, 1)
    (bw, iw, jw), = top_entries(grad.parameters["W"], 1)
    d = float(seen["D"][b, i])
    ctx.note(f"      per step, sample {b}, the neuron with the largest gradient (D = {d:.2f}) "
             f"and the weight W[{iw},{jw}] (beta = {PLOT_BETA:g}):")
    for t in (0, 1, 2, 4, 7):
        ctx.note(f"      t = {t:2d}  neuron {i}: dEP {float(update.neurons[t, b, i]):+.5f}, "
                 f"-grad {-float(grad.neurons[t, b, i]):+.5f}, "
                 f"-D grad {-d * float(grad.neurons[t, b, i]):+.5f}   W[{iw},{jw}]: dEP "
                 f"{float(update.parameters['W'][t, bw, iw, jw]):+.5f}, "
                 f"-grad {-float(grad.parameters['W'][t, bw, iw, jw]):+.5f}")


def what_is_compared(ctx) -> None:
    """The account's opening: what EP and BPTT compute per step, and what GDD states."""
    K = STEPS
    for line in (
        f"What is compared (Ernoult et al. 2019), per sample and per step t = 0..{K - 1}:",
        "  EP    free phase to h* (residual <= 1e-13), then a nudged phase from h*; per step",
        "        dEP_s(t) = (h_t+1 - h_t)/beta,  dEP_theta(t) = -[dE/dtheta(h_t+1) - "
        "dE/dtheta(h_t)]/beta",
        f"  BPTT  REFERENCE (autograd): {K} free steps from h*, loss l(h_{K}); "
        f"grad_s(t) = dl/dh_({K}-t),",
        f"        grad_theta(t) = dl/dtheta at the single step into h_({K}-t)",
        "  GDD   dEP(t) = -grad(t) at every t as beta -> 0. Measured over all t and entries: "
        "relative RMSE",
        "        ||dEP + grad|| / ||grad|| and sign agreement. beta -> 0 itself: a complex-step "
        f"nudge i*{LIMIT_NUDGE:g};",
        "        finite beta: the symmetric +-beta nudges EP runs.",
    ):
        ctx.note(line)


def primitive_account(ctx, typical_p: PrimitiveSpec, prim: dict, prim_worst: list[float]
                      ) -> None:
    """Part (a)'s representative primitive model, before the search."""
    ctx.note("(a) PRIMITIVE-FUNCTION dynamics h_t+1 = dPhi/dh, Phi = 1/2 rho(h)^T W rho(h) + "
             "h^T(Ux + b), W = W^T")
    if ctx.model is not None:
        ctx.note(f"    (on the suite's primitive models: {ctx.model!r} is a LoopedMLP, which has "
                 "no primitive-function form; part (b) certifies it)")
    ctx.note(f"    representative: rho = tanh, n_hidden {typical_p.n_hidden}, batch {BATCH}, "
             f"certified L = {typical_p.build().contraction_bound():.2f}")
    ctx.note(f"      beta -> 0: relative RMSE {agreement_line(prim['exact'])}; signs agree "
             f"{100 * min(a.sign_agreement for a in prim['exact'].values()):.0f}%")
    ctx.note(f"      finite beta: {prim_worst[LARGE_BETA]:.1e} at beta = "
             f"{SWEEP_BETAS[LARGE_BETA]:g}, falling as beta^{slope_in_fit_range(prim_worst):.2f}"
             f" to a round-off floor of {min(prim_worst):.1e}")


def primitive_summary(ctx, seen_p: list[dict], worst_p: dict[str, float]) -> None:
    """Part (a) over the drawn primitive models."""
    ctx.note(f"    over {len(seen_p)} drawn models (rho identity or tanh, L 0.5 or 0.9):")
    ctx.note(f"      worst beta -> 0 residual {worst_p['limit']:.1e}, {slope_summary(seen_p)}, "
             "signs agree "
             f"{100 * min(m['limit_sign'] for m in seen_p):.0f}%")
    ctx.note("    => GDD holds EXACTLY, for neurons and parameters.")


def energy_account(ctx, gamma: float, n_hidden: int, energy: dict,
                   energy_sweep: dict[str, list[float]]) -> None:
    """Part (b)'s representative energy model, before the search."""
    D = energy["D"]
    ctx.note("(b) TANH ENERGY MODEL, LoopedMLP h_t+1 = tanh(W_eff h_t + Ux + b), symmetric W_eff, "
             f"SN gamma {gamma}")
    if ctx.model is not None:
        ctx.note(f"    (the representative is the suite's; the checks below run on {ctx.model!r})")
    ctx.note(f"    representative: n_hidden {n_hidden}, batch {BATCH}, D = diag phi'(a*)"
             f" = 1 - h*^2 in [{float(D.min()):.2f}, {float(D.max()):.2f}]")
    ctx.note("      weights W_eff, U, b: beta -> 0 relative RMSE "
             f"{agreement_line({k: energy['exact'][k] for k in PARAMETERS})}; finite beta "
             f"falls as beta^{slope_in_fit_range(energy_sweep['W']):.2f}")
    raw_swept = energy_sweep["raw neurons"]
    ctx.note(f"      neurons: relative RMSE {energy['raw'].relative_rmse:.4f} at beta -> 0, "
             f"{min(raw_swept):.4f} … {max(raw_swept):.4f} for beta {SWEEP_BETAS[0]:g} … "
             f"{SWEEP_BETAS[-1]:.2g}; signs agree {100 * energy['raw'].sign_agreement:.0f}%")
    ctx.note("        theory: dEP_s(t) -> -D grad_s(t); predicted ||(I - D)grad||/||grad|| = "
             f"{energy['predicted']:.4f}; D-corrected residual "
             f"{energy['exact']['neurons'].relative_rmse:.1e}")
    step_table(ctx, energy)


def energy_summary(ctx, energy_measured: MeasuredOnce, worst_e: dict[str, float]) -> None:
    """Part (b) over the drawn energy models (or the user's)."""
    seen_e = energy_measured.values()
    ctx.note(f"    over {len(seen_e)} drawn models (gradient_models: SN or not, spike/low-rank/"
             "Gaussian W):" if ctx.model is None else f"    on {ctx.model!r}:")
    ctx.note(f"      worst beta -> 0 residual (W, U, b, D-corrected neurons) "
             f"{worst_e['limit']:.1e}; {slope_summary(seen_e)}")
    ctx.note(f"      raw neuron deviation {spread([m['raw'] for m in seen_e])}, each equal to its "
             f"prediction (worst gap {worst_e['raw_gap']:.1e}); signs agree "
             f"{100 * min(m['raw_sign'] for m in seen_e):.0f}%")
    most_raw, most = max(energy_measured.seen.items(), key=lambda kv: kv[1]["raw"])
    ctx.note(f"      largest {most['raw']:.3f} (predicted {most['predicted']:.3f}) on {most_raw}")
    ctx.note("    => the WEIGHT updates satisfy GDD exactly; the NEURON updates are BPTT's "
             "gradients seen through D:")
    ctx.note("       same signs, deviation ||(I - D)grad||/||grad||, which no beta removes.")


def control_account(ctx, asym: dict, asym_sweep: dict[str, list[float]], control: dict,
                    found: Any) -> None:
    """Part (c): the asymmetric representative and hypothesis's minimal failing model."""
    ctx.note("(c) CONTROL: asymmetric W (vector-field EP), the representative with symmetric=False")
    ctx.note(f"      beta -> 0 relative RMSE {agreement_line(asym['exact'])}; signs agree "
             f"{100 * min(a.sign_agreement for a in asym['exact'].values()):.0f}% (worst "
             f"quantity); slope in beta {slope_in_fit_range(asym_sweep['W']):.2f}")
    ctx.note("      EP propagates the error with D W, BPTT with W^T D: GDD fails, as it must; "
             f"hypothesis's minimal failing model gives {control['limit']:.2e}:")
    ctx.note(f"      {found!r}")


def figures(ctx, described: dict[str, dict], swept: dict[str, list[float]]) -> None:
    """`curves.png` for the three representatives (primitive, energy, asymmetric) and
    `beta-sweep.png` of their residuals vs β."""
    draw(ctx.artifact_path("curves.png"), curves_figure([
        ("primitive (tanh rho), exact", described["primitive"], False),
        ("tanh energy model", described["energy"], True),
        ("control: asymmetric W", described["asymmetric"], False),
    ]))
    series: dict[str, Series] = {}
    styles: dict[str, str] = {}
    for label, errors, style in (
        ("primitive: worst of neurons, W, U, b", swept["primitive"], "o-"),
        ("energy: W", swept["energy W"], "s-"),
        ("energy: D-corrected neurons", swept["energy neurons"], "^-"),
        ("energy: raw neurons", swept["energy raw neurons"], "v--"),
        ("control (asymmetric): W", swept["asymmetric W"], "x--"),
    ):
        name = f"{label} (slope {slope_in_fit_range(errors):.2f})"
        series[name], styles[name] = (SWEEP_BETAS, errors), style
    line_plot(ctx.artifact_path("beta-sweep.png"), series, styles=styles, logx=True,
              title="GDD residual vs symmetric beta "
                    f"(slopes fitted on [{FIT_RANGE[0]:g}, {FIT_RANGE[1]:g}])",
              xlabel="beta", ylabel="||dEP + grad_BPTT|| / ||grad_BPTT||")


def gdd_diagnosis(residual: float, asymmetry: float, tolerance: float) -> str:
    """Why GDD fails (a residual above `tolerance`), from the linearization
    h ← h − P∇E(h) − β P′∇C: a non-symmetric P (the update schedule, e.g. layer-wise
    asynchronous), or, with P symmetric, a nudge that does not enter as P∇(βC) (P′ ≠ P: the
    nudge applied where the dynamics do not precondition it)."""
    if residual <= tolerance:
        return ""
    if asymmetry > 1e-8:
        return (" - GDD needs a symmetric P, which this update schedule (e.g. layer-wise "
                "asynchronous, or a unit outside the energy's stationary set) does not have")
    return (" - P is symmetric, so the mismatch is in the nudge: the nudged step does not add "
            "-beta P grad C with the free dynamics' own P")
