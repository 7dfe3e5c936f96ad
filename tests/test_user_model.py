"""Certify your own model (`--model`): the example user model outside the package is certified
by tracks 1–16 (or skipped with a reason), a broken one (‖W‖₂ = 3, no SN) is refused by the
contraction tracks, and bad `--model` input is a one-line usage error."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from eqprop_core import LoopedMLP
from properties.fixed_model import FixedModel, ModelProtocolError, load_fixed_model
from tracks.registry import all_tracks
from tracks.run import main, run_track

EXAMPLE = "examples.user_model"
CONTRACTION_TRACKS = (2, 3, 4)
PREMISE = "certified contraction: max L = ||W_eff||_2 sup|phi'| (scipy) < 1"


@pytest.fixture(scope="module")
def user_model() -> FixedModel:
    return load_fixed_model(f"{EXAMPLE}:build")


@pytest.mark.parametrize("number", range(1, 17), ids=lambda n: f"track-{n:02d}")
def test_example_model_is_certified_or_skipped_with_a_reason(number: int, user_model: FixedModel,
                                                               tmp_path: Path) -> None:
    record = run_track(number, model=user_model, out_dir=tmp_path).record
    assert record["model"] == repr(user_model)
    if record["status"] == "skip":
        assert str(number) in record["skip_reason"] or "lacks" in record["skip_reason"]
        return
    failed = [c["name"] for c in record["checks"] if not c["passed"]]
    assert record["status"] == "pass", record.get("error") or failed
    assert record["negative_control"]["failed_as_expected"]


def test_every_contraction_track_takes_a_model() -> None:
    tracks = all_tracks()
    for number in CONTRACTION_TRACKS:
        assert tracks[number].model_requires is not None


def test_broken_model_is_refused_by_the_contraction_tracks(tmp_path: Path, capsys) -> None:
    code = main(["--model", f"{EXAMPLE}:broken", "--track", "2-4", "--out", str(tmp_path),
                 "--quiet"])
    assert code == 1
    for number in CONTRACTION_TRACKS:
        record = json.loads((tmp_path / f"track-{number:02d}.json").read_text())
        assert record["status"] == "fail"
        premise = next(c for c in record["checks"] if c["name"] == PREMISE)
        assert not premise["passed"] and math.isclose(premise["value"], 3.0, rel_tol=1e-9)
        assert record["negative_control"]["failed_as_expected"]  # refused, not broken
    uniqueness = json.loads((tmp_path / "track-03.json").read_text())
    spread = next(c for c in uniqueness["checks"] if c["name"] == "max spread of h* over starts")
    assert not spread["passed"] and spread["value"] > 1e-3  # several equilibria really exist
    assert "0 certified, 3 failed" in capsys.readouterr().out


def test_example_model_by_file_path_and_certificate_names_it(tmp_path: Path) -> None:
    out, badges = tmp_path / "out", tmp_path / "badges"
    code = main(["--model", "examples/user_model.py:build", "--track", "3", "7", "--out",
                 str(out), "--badges", str(badges), "--quiet"])
    assert code == 0
    skipped = json.loads((out / "track-07.json").read_text())
    assert skipped["status"] == "skip" and "does not certify a given model" in \
        skipped["skip_reason"]
    certificate = (badges / "CERTIFICATE.md").read_text()
    assert r"Model certified: FixedModel('examples/user\_model.py:build'" in certificate


def test_structured_parametrization_skips_the_witness_chain_rule_tracks(tmp_path: Path) -> None:
    banded = load_fixed_model(f"{EXAMPLE}:banded")
    assert banded.unmet(("standard_parametrization",))
    assert not banded.unmet(("symmetric", "spectral_norm"))
    record = run_track(3, model=banded, out_dir=tmp_path).record
    assert record["status"] == "pass"


@pytest.mark.parametrize("target, message", [
    ("no_such_module:build", "cannot import no_such_module"),
    (f"{EXAMPLE}:missing", "has no callable 'missing'"),
    (f"{EXAMPLE}", "expected 'package.module:factory'"),
    ("examples/absent.py:build", "no file examples/absent.py"),
    ("builtins:dict", "not an eqprop_core.LoopedMLP"),
])
def test_bad_model_is_a_one_line_usage_error(target: str, message: str, capsys) -> None:
    assert main(["--model", target, "--track", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_protocol_violations_name_the_problem() -> None:
    model = LoopedMLP(3, 4, 2, dtype=torch.float64)
    with torch.no_grad():
        model.W[0, 0] = float("nan")
    with pytest.raises(ModelProtocolError, match="parameter W has non-finite entries"):
        FixedModel(model, "test:nan")
    model = LoopedMLP(3, 4, 2, dtype=torch.float64)
    model.n_in = 5  # the declared width disagrees with U
    with pytest.raises(ModelProtocolError, match="parameter U has shape"):
        FixedModel(model, "test:shape")


def test_fixed_model_builds_independent_float64_copies(user_model: FixedModel) -> None:
    a, b = user_model.build(), user_model.build()
    assert a.dtype == torch.float64 and a is not b
    with torch.no_grad():
        a.W.add_(1.0)
    assert torch.equal(b.W, user_model.model.W.double())
    rescaled = user_model.with_(weight_scale=2.0, drive_scale=0.5, spectral_norm=False)
    assert math.isclose(rescaled.weight_scale, 2.0, rel_tol=1e-12)
    built = rescaled.build()
    assert not built.spectral_norm and torch.allclose(built.U, 0.5 * user_model.model.U.double())
    assert repr(user_model) != repr(rescaled) and user_model.digest in repr(rescaled)
    with pytest.raises(ValueError, match="cannot change 'n_hidden'"):
        user_model.with_(n_hidden=3)


# -- the digest covers what defines the model -------------------------------------------------
def _twin(model: LoopedMLP, cls: type = LoopedMLP, **changes: object) -> LoopedMLP:
    """A model of the same widths and raw parameters, with configuration `changes`."""
    config = {"symmetric": model.symmetric, "spectral_norm": model.spectral_norm,
              "gamma": model.gamma, "activation": model.activation.name,
              "dtype": model.dtype, **changes}
    twin = cls(model.n_in, model.n_hidden, model.n_out, **config)
    twin.load_state_dict({k: v.to(twin.dtype) for k, v in model.state_dict().items()})
    return twin


def test_the_digest_covers_class_configuration_and_parameters() -> None:
    from examples.user_model import BandedLoopedMLP

    base = LoopedMLP(3, 4, 2, spectral_norm=True, gamma=0.9, dtype=torch.float64)
    digest = FixedModel(base, "t:sn").digest
    assert FixedModel(_twin(base), "t:again").digest == digest  # the same model: the same
    twins = {"SN off": _twin(base, spectral_norm=False), "gamma 0.5": _twin(base, gamma=0.5),
             "sigmoid": _twin(base, activation="sigmoid"),
             "subclass": _twin(base, BandedLoopedMLP),
             "io SN": _twin(base, io_spectral_norm=True),
             "subspace SN": _twin(base, sn_method="subspace"),
             "float32": _twin(base, dtype=torch.float32)}
    digests = {name: FixedModel(m, "t:x").digest for name, m in twins.items()}
    assert all(d != digest for d in digests.values()), digests
    assert len(set(digests.values())) == len(digests)
    changed = _twin(base)
    with torch.no_grad():
        changed.c[0] += 1e-12
    assert FixedModel(changed, "t:c").digest != digest


# -- user modules that misbehave, models too big ----------------------------------------------
@pytest.mark.parametrize("body, raised", [
    ("import sys\nsys.exit(7)\n", "SystemExit: 7"),
    ("raise SystemExit('bye')\n", "SystemExit: bye"),
    ("import sys\ndef build():\n    sys.exit(3)\n", "SystemExit: 3"),
], ids=["exit-on-import", "systemexit-on-import", "exit-in-factory"])
@pytest.mark.parametrize("form", ["module", "file"])
def test_a_module_that_exits_is_a_one_line_usage_error(body: str, raised: str, form: str,
                                                       tmp_path: Path, capsys,
                                                       monkeypatch) -> None:
    (tmp_path / "exiting_model.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    target = "exiting_model:build" if form == "module" else \
        f"{tmp_path / 'exiting_model.py'}:build"
    assert main(["--model", target, "--track", "2", "--out", str(tmp_path / "out")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"--model {target!r}" in line and raised in line, line
    assert not (tmp_path / "out").exists()


def test_a_model_above_the_hidden_limit_is_refused_naming_how_to_lift_it(tmp_path: Path,
                                                                         capsys) -> None:
    (tmp_path / "wide.py").write_text(
        "import torch\nfrom eqprop_core import LoopedMLP\n"
        "def huge():\n    return LoopedMLP(5, 4000, 3, dtype=torch.float64)\n"
        "def wide():\n    return LoopedMLP(5, 1001, 3, dtype=torch.float64)\n")
    huge = f"{tmp_path / 'wide.py'}:huge"
    assert main(["--model", huge, "--track", "2", "--out", str(tmp_path / "out")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "n_hidden 4000 (16M recurrent weights) is above the limit 1000" in line
    assert "64x a model at the limit" in line and line.endswith("pass --max-hidden 4000")
    assert not (tmp_path / "out").exists()
    wide = f"{tmp_path / 'wide.py'}:wide"
    assert main(["--model", wide, "--track", "7", "--out", str(tmp_path / "out"),
                 "--max-hidden", "1001", "--quiet"]) == 0  # lifted: runs (7 skips a model)
    assert json.loads((tmp_path / "out" / "track-07.json").read_text())["status"] == "skip"
    assert main(["--model", wide, "--track", "7", "--max-hidden", "zero"]) == 2
    assert "invalid --max-hidden 'zero'" in capsys.readouterr().err
