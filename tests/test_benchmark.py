"""Group D plumbing (tracks 25–28): the matrix, its JSON, the generated table and the skips.

The end-to-end runs here read SMALL SYNTHETIC FILES in SVHN's real on-disk format through the
real loader and train tiny models for one epoch: they test that every arm, interval, comparison
and verdict is produced and rendered, never an accuracy number.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from eqprop_core.variants import SN_MODES, VARIANTS
from tracks.benchmark import (
    CLAIMED_SVHN,
    MNIST,
    PROFILES,
    Benchmark,
    Setup,
    load_benchmark_data,
    run_benchmark,
)
from tracks.context import TrackContext, canonical_record, finish
from tracks.run import main, run_track
from tracks.tables import benchmark_markdown, write_table
from tracks.tables import main as tables_main

from .test_data import write_mnist_raw, write_svhn_mat

TINY = Setup(n_train=None, n_test=None, hidden=8, epochs=1, seeds=3, rates=(3e-3, 1e-2),
             steps=(10, 5))


@pytest.fixture(scope="module")
def svhn_record(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    root = tmp_path_factory.mktemp("data")
    write_svhn_mat(root / "svhn" / "train_32x32.mat", 80, 0)
    write_svhn_mat(root / "svhn" / "test_32x32.mat", 40, 1)
    out = tmp_path_factory.mktemp("results")
    ctx = TrackContext(27, "SVHN (synthetic plumbing)", out_dir=out)
    started = time.perf_counter()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EQPROP_DATA", str(root))
        run_benchmark(ctx, Benchmark("svhn", claimed=CLAIMED_SVHN), TINY)
    result = finish(ctx, "D", "plumbing", started)
    return result.record, result.write(out)


def test_every_arm_has_intervals_and_every_row_a_verdict(svhn_record: tuple[dict, Path]) -> None:
    record, _ = svhn_record
    results = record["results"]
    assert {(a["variant"], a["sn"]) for a in results["arms"]} == {
        (v, sn) for v in VARIANTS for sn in SN_MODES}
    for arm in results["arms"]:
        for key in ("accuracy", "sigma_eff", "sigma_raw", "lipschitz", "rho", "converged_share"):
            assert arm[key]["n"] == 3 and len(arm[key]["per_seed"]) == 3
            assert arm[key]["low"] <= arm[key]["mean"] <= arm[key]["high"]
        assert arm["lr"] in TINY.rates and set(arm["sweep_validation_accuracy"]) == {"0.003",
                                                                                     "0.01"}
        if arm["sn"] != "off":
            assert arm["lipschitz"]["high"] <= 0.95
    assert len(results["comparisons"]) == len(VARIANTS) * 2
    claims = [v["claim"] for v in results["verdicts"]]
    for variant, row in CLAIMED_SVHN.items():
        assert f"{variant}: SN − no SN test accuracy = {row.delta:+.1f} points" in claims
        assert f"{variant}: without SN the recurrent Lipschitz constant grows to 5–6" in claims
        assert f"{variant}: with SN test accuracy = {row.with_sn:g}%" in claims
    assert all(v["verdict"] in ("confirmed", "refuted", "inconclusive") and v["reason"]
               for v in results["verdicts"])
    assert results["verdict"].startswith("verdict — SN − no SN = the claimed Δ: ")
    assert results["verdict"] in record["notes"]
    assert any(n.startswith("claimed | measured — Standard LoopedMLP: with SN 57.2% | ")
               for n in record["notes"])
    # The claimed levels are only compared under the claimed (full) setup.
    levels = [v for v in results["verdicts"] if "= 5" in v["claim"] and "%" in v["claim"]]
    assert levels and all(v["verdict"] == "inconclusive" for v in levels)


def test_checks_control_and_figure(svhn_record: tuple[dict, Path]) -> None:
    record, path = svhn_record
    checks = {c["name"]: c for c in record["checks"]}
    assert checks["matched initialization: every arm of a seed starts from identical raw "
                  "W, U, b, V, c"]["passed"]
    assert checks["reported ‖W_eff‖₂ vs scipy σ_max(W_dyn): max relative error"]["value"] <= 1e-5
    best = max(a["accuracy"]["mean"] for a in record["results"]["arms"])
    baseline = record["results"]["linear_baseline_accuracy"]
    check = checks["best arm's mean test accuracy vs a logistic-regression baseline"]
    assert check["value"] == best and check["passed"] == (best >= baseline)
    assert record["negative_control"]["name"].startswith("standard/SN recurrent trained on "
                                                         "permuted labels")
    assert (path.parent / "track-27-results.svg").stat().st_size > 10_000


def test_markdown_table_is_generated_from_the_json(svhn_record: tuple[dict, Path]) -> None:
    record, path = svhn_record
    table = write_table(path).read_text()
    assert "## Claimed (write-up) beside measured" in table
    assert "| Standard LoopedMLP | 57.2 |" in table
    assert table.count("\n| standard |") == 3 + 2  # three arms, two comparisons
    edited = json.loads(path.read_text())
    edited["results"]["arms"][0]["accuracy"]["mean"] = 0.123456
    assert "12.35 ±" in benchmark_markdown(edited) and "12.35 ±" not in table


def test_tables_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert tables_main([str(tmp_path / "absent.json")]) == 2
    (tmp_path / "plain.json").write_text(json.dumps({"track": 3}))
    assert tables_main([str(tmp_path / "plain.json")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("tracks.tables: error:") for e in errors)


@pytest.mark.parametrize(("number", "name"), [(26, "fashion_mnist"), (27, "svhn"),
                                              (28, "cifar10")])
def test_absent_dataset_skips_with_the_fetch_command(
        number: int, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("EQPROP_DATA", str(tmp_path / "empty"))
    record = run_track(number, out_dir=tmp_path).record
    assert record["status"] == "skip"
    assert f"python -m eqprop_core.data fetch {name} --root {tmp_path / 'empty'}" in \
        record["skip_reason"]
    assert main(["--track", str(number), "--out", str(tmp_path)]) == 0
    assert "SKIPPED" in capsys.readouterr().out


def test_mnist_full_profile_falls_back_to_the_10k_split(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    write_mnist_raw(tmp_path / "mnist", "t10k", 10_000, gz=True, seed=0)
    monkeypatch.setenv("EQPROP_DATA", str(tmp_path))
    ctx = TrackContext(25, "MNIST", profile="full")
    data, identity = load_benchmark_data(ctx, MNIST, PROFILES["full"])
    assert data.title.startswith("MNIST-10k split") and data.x_train.shape[0] == 5000
    assert (identity.name, identity.n_train) == ("mnist10k", 5000)  # what the cells load
    assert "python -m eqprop_core.data fetch mnist --root" in ctx.notes[0]


def test_profiles_follow_the_issue() -> None:
    quick, full = PROFILES["quick"], PROFILES["full"]
    assert quick.seeds >= 3 and full.seeds >= 5
    assert (full.n_train, full.n_test, full.hidden, full.steps[0]) == (5000, 1000, 384, 30)
    assert 25 <= full.epochs <= 30 and 5e-4 in full.rates
    with pytest.raises(ValueError):
        Setup(n_train=10, n_test=10, hidden=4, epochs=1, seeds=1, rates=(1e-3,))
    assert not math.isnan(quick.validation)


def test_mnist_without_any_mnist_files_skips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    monkeypatch.setenv("EQPROP_DATA", str(tmp_path))
    for profile in ("quick", "full"):
        record = run_track(25, profile=profile).record
        assert record["status"] == "skip", record.get("error")
        assert f"python -m eqprop_core.data fetch mnist10k --root {tmp_path}" in \
            record["skip_reason"]


def test_same_seed_same_results(svhn_record: tuple[dict, Path], tmp_path: Path) -> None:
    record, path = svhn_record
    root = path.parent.parent / "again"
    write_svhn_mat(root / "svhn" / "train_32x32.mat", 80, 0)
    write_svhn_mat(root / "svhn" / "test_32x32.mat", 40, 1)
    ctx = TrackContext(27, "SVHN (synthetic plumbing)", out_dir=tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EQPROP_DATA", str(root))
        run_benchmark(ctx, Benchmark("svhn", claimed=CLAIMED_SVHN), TINY)
    again = finish(ctx, "D", "plumbing", time.perf_counter()).record
    assert canonical_record(again)[0] == canonical_record(record)[0]
