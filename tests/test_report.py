"""Badges and the certificate (tracks.report): generated from the JSON only, hashes that ignore
timings and nothing else, and an HTML page that a real headless browser renders."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest

from tracks.report import certify, load_results, main, results_hash
from tracks.run import main as run_main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real results of tracks 3 (no plot) and 4 (a plot), run through the runner."""
    out = tmp_path_factory.mktemp("results")
    assert run_main(["--track", "3", "4", "--out", str(out), "--badges", str(out / "badges"),
                     "--quiet"]) == 0
    return out


def _svg_text(path: Path) -> str:
    root = ElementTree.parse(path).getroot()  # well-formed SVG, or this raises
    assert root.tag.endswith("svg")
    return " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))


def test_runner_writes_one_badge_per_track_a_summary_and_the_report(results: Path) -> None:
    badges = results / "badges"
    assert sorted(p.name for p in badges.iterdir()) == [
        "CERTIFICATE.html", "CERTIFICATE.md", "summary.svg", "track-03.svg", "track-04.svg"]
    assert "track 3 · Fixed-point uniqueness" in _svg_text(badges / "track-03.svg")
    assert "certified" in _svg_text(badges / "track-04.svg")
    assert "2/2 certified" in _svg_text(badges / "summary.svg")


def test_badges_follow_the_json_status(results: Path, tmp_path: Path) -> None:
    for name in ("track-03.json", "track-04.json"):
        shutil.copy(results / name, tmp_path / name)
    record = json.loads((tmp_path / "track-04.json").read_text())
    record["status"] = "fail"
    (tmp_path / "track-04.json").write_text(json.dumps(record))
    certify(tmp_path, tmp_path / "badges")
    assert "failed" in _svg_text(tmp_path / "badges" / "track-04.svg")
    summary = (tmp_path / "badges" / "summary.svg").read_text()
    assert "1/2 certified" in _svg_text(tmp_path / "badges" / "summary.svg")
    green = (results / "badges" / "summary.svg").read_text()
    assert summary != green  # the colour follows the failure


def test_results_hash_ignores_timings_and_nothing_else(results: Path) -> None:
    record = load_results(results, [3])[0]
    timed = json.loads(json.dumps(record))
    timed["duration_s"] += 12.5
    timed["environment"]["platform"] = "elsewhere"
    assert results_hash(timed) == results_hash(record)
    changed = json.loads(json.dumps(record))
    changed["checks"][0]["value"] = float(changed["checks"][0]["value"]) + 1e-12
    assert results_hash(changed) != results_hash(record)


def test_certificate_markdown_holds_the_evidence(results: Path) -> None:
    text = (results / "badges" / "CERTIFICATE.md").read_text()
    record = load_results(results, [4])[0]
    assert "**2/2 tracks certified**" in text
    assert f"Results sha256: `{results_hash(record)}`" in text
    assert record["claim"] in text and record["negative_control"]["name"] in text
    assert all(c["name"] in text for c in record["checks"])
    assert f"torch {record['environment']['torch']}" in text
    assert "![track-04-banach.png](../track-04-banach.png)" in text


def test_report_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(tmp_path / "nowhere"), "--badges", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tracks.report: error: no track results")


@pytest.mark.skipif(CHROMIUM is None, reason="no headless browser: apt-get install chromium")
def test_certificate_html_renders_in_headless_chromium(results: Path, tmp_path: Path) -> None:
    page = (results / "badges" / "CERTIFICATE.html").read_text()
    assert "<script" not in page  # self-contained and static
    probe = tmp_path / "probe.html"
    # The page as written, plus a probe that counts images the browser actually decoded.
    probe.write_text(page.replace("</body>", """<script>window.addEventListener('load', () => {
      const ok = [...document.images].filter(i => i.complete && i.naturalWidth > 0).length;
      document.body.setAttribute('data-decoded', ok + '/' + document.images.length);
    });</script></body>"""))
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
               "--virtual-time-budget=5000"]
    dom = subprocess.run([*command, "--dump-dom", probe.as_uri()], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert 'data-decoded="1/1"' in dom  # track 4's plot, embedded as a data URI
    assert "2/2 tracks certified" in dom
    shot = tmp_path / "shot.png"
    subprocess.run([*command, f"--screenshot={shot}", "--window-size=1100,900",
                    (results / "badges" / "CERTIFICATE.html").as_uri()],
                   capture_output=True, timeout=60, check=True)
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (900, 1100) and pixels.std() > 10  # text and tables, not blank
