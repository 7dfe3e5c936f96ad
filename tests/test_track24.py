"""Track 24's parts: canonical JSON, RNG isolation, and the stated float32 tolerances — each
held against a case that must violate it."""

from __future__ import annotations

import copy
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from eqprop_core import LoopedMLP
from eqprop_core.variants import build
from properties.global_rng import isolated_global_state
from properties.rounding_tolerances import (
    compare_computations,
    effective_parameters,
    phase_steps,
    rounding_tolerances,
    sn_entry_bound,
)
from tracks.context import canonical_bytes, canonical_record, fingerprint, is_timing
from tracks.rerun import compare_records, run_in_process


def record(value: float, seconds: float) -> dict:
    return {"track": 3, "status": "pass", "seed": 0, "duration_s": seconds,
            "environment": {"torch": "x", "device": "cpu"},
            "checks": [{"name": "a", "value": value, "details": {
                "train_s": seconds, "training_s": {"EqProp": seconds},
                "status_by_s": "..x", "max_rho_by_s": [0.5, 2.0],
                "lambda_min_plus_1_over_s": 0.25}}]}


def test_timing_fields_are_the_seconds_and_nothing_else() -> None:
    assert is_timing("duration_s", 1.5) and is_timing("training_s", {"EqProp": 2.0})
    assert not is_timing("status_by_s", "..x") and not is_timing("max_rho_by_s", [0.5])
    assert not is_timing("lambda_min_plus_1_over_s", 0.25)
    assert not is_timing("names_s", ["a"]) and not is_timing("flag_s", True)
    stripped, removed = canonical_record(record(0.1, 3.0))
    assert removed == ["checks.[].details.train_s", "checks.[].details.training_s",
                       "duration_s"]
    assert "environment" not in stripped
    assert stripped["checks"][0]["details"]["lambda_min_plus_1_over_s"] == 0.25


def test_canonical_bytes_ignore_timing_and_see_one_ulp() -> None:
    first, slower = record(0.1, 3.0), record(0.1, 97.25)
    slower["environment"]["device"] = "cuda"
    assert canonical_bytes(first) == canonical_bytes(slower)
    assert fingerprint(first) == fingerprint(slower)
    nudged = record(float(np.nextafter(0.1, 1.0)), 3.0)
    assert canonical_bytes(first) != canonical_bytes(nudged)
    assert fingerprint(first) != fingerprint(nudged)
    (comparison,) = compare_records({3: first}, {3: nudged})
    assert not comparison.same and comparison.first_difference is not None
    assert canonical_bytes(first)[:comparison.first_difference] == \
        canonical_bytes(nudged)[:comparison.first_difference]


def test_isolated_global_state_restores_every_rng() -> None:
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    with isolated_global_state():
        torch.manual_seed(99)
        np.random.seed(99)
        random.seed(99)
        torch.rand(5), np.random.rand(5), random.random()
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], expected[0])
    assert np.array_equal(got[1], expected[1]) and got[2] == expected[2]


def test_same_seed_same_bytes_and_other_seeds_differ(tmp_path: Path) -> None:
    """In this interpreter (the fresh-interpreter half runs in track 24 itself, `pytest
    tracks/`: a new interpreter costs ~8 s of imports)."""
    torch.manual_seed(11)
    expected = torch.rand(2)
    torch.manual_seed(11)
    here = run_in_process([3], 5, tmp_path / "here")
    assert torch.equal(torch.rand(2), expected)  # the nested run left the caller's RNG alone
    (same,) = compare_records(here, run_in_process([3], 5, tmp_path / "again"))
    assert same.same, same.to_json()
    other = run_in_process([3], 6, tmp_path / "other")
    (differ,) = compare_records(here, other, drop=("environment", "run_id", "seed"))
    assert not differ.same  # the results differ, not only the run id


def test_the_run_id_is_not_part_of_the_canonical_record() -> None:
    first, second = record(0.1, 3.0), record(0.1, 3.0)
    first["run_id"], second["run_id"] = "a" * 32, "b" * 32
    assert canonical_bytes(first) == canonical_bytes(second)
    assert "run_id" not in canonical_record(first)[0]


def small_model(seed: int = 0) -> LoopedMLP:
    return build("standard", 12, 16, 4, seed=seed)[0]


def inputs(batch: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.randn(batch, 12, generator=g), torch.randint(0, 4, (batch,), generator=g)


def test_float32_meets_the_stated_tolerances_and_they_are_informative() -> None:
    x, y = inputs()
    out = compare_computations(small_model(), x, y, "cpu", torch.float32)
    assert out["weight"]["measured"] <= out["weight"]["bound"]
    assert out["weight"]["measured"] >= 0.5 * out["weight"]["bound"]  # the margin term is tight
    for key in ("state", "logits", "gradients"):
        assert out[key]["ratio"] <= 1.0, (key, out[key])
        assert out[key]["informative"] < 1.0, (key, out[key])


def test_sn_entry_bound_is_violated_by_one_more_allowance_of_scale() -> None:
    model = small_model()
    W = model.W.detach().double().numpy()
    bound = sn_entry_bound(0.5 * (W + W.T), torch.float32, torch.float64)
    wrong = copy.deepcopy(model).double()
    wrong.gamma *= 1 + bound  # float32's W_eff is the smaller: this widens the gap by `bound`
    with torch.no_grad():
        reference = wrong.recurrent_weight().numpy()
        got = model.recurrent_weight().double().numpy()
    assert np.max(np.abs(got - reference) / np.abs(reference)) > bound


def test_state_tolerance_is_violated_by_a_model_off_by_a_tenth_of_a_percent() -> None:
    x, _ = inputs()
    model = copy.deepcopy(small_model()).double()
    params = effective_parameters(model)
    tol = rounding_tolerances(params, x.double().numpy(), beta=0.05,
                              u=torch.finfo(torch.float32).eps / 2 + 2.0 ** -53)
    steps = phase_steps(tol.lipschitz, 2.0 ** -24)
    h = model.trajectory(x, torch.zeros(x.shape[0], 16, dtype=torch.float64), steps)[-1]
    wrong = copy.deepcopy(model)
    wrong.gamma *= 1 + 1e-3
    h_wrong = wrong.trajectory(x, torch.zeros_like(h), steps)[-1]
    gap = torch.linalg.vector_norm(h_wrong - h, dim=1).numpy()
    assert np.max(gap / tol.state) > 1.0
    assert np.all(tol.state < torch.linalg.vector_norm(h, dim=1).numpy())


def test_tolerances_refuse_a_nudge_without_a_contraction() -> None:
    params = effective_parameters(copy.deepcopy(small_model()).double())
    with pytest.raises(ValueError, match="L_beta"):
        rounding_tolerances(params, np.zeros((2, 12)), beta=1e3, u=1e-7)


def test_phase_steps_reach_the_rounding_floor() -> None:
    assert phase_steps(0.5, 2.0 ** -24) == 24
    assert 0.95 ** phase_steps(0.95, 2.0 ** -24) <= 2.0 ** -24 < 0.95 ** (
        phase_steps(0.95, 2.0 ** -24) - 1)
