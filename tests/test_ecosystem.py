"""The conventions researchers expect: one console command, provenance in every record and
certificate, typed packages, license and citation files, live-badge JSON, and a Hypothesis
internal that fails loudly when it moves."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import jsonschema
import pytest

from tracks import cli
from tracks.context import environment
from tracks.provenance import commit, describe, version
from tracks.report import endpoint

ROOT = Path(__file__).resolve().parent.parent
# shields.io's endpoint badge (https://shields.io/badges/endpoint-badge): the required keys and
# their types; `color` a named or hex colour.
ENDPOINT_SCHEMA = {
    "type": "object",
    "required": ["schemaVersion", "label", "message", "color"],
    "properties": {"schemaVersion": {"const": 1}, "label": {"type": "string"},
                   "message": {"type": "string", "minLength": 1},
                   "color": {"type": "string", "minLength": 1},
                   "isError": {"type": "boolean"}},
}


def test_every_subcommand_has_help_under_the_console_name(capsys: pytest.CaptureFixture
                                                          ) -> None:
    for name in cli.COMMANDS:
        with pytest.raises(SystemExit) as done:
            cli.main([name, "--help"])
        assert done.value.code == 0
        assert f"usage: eqprop-verify {name}" in capsys.readouterr().out


def test_the_console_refuses_an_unknown_command_in_one_line(capsys: pytest.CaptureFixture
                                                            ) -> None:
    assert cli.main(["certify-everything"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "run, report, sweep" in err
    assert cli.main([]) == 2 and "usage: eqprop-verify COMMAND" in capsys.readouterr().err
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"eqprop-verify {describe()}"


@pytest.mark.skipif(shutil.which("eqprop-verify") is None,
                    reason="the console script is not installed: pip install -e .")
def test_the_installed_console_script_runs() -> None:
    done = subprocess.run(["eqprop-verify", "--version"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("eqprop-verify ")


def test_provenance_names_the_version_and_the_checkout_commit() -> None:
    assert version() == metadata.version("eqprop-verify")
    env = environment("cpu")
    assert env["eqprop_verify"] == version()
    if (ROOT / ".git").exists() and shutil.which("git"):
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        assert commit() is not None and commit().startswith(head)
        assert env["eqprop_verify_commit"] == commit()


def test_a_run_with_badges_names_the_verifier_and_writes_endpoint_json(tmp_path: Path
                                                                       ) -> None:
    out, badges = tmp_path / "results", tmp_path / "b"
    assert cli.main(["run", "--track", "2", "--out", str(out), "--badges", str(badges),
                     "--quiet"]) == 0
    certificate = (badges / "CERTIFICATE.md").read_text()
    html = (badges / "CERTIFICATE.html").read_text()
    for text in (certificate, html):
        assert f"verifier {describe()}" in text
    record = json.loads((out / "track-02.json").read_text())
    assert record["environment"]["eqprop_verify"] == version()
    summary = json.loads((badges / "summary.json").read_text())
    jsonschema.validate(summary, ENDPOINT_SCHEMA)
    assert summary == {"schemaVersion": 1, "label": "eqprop-verify",
                       "message": "1/1 certified", "color": "green"}
    per_track = json.loads((badges / "track-02.shields.json").read_text())
    jsonschema.validate(per_track, ENDPOINT_SCHEMA)
    assert per_track["message"] == "certified"
    with pytest.raises(jsonschema.ValidationError):  # the schema can fail
        jsonschema.validate({**endpoint("a", "b", "red"), "schemaVersion": 2}, ENDPOINT_SCHEMA)


def test_packages_are_typed_and_the_project_is_licensed_and_citable() -> None:
    for package in ("eqprop_core", "theory", "properties", "tracks", "benchmarks"):
        assert (ROOT / package / "py.typed").is_file(), package
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    citation = (ROOT / "CITATION.cff").read_text()
    assert "cff-version: 1.2.0" in citation and f"version: {version()}" in citation


def test_the_hypothesis_patch_fails_loudly_when_its_internal_moves(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import hypothesis
    from hypothesis.internal.conjecture import providers

    from properties.profiles import HypothesisInternalsChanged, draws_depend_only_on_seed

    hook = providers._get_local_constants
    with draws_depend_only_on_seed():
        assert providers._get_local_constants is not hook  # patched inside
    assert providers._get_local_constants is hook  # and restored
    monkeypatch.delattr(providers, "_get_local_constants")
    with pytest.raises(HypothesisInternalsChanged, match=hypothesis.__version__):
        with draws_depend_only_on_seed():
            pass
    monkeypatch.setattr(hypothesis, "__version__", "6.100.0")  # before the harvesting
    with draws_depend_only_on_seed():
        pass


def test_the_pinned_hypothesis_range_admits_the_installed_one() -> None:
    import tomllib
    from packaging.specifiers import SpecifierSet

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pin = next(d for d in project["dependencies"] if d.startswith("hypothesis"))
    import hypothesis

    assert hypothesis.__version__ in SpecifierSet(pin.removeprefix("hypothesis"))
    assert sys.version_info >= (3, 11)  # tomllib: requires-python says >= 3.11
