"""Track records on disk: written atomically, read back only if they match their JSON Schema.

A record (`DIR/track-NN.json`) follows `tracks/record.schema.json` (draft 2020-12, field
`schema_version`); a run's manifest (`DIR/manifest.json`, `tracks.manifest`) follows
`tracks/manifest.schema.json`. Every reader goes through `read_record` / `read_manifest`: a file
that is not UTF-8, not JSON, or not of the schema raises `RecordError` (a ValueError) whose
one-line message names the file and the reason — never a TypeError or KeyError further on.

Every write goes through `atomic_write_text`: the bytes go to a temporary file in the same
directory, are fsynced, and `os.replace` puts them in place — a reader sees the old file or the
new one, never a truncated or empty one, and a failed write leaves the old file as it was.
"""

from __future__ import annotations

import json
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
SCHEMA_DIR = Path(__file__).resolve().parent
REASON_CHARS = 160  # a schema error quotes the offending value: keep the line readable


class RecordError(ValueError):
    """A results file that cannot be used: the message names the file and says why."""


def atomic_write_text(path: Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` so that no reader ever sees a partial file."""
    path = Path(path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would differ from a plain write
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_json(path: Path, value: Any) -> Path:
    """`value` as strict JSON (no NaN / Infinity), indented, atomically."""
    return atomic_write_text(path, json.dumps(value, indent=2, allow_nan=False) + "\n")


@cache
def _validator(name: str) -> Any:
    import jsonschema

    schema = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _shortened(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= REASON_CHARS else text[:REASON_CHARS - 1] + "…"


def schema_error(instance: Any, schema: str) -> str | None:
    """Why `instance` does not match the schema file `schema` (one line), or None."""
    from jsonschema.exceptions import best_match

    error = best_match(_validator(schema).iter_errors(instance))
    if error is None:
        return None
    where = "" if not error.absolute_path else f"at {error.json_path}: "
    return _shortened(f"{where}{error.message}")


def read_json_file(path: Path) -> Any:
    """The JSON value in `path`; RecordError naming the file if unreadable, not UTF-8 or not
    JSON (NaN / Infinity included: the runner never writes them)."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise RecordError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RecordError(f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset "
                          f"{err.start})") from None

    def refuse(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    try:
        return json.loads(text, parse_constant=refuse)
    except ValueError as err:
        raise RecordError(f"{path}: not JSON ({_shortened(str(err))})") from None


def validated(value: Any, schema: str, path: Path, what: str) -> dict[str, Any]:
    reason = schema_error(value, schema)
    if reason is not None:
        raise RecordError(f"{path}: not a valid {what} (schema version {SCHEMA_VERSION}): "
                          f"{reason}")
    return value


def read_record(path: Path) -> dict[str, Any]:
    """A track record that matches `record.schema.json` and the track number of its file name
    (`track-NN.json`); RecordError naming the file and the reason otherwise."""
    record = validated(read_json_file(path), "record.schema.json", path, "track record")
    stem = Path(path).stem
    if stem.startswith("track-") and stem[6:].isdigit() and int(stem[6:]) != record["track"]:
        raise RecordError(f"{path}: holds the record of track {record['track']}, not of track "
                          f"{int(stem[6:])}")
    return record


def read_manifest(path: Path) -> dict[str, Any]:
    """A run manifest that matches `manifest.schema.json`; RecordError otherwise."""
    return validated(read_json_file(path), "manifest.schema.json", path, "run manifest")
