"""A record has a schema (tracks/record.schema.json): every reader names a record that does not
match it, with the reason, in one line — exit 2 from the CLIs, ValueError from the API."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tracks import run as runner
from tracks.manifest import MANIFEST
from tracks.records import SCHEMA_DIR, RecordError, read_record
from tracks.report import certify
from tracks.report import main as report_main
from tracks.tables import main as tables_main


def test_the_schema_is_draft_2020_12_and_every_field_of_the_contract_is_required() -> None:
    schema = json.loads((SCHEMA_DIR / "record.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert {"schema_version", "run_id", "track", "status", "seed", "checks",
            "negative_control", "environment", "skip_reason"} <= set(schema["required"])
    manifest = json.loads((SCHEMA_DIR / "manifest.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(manifest)


@pytest.fixture
def results(fake_tracks, tmp_path: Path) -> Path:
    """A run of tracks 1 (pass) and 2 (fail) with valid records."""
    assert runner.main(["--track", "1", "2", "--out", str(tmp_path), "--quiet"]) == 1
    return tmp_path


def valid(results: Path) -> dict:
    return json.loads((results / "track-01.json").read_text())


BAD_RECORDS = {
    "json-list": (lambda r: [1, 2], "[1, 2] is not of type 'object'"),
    "missing-checks": (lambda r: {k: v for k, v in r.items() if k != "checks"},
                       "'checks' is a required property"),
    "unknown-status": (lambda r: {**r, "status": "certified"},
                       "at $.status: 'certified' is not one of ['pass', 'fail', 'skip']"),
    "foo-bar": (lambda r: {"foo": "bar"}, "is a required property"),
    "status-only": (lambda r: {"status": "FAIL"}, "is a required property"),
    "string-seed": (lambda r: {**r, "seed": "<script>alert(1)</script>"},
                    "at $.seed: '<script>alert(1)</script>' is not of type 'integer'"),
    "newer-schema": (lambda r: {**r, "schema_version": 2}, "at $.schema_version: 1 was "
                     "expected"),
    "check-without-verdict": (lambda r: {**r, "checks": [{"name": "x", "value": 1,
                                                          "bound": "<= 1"}]},
                              "at $.checks[0]: 'passed' is a required property"),
}


@pytest.mark.parametrize("case", BAD_RECORDS, ids=list(BAD_RECORDS))
def test_an_invalid_record_is_named_with_the_reason(case: str, results: Path, capsys) -> None:
    make, reason = BAD_RECORDS[case]
    path = results / "track-01.json"
    path.write_text(json.dumps(make(valid(results))))
    with pytest.raises(RecordError) as raised:
        read_record(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: not a valid track record (schema version 1): ")
    assert reason in message and "\n" not in message
    capsys.readouterr()
    for cli, args in ((report_main, [str(results), "--badges", str(results / "badges")]),
                      (runner.main, ["--failed-only", "--out", str(results)])):
        assert cli(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(path) in err[0] and reason in err[0], err
    assert not (results / "badges" / "CERTIFICATE.html").exists()
    assert json.loads((results / "track-02.json").read_text())["status"] == "fail"  # not rerun


@pytest.mark.parametrize("content, reason", [
    (b"\xff\xfe{\"track\": 1}", "not UTF-8 text (byte 0xff at offset 0)"),
    (b"{not json", "not JSON (Expecting property name enclosed in double quotes"),
    (b"", "not JSON (Expecting value: line 1 column 1"),
    (b'{"track": NaN}', "not JSON (non-standard JSON constant NaN)"),
], ids=["non-utf8", "not-json", "empty", "nan"])
def test_an_unreadable_record_is_named(content: bytes, reason: str, results: Path,
                                       capsys) -> None:
    path = results / "track-02.json"
    path.write_bytes(content)
    capsys.readouterr()
    assert report_main([str(results), "--badges", str(results / "badges")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"tracks.report: error: {path}: {reason}" or (
        line.startswith(f"tracks.report: error: {path}: ") and reason in line), line
    assert runner.main(["--failed-only", "--out", str(results)]) == 2  # refused, not rerun
    assert reason in capsys.readouterr().err
    assert tables_main([str(path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"tracks.tables: error: {path}: ") and reason in line


def test_a_record_in_the_wrong_file_is_named(results: Path) -> None:
    (results / "track-01.json").write_text((results / "track-02.json").read_text())
    with pytest.raises(ValueError, match="holds the record of track 2, not of track 1"):
        certify(results, results / "badges")


def test_failed_only_in_a_directory_without_a_manifest_is_refused(results: Path,
                                                                  capsys) -> None:
    (results / MANIFEST).unlink()
    assert runner.main(["--failed-only", "--out", str(results)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "reruns inside the run recorded in" in line and "there is none" in line


def test_every_record_the_runner_writes_validates(results: Path) -> None:
    for path in results.glob("track-0?.json"):
        assert read_record(path)["schema_version"] == 1
