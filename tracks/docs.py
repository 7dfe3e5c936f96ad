"""Generate `docs/TRACKS.md` from the registry: `python -m tracks.docs` (`--check`: is it stale?).

Everything in the page comes from the code it describes — the registry (`@track`, `@on_system`:
number, name, group, claim, what a `--model` or `--system` must provide), the bounds each track
module declares (`properties.bounds`: comparator, number, reason) and the track's docstring (its
negative control and its reference) — so the page cannot drift from what runs; a test fails
when the committed page differs from a fresh rendering (`tests/test_docs.py`). Measured figures
are not here: they live in the records and the certificate.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path

from properties.bounds import Bound, RelativeBound, declared_bounds

from .registry import GROUPS, SystemEntry, Track, all_tracks, system_entries

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "TRACKS.md"
# Group D's tracks are one protocol (`tracks.benchmark`): its docstring and bounds are theirs.
PROTOCOLS = {"D": "tracks.benchmark"}
RUNTIME = {
    "A": "seconds to a minute (hypothesis searches over small models)",
    "B": "seconds to a minute (hypothesis searches; gradient witnesses)",
    "C": "minutes (trains models)",
    "D": "minutes (trains the benchmark matrix; skipped without its data)",
}
REFERENCE_WORDS = re.compile(r"\b(scipy|Newton|witness|BPTT|finite.difference|implicit|NumPy|"
                             r"numpy|independent|reference|baseline|long double|fresh "
                             r"interpreter|logistic)", re.I)
ADDING_A_TRACK = """\
## Adding a track

1. Write `tracks/track_NN_<name>.py`. Its docstring states the claim, the reference it is
   measured against and the negative control (a paragraph opening "Negative control:"), as the
   other modules do: this page quotes them.
2. Put the mathematics in `properties/<topic>.py`: pure measures of a drawn case (returning
   numbers) and the hypothesis strategies that draw the cases, named as plural nouns of what
   they produce. A procedure that is not a measure (training arms, a figure's spec) goes in
   `tracks/procedures/`. A figure is data — `Figure([Panel([Line(...), Level(...)], logy=True)])`
   from `tracks.plots` — drawn by `draw(ctx.artifact_path("name.png"), figure)`; no track
   holds plotting code.
3. Declare every threshold once, at module level, with the reason for its number:
   `AGREEMENT = at_most_bound(1e-3, "…derivation…")`. Searches are data:
   `SEARCHES = (Search("check name", measure, AGREEMENT), …)`.
4. Register the entry and record its checks and control:

   ```python
   @track(NN, "Name", "A", "the claim in one line", model_requires=())
   def run(ctx):
       cases = ctx.models(contractive_models())
       for spec in SEARCHES:
           ctx.search(cases, spec, ctx.examples(25, 250))
       wrong = WRONG.run(broken_cases(), max_examples=ctx.examples(25, 250), seed=ctx.seed)
       ctx.negative_control(AGREEMENT.check(WRONG.name, wrong.worst, **wrong.details()))
   ```

5. Regenerate this page (`python -m tracks.docs`) and run the track at several seeds
   (`python -m tracks.run --track NN --seed 1` … `9`): it must certify at each and its control
   must fail at each. `tests/test_track_structure.py` rejects a bare threshold in the module.

A whole entry written to this recipe, with its measures in `properties/activation_slopes.py`:
`examples/new_track/track_31_activation_slopes.py` (`tests/test_adding_a_track.py` registers
it, runs it at three seeds and holds it to 60 lines).
"""


def docstring(track: Track) -> str:
    module = sys.modules[track.run.__module__]
    if track.group in PROTOCOLS:
        module = importlib.import_module(PROTOCOLS[track.group])
    return module.__doc__ or ""


def paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


def control_of(text: str) -> str:
    """The docstring's negative-control paragraph, without its label."""
    for p in paragraphs(text):
        match = re.match(r"(Negative control|Controls?)\b[^:.]*[:.]\s*(.*)", p)
        if match:
            return match.group(2)
    return "(not stated in the docstring)"


def reference_of(text: str) -> str:
    """The docstring's first sentences that name what the track measures against."""
    sentences = re.split(r"(?<=[.;])\s+(?=[A-Z(])", " ".join(paragraphs(text)[1:] or [""]))
    found = [s for s in sentences if REFERENCE_WORDS.search(s)
             and not s.lower().startswith(("negative control", "control"))]
    return " ".join(found[:2]) if found else "(not stated in the docstring)"


def bounds_of(track: Track) -> dict[str, Bound | RelativeBound]:
    module = sys.modules[track.run.__module__]
    found = declared_bounds(module)
    if track.group in PROTOCOLS:
        found = {**declared_bounds(importlib.import_module(PROTOCOLS[track.group])), **found}
    return found


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _bound_text(bound: Bound | RelativeBound) -> str:
    """The bound at full precision (a record rounds it to 6 digits: 1 - 1e-12 shows as 1)."""
    if isinstance(bound, Bound):
        return f"{bound.comparator} {bound.limit!r}"
    return f"within {bound.rel!r} (relative)"


def section(track: Track, entry: SystemEntry | None) -> str:
    text = docstring(track)
    lines = [f"### {track.number}. {track.name}", "",
             f"Group {track.group} ({GROUPS[track.group]}). **Claim:** {track.claim}", ""]
    bounds = bounds_of(track)
    if bounds:
        lines += ["| bound | | why this number |", "|---|---|---|"]
        lines += [f"| `{name}` | `{_bound_text(b)}` | {_cell(b.reason)} |"
                  for name, b in bounds.items()]
        lines.append("")
    lines += [f"**Measured against:** {track.reference or reference_of(text)}", "",
              f"**Negative control:** {control_of(text)}", ""]
    if track.model_requires is None:
        model = f"not taken: {track.model_reason}"
    else:
        model = ("any `LoopedMLP`" if not track.model_requires
                 else "a `LoopedMLP` with " + ", ".join(f"`{r}`" for r in track.model_requires)
                 + " (`properties.fixed_model.REQUIREMENTS`)")
    lines.append(f"**Your model (`--model`):** {model}.")
    if entry is None:
        lines.append("**Your code (`--system`):** not taken (the track studies the suite's own "
                     "models).")
    else:
        needs = ", ".join(f"`{r}`" for r in entry.requires) or "the protocol's required methods"
        lines.append(f"**Your code (`--system`):** {entry.claim} Needs {needs}.")
    lines += ["", f"**Runtime:** {RUNTIME[track.group]}.", ""]
    return "\n".join(lines)


def render() -> str:
    tracks, systems = all_tracks(), system_entries()
    head = [
        "# The tracks",
        "",
        "<!-- Generated by `python -m tracks.docs` from the registry, the declared bounds and "
        "the track docstrings; do not edit by hand (tests/test_docs.py fails when it is "
        "stale). -->",
        "",
        "Each track measures a falsifiable claim against an independent reference and runs a "
        "negative control that must fail. Run one with `python -m tracks.run --track N`; its "
        "record (`results/track-NN.json`) holds every check's value, bound and verdict. "
        "Measured figures are in the records and the certificate, not on this page.",
        "",
        "| # | track | group | `--model` | `--system` needs |",
        "|---|---|---|---|---|",
    ]
    for number, t in tracks.items():
        model = ("—" if t.model_requires is None
                 else ", ".join(t.model_requires) or "any")
        system = ("—" if number not in systems
                  else ", ".join(systems[number].requires) or "protocol only")
        head.append(f"| {number} | [{t.name}](#{number}-{_anchor(t.name)}) | {t.group} | "
                    f"{model} | {system} |")
    body = []
    for group, title in GROUPS.items():
        body += [f"## Group {group}: {title}", ""]
        body += [section(t, systems.get(n)) for n, t in tracks.items() if t.group == group]
    return "\n".join(head + [""] + body + [ADDING_A_TRACK])


def _anchor(name: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", name.lower()).replace(" ", "-")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tracks.docs", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 (saying so) if docs/TRACKS.md differs from a fresh "
                             "rendering, instead of writing it")
    args = parser.parse_args(argv)
    page = render()
    if args.check:
        current = PAGE.read_text() if PAGE.exists() else ""
        if current != page:
            print(f"{PAGE.relative_to(ROOT)} is stale: regenerate it with python -m tracks.docs")
            return 1
        print(f"{PAGE.relative_to(ROOT)} is up to date")
        return 0
    PAGE.parent.mkdir(exist_ok=True)
    PAGE.write_text(page)
    print(f"wrote {PAGE.relative_to(ROOT)} ({len(all_tracks())} tracks)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
