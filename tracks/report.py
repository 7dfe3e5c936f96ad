"""Certification artefacts generated from the JSON results only: badges and the certificate.

    python -m tracks.run --track 1 2 3 --out results --badges results/badges
    python -m tracks.report results --badges results/badges      # regenerate from the JSON

writes, into the badge directory,

- `track-NN.svg`   one badge per track: "track 12 · GDD | certified / failed / skipped"
                   (green / red / grey), drawn by the anybadge library;
- `summary.svg`    "eqprop-verify | k/n certified" (green when every run track certified or
                   was skipped, red otherwise);
- `CERTIFICATE.md` and `CERTIFICATE.html` — per track: the claim, every check (measured, bound,
                   verdict), the negative control, claim verdicts, the environment (versions,
                   device, seed, profile) and the sha256 of its results; the HTML is one
                   self-contained page with the track's plots embedded as data URIs.

The results hash is taken over the canonical JSON (`tracks.context.canonical_bytes`: sorted keys,
timing fields and the environment removed), so two runs with the same seed on the same software
produce the same hash — track 24 certifies that they do.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tracks.context import fingerprint

STATUS_WORD = {"pass": "certified", "fail": "failed", "skip": "skipped"}
STATUS_COLOR = {"pass": "green", "fail": "red", "skip": "lightgrey"}
IMAGE_TYPES = {".svg": "image/svg+xml", ".png": "image/png"}


def load_results(out_dir: Path, numbers: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """The track records in `out_dir` (all `track-NN.json`, or those of `numbers`), by number.

    A missing or unreadable file raises ValueError naming it."""
    paths = (sorted(out_dir.glob("track-[0-9][0-9].json")) if numbers is None
             else [out_dir / f"track-{n:02d}.json" for n in numbers])
    records = []
    for path in paths:
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read {path}: {err}") from None
    if not records:
        raise ValueError(f"no track results (track-NN.json) in {out_dir}")
    return records


def results_hash(record: dict[str, Any]) -> str:
    """sha256 of the record's canonical JSON (`tracks.context.fingerprint`: timing fields and
    the environment removed, keys sorted)."""
    return fingerprint(record)


def combined_hash(records: Sequence[dict[str, Any]]) -> str:
    return hashlib.sha256("".join(results_hash(r) for r in records).encode()).hexdigest()


def write_badges(records: Sequence[dict[str, Any]], badge_dir: Path) -> list[Path]:
    """One badge per track and the summary badge, drawn by anybadge; returns the paths."""
    import anybadge

    badge_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for r in records:
        badge = anybadge.Badge(f"track {r['track']} · {r['name']}", STATUS_WORD[r["status"]],
                               default_color=STATUS_COLOR[r["status"]])
        path = badge_dir / f"track-{r['track']:02d}.svg"
        badge.write_badge(str(path), overwrite=True)
        paths.append(path)
    certified = sum(r["status"] == "pass" for r in records)
    failed = any(r["status"] == "fail" for r in records)
    summary = anybadge.Badge("eqprop-verify", f"{certified}/{len(records)} certified",
                             default_color="red" if failed else "green")
    path = badge_dir / "summary.svg"
    summary.write_badge(str(path), overwrite=True)
    return [*paths, path]


def _shown(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _environment_line(records: Sequence[dict[str, Any]]) -> str:
    env = records[0].get("environment", {})
    return ", ".join(f"{k} {v}" for k, v in env.items())


def certificate_markdown(records: Sequence[dict[str, Any]], out_dir: Path,
                         report_dir: Path) -> str:
    """CERTIFICATE.md: a summary table, then per track its evidence; plots linked relatively."""
    certified = sum(r["status"] == "pass" for r in records)
    first = records[0]
    lines = ["# eqprop-verify certificate", "",
             f"**{certified}/{len(records)} tracks certified** · profile `{first['profile']}` · "
             f"seed {first['seed']} · device {first.get('environment', {}).get('device', '?')}",
             "", *([f"Model certified: `{first['model']}` (`--model`)  "]
                   if first.get("model") else []),
             f"Environment: {_environment_line(records)}.  ",
             f"Results hash (sha256, timings removed): `{combined_hash(records)}`", "",
             "| track | name | status | checks passed | negative control failed as expected |",
             "|---|---|---|---|---|"]
    for r in records:
        passed = sum(c["passed"] for c in r["checks"])
        control = r.get("negative_control") or {}
        lines.append(f"| {r['track']} | {r['name']} | {STATUS_WORD[r['status']]} | "
                     f"{passed}/{len(r['checks'])} | "
                     f"{'yes' if control.get('failed_as_expected') else 'no'} |")
    lines.append("")
    for r in records:
        lines += [f"## Track {r['track']} — {r['name']}: {STATUS_WORD[r['status']].upper()}", "",
                  f"Claim: {r['claim']}  ", f"Results sha256: `{results_hash(r)}`", ""]
        if r.get("skip_reason"):
            lines += [f"Skipped: {r['skip_reason']}", ""]
        if r.get("error"):
            lines += [f"Error: `{r['error']}`", ""]
        if r["checks"]:
            lines += ["| check | measured | bound | verdict |", "|---|---|---|---|"]
            lines += [f"| {c['name']} | {_shown(c['value'])} | {c['bound']} | "
                      f"{'pass' if c['passed'] else 'FAIL'} |" for c in r["checks"]]
            lines.append("")
        control = r.get("negative_control")
        if control:
            verdict = "failed as expected" if control["failed_as_expected"] else \
                "DID NOT FAIL — the checks cannot tell good from bad"
            measured = f": {_shown(control['value'])} (bound {control['bound']})" \
                if "value" in control else ""
            lines += [f"Negative control — {control['name']}{measured}: {verdict}.", ""]
        for claim in r.get("claims", []):
            verdict = claim.get("verdict", "confirmed" if claim["holds"] else "refuted")
            lines.append(f"- claim {verdict}: {claim['name']} ({claim['source']}): "
                         f"{_shown(claim['value'])} (stated {claim['bound']})")
        if r.get("claims"):
            lines.append("")
        for artifact in r.get("artifacts", []):
            target = Path(os.path.relpath(out_dir / artifact, report_dir))
            lines.append(f"![{artifact}]({target.as_posix()})" if target.suffix in IMAGE_TYPES
                         else f"- [{artifact}]({target.as_posix()})")
        lines.append("")
    return "\n".join(lines)


def _embedded(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    source = f"data:{IMAGE_TYPES[path.suffix]};base64,{data}"
    return f'<img alt="{html.escape(path.name)}" src="{source}">'


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}
table{border-collapse:collapse;margin:0.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;
font-size:0.9em;text-align:left}.pass{color:#1a7f37}.fail{color:#cf222e;font-weight:bold}
.skip{color:#777}img{max-width:100%;display:block;margin:0.5em 0}code{font-size:0.85em}"""


def certificate_html(records: Sequence[dict[str, Any]], out_dir: Path) -> str:
    """CERTIFICATE.html: self-contained (inline CSS, plots as data URIs, no scripts)."""
    e = html.escape
    certified = sum(r["status"] == "pass" for r in records)
    first = records[0]
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>eqprop-verify "
             f"certificate</title><style>{CSS}</style></head><body>",
             "<h1>eqprop-verify certificate</h1>",
             f"<p id='summary'><b>{certified}/{len(records)} tracks certified</b> · profile "
             f"{e(str(first['profile']))} · seed {first['seed']}</p>",
             *([f"<p>Model certified: <code>{e(first['model'])}</code> (--model)</p>"]
               if first.get("model") else []),
             f"<p>Environment: {e(_environment_line(records))}<br>Results hash (sha256, timings "
             f"removed): <code>{combined_hash(records)}</code></p>",
             "<table><tr><th>track</th><th>name</th><th>status</th><th>checks passed</th>"
             "<th>negative control failed as expected</th></tr>"]
    for r in records:
        control = r.get("negative_control") or {}
        parts.append(f"<tr><td><a href='#track-{r['track']}'>{r['track']}</a></td>"
                     f"<td>{e(r['name'])}</td><td class='{r['status']}'>"
                     f"{STATUS_WORD[r['status']]}</td><td>{sum(c['passed'] for c in r['checks'])}"
                     f"/{len(r['checks'])}</td><td>"
                     f"{'yes' if control.get('failed_as_expected') else 'no'}</td></tr>")
    parts.append("</table>")
    for r in records:
        parts.append(f"<h2 id='track-{r['track']}'>Track {r['track']} — {e(r['name'])}: "
                     f"<span class='{r['status']}'>{STATUS_WORD[r['status']].upper()}</span></h2>"
                     f"<p>Claim: {e(r['claim'])}<br>Results sha256: "
                     f"<code>{results_hash(r)}</code></p>")
        if r.get("skip_reason"):
            parts.append(f"<p class='skip'>Skipped: {e(r['skip_reason'])}</p>")
        if r.get("error"):
            parts.append(f"<p class='fail'>Error: {e(r['error'])}</p>")
        if r["checks"]:
            parts.append("<table><tr><th>check</th><th>measured</th><th>bound</th>"
                         "<th>verdict</th></tr>")
            parts += [f"<tr><td>{e(c['name'])}</td><td>{e(_shown(c['value']))}</td>"
                      f"<td>{e(c['bound'])}</td><td class='{'pass' if c['passed'] else 'fail'}'>"
                      f"{'pass' if c['passed'] else 'FAIL'}</td></tr>" for c in r["checks"]]
            parts.append("</table>")
        control = r.get("negative_control")
        if control:
            ok = control["failed_as_expected"]
            measured = f": {_shown(control['value'])} (bound {control['bound']})" \
                if "value" in control else ""
            parts.append(f"<p>Negative control — {e(control['name'] + measured)}: <span "
                         f"class='{'pass' if ok else 'fail'}'>"
                         f"{'failed as expected' if ok else 'DID NOT FAIL'}</span></p>")
        claims = r.get("claims", [])
        if claims:
            parts.append("<ul>" + "".join(
                f"<li>claim {e(c.get('verdict', 'confirmed' if c['holds'] else 'refuted'))}: "
                f"{e(c['name'])} ({e(c['source'])}): {e(_shown(c['value']))} (stated "
                f"{e(c['bound'])})</li>" for c in claims) + "</ul>")
        for artifact in r.get("artifacts", []):
            path = out_dir / artifact
            if path.suffix in IMAGE_TYPES and path.is_file():
                parts.append(_embedded(path))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_certificate(records: Sequence[dict[str, Any]], out_dir: Path,
                      report_dir: Path) -> tuple[Path, Path]:
    report_dir.mkdir(parents=True, exist_ok=True)
    markdown = report_dir / "CERTIFICATE.md"
    markdown.write_text(certificate_markdown(records, out_dir, report_dir) + "\n")
    page = report_dir / "CERTIFICATE.html"
    page.write_text(certificate_html(records, out_dir))
    return markdown, page


def certify(out_dir: Path, badge_dir: Path, numbers: Sequence[int] | None = None) -> list[Path]:
    """Badges and certificate for the results in `out_dir`, written into `badge_dir`."""
    records = load_results(out_dir, numbers)
    return [*write_badges(records, badge_dir), *write_certificate(records, out_dir, badge_dir)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tracks.report",
        description="Badges and CERTIFICATE.md/.html from a results directory's track JSON.")
    parser.add_argument("out", type=Path, help="results directory holding track-NN.json")
    parser.add_argument("--badges", type=Path, required=True, help="where to write them")
    args = parser.parse_args(argv)
    try:
        paths = certify(args.out, args.badges)
    except ValueError as err:
        print(f"tracks.report: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {len(paths)} files to {args.badges}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
