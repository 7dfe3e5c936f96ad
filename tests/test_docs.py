"""The docs are generated from the code and kept small (issue 18): `docs/TRACKS.md` is what
`python -m tracks.docs` renders now, it names every track and every declared bound with its
reason, and the README stays a front page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tracks import docs
from tracks.registry import all_tracks

ROOT = Path(__file__).resolve().parent.parent


def test_tracks_page_is_not_stale() -> None:
    assert docs.PAGE.read_text() == docs.render(), (
        "docs/TRACKS.md is stale: regenerate it with python -m tracks.docs")


def test_the_page_lists_every_track_bound_reason_and_control() -> None:
    page = docs.render()
    for number, track in all_tracks().items():
        section = page.split(f"### {number}. {track.name}", 1)[1].split("\n### ", 1)[0]
        assert track.claim in section
        assert "**Negative control:** (not stated" not in section, track.name
        for name, bound in docs.bounds_of(track).items():
            assert f"`{name}`" in section and docs._cell(bound.reason) in section


def test_check_mode_fails_on_a_stale_page(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "docs" / "TRACKS.md"
    monkeypatch.setattr(docs, "PAGE", page)
    monkeypatch.setattr(docs, "ROOT", tmp_path)
    assert docs.main(["--check"]) == 1 and "stale" in capsys.readouterr().out
    assert docs.main([]) == 0 and page.read_text() == docs.render()
    assert docs.main(["--check"]) == 0
    page.write_text(page.read_text().replace("Negative control", "Control", 1))
    assert docs.main(["--check"]) == 1


def test_readme_is_a_front_page_whose_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= 10_000, len(readme.encode())
    links = re.findall(r"\]\(((?:docs/)?[\w./-]+\.md)(?:#[\w-]+)?\)", readme)
    assert "docs/TRACKS.md" in links
    for link in links:
        assert (ROOT / link).is_file(), link
    for page in (ROOT / "docs").glob("*.md"):
        for link in re.findall(r"\]\(([\w./-]+\.md)(?:#[\w-]+)?\)", page.read_text()):
            assert (page.parent / link).is_file(), f"{page.name} links to missing {link}"
