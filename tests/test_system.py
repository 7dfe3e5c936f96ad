"""The System protocol: load-time checks, the witness, the tracks' System entries, the plugin.

The witness is held to independent references (scipy's `theory.implicit_gradients` for the
suite's own LoopedMLP, eqprop_core's Anderson solve); the System entries must certify the
suite's correct models, refuse the broken one, and fail on planted faults in the user's code.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import theory
from eqprop_core import LoopedMLP
from eqprop_core.system import LoopedMLPSystem
from properties import as_numpy
from properties import system_witness as witness
from properties.system import SystemProtocolError, SystemUnderTest, as_system, load_system
from properties.system_checks import Amplified, Witnessed, amplifying_factor, planted
from tracks.registry import system_entries
from tracks.run import main as run_main
from tracks.run import run_track

ROOT = Path(__file__).resolve().parents[1]
USER_MODEL = ROOT / "examples" / "user_model.py"


def contractive(seed: int = 0, n_hidden: int = 6) -> LoopedMLP:
    torch.manual_seed(seed)
    return LoopedMLP(3, n_hidden, 4, symmetric=True, spectral_norm=True, gamma=0.8,
                     dtype=torch.float64)


# -- load-time checks ---------------------------------------------------------------------------


class Toy:
    """A minimal correct System: h ← tanh(A h + B x), C = ½‖h − y‖²."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.params = {"A": 0.3 * torch.randn(4, 4, generator=g, dtype=torch.float64),
                       "B": torch.randn(4, 2, generator=g, dtype=torch.float64)}

    def sample(self, batch, seed):
        g = torch.Generator().manual_seed(seed)
        return (torch.randn(batch, 2, generator=g, dtype=torch.float64),
                torch.rand(batch, 4, generator=g, dtype=torch.float64))

    def init_state(self, x):
        return torch.zeros(x.shape[0], 4, dtype=torch.float64)

    def step(self, h, x, params, *, beta=0.0, y=None):
        pre = h @ params["A"].T + x @ params["B"].T
        return torch.tanh(pre) if beta == 0 else torch.tanh(pre) - beta * (h - y)

    def cost(self, h, y):
        return 0.5 * ((h - y) ** 2).sum(1)


def broken_toy(**changes):
    toy = Toy()
    for name, value in changes.items():
        setattr(toy, name, value.__get__(toy) if callable(value) else value)
    return toy


def test_toy_system_loads():
    sut = SystemUnderTest(Toy(), "toy")
    assert sut.n_state == 4
    assert not sut.has("ep_gradient") and sut.unmet(("energy",)) == ["an energy(h, x, params)"]


@pytest.mark.parametrize(("changes", "message"), [
    ({"step": None}, "step"),
    ({"sample": None}, "sample(batch, seed)"),
    ({"params": {}}, "non-empty dict"),
    ({"params": {"A": torch.full((4, 4), float("nan"), dtype=torch.float64)}}, "non-finite"),
    ({"init_state": lambda self, x: torch.zeros(4)}, "init_state(x) has shape"),
    ({"step": lambda self, h, x, p, beta=0.0, y=None: h[:, :2]}, "same shape and dtype"),
    ({"step": lambda self, h, x, p, beta=0.0, y=None: torch.tanh(h @ self.params["A"].T)},
     "pure in params"),
    ({"step": lambda self, h, x, p, beta=0.0, y=None: torch.tanh(
        h.mean(0, keepdim=True) @ p["A"].T + x @ p["B"].T)}, "couples the samples"),
    ({"cost": lambda self, h, y: ((h - y) ** 2).sum()}, "one cost per sample"),
    ({"estimators": ("symmetric",),
      "ep_gradient": lambda self, x, y, beta, estimator: {"Z": torch.zeros(1)}},
     "not in params"),
    ({"estimators": ("symmetric",),
      "ep_gradient": lambda self, x, y, beta, estimator: {"A": torch.zeros(3)}},
     "has shape"),
])
def test_protocol_violations_are_one_line_errors(changes, message):
    toy = broken_toy(**{k: v for k, v in changes.items() if v is not None})
    for name in (k for k, v in changes.items() if v is None):
        setattr(toy, name, None)
    with pytest.raises(SystemProtocolError) as err:
        SystemUnderTest(toy, "toy")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_descent_direction_is_refused_as_the_wrong_sign():
    sut = as_system(contractive(), "m")
    model = sut.system

    class Negated(LoopedMLPSystem):
        def ep_gradient(self, x, y, *, beta, estimator):
            return {k: -g for k, g in super().ep_gradient(x, y, beta=beta,
                                                          estimator=estimator).items()}

    with pytest.raises(SystemProtocolError, match="looks like -dL/dtheta"):
        SystemUnderTest(Negated(model.model), "negated")


def test_cli_refuses_a_bad_system_with_one_line(capsys):
    assert run_main(["--system", "nowhere.module:build", "--track", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tracks.run: error: --system") and "\n" not in err
    assert run_main(["--system", f"{USER_MODEL}:build", "--model", f"{USER_MODEL}:build",
                     "--track", "2"]) == 2
    assert run_main(["--system", f"{USER_MODEL}:build", "--system-batch", "0",
                     "--track", "2"]) == 2


# -- the witness ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_witness_matches_scipy_and_the_suite_on_a_looped_mlp(seed):
    model = contractive(seed)
    sut = as_system(model, "m", batch=5)
    x, y = sut.data(seed)
    eq = witness.newton_equilibrium(sut, x)
    assert eq.converged and eq.max_residual <= 1e-12
    h_anderson, _ = model.equilibrium(x, tol=1e-14)
    assert float((eq.h - h_anderson).abs().max()) <= 1e-12
    ours = witness.implicit_gradient(sut, x, y, eq=eq)
    scipy_ = theory.implicit_gradients(as_numpy(model), x, y)
    for k, g in scipy_.items():
        assert np.abs(ours[k].numpy() - g).max() <= 1e-10 * max(1.0, np.abs(g).max()), k
    bptt = witness.bptt_gradient(sut, x, y, 400)
    for k in ours:
        assert float((bptt[k] - ours[k]).abs().max()) <= 1e-12
    v = witness.random_directions(sut.params64(), 1, seed)[0]
    fd = witness.directional_derivative(sut, x, y, v)
    assert fd.error <= 1e-9 and abs(fd.jump) <= 1e-6
    assert abs(fd.value - sum(float((ours[k] * v[k]).sum()) for k in ours)) <= 1e-9


def test_over_relaxation_keeps_h_star_and_makes_it_repelling():
    w = Witnessed(as_system(contractive(), "m"), 0)
    a = amplifying_factor(w)
    bad = Witnessed(Amplified(w.sut, a), 0)
    assert float((bad.eq.h - w.eq.h).abs().max()) <= 1e-12
    assert float(bad.rho.max()) >= 3 - 1e-9 and float(w.rho.max()) < 1


def test_planted_faults():
    g = {"W": torch.ones(2, 2), "b": torch.full((2,), 0.1)}
    assert float(planted(g, "sign", g)["W"][0, 0]) == -1
    assert float(planted(g, "double", g)["b"][0]) == pytest.approx(0.2)
    assert float(planted(g, "drop", g)["W"].abs().sum()) == 0
    with pytest.raises(ValueError, match="unknown fault"):
        planted(g, "other", g)


# -- the System entries -------------------------------------------------------------------------

ENTRIES = [2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 14]


def test_system_entries_registered():
    assert list(system_entries()) == ENTRIES


@pytest.mark.parametrize(("factory", "expected"), [
    ("build", dict.fromkeys(ENTRIES, "pass")),
    # as under --model: refused by every contraction and gradient track (L = 3, rho(J*) ~ 3);
    # descent needs no contraction (lambda_min(W_eff) > -1), so track 8 certifies it (12 and
    # 14 are refused on the same premise).
    ("broken", {**dict.fromkeys(ENTRIES, "fail"), 8: "pass"}),
])
def test_looped_mlp_through_the_system_path_gives_the_model_verdicts(factory, expected):
    system = load_system(f"{USER_MODEL}:{factory}")
    got = {n: run_track(n, system=system).status for n in ENTRIES}
    assert got == expected


def test_a_track_without_a_system_entry_skips_with_the_reason():
    result = run_track(1, system=load_system(f"{USER_MODEL}:build"))
    assert result.status == "skip" and "does not run on a System" in result.record["skip_reason"]


class Doubled(LoopedMLPSystem):
    """A slip: the estimate is returned twice over (e.g. a symmetric difference over β, not 2β)."""

    def ep_gradient(self, x, y, *, beta, estimator):
        return {k: 2 * g for k, g in super().ep_gradient(x, y, beta=beta,
                                                         estimator=estimator).items()}


class Truncated(LoopedMLPSystem):
    """A slip: the phases stop after a fixed few steps (3 free, 2 nudged)."""

    def ep_gradient(self, x, y, *, beta, estimator):
        from eqprop_core import ep_gradients

        g = ep_gradients(self.model, x, y, beta=beta, estimator=estimator, steps=(3, 2))
        return {k: g[k] for k in ("W", "U", "b", "V", "c")}

    def free_phase(self, x):
        h = torch.zeros(x.shape[0], self.model.n_hidden, dtype=torch.float64)
        with torch.no_grad():
            for _ in range(3):
                h = self.model.step(h, x)
        return h


@pytest.mark.parametrize("cls", [Doubled, Truncated])
def test_gradient_tracks_refuse_a_slip_and_say_why(cls):
    system = SystemUnderTest(cls(contractive(3)), cls.__name__)
    for n in (9, 10, 11):
        result = run_track(n, system=system)
        assert result.status == "fail", n
    notes = " ".join(run_track(9, system=system).record["notes"])
    if cls is Truncated:
        assert "not converged" in notes and "free phase" in notes
    correct = SystemUnderTest(LoopedMLPSystem(contractive(3)), "correct")
    assert all(run_track(n, system=correct).status == "pass" for n in (9, 10, 11))


def test_system_record_names_the_system_and_joins_its_run(tmp_path):
    system = load_system(f"{USER_MODEL}:build")
    record = run_track(3, system=system, out_dir=tmp_path).record
    assert record["model"] == repr(system) and "System(" in record["model"]
    assert (tmp_path / "track-03.json").exists()


def test_pytest_plugin_runs_the_tracks_from_another_directory(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--eqprop-system", f"{USER_MODEL}:broken",
         "--eqprop-tracks", "2", "8"],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert "1 failed, 1 passed" in out.stdout, out.stdout + out.stderr
    assert "claimed L = lipschitz(params) < 1" in out.stdout


# -- the example Systems: the verdicts the note and the README state (seeds 0-9 measured) -----

SYSTEMS = ROOT / "examples" / "systems"
GOOD = dict.fromkeys(ENTRIES, "pass")
GRADIENT_SLIP = {**GOOD, 9: "fail", 10: "fail", 11: "fail", 14: "fail"}


@pytest.mark.parametrize(("target", "expected"), [
    # the published 30 free / 10 nudged steps: the free phase is not converged
    ("primitive_mlp.py:build", GRADIENT_SLIP),
    # the nudge applied after sigma: no longer -beta P grad C, so GDD fails too
    ("primitive_mlp.py:broken", {**GRADIENT_SLIP, 12: "fail"}),
    ("leaky_dt.py:build", GOOD),
    ("leaky_dt.py:broken", GRADIENT_SLIP),
    # a saturated output unit: E is not stationary there, and the nudge outside rho is biased
    ("leaky_dt.py:saturated", {**GRADIENT_SLIP, 8: "fail", 12: "fail"}),
    # layer-wise (Gauss-Seidel) updates: correct EP, but no step-by-step GDD (P not symmetric)
    ("layerwise_hopfield.py:build", {**GOOD, 12: "fail"}),
    ("layerwise_hopfield.py:broken", {**GRADIENT_SLIP, 12: "fail"}),
])
def test_example_systems_verdicts(target, expected):
    system = load_system(f"{SYSTEMS / target}")
    got = {n: run_track(n, system=system).status for n in ENTRIES}
    assert got == expected


def test_primitive_mlp_defaults_diagnosis_and_converged_slopes():
    """At 30/10 steps the record names the floor and the free-phase residual; converged
    (400/1500 steps), the fitted slopes are ~1 and ~2."""
    build = run_track(11, system=load_system(f"{SYSTEMS / 'primitive_mlp.py'}:build")).record
    notes = " ".join(build["notes"])
    assert "smallest error" in notes and "not converged" in notes and "residual" in notes
    converged = run_track(11, system=load_system(f"{SYSTEMS / 'primitive_mlp.py'}:converged"))
    slopes = {c["name"].split(":")[0]: c["value"] for c in converged.record["checks"]
              if "slope" in c["name"]}
    assert abs(slopes["one_sided"] - 1) <= 0.1 and abs(slopes["symmetric"] - 2) <= 0.15
    assert converged.status == "pass"


class Raising(LoopedMLPSystem):
    """Its own phases give up (as eqprop_core's PhaseNotConverged does)."""

    def ep_gradient(self, x, y, *, beta, estimator):
        raise RuntimeError("free phase did not converge in 10 steps")


def test_an_ep_gradient_that_raises_is_a_failed_check_not_a_crash():
    system = SystemUnderTest(Raising(contractive()), "raising")  # loads: not a protocol error
    record = run_track(9, system=system).record
    assert record["status"] == "fail" and "error" not in record
    failed = [c for c in record["checks"] if not c["passed"]]
    assert "ep_gradient" in failed[0]["name"] and "10 steps" in failed[0]["details"]["error"]


def test_a_sweep_certifies_a_system_at_every_seed(tmp_path):
    import json

    from tracks.sweep import main as sweep_main

    out = tmp_path / "sweep"
    assert sweep_main(["--seeds", "1,2", "--track", "3", "9", "--out", str(out), "--jobs", "2",
                       "--system", f"{SYSTEMS / 'leaky_dt.py'}:build"]) == 0
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["model"].endswith("leaky_dt.py:build")
    assert summary["certified_cells"] == 4
    record = json.loads((out / "seed-01" / "track-09.json").read_text())
    assert record["model"].startswith("System(")
    assert sweep_main(["--seeds", "1", "--track", "3", "--out", str(out), "--system",
                       f"{USER_MODEL}:build", "--model", f"{USER_MODEL}:build"]) == 2


# -- the measures, on systems whose answers are known in closed form ------------------------------


class Linear:
    """T(h) = M h + x (M fixed, ‖M‖₂ < 1): h* = (I − M)⁻¹ x, J* = M, the rate ρ(M)."""

    def __init__(self, M):
        self.M = torch.as_tensor(M, dtype=torch.float64)
        self.params = {"M": self.M.clone()}

    def sample(self, batch, seed):
        g = torch.Generator().manual_seed(seed)
        return (torch.randn(batch, len(self.M), generator=g, dtype=torch.float64),
                torch.zeros(batch, len(self.M), dtype=torch.float64))

    def init_state(self, x):
        return torch.zeros_like(x)

    def step(self, h, x, params, *, beta=0.0, y=None):
        return h @ params["M"].T + x - (beta * (h - y) if beta else 0)

    def cost(self, h, y):
        return 0.5 * ((h - y) ** 2).sum(1)


def test_witness_and_rate_on_a_linear_map():
    M = np.array([[0.5, 0.2], [0.0, -0.3]])
    w = Witnessed(SystemUnderTest(Linear(M), "linear", batch=3), 0)
    x = w.x.numpy()
    exact = np.linalg.solve(np.eye(2) - M, x.T).T
    assert np.abs(w.eq.h.numpy() - exact).max() <= 1e-14
    assert np.abs(w.eq.jacobian - M).max() <= 1e-15
    assert np.allclose(w.rho, 0.5) and np.allclose(w.norm, np.linalg.norm(M, 2))
    from properties.system_checks import renormalized_rate

    assert np.abs(renormalized_rate(w.sut, w) - 0.5).max() <= 1e-6


def test_the_asymptotic_window_and_its_slope():
    from properties.system_checks import BetaSweep

    betas = [10 ** (-k / 4) for k in range(2, 21, 2)]
    bias = [min(0.5, 0.3 * b) + 1e-9 for b in betas]  # a β law with a floor 1e-9
    sweep = BetaSweep("one_sided", betas, [{"all": e} for e in bias], [1.0] * len(betas))
    slope, span = sweep.slope()
    assert abs(slope - 1) <= 0.01 and span[1] <= 0.05 / 0.3 + 1e-12
    flat = BetaSweep("one_sided", betas, [{"all": 5e-3} for _ in betas], [1.0] * len(betas))
    assert math.isnan(flat.slope()[0])  # a floor everywhere: no window, the check fails


def test_line_derivative_finds_its_own_step_and_sees_a_kink():
    """The extrapolation needs no step tuned to the scale on which f varies (an SN'd weight at
    scale 100 next to a bias at scale 1 share one direction); a kink is a jump, not a slope."""
    for scale in (1e-2, 1.0, 1e2):
        d = witness.line_derivative(lambda s, a=scale: math.sin(s / a) + 0.3 * s, 0.0)
        assert abs(d.value - (1 / scale + 0.3)) <= 1e-9 * (1 / scale + 0.3), scale
        assert d.error <= 1e-8 * (1 / scale + 0.3) and abs(d.jump) <= 1e-4 * (1 / scale), scale
    kink = witness.line_derivative(lambda s: abs(s) + 0.5 * s + s * s, 0.0)
    assert abs(kink.jump - 2.0) <= 1e-9 and abs(kink.value - 0.5) <= 1e-9
    nan_above = witness.line_derivative(lambda s: math.nan if abs(s) > 0.02 else math.exp(s), 1.0)
    assert abs(nan_above.value - 1.0) <= 1e-9  # a failed re-solve at a large step is skipped


def hunted(**changes):
    from properties.strategies import ModelSpec

    base = dict(n_in=2, n_hidden=9, weight_scale=1.0, structure="gaussian", seed=65420,
                gamma=0.8, drive_scale=1.0)
    return as_system(ModelSpec(**{**base, **changes}).build(), "hunted", batch=4)


def test_witness_fd_agreement_across_parameter_scales_and_at_a_kink():
    """Found by a random hunt over LoopedMLP Systems: one FD step t = 1e-4·‖θ‖/‖v‖ was 1e-2
    along a bias of scale 0.1 next to an SN'd W of scale 100 (gap 1.5e-6 at track 14), and an
    orthogonal symmetric W (every |λ| = 1) makes σ(W), hence ℒ, non-differentiable."""
    from properties.system_checks import finite_nudge_gap, witness_fd_agreement

    w = Witnessed(hunted(n_in=1, n_hidden=2, weight_scale=100.0, structure="diagonal",
                         seed=54911, gamma=0.9, drive_scale=3.0), 45)
    fd = witness_fd_agreement(w, 3)
    assert fd.disagreement <= 1e-10 and fd.kink <= 1e-5
    estimate = w.sut.ep_gradient(w.x, w.y, beta=0.5, estimator="symmetric")
    v = witness.random_directions(w.params, 3, 45)[1]
    assert finite_nudge_gap(w, "symmetric", 0.5, estimate, v) <= 1e-10
    near = Witnessed(hunted(n_in=1, n_hidden=11, weight_scale=0.1, structure="diagonal",
                            seed=49168, gamma=0.5, drive_scale=0.1), 26)
    assert witness_fd_agreement(near, 6).disagreement <= 1e-10  # |d_i| 0.097 vs 0.1: the large
    # steps straddle a crossing of the top two singular values; the small ones do not
    kinked = witness_fd_agreement(Witnessed(hunted(structure="orthogonal"), 69), 2)
    assert kinked.kink >= 1e-3 and kinked.disagreement >= 1e-5


def test_the_window_is_the_lowest_decade_above_a_measured_floor():
    """A symmetric law 0.5β²(1 + β) over a floor branch 1e-13/β (the phases' error) that
    cancels the bias where they cross (a dip under the floor's level): the window must skip the
    floor branch and the dip, and sit where the β³ term is smallest."""
    from properties.system_checks import BetaSweep

    betas = [10 ** (-k / 4) for k in range(2, 33, 2)]
    dip = 10 ** (-18 / 4)  # where 0.5β² ≈ 1e-13/β
    errors = [abs(0.5 * b * b * (1 + b) + 1e-13 / b * (-0.99 if b == dip else 1.0))
              for b in betas]
    sweep = BetaSweep("symmetric", betas, [{"all": e} for e in errors], [1.0] * len(betas))
    assert sweep.best()[0] == dip and sweep.floor() >= 1e-13 / dip  # its level, not the dip
    slope, span = sweep.slope()
    assert abs(slope - 2) <= 0.02 and span[1] <= 10 * span[0] * (1 + 1e-9)
    assert all(errors[i] >= 100 * sweep.floor_at(sweep.betas[i]) for i in sweep.window())
    assert max(sweep.betas[i] for i in sweep.window()) < 0.1  # the lowest decade, not the top


def test_a_floor_is_carried_to_each_beta_as_the_phases_error_over_beta():
    """Hunted (a driveless spike W, seed 61): a symmetric law 750β² over a phase error that
    reads 1.2e-9 down to β = 1e-7 and then 9.4e-7 at β = 3.2e-8 (ε/β with ε ≈ 3e-14). A floor
    held constant at 9.4e-7 leaves a window of two points and no slope; carried as ε/β it
    leaves the decade [3e-5, 3e-4] where the floor is < 1e-4 of the error. A floor constant in
    β (phases cut short) is not carried below its own level."""
    from properties.system_checks import BetaSweep

    betas = [10 ** (-k / 4) for k in range(2, 31, 2)]
    errors = [750 * b * b + (9.4e-7 if b < 5e-8 else 1.2e-9) for b in betas]
    sweep = BetaSweep("symmetric", betas, [{"all": e} for e in errors], [1.0] * len(betas))
    assert sweep.floor() == pytest.approx(9.4e-7, rel=1e-6)
    slope, span = sweep.slope()
    assert abs(slope - 2) <= 1e-3 and 2e-5 <= span[0] < span[1] <= 4e-4
    flat = BetaSweep("symmetric", betas, [{"all": 750 * b * b + 1e-6} for b in betas],
                     [1.0] * len(betas))
    assert flat.floor_at(0.01) >= 1e-6
    assert all(flat.all_errors()[i] >= 1e-4 for i in flat.window())


def test_gdd_extrapolates_out_the_finite_beta_term():
    """Hunted: a spike W (SN, γ = 0.95) whose O(β²) GDD residual is 1.8e-6 at β = 1e-4; as
    β → 0 it is exact."""
    from properties.system_checks import gdd_residual

    w = Witnessed(hunted(n_in=5, n_hidden=4, weight_scale=10.0, structure="spike", seed=1299,
                         gamma=0.95, drive_scale=0.1), 49)
    out = gdd_residual(w.sut, w, 1e-4)
    assert out["parameters_at_beta"] >= 1e-6 and out["parameters"] <= 1e-9


def test_the_surrogate_follows_the_branch_the_nudged_phase_reaches():
    """Hunted: at β = −0.5 one sample's nudged map has two attracting equilibria (and a saddle);
    the phase iterated from h* reaches one, Newton from h* the other. The EP update is the
    gradient of the surrogate on the branch its phase reaches (0 gap there, 0.05 on the other)."""
    from properties.system_checks import finite_nudge_gap, split_note

    w = Witnessed(hunted(n_in=5, n_hidden=3, weight_scale=10.0, structure="low_rank", seed=64800,
                         gamma=0.95, drive_scale=0.1), 37)
    phase = w.nudged(-0.5)
    assert phase.settled.all() and np.flatnonzero(phase.split > 1e-6).tolist() == [1]
    newton = witness.newton_equilibrium(w.sut, w.x, w.params, beta=-0.5, y=w.y, h0=w.eq.h)
    assert newton.converged and float((newton.h - phase.eq.h).abs().max()) > 1.0
    estimate = w.sut.ep_gradient(w.x, w.y, beta=0.5, estimator="symmetric")
    v = witness.random_directions(w.params, 1, 37)[0]
    assert finite_nudge_gap(w, "symmetric", 0.5, estimate, v) <= 1e-10
    assert "samples [1]" in split_note(w, (-0.5, 0.5))
    w.__dict__["_nudged"][-0.5] = type(phase)(newton, phase.settled, 0 * phase.split)
    assert finite_nudge_gap(w, "symmetric", 0.5, estimate, v) >= 1e-2  # Newton's branch misses
    # ... and where the System's own solver (Anderson) takes Newton's branch, that one matches
    other = Witnessed(hunted(n_in=6, n_hidden=1, weight_scale=1e3, structure="diagonal",
                             seed=32054, gamma=0.99, drive_scale=0.1), 39)
    assert len(other.nudged(-0.5).branches()) == 2
    update = other.sut.ep_gradient(other.x, other.y, beta=0.5, estimator="symmetric")
    v = witness.random_directions(other.params, 1, 39)[0]
    assert finite_nudge_gap(other, "symmetric", 0.5, update, v) <= 1e-10
    doubled = {k: 2 * g for k, g in update.items()}
    assert finite_nudge_gap(other, "symmetric", 0.5, doubled, v) >= 0.1


def test_a_system_without_drive_sits_at_h_star_from_the_start():
    """Hunted (drive 0: U = b = 0, so h* = 0 = init_state): BPTT's K must follow the adjoint,
    not the forward trajectory (K was 26 for ρ = 0.95; BPTT missed by 26%); the readout V has
    ∂C/∂V = 0 at h* = 0 and is still a cost parameter; ∂ℒ/∂W = 0 there is a zero block, whose
    error is measured against ‖g‖."""
    from properties.system_checks import bptt_steps, energy_parameters, relative_errors

    w = Witnessed(hunted(n_in=6, n_hidden=9, weight_scale=10.0, structure="low_rank",
                         seed=45333, gamma=0.95, drive_scale=0.0), 38)
    assert float(w.eq.h.abs().max()) == 0.0
    K = bptt_steps(w)
    assert K >= math.log(1e-16) / math.log(0.95)
    bptt = witness.bptt_gradient(w.sut, w.x, w.y, K)
    assert relative_errors(bptt, w.implicit)["all"] <= 1e-12
    assert energy_parameters(w) == ["W", "U", "b"]
    estimate = w.sut.ep_gradient(w.x, w.y, beta=1e-4, estimator="symmetric")
    errors = relative_errors(estimate, w.implicit)
    assert float(w.implicit["W"].norm()) == 0.0 and errors["W"] <= 1e-6
    ones = {"W": torch.ones_like(w.implicit["W"])}  # a nonzero estimate of a zero block fails
    assert relative_errors(ones, w.implicit)["W"] >= 0.1


def test_gdd_control_on_a_one_neuron_state_is_the_nudge_doubled():
    """One neuron: every 1×1 P is symmetric and no antisymmetric coupling exists (it was 0/0 =
    NaN); the control doubles the nudge instead, and must fail."""
    result = run_track(12, system=hunted(n_in=6, n_hidden=1, structure="spike", seed=30033,
                                         gamma=0.5, drive_scale=0.1), seed=27)
    assert result.status == "pass", result.record.get("error")
    control = result.record["negative_control"]
    assert "doubled" in control["name"] and control["failed_as_expected"]


def test_the_reusable_workflow_runs_its_own_command(tmp_path):
    """certify-system.yml is a workflow_call with input `system`; its certify step, with the
    inputs substituted, is a valid runner command that certifies an example and writes badges."""
    yaml = pytest.importorskip("yaml", reason="pip install pyyaml")
    root = Path(__file__).resolve().parents[1]
    flow = yaml.safe_load((root / ".github/workflows/certify-system.yml").read_text())
    call = flow[True]["workflow_call"]["inputs"]  # YAML 1.1 reads the key `on` as True
    assert call["system"]["required"] and call["tracks"]["default"] == "2-6 8-12 14"
    step = next(s for s in flow["jobs"]["certify-system"]["steps"]
                if s.get("name") == "Certify the System")
    inputs = {"system": str(root / "examples/systems/leaky_dt.py") + ":build", "tracks": "2",
              "seed": "3"}
    command = step["run"]
    for key, value in inputs.items():
        command = command.replace("${{ inputs." + key + " }}", value)
    assert "${{" not in command
    done = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "results" / "track-02.json").exists()
    assert any((tmp_path / "results" / "badges").iterdir())
