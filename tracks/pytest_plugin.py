"""pytest plugin: `pytest --eqprop-system mypkg.mod:build` certifies a System in any project.

Registered as the `pytest11` entry point `eqprop`, so it is active wherever eqprop-verify is
installed; without `--eqprop-system` it does nothing. With it, the session gains one test per
track that runs on a System (`tracks.registry.on_system`), named `eqprop::track_NN_<name>`:
each runs the track through `tracks.run.run_track` — the same code as
`python -m tracks.run --system …` — and passes iff the track is certified, fails with the failed
checks (value against bound) otherwise, and skips with the track's reason (a capability the
System lacks). `--eqprop-tracks 2-6 9` picks tracks, `--eqprop-seed`, `--eqprop-profile` and
`--eqprop-out DIR` (the JSON records, for `python -m tracks.report`) as in the runner.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

OPTION = "--eqprop-system"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("eqprop", "certify an EqProp System (eqprop-verify)")
    group.addoption(OPTION, metavar="MODULE:FACTORY", default=None,
                    help="run eqprop-verify's tracks on FACTORY() (package.module or "
                    "path/to/file.py), one test per track")
    group.addoption("--eqprop-tracks", nargs="+", metavar="N", default=None,
                    help="track numbers or ranges (default: every track that runs on a System)")
    group.addoption("--eqprop-seed", default="0", help="seed (default 0)")
    group.addoption("--eqprop-profile", default="quick", help="quick (default) or full")
    group.addoption("--eqprop-out", default=None, type=Path, metavar="DIR",
                    help="also write each track's JSON record into DIR")


class TrackFailed(AssertionError):
    """A track did not certify the System (its failed checks in the message)."""


class SystemTrackItem(pytest.Item):
    """One track run on the System of `--eqprop-system`."""

    def __init__(self, *, number: int, settings: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.number, self.settings = number, settings

    def runtest(self) -> None:
        from .run import run_track

        result = run_track(self.number, system=self.settings["system"],
                           seed=self.settings["seed"], profile=self.settings["profile"],
                           out_dir=self.settings["out"])
        record = result.record
        if record["status"] == "skip":
            pytest.skip(record["skip_reason"])
        if record["status"] != "pass":
            raise TrackFailed(failure_summary(record))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None
                     ) -> str | TerminalRepr:
        if isinstance(excinfo.value, TrackFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[str, int, str]:
        return "eqprop", self.number, f"track {self.number} on {self.settings['system']!r}"


def failure_summary(record: dict[str, Any]) -> str:
    """The failed checks of a track's record, one per line, with value and bound; the error or
    the control when no check failed."""
    lines = [f"track {record['track']} ({record['name']}) did not certify {record.get('model')}:"]
    lines += [f"  [FAIL] {c['name']}: {c['value']} (bound {c['bound']})"
              for c in record["checks"] if not c["passed"]]
    control = record.get("negative_control") or {}
    if not control.get("failed_as_expected", True) and control.get("name") != "missing":
        lines.append(f"  negative control did not fail: {control.get('name')}")
    if "error" in record:
        lines.append(f"  error: {record['error']}")
    lines += [f"  note: {n}" for n in record.get("notes", [])]
    return "\n".join(lines)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    target = config.getoption(OPTION)
    if target is None:
        return
    from properties.system import load_system

    from .registry import all_tracks, system_entries
    from .run import UsageError, parse_seed, parse_track_numbers

    try:
        seed = parse_seed(config.getoption("--eqprop-seed"))
        implemented = all_tracks()
        runs = system_entries()
        wanted = config.getoption("--eqprop-tracks")
        numbers = (parse_track_numbers(wanted, implemented) if wanted else list(runs))
        system = load_system(target, seed=seed)
    except (UsageError, ValueError) as err:
        raise pytest.UsageError(f"{OPTION}: {err}") from None
    settings = {"system": system, "seed": seed, "profile": config.getoption("--eqprop-profile"),
                "out": config.getoption("--eqprop-out")}
    for n in numbers:
        slug = "".join(c if c.isalnum() else "_" for c in implemented[n].name.lower())
        name = f"track_{n:02d}_{slug}"
        items.append(SystemTrackItem.from_parent(session, name=name, number=n,
                                                 settings=settings))
