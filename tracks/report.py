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

Records are read through `tracks.manifest.run_records`: each must match
`tracks/record.schema.json`, and all must come from one run (the run id, seed, profile and model
of `manifest.json`) — otherwise ValueError (exit 2 from the CLI) naming the file or the runs.
Every text field is escaped for its format (HTML, Markdown); an artifact is embedded or linked
only if its resolved path lies inside the results directory (otherwise it is flagged, not
shown). With `sweep` (a seed sweep's `sweep.json`), the certificate states per track "certified
at k/n seeds".

The results hash is taken over the canonical JSON (`tracks.context.canonical_bytes`: sorted keys,
timing fields, the environment and the run id removed), so two runs with the same seed on the
same software produce the same hash — track 24 certifies that they do.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup

from tracks.context import fingerprint
from tracks.manifest import run_records, writable_directory
from tracks.records import atomic_write_json, atomic_write_text, read_json_file

STATUS_WORD = {"pass": "certified", "fail": "failed", "skip": "skipped"}
STATUS_COLOR = {"pass": "green", "fail": "red", "skip": "lightgrey"}
IMAGE_TYPES = {".svg": "image/svg+xml", ".png": "image/png"}


def load_run(out_dir: Path, numbers: Sequence[int] | None = None
             ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(manifest or None, the track records of `out_dir` — all `track-NN.json`, or those of
    `numbers` — by number). ValueError naming the file (missing, not UTF-8, not JSON, not of
    the schema) or the runs (records of more than one run, or not the manifest's)."""
    manifest, records = run_records(Path(out_dir), numbers)
    if not records:
        raise ValueError(f"no track results (track-NN.json) in {out_dir}")
    return manifest, records


def load_results(out_dir: Path, numbers: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """The records of `load_run`, without the manifest."""
    return load_run(out_dir, numbers)[1]


def results_hash(record: dict[str, Any]) -> str:
    """sha256 of the record's canonical JSON (`tracks.context.fingerprint`: timing fields and
    the environment removed, keys sorted)."""
    return fingerprint(record)


def combined_hash(records: Sequence[dict[str, Any]]) -> str:
    return hashlib.sha256("".join(results_hash(r) for r in records).encode()).hexdigest()


def endpoint(label: str, message: str, color: str) -> dict[str, Any]:
    """A badge in shields.io's endpoint format (https://shields.io/badges/endpoint-badge):
    `https://img.shields.io/endpoint?url=<where this JSON is served>` draws it live."""
    return {"schemaVersion": 1, "label": label, "message": message, "color": color}


def write_badges(records: Sequence[dict[str, Any]], badge_dir: Path) -> list[Path]:
    """One badge per track and the summary badge, each as an SVG drawn by anybadge
    (`track-NN.svg`, `summary.svg`) and as shields.io endpoint JSON beside it
    (`track-NN.shields.json`, `summary.json`); returns the paths."""
    import anybadge

    badge_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for r in records:
        label, word = f"track {r['track']} · {r['name']}", _word(r["status"])
        color = STATUS_COLOR.get(r["status"], "red")
        badge = anybadge.Badge(label, word, default_color=color)
        name = f"track-{r['track']:02d}"
        paths.append(atomic_write_text(badge_dir / f"{name}.svg", badge.badge_svg_text))
        paths.append(atomic_write_json(badge_dir / f"{name}.shields.json",
                                       endpoint(label, word, color)))
    certified = sum(r["status"] == "pass" for r in records)
    failed = any(r["status"] != "pass" and r["status"] != "skip" for r in records)
    message, color = f"{certified}/{len(records)} certified", "red" if failed else "green"
    summary = anybadge.Badge("eqprop-verify", message, default_color=color)
    return [*paths, atomic_write_text(badge_dir / "summary.svg", summary.badge_svg_text),
            atomic_write_json(badge_dir / "summary.json", endpoint("eqprop-verify", message,
                                                                    color))]


def _word(status: Any) -> str:
    return STATUS_WORD.get(status, str(status))


# Characters that open Markdown (CommonMark / GFM) syntax inside a line: code spans, emphasis,
# links and images ([ ... ]), raw HTML and autolinks (<), table cells (|), strikethrough (~) and
# entity references (&). A field is always written mid-line (after a label or a cell border),
# so the line-start markers (#, +, -, digits) cannot open a block.
MARKDOWN_ACTIVE = set("\\`*_[]<>|~&")


def md(value: Any) -> str:
    """`value` as Markdown text that renders as itself: active characters backslash-escaped,
    line breaks folded into spaces (a field never opens a block of its own)."""
    text = " ".join(str(value).splitlines())
    return "".join(f"\\{ch}" if ch in MARKDOWN_ACTIVE else ch for ch in text)


def contained(out_dir: Path, artifact: Any) -> Path | None:
    """The artifact's path if it resolves (links followed) inside `out_dir`, else None."""
    if not isinstance(artifact, str) or not artifact:
        return None
    root = out_dir.resolve()
    path = (root / artifact).resolve()
    return path if path != root and path.is_relative_to(root) else None


def sweep_rows(sweep: Mapping[str, Any], records: Sequence[dict[str, Any]]
               ) -> list[tuple[Any, int, int, list[str], list[str]]]:
    """Per track of the sweep: (track, certified seeds k, seeds n, failed seeds, skipped
    seeds). ValueError naming what is malformed in `sweep` ({"seeds": [...], "cells":
    {track: {seed: "pass" | "fail" | "skip"}}})."""
    if not isinstance(sweep, Mapping) or not isinstance(sweep.get("seeds"), list) \
            or not isinstance(sweep.get("cells"), Mapping):
        raise ValueError("sweep: expected {'seeds': [...], 'cells': {track: {seed: status}}}")
    seeds = [str(s) for s in sweep["seeds"]]
    order = [str(r["track"]) for r in records]
    tracks = order + sorted((t for t in map(str, sweep["cells"]) if t not in order), key=str)
    rows = []
    for track in tracks:
        cells = sweep["cells"].get(track, sweep["cells"].get(_int_or(track), {}))
        if not isinstance(cells, Mapping):
            raise ValueError(f"sweep: cells of track {track} are not a mapping seed -> status")
        cells = {str(k): v for k, v in cells.items()}
        for seed, status in cells.items():
            if status not in STATUS_WORD:
                raise ValueError(f"sweep: track {track} seed {seed}: unknown status "
                                 f"{status!r} (pass, fail or skip)")
        if not cells:
            continue
        got = [cells.get(seed) for seed in seeds]
        rows.append((track, got.count("pass"), len(seeds),
                     [s for s, g in zip(seeds, got) if g in ("fail", None)],
                     [s for s, g in zip(seeds, got) if g == "skip"]))
    return rows


def _int_or(text: str) -> Any:
    return int(text) if text.isdigit() else text


def _seed_span(seeds: Sequence[Any]) -> str:
    """'0–19' for consecutive integer seeds, else the list."""
    ints = [s for s in seeds if isinstance(s, int) and not isinstance(s, bool)]
    if seeds and len(ints) == len(seeds) and ints == list(range(ints[0], ints[0] + len(ints))):
        return f"{ints[0]}–{ints[-1]}"
    return ", ".join(map(str, seeds))


def sweep_summary(sweep: Mapping[str, Any], rows: Sequence[tuple]) -> str:
    everywhere = sum(k == n for _, k, n, _, _ in rows)
    return (f"Seed sweep: {everywhere}/{len(rows)} tracks certified at every one of "
            f"{len(sweep['seeds'])} seeds ({_seed_span(sweep['seeds'])})")


def _sweep_cell(row: tuple) -> str:
    _, k, n, failed, skipped = row
    text = f"certified at {k}/{n} seeds"
    if failed:
        text += f"; failed or missing at seeds {', '.join(failed)}"
    if skipped:
        text += f"; skipped at seeds {', '.join(skipped)}"
    return text


def _shown(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _environment_line(records: Sequence[dict[str, Any]]) -> str:
    env = records[0].get("environment", {})
    return ", ".join(f"{k} {v}" for k, v in env.items()) if isinstance(env, dict) else str(env)


def _run_line(manifest: Mapping[str, Any] | None) -> str | None:
    """'run 3f… · started … · complete (4/4 requested tracks completed)', from the manifest."""
    if manifest is None:
        return None
    return (f"run {manifest['run_id']} · started {manifest['started']} · verifier "
            f"{manifest['verifier']} · {manifest['status']} ({len(manifest['completed'])}/"
            f"{len(manifest['tracks'])} requested tracks completed)")


def _control_text(control: Mapping[str, Any]) -> tuple[str, bool]:
    measured = f": {_shown(control['value'])} (bound {control['bound']})" \
        if "value" in control else ""
    return f"{control['name']}{measured}", bool(control["failed_as_expected"])


def _claim_text(claim: Mapping[str, Any]) -> tuple[str, str]:
    verdict = claim.get("verdict", "confirmed" if claim["holds"] else "refuted")
    return str(verdict), (f"{claim['name']} ({claim['source']}): {_shown(claim['value'])} "
                          f"(stated {claim['bound']})")


def _outside(artifact: Any) -> str:
    return f"artifact {artifact!r} skipped: it lies outside the results directory"


class Raw(str):
    """Text the report built itself (a hash, a link it encoded): written to Markdown as is."""


@dataclass(frozen=True)
class Artifact:
    """One artifact of a track as the certificate shows it: flagged (outside the results
    directory), linked (Markdown: relative to the report) or embedded (HTML: a data URI)."""

    name: str
    path: Path | None
    report_dir: Path

    @property
    def outside(self) -> str | None:
        return _outside(self.name) if self.path is None else None

    @property
    def image(self) -> bool:
        return self.path is not None and self.path.suffix in IMAGE_TYPES

    @property
    def link(self) -> Raw:
        assert self.path is not None
        target = Path(os.path.relpath(self.path, self.report_dir.resolve())).as_posix()
        return Raw(target.replace("(", "%28").replace(")", "%29").replace(" ", "%20"))

    @property
    def embedded(self) -> Markup | None:
        if self.path is None or not self.image or not self.path.is_file():
            return None
        data = base64.b64encode(self.path.read_bytes()).decode()
        source = f"data:{IMAGE_TYPES[self.path.suffix]};base64,{data}"
        return Markup('<img alt="{}" src="{}">').format(self.path.name, source)


def certificate_context(records: Sequence[dict[str, Any]], out_dir: Path, report_dir: Path,
                        manifest: Mapping[str, Any] | None = None,
                        sweep: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What both certificates show, as plain values: the templates
    (`tracks/templates/certificate.{md,html}.j2`, or a `--template DIR` of the same names)
    only lay it out. Raw record fields stay strings: each format escapes them itself."""
    first = records[0]
    env = first.get("environment")
    rows = {row[0]: row for row in sweep_rows(sweep, records)} if sweep is not None else {}
    present = {str(r["track"]) for r in records}
    model = first.get("model")
    tracks = []
    for r in records:
        control = r.get("negative_control")
        text, ok = _control_text(control) if control else (None, False)
        tracks.append({
            "number": r["track"], "name": r["name"], "status": r["status"],
            "word": _word(r["status"]),
            "css": r["status"] if r["status"] in STATUS_WORD else "fail",
            "claim": r["claim"], "hash": Raw(results_hash(r)),
            "sweep": _sweep_cell(rows[str(r["track"])]) if str(r["track"]) in rows else None,
            "skip_reason": r.get("skip_reason"), "error": r.get("error"),
            "checks": [{"name": c["name"], "measured": _shown(c["value"]), "bound": c["bound"],
                        "passed": c["passed"] is True} for c in r["checks"]],
            "passed": sum(c["passed"] is True for c in r["checks"]),
            "control_failed": bool((control or {}).get("failed_as_expected")),
            "control": {"text": text, "ok": ok} if control else None,
            "claims": [{"verdict": v, "text": t} for v, t in map(_claim_text,
                                                                 r.get("claims", []))],
            "artifacts": [Artifact(str(a), contained(out_dir, a), report_dir)
                          for a in r.get("artifacts", [])],
        })
    return {
        "certified": sum(r["status"] == "pass" for r in records), "total": len(records),
        "profile": first["profile"], "seed": first["seed"],
        "device": env.get("device", "?") if isinstance(env, dict) else "?",
        "run": _run_line(manifest), "model": model,
        "model_option": Raw("--system" if model and model.startswith("System(") else "--model"),
        "environment": _environment_line(records), "combined_hash": Raw(combined_hash(records)),
        "sweep": sweep_summary(sweep, list(rows.values())) if sweep is not None else None,
        "swept": sweep is not None,
        "swept_only": [{"track": row[0], "text": _sweep_cell(row)}
                       for track, row in rows.items() if track not in present],
        "tracks": tracks, "css": Markup(CSS),
    }


TEMPLATES = Path(__file__).with_name("templates")
TEMPLATE_NAMES = ("certificate.md.j2", "certificate.html.j2")


def _markdown_field(value: Any) -> Any:
    return value if isinstance(value, Raw) else md(value)


def environments(template_dir: Path | None = None) -> tuple[Any, Any]:
    """(Markdown, HTML) Jinja2 environments: the HTML one autoescapes HTML, the Markdown one
    escapes every field for Markdown (`md`); a template in `template_dir` replaces the
    built-in one of the same name. ValueError if `template_dir` is not a directory."""
    import jinja2

    loaders: list[Any] = [jinja2.FileSystemLoader(str(TEMPLATES))]
    if template_dir is not None:
        if not Path(template_dir).is_dir():
            raise ValueError(f"--template {template_dir}: not a directory (it holds "
                             f"{' and/or '.join(TEMPLATE_NAMES)})")
        loaders.insert(0, jinja2.FileSystemLoader(str(template_dir)))
    common: dict[str, Any] = {"loader": jinja2.ChoiceLoader(loaders), "trim_blocks": True,
              "lstrip_blocks": True,
              "undefined": jinja2.StrictUndefined}
    return (jinja2.Environment(autoescape=False, finalize=_markdown_field, **common),
            jinja2.Environment(autoescape=True, **common))


def _render(env: Any, name: str, context: Mapping[str, Any]) -> str:
    import jinja2

    try:
        return str(env.get_template(name).render(**context))
    except jinja2.TemplateError as err:
        line = getattr(err, "lineno", None)
        where = f" (line {line})" if line else ""
        raise ValueError(f"template {name}{where}: {type(err).__name__}: {err}") from None


def certificate_markdown(records: Sequence[dict[str, Any]], out_dir: Path, report_dir: Path,
                         manifest: Mapping[str, Any] | None = None,
                         sweep: Mapping[str, Any] | None = None,
                         template_dir: Path | None = None) -> str:
    """CERTIFICATE.md: a summary table, then per track its evidence; plots linked relatively.
    Every text field is escaped (`md`); artifacts outside `out_dir` are flagged, not linked."""
    context = certificate_context(records, out_dir, report_dir, manifest, sweep)
    text = _render(environments(template_dir)[0], "certificate.md.j2", context)
    return text.removesuffix("\n")  # write_certificate ends the file with one newline


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}
table{border-collapse:collapse;margin:0.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;
font-size:0.9em;text-align:left}.pass{color:#1a7f37}.fail{color:#cf222e;font-weight:bold}
.skip{color:#777}img{max-width:100%;display:block;margin:0.5em 0}code{font-size:0.85em}"""


def certificate_html(records: Sequence[dict[str, Any]], out_dir: Path,
                     manifest: Mapping[str, Any] | None = None,
                     sweep: Mapping[str, Any] | None = None,
                     template_dir: Path | None = None) -> str:
    """CERTIFICATE.html: self-contained (inline CSS, plots as data URIs, no scripts). Every
    field is HTML-escaped; only images inside `out_dir` are embedded (others flagged)."""
    context = certificate_context(records, out_dir, out_dir, manifest, sweep)
    return _render(environments(template_dir)[1], "certificate.html.j2", context)


def write_certificate(records: Sequence[dict[str, Any]], out_dir: Path, report_dir: Path,
                      manifest: Mapping[str, Any] | None = None,
                      sweep: Mapping[str, Any] | None = None,
                      template_dir: Path | None = None) -> tuple[Path, Path]:
    """CERTIFICATE.md and CERTIFICATE.html into `report_dir`, both rendered (from one context)
    before either is written: a broken `template_dir` template writes neither."""
    text = certificate_markdown(records, out_dir, report_dir, manifest, sweep, template_dir)
    page_text = certificate_html(records, out_dir, manifest, sweep, template_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    markdown = atomic_write_text(report_dir / "CERTIFICATE.md", text + "\n")
    page = atomic_write_text(report_dir / "CERTIFICATE.html", page_text)
    return markdown, page


def certify(out_dir: Path, badge_dir: Path, numbers: Sequence[int] | None = None,
            sweep: Mapping[str, Any] | None = None,
            template_dir: Path | None = None) -> list[Path]:
    """Badges and certificate for the results in `out_dir`, written into `badge_dir`.

    `template_dir`: Jinja2 templates `certificate.md.j2` / `certificate.html.j2` that replace
    the built-in ones (`tracks/templates/`; either may be given alone) — same context, same
    escaping.

    `sweep`: a seed sweep's summary, {"seeds": [0, 1, ...], "cells": {"<track>": {"<seed>":
    "pass" | "fail" | "skip"}}}; the certificate then states per track "certified at k/n
    seeds" and a summary line. ValueError (naming the file, the runs or the malformed sweep)
    if the records cannot be certified as one run."""
    out_dir, badge_dir = Path(out_dir), Path(badge_dir)
    manifest, records = load_run(out_dir, numbers)
    if sweep is not None:
        sweep_rows(sweep, records)  # malformed: refused before anything is written
    # The certificate first: a template that fails to render leaves nothing written.
    certificate = write_certificate(records, out_dir, badge_dir, manifest, sweep, template_dir)
    return [*write_badges(records, badge_dir), *certificate]


def main(argv: Sequence[str] | None = None, prog: str = "python -m tracks.report") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Badges and CERTIFICATE.md/.html from a results directory's track JSON "
        "(one run: see tracks/manifest.py).")
    parser.add_argument("out", type=Path, help="results directory holding track-NN.json")
    parser.add_argument("--badges", type=Path, required=True, help="where to write them")
    parser.add_argument("--sweep", type=Path, metavar="SWEEP_JSON", help="a seed sweep's "
                        "sweep.json: the certificate states 'certified at k/n seeds' per track")
    parser.add_argument("--template", type=Path, metavar="DIR", help="Jinja2 templates "
                        "certificate.md.j2 and/or certificate.html.j2 that restyle the "
                        "certificate (start from tracks/templates/)")
    args = parser.parse_args(argv)
    try:
        sweep = None if args.sweep is None else read_json_file(args.sweep)
        writable_directory(args.badges, "--badges")
        paths = certify(args.out, args.badges, sweep=sweep, template_dir=args.template)
    except ValueError as err:
        print(f"tracks.report: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {len(paths)} files to {args.badges}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
