"""The measurements behind the benchmark harness and track 29 (`benchmarks.measure`)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from benchmarks import harness, measure


def test_live_tensor_peak_counts_what_a_call_keeps_alive() -> None:
    def keeps_three() -> list[torch.Tensor]:
        return [torch.ones(1024) for _ in range(3)]  # 3 × 4 KiB alive together

    def frees_each() -> None:
        for _ in range(3):
            torch.ones(1024)  # freed before the next one is made

    assert measure.live_tensor_peak(keeps_three) == 3 * 4096
    assert measure.live_tensor_peak(frees_each) == 4096


def test_linear_fit_slope_and_r_squared() -> None:
    fit = measure.linear_fit([1, 2, 3, 4], [3, 5, 7, 9])
    assert fit.slope == pytest.approx(2) and fit.intercept == pytest.approx(1)
    assert fit.r_squared == pytest.approx(1)
    assert measure.linear_fit([1, 2, 3], [5, 5, 5]).r_squared == 1.0  # flat: fitted exactly
    assert measure.linear_fit([1, 2, 3, 4], [0, 1, 0, 1]).r_squared < 0.5
    with pytest.raises(ValueError, match="distinct x"):
        measure.linear_fit([1, 1], [2, 3])
    with pytest.raises(ValueError, match="non-finite"):
        measure.linear_fit([1, 2], [float("nan"), 3])


def test_ep_memory_is_flat_and_bptt_and_the_leaky_control_grow() -> None:
    sizes = {"n_in": 16, "hidden": 32, "batch": 8, "seed": 0}
    state = 8 * 32 * 4
    steps = [10, 40, 80]
    ep = measure.memory_by_steps("EP", steps, **sizes)
    bptt = measure.memory_by_steps("BPTT", steps, **sizes)
    leaky = measure.memory_by_steps("EP", steps, step=measure.leaky_ep_step, **sizes)
    assert max(ep.values()) == min(ep.values())
    assert measure.linear_fit(steps, list(bptt.values())).slope >= 0.5 * state  # track 29
    assert measure.linear_fit(steps, list(leaky.values())).slope >= 0.5 * state


def test_training_step_updates_the_parameters_and_rules_are_named() -> None:
    model, x, y = measure.build_problem(16, 32, 8, seed=0)
    before = model.W.detach().clone()
    measure.training_step("EP", model, x, y, 6)()
    assert not torch.equal(before, model.W)
    assert measure.rule_for("EP", 30).steps == (30, 10)
    assert measure.rule_for("BPTT", 30).steps == 30
    with pytest.raises(ValueError, match="unknown method 'SGD'"):
        measure.rule_for("SGD", 30)
    with pytest.raises(ValueError, match="repeats"):
        measure.interleaved_medians({"a": lambda: None}, repeats=0, warmup=0)


def test_interleaved_medians_and_throughput_loops() -> None:
    model, x, y = measure.build_problem(16, 32, 8, seed=0)
    times = measure.interleaved_medians(
        {"free": measure.free_phase_loop(model, x, y, 5),
         "matmul": measure.matmul_ceiling(model, x, 5)}, repeats=3, warmup=1)
    assert all(len(t.walls_s) == 3 and t.min_s <= t.median_s <= t.max_s
               for t in times.values())
    assert measure.free_phase_flops(8, 32, 5) == 2 * 8 * 32 * 32 * 5
    assert measure.cosine(torch.ones(3), 2 * torch.ones(3)) == pytest.approx(1)
    assert measure.cosine(torch.zeros(3), torch.ones(3)) == 0.0


def test_harness_quick_run_writes_json_and_says_cuda_absent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "bench.json"
    assert harness.main(["--device", "cuda", "--out", str(out)]) == 0
    assert "CUDA absent" in capsys.readouterr().out
    assert json.loads(out.read_text())["devices"]["cuda"] == "CUDA absent"
    with pytest.raises(SystemExit):
        harness.parse_args(["--repeats", "0"])


def test_a_spread_too_wide_is_remeasured_then_flagged() -> None:
    """A call slow on every other repeat (a noisy neighbour) is unsteady: measured again, and
    still unsteady it is flagged; a steady call is measured once."""
    import time

    steady = measure.interleaved_medians({"a": lambda: time.sleep(0.02)}, repeats=6, warmup=0)
    assert steady["a"].steady and steady["a"].attempts == 1
    count = {"n": 0}

    def noisy() -> None:
        count["n"] += 1
        time.sleep(0.06 if count["n"] % 2 else 0.02)

    flagged = measure.interleaved_medians({"a": noisy}, repeats=6, warmup=0, remeasure=1)
    assert not flagged["a"].steady and flagged["a"].attempts == 2 and count["n"] == 12
    assert flagged["a"].spread > measure.UNSTEADY_SPREAD
    assert harness.verdict(True, steady=False) == "UNSURE" and harness.verdict(False) == "MISS"
    assert harness.busy("3.10 2.0 1.0", 2) is not None and harness.busy("0.9 1 1", 2) is None


def test_the_gpu_check_says_cuda_absent_and_runs_nothing(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path) -> None:
    from benchmarks import gpu_check

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(gpu_check.subprocess, "call", lambda *a, **k: pytest.fail("ran"))
    assert gpu_check.main(["--out", str(tmp_path / "gpu")]) == 0
    assert capsys.readouterr().out.startswith("CUDA absent")
    assert not (tmp_path / "gpu").exists()
    with pytest.raises(SystemExit) as bad:
        gpu_check.main(["--epochs", "0"])
    assert bad.value.code == 2


def test_the_gpu_checks_training_part_runs_the_full_setup_configuration(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import gpu_check
    from eqprop_core.data import DataUnavailable, load_dataset

    try:
        load_dataset("mnist10k")
    except DataUnavailable as missing:
        pytest.skip(str(missing))
    small = dataclasses.replace(gpu_check.FULL_SETUP, hidden=16, n_train=128, n_test=64)
    monkeypatch.setattr(gpu_check, "FULL_SETUP", small)
    result = gpu_check.full_setup_configuration("cpu", 2)
    assert result["outcome"] == "completed" and result["epochs"] == 2
    assert 0.0 <= result["final_test_accuracy"] <= 1.0 and result["median_epoch_s"] > 0
    assert result["setup"]["steps"] == [30, 10]
