"""The benchmark matrix as cells: setups from files, pure cells, the cache, resume, and Ray.

The matrix here is small synthetic SVHN (the real on-disk format, through the real loader) with
2 variants × 2 SN arms, 3 seeds, one epoch: 4 × (2 rates + 3 seeds) + 1 control = 21 cells. It
tests that every executor and every resumed run assembles the same record, never an accuracy.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest

import tracks.benchmark as benchmark
from tracks.benchmark import CLAIMED_SVHN, Benchmark, run_benchmark
from tracks.cells import CellCache, DataIdentity, code_version, run_cell
from tracks.context import TrackContext, canonical_bytes, canonical_record, finish
from tracks.executors import MatrixOptions, SerialExecutor
from tracks.run import main
from tracks.setups import PROFILES, SETUPS, Setup, load_setup

from .extras import hide_module
from .test_data import write_svhn_mat

SMALL = Setup(n_train=None, n_test=None, hidden=8, epochs=1, seeds=3, rates=(3e-3, 1e-2),
              steps=(10, 5), variants=("standard", "directed"), sn_modes=("off", "recurrent"))
CELLS = 4 * (2 + 3) + 1


@pytest.fixture()
def svhn_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "data"
    write_svhn_mat(root / "svhn" / "train_32x32.mat", 80, 0)
    write_svhn_mat(root / "svhn" / "test_32x32.mat", 40, 1)
    monkeypatch.setenv("EQPROP_DATA", str(root))
    return root


def matrix(out: Path | None, options: MatrixOptions | None = None) -> dict[str, Any]:
    ctx = TrackContext(27, "SVHN (synthetic plumbing)", out_dir=out, matrix=options)
    run_benchmark(ctx, Benchmark("svhn", claimed=CLAIMED_SVHN), SMALL)
    return finish(ctx, "D", "plumbing", time.perf_counter()).record


class Interrupting(SerialExecutor):
    """A serial executor killed (KeyboardInterrupt) after `after` cells."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.left = after

    def next_done(self) -> tuple[Any, dict[str, Any]]:
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return super().next_done()


def test_the_built_in_profiles_are_the_setup_files() -> None:
    assert PROFILES["quick"] == load_setup(SETUPS / "quick.toml")
    assert PROFILES["quick"] == Setup(n_train=3000, n_test=1000, hidden=128, epochs=4, seeds=3,
                                      rates=(1e-3, 3e-3))
    assert PROFILES["full"] == Setup(n_train=5000, n_test=1000, hidden=384, epochs=25,
                                     seeds=5, rates=(5e-4, 1e-3, 2e-3))


@pytest.mark.parametrize(("text", "named"), [
    ("hidden = 8\nepochs = 1\nseeds = 3\nrates = [1e-3]\nwidth = 3", "width"),
    ("hidden = 8\nepochs = 1\nseeds = 3", "rates"),
    ("hidden = 'wide'\nepochs = 1\nseeds = 3\nrates = [1e-3]", "hidden"),
    ("hidden = 8\nepochs = 1\nseeds = 3\nrates = [1e-3]\nvalidation = 1.5", "validation"),
    ("hidden = 8\nepochs = 1\nseeds = 1\nrates = [1e-3]", "2 seeds"),
    ("hidden = 8\nepochs = 1\nseeds = 3\nrates = [1e-3]\nvariants = ['bogus']", "bogus"),
    ("hidden = 8\nepochs = 1\nseeds = 3\nrates = [1e-3]\nn_train = 10", "n_test"),
    ("hidden = [8", "not TOML"),
])
def test_a_bad_setup_file_is_one_error_naming_the_value(tmp_path: Path, text: str,
                                                         named: str) -> None:
    path = tmp_path / "setup.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=named) as err:
        load_setup(path)
    assert "\n" not in str(err.value)


def test_the_cli_refuses_a_bad_setup_and_a_missing_ray(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("hidden = 8\nepochs = 1\nseeds = 3\nrates = [-1.0]")
    assert main(["--track", "25", "--setup", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "rates" in capsys.readouterr().err
    hide_module(monkeypatch, "ray")
    assert main(["--track", "25", "--executor", "ray", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert 'pip install -e ".[ray]"' in err and len(err.strip().splitlines()) == 1


def test_a_cell_is_pure_and_refuses_other_data(svhn_root: Path) -> None:
    ctx = TrackContext(27, "SVHN", out_dir=None)
    _, identity = benchmark.load_benchmark_data(ctx, Benchmark("svhn"), SMALL)
    spec = benchmark.cell_specs(ctx, SMALL, identity, "seed", "standard", "recurrent", [1],
                                [3e-3])[0]
    first, again = run_cell(spec), run_cell(dataclasses.asdict(spec))
    assert json.loads(json.dumps(first)) == first  # JSON round-trips it exactly
    first, again = canonical_record(first)[0], canonical_record(again)[0]  # timings aside
    assert first == again
    assert first["spec"]["seed"] == 1 and first["code_version"] == code_version()
    assert len(first["run"]["history"]) == SMALL.epochs + 1
    other = dataclasses.replace(spec, data=DataIdentity(identity.name, None, None, "0" * 64))
    with pytest.raises(ValueError, match="every node must see the same data root"):
        run_cell(other)


def test_resumed_and_cached_runs_write_the_same_record(svhn_root: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    reference = matrix(tmp_path / "reference")
    assert reference["status"] in ("pass", "fail") and "error" not in reference
    assert reference["execution"] == {
        "executor": "serial", "workers": 1, "cells": CELLS, "computed": CELLS, "cached": 0,
        "cache": str(tmp_path / "reference" / "cells" / "track-27")}
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        patch.setattr(benchmark, "make_executor", lambda options: Interrupting(8))
        with pytest.raises(KeyboardInterrupt):
            matrix(out)
    cells = out / "cells" / "track-27"
    assert len(list(cells.glob("*.json"))) == 8 and not list(cells.glob(".cell-*"))
    resumed = matrix(out)
    assert (resumed["execution"]["computed"], resumed["execution"]["cached"]) == (CELLS - 8, 8)
    assert canonical_bytes(resumed) == canonical_bytes(reference)
    cached = matrix(out)
    assert (cached["execution"]["computed"], cached["execution"]["cached"]) == (0, CELLS)
    assert canonical_bytes(cached) == canonical_bytes(reference)
    fresh = matrix(out, MatrixOptions(fresh=True))
    assert fresh["execution"]["computed"] == CELLS
    assert canonical_bytes(fresh) == canonical_bytes(reference)


def test_a_cached_record_of_another_spec_is_not_used(tmp_path: Path, svhn_root: Path) -> None:
    ctx = TrackContext(27, "SVHN", out_dir=None)
    _, identity = benchmark.load_benchmark_data(ctx, Benchmark("svhn"), SMALL)
    spec, other = benchmark.cell_specs(ctx, SMALL, identity, "rate", "standard", "off", [0],
                                       [3e-3, 1e-2])
    cache = CellCache(tmp_path)
    record = run_cell(spec)
    cache.put(spec, record)
    assert cache.get(spec) == record and cache.get(other) is None
    (tmp_path / f"{other.key()}.json").write_text(json.dumps(record))  # a misplaced file
    assert cache.get(other) is None
    assert CellCache(tmp_path, fresh=True).get(spec) is None


def test_the_ray_executor_writes_the_serial_record(svhn_root: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason='Ray is not installed: pip install -e ".[ray]"')
    reference = matrix(tmp_path / "serial")
    on_ray = matrix(tmp_path / "ray", MatrixOptions(executor="ray", workers=2))
    assert on_ray["execution"]["executor"] == "ray" and on_ray["execution"]["computed"] == CELLS
    assert canonical_bytes(on_ray) == canonical_bytes(reference)


def test_the_matrix_exports_every_seed_run_and_the_control(svhn_root: Path,
                                                            tmp_path: Path) -> None:
    ctx = TrackContext(27, "SVHN (synthetic plumbing)", out_dir=tmp_path, exports=("csv",))
    run_benchmark(ctx, Benchmark("svhn", claimed=CLAIMED_SVHN), SMALL)
    runs = tmp_path / "runs" / "track-27"
    found = sorted(str(p.relative_to(runs)) for p in runs.rglob("*.csv"))
    arms = [f"{v}_{label}" for v in SMALL.variants for label in ("no_SN", "SN_recurrent")]
    assert found == sorted([*(f"{arm}/seed-{s}.csv" for arm in arms for s in range(3)),
                            "control_permuted_labels/seed-0.csv"])
    assert len((runs / arms[0] / "seed-0.csv").read_text().splitlines()) == SMALL.epochs + 2
