"""Training trajectories exported as CSV and TensorBoard event files (`--export`)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from eqprop_core.train import EpochRecord, TrainingRun
from tracks.context import canonical_bytes
from tracks.exports import RunExporter, slug
from tracks.run import main, run_track

from .extras import hide_module

METRICS = ("test_accuracy", "test_loss", "converged_share", "sigma_eff", "lipschitz", "rho")


def test_track_18_exports_what_tensorboards_reader_loads(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason='TensorBoard is not installed: '
                        'pip install -e ".[tensorboard]"')
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    plain = run_track(18, out_dir=tmp_path / "plain").record
    exported = run_track(18, out_dir=tmp_path / "out", exports=("csv", "tensorboard")).record
    assert canonical_bytes(plain) == canonical_bytes(exported)  # exporting changes no result
    assert exported["exports"]["files"] == 6  # 3 SN arms x (CSV + event file)
    runs = tmp_path / "out" / "runs" / "track-18"
    arms = sorted(p.name for p in runs.iterdir())
    assert arms == ["digits_SN_all", "digits_SN_off", "digits_SN_recurrent"]
    lengths = set()
    for arm in arms:
        with open(runs / arm / "seed-0.csv", newline="") as handle:
            table = list(csv.DictReader(handle))
        assert [int(row["epoch"]) for row in table] == list(range(len(table)))  # one per epoch
        lengths.add(len(table))
        events = EventAccumulator(str(runs / arm / "seed-0"))
        events.Reload()
        tags = set(events.Tags()["scalars"])
        assert set(METRICS) <= tags and "sigma_scipy" in tags
        for metric in METRICS:
            scalars = events.Scalars(metric)
            assert [s.step for s in scalars] == [int(r["epoch"]) for r in table if r[metric]]
            assert [s.value for s in scalars] == pytest.approx(
                [float(r[metric]) for r in table if r[metric]], rel=1e-6)  # float32 events
    assert len(lengths) == 1 and lengths.pop() >= 3  # epoch 0 (the start) and every epoch


def _run(seed: int) -> TrainingRun:
    history = [EpochRecord(e, None if e == 0 else 0.5, None, 0.1 * e, 1.0, 1.0, 0.0, 0.0, 0.9,
                           0.9, 0.8, 0.0, 0.0, {"sigma_raw": 1.1}) for e in range(3)]
    return TrainingRun("EqProp", 1e-3, 2, seed, 1e-6, history)


def test_runs_group_by_arm_and_never_overwrite(tmp_path: Path) -> None:
    exporter = RunExporter(tmp_path, ("csv",))
    for arm, seed in (("EqProp (symmetric)", 0), ("EqProp (symmetric)", 1),
                      ("EqProp (symmetric)", 0)):
        exporter.export(arm, _run(seed))
    assert sorted(p.name for p in (tmp_path / "EqProp_symmetric").iterdir()) == [
        "seed-0-2.csv", "seed-0.csv", "seed-1.csv"]
    rows = list(csv.DictReader(open(tmp_path / "EqProp_symmetric" / "seed-1.csv")))
    assert len(rows) == 3 and rows[0]["train_accuracy"] == "" and rows[2]["sigma_raw"] == "1.1"
    assert slug("a/b: ../c") == "a_b_.._c" and slug("///") == "run"


def test_export_refuses_an_unknown_format_and_a_missing_tensorboard(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    assert main(["--track", "18", "--export", "parquet", "--out", str(tmp_path)]) == 2
    assert "csv, tensorboard" in capsys.readouterr().err
    hide_module(monkeypatch, "tensorboard")
    assert main(["--track", "18", "--export", "tensorboard", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert 'pip install -e ".[tensorboard]"' in err and len(err.splitlines()) == 1
