"""Badges and the certificate (tracks.report): generated from the JSON only, hashes that ignore
timings and nothing else, and an HTML page that a real headless browser renders."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest

from tracks.report import certify, load_results, main, md, results_hash
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
        "CERTIFICATE.html", "CERTIFICATE.md", "summary.json", "summary.svg",
        "track-03.shields.json", "track-03.svg", "track-04.shields.json", "track-04.svg"]
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
    assert md(record["claim"]) in text and md(record["negative_control"]["name"]) in text
    assert all(f"| {md(c['name'])} |" in text for c in record["checks"])  # escaped, one cell
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


# -- escaping and containment -----------------------------------------------------------------
CRAFTED = "<script>alert('x')</script>"
MARKUP = "evil`model` | <b>*bold*</b> [link](http://x)"


@pytest.fixture
def fake_run(fake_tracks, tmp_path: Path) -> Path:
    """A run of instant tracks 1 and 3 (each with a plot), valid records."""
    out = tmp_path / "out"
    assert run_main(["--track", "1", "3", "--out", str(out), "--quiet"]) == 0
    return out


def crafted(out: Path) -> list[dict]:
    """The run's records with markup in every text field, a string seed and stray artifacts
    (what the schema would refuse — the renderers escape them anyway)."""
    outside = out.parent / "x.svg"
    outside.write_text("<svg xmlns='http://www.w3.org/2000/svg'><text>OUTSIDE</text></svg>")
    records = load_results(out)
    for r in records:
        r.update(seed=CRAFTED, profile=CRAFTED, name=CRAFTED, claim=CRAFTED, model=MARKUP,
                 skip_reason=CRAFTED, error=CRAFTED, notes=[CRAFTED])
        r["environment"] = {"python": CRAFTED}
        r["checks"][0].update(name=CRAFTED, value=CRAFTED, bound=CRAFTED)
        r["negative_control"].update(name=CRAFTED, bound=CRAFTED)
        r["claims"] = [{"name": CRAFTED, "source": MARKUP, "holds": False, "verdict": CRAFTED,
                        "value": CRAFTED, "bound": CRAFTED}]
        r["artifacts"] += ["../x.svg", str(outside)]
    return records


def test_html_escapes_every_field(fake_run: Path) -> None:
    from tracks.report import certificate_html

    page = certificate_html(crafted(fake_run), fake_run)
    assert "<script" not in page and "<b>*bold" not in page
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"  # Jinja2's autoescape
    assert f"seed {escaped}" in page and f"profile {escaped}" in page
    assert page.count(escaped) >= 2 * 10  # name, claim, check, bound, control, ... per track


def test_markdown_escapes_text_fields(fake_run: Path) -> None:
    from tracks.report import certificate_markdown

    text = certificate_markdown(crafted(fake_run), fake_run, fake_run / "badges")
    assert r"Model certified: evil\`model\` \| \<b\>\*bold\*\</b\> \[link\](http://x)" in text
    ours = r"`[0-9a-f]{64}`|`--model`|!\[track-0\d-plot\.svg\]"  # the page's own markup
    assert not re.search(r"(?<!\\)[<`\[]", re.sub(ours, "", text))  # every other one escaped
    assert r"seed \<script\>alert('x')\</script\>" in text
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 3 + 2 * 2  # summary: head + 2 tracks; per track, checks: head + 1
    for line in rows:  # a crafted "|" never adds a table cell: 5 columns, or 4 for checks
        assert line.replace("\\|", "").count("|") in (5, 6), line


def test_artifacts_outside_the_results_directory_are_flagged_not_embedded(fake_run: Path
                                                                          ) -> None:
    from tracks.report import certificate_html, certificate_markdown

    records = crafted(fake_run)
    page = certificate_html(records, fake_run)
    assert "OUTSIDE" not in page and base64_of(fake_run.parent / "x.svg") not in page
    assert page.count("data:image/svg+xml;base64,") == 2  # the two plots inside the run
    assert page.count("skipped: it lies outside the results directory") == 4
    text = certificate_markdown(records, fake_run, fake_run / "badges")
    assert "x.svg)" not in text and text.count("outside the results directory") == 4
    assert "![track-01-plot.svg](../track-01-plot.svg)" in text


def base64_of(path: Path) -> str:
    import base64

    return base64.b64encode(path.read_bytes()).decode()


def test_a_symlink_leading_out_of_the_results_directory_is_not_embedded(fake_run: Path) -> None:
    from tracks.report import contained

    (fake_run / "track-01-link.svg").symlink_to(fake_run.parent / "elsewhere.svg")
    assert contained(fake_run, "track-01-link.svg") is None
    assert contained(fake_run, "track-01-plot.svg") == (fake_run / "track-01-plot.svg").resolve()
    assert contained(fake_run, ".") is None and contained(fake_run, "") is None


def test_certify_refuses_a_crafted_seed(fake_run: Path) -> None:
    record = json.loads((fake_run / "track-01.json").read_text())
    record["seed"] = CRAFTED
    (fake_run / "track-01.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"at \$\.seed: .* is not of type 'integer'"):
        certify(fake_run, fake_run / "badges")


# -- the seed sweep's summary -----------------------------------------------------------------
def test_certificate_states_certified_at_k_of_n_seeds(fake_run: Path) -> None:
    sweep = {"seeds": [0, 1, 2, 3],
             "cells": {"1": {str(s): "pass" for s in range(4)},
                       "3": {"0": "pass", "1": "fail", "2": "pass", "3": "skip"},
                       "7": {"0": "pass", "1": "pass", "2": "pass", "3": "pass"}}}
    certify(fake_run, fake_run / "badges", sweep=sweep)
    text = (fake_run / "badges" / "CERTIFICATE.md").read_text()
    assert "**Seed sweep: 2/3 tracks certified at every one of 4 seeds (0–3)**" in text
    assert "| 1 | one | certified | 1/1 | yes | certified at 4/4 seeds |" in text
    assert ("| 3 | three | certified | 1/1 | yes | certified at 2/4 seeds; failed or missing "
            "at seeds 1; skipped at seeds 3 |") in text
    assert "- track 7 (no record here): certified at 4/4 seeds" in text
    page = (fake_run / "badges" / "CERTIFICATE.html").read_text()
    assert "Seed sweep: 2/3 tracks certified at every one of 4 seeds (0–3)" in page
    assert page.count("certified at 4/4 seeds") == 3  # track 1 (row, section), track 7


@pytest.mark.parametrize("sweep, named", [
    ({"seeds": [0]}, "expected {'seeds'"),
    ({"seeds": [0], "cells": {"1": {"0": "certified"}}}, "unknown status 'certified'"),
    ({"seeds": [0], "cells": {"1": ["pass"]}}, "cells of track 1 are not a mapping"),
])
def test_a_malformed_sweep_is_refused_before_writing(sweep: dict, named: str,
                                                     fake_run: Path, capsys) -> None:
    with pytest.raises(ValueError, match=named):
        certify(fake_run, fake_run / "badges", sweep=sweep)
    assert not (fake_run / "badges").exists()
    path = fake_run / "sweep.json"
    path.write_text(json.dumps(sweep))
    assert main([str(fake_run), "--badges", str(fake_run / "b"), "--sweep", str(path)]) == 2
    assert named in capsys.readouterr().err


def test_a_template_dir_restyles_the_certificate_and_still_escapes(fake_run: Path,
                                                                   tmp_path: Path) -> None:
    from tracks.report import certificate_html, certificate_markdown

    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "certificate.html.j2").write_text(
        "<h1 class='mine'>{{ certified }}/{{ total }}</h1>"
        "{% for t in tracks %}<p>{{ t.name }}</p>{% endfor %}")
    records = crafted(fake_run)
    page = certificate_html(records, fake_run, template_dir=templates)
    assert page.startswith("<h1 class='mine'>") and "<script" not in page
    assert "&lt;script&gt;" in page  # the user's template is autoescaped too
    # certificate.md.j2 not given: the built-in one renders, escaped for Markdown
    text = certificate_markdown(records, fake_run, fake_run / "badges", template_dir=templates)
    assert text.startswith("# eqprop-verify certificate") and r"\<script\>" in text


def test_a_broken_template_is_one_error_and_writes_nothing(fake_run: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture
                                                           ) -> None:
    from tracks.report import main as report_main

    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "certificate.md.j2").write_text("{{ no_such_field }}")
    badges = tmp_path / "b"
    assert report_main([str(fake_run), "--badges", str(badges), "--template",
                        str(templates)]) == 2
    err = capsys.readouterr().err.strip()
    assert "certificate.md.j2" in err and "no_such_field" in err and len(err.splitlines()) == 1
    assert not badges.exists() or not any(badges.iterdir())
    assert run_main(["--track", "1", "--out", str(tmp_path / "r"), "--template",
                     str(templates)]) == 2  # --template without --badges
    assert "--badges" in capsys.readouterr().err
