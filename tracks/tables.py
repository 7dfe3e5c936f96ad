"""Markdown tables of a dataset-benchmark track, generated from its JSON — never typed by hand.

The runner writes `DIR/track-NN-table.md` right after `DIR/track-NN.json`, by reading that file
back; to regenerate or print one:

    python -m tracks.tables results/track-25.json            # print
    python -m tracks.tables results/track-25.json -o t.md    # write
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tracks.records import RecordError, atomic_write_text, read_record


def _number(value: Any) -> float:
    """A JSON number; the non-finite floats the JSON stores as strings ('nan', 'inf') too."""
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def mean_pm(summary: dict[str, Any], scale: float = 1.0, digits: int = 2) -> str:
    """'mean ± half-width' of a {mean, low, high} summary (just the mean when no interval)."""
    mean, low, high = (_number(summary.get(k)) for k in ("mean", "low", "high"))
    if not math.isfinite(mean):
        return "n/a"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{scale * mean:.{digits}f}"
    return f"{scale * mean:.{digits}f} ± {scale * (high - low) / 2:.{digits}f}"


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows), ""]


def benchmark_markdown(record: dict[str, Any]) -> str:
    """The measured matrix, the SN comparisons, the claimed-vs-measured table (when the track
    tests a claimed table) and the verdicts, from one track's JSON record."""
    if "results" not in record:
        raise ValueError(f"track {record.get('track')} has no benchmark results in its JSON")
    results = record["results"]
    n_seeds = results["setup"]["seeds"]
    lines = [f"# Track {record['track']} — {record['name']} ({record['status']}, profile "
             f"{record['profile']}, seed {record['seed']})", "",
             f"Data: {results['dataset']}.  ",
             f"Setup: {results['setup']['description']}; SN target γ = "
             f"{results['setup']['gamma']}.  ",
             f"Logistic-regression baseline on the same split: "
             f"{100 * _number(results['linear_baseline_accuracy']):.2f}%.", "",
             f"## Measured (mean ± 95% CI half-width over {n_seeds} seeds)", ""]
    lines += _table(
        ["variant", "SN", "chosen lr", "test accuracy (%)", "‖W_eff‖₂", "raw σ(W)",
         "L (scipy)", "ρ(J)", "converged in T (%)", "diverged", "train s / run"],
        [[a["variant"], a["label"], f"{_number(a['lr']):g}", mean_pm(a["accuracy"], 100),
          mean_pm(a["sigma_eff"], 1, 3), mean_pm(a["sigma_raw"], 1, 3),
          mean_pm(a["lipschitz"], 1, 3), mean_pm(a["rho"], 1, 3),
          mean_pm(a["converged_share"], 100, 1), a["divergences"],
          f"{_number(a['train_s']):.1f}"] for a in results["arms"]])
    lines += ["## SN − no SN, test accuracy (points)", ""]
    lines += _table(
        ["variant", "SN arm", "Δ", "Welch 95% CI", "Welch p", "paired Δ (95% CI)"],
        [[c["variant"], c["sn"], f"{_number(c['welch']['difference']):+.2f}",
          f"[{_number(c['welch']['low']):+.2f}, {_number(c['welch']['high']):+.2f}]",
          f"{_number(c['welch']['p']):.3g}",
          f"{_number(c['paired']['mean']):+.2f} [{_number(c['paired']['low']):+.2f}, "
          f"{_number(c['paired']['high']):+.2f}]"] for c in results["comparisons"]])
    claimed = results.get("claimed")
    if claimed:
        arms = {(a["variant"], a["sn"]): a for a in results["arms"]}
        rows = []
        for variant, row in claimed.items():
            sn, off = arms.get((variant, "recurrent")), arms.get((variant, "off"))
            if sn is None or off is None:
                continue
            rows.append([
                row["architecture"], f"{row['with_sn']:.1f}", mean_pm(sn["accuracy"], 100, 1),
                f"{row['without_sn']:.1f}", mean_pm(off["accuracy"], 100, 1),
                f"{row['lipschitz_sn']:.2f} → {row['lipschitz_no_sn']:.2f}",
                f"{mean_pm(sn['lipschitz'])} → {mean_pm(off['lipschitz'])}",
                f"{mean_pm(sn['sigma_raw'])} → {mean_pm(off['sigma_raw'])}"])
        lines += ["## Claimed (write-up) beside measured", ""]
        lines += _table(["architecture", "with SN, claimed (%)", "with SN, measured (%)",
                         "without SN, claimed (%)", "without SN, measured (%)",
                         "Lipschitz claimed SN → no SN", "L measured (W_eff, scipy)",
                         "raw σ(W) measured"], rows)
    lines += ["## Verdicts", "", results.get("verdict", ""), ""]
    lines += _table(["claim", "measured", "stated", "verdict", "why"],
                    [[v["claim"], f"{_number(v['value']):.3g}", v["stated"],
                      v["verdict"].upper() if v["verdict"] == "refuted" else v["verdict"],
                      v["reason"]] for v in results["verdicts"]])
    return "\n".join(lines)


def table_name(number: int) -> str:
    return f"track-{number:02d}-table.md"


def write_table(json_path: Path) -> Path:
    """Render `json_path` (a track's JSON, as written) into track-NN-table.md beside it."""
    record = read_record(json_path)
    path = json_path.with_name(table_name(record["track"]))
    return atomic_write_text(path, benchmark_markdown(record) + "\n")


def main(argv: Sequence[str] | None = None, prog: str = "python -m tracks.tables") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Markdown tables of a dataset-benchmark track (25–28), from its JSON.")
    parser.add_argument("json", type=Path, help="a track's JSON, e.g. results/track-25.json")
    parser.add_argument("-o", "--output", type=Path, help="write here instead of printing")
    args = parser.parse_args(argv)
    try:
        record = read_record(args.json)  # RecordError (a ValueError) names the file
        text = benchmark_markdown(record)
    except RecordError as err:  # already names the file
        print(f"tracks.tables: error: {err}", file=sys.stderr)
        return 2
    except (ValueError, KeyError, TypeError) as err:  # a record without benchmark results
        reason = f"missing key {err}" if isinstance(err, KeyError) else str(err)
        print(f"tracks.tables: error: {args.json}: {reason}", file=sys.stderr)
        return 2
    if args.output is None:
        print(text)
    else:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
