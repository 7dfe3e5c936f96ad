"""Tracks declare their bounds once: no bare threshold in a track's run path (issue 18).

A threshold is a `properties.bounds.Bound` declared at a track module's top level, with its
reason; the search and the evidence take that object. This audit reads each track module's
syntax tree and lists what breaks the rule:

- evidence built from a bare number (`at_most`, `at_least`, `within`): the bound has no
  declaration, no reason, and the search may hold a different number;
- a search's `bound=` given as a numeric literal;
- a bound constructed inside a function (a threshold in the run path rather than declared).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TRACKS = Path(__file__).resolve().parent.parent / "tracks"
# The track modules and the procedures their entries call (group D's protocol).
MODULES = sorted(TRACKS.glob("track_[0-9][0-9]_*.py")) + [TRACKS / "benchmark.py"]
EVIDENCE_FROM_NUMBERS = {"at_most", "at_least", "within"}
BOUND_CONSTRUCTORS = {"Bound", "RelativeBound", "at_most_bound", "at_least_bound"}



def _called(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _is_number(node: ast.AST) -> bool:
    """A literal number, or arithmetic on literal numbers only (`1 + 1e-9`, `-0.5`)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
    if isinstance(node, ast.UnaryOp):
        return _is_number(node.operand)
    if isinstance(node, ast.BinOp):
        return _is_number(node.left) and _is_number(node.right)
    return False


def bare_thresholds(path: Path) -> list[str]:
    """Each offence in `path` as 'line N: what'."""
    tree = ast.parse(path.read_text())
    offences = []
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.Lambda))]
    in_function = {id(inner) for f in functions for inner in ast.walk(f) if inner is not f}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _called(node)
        if name in EVIDENCE_FROM_NUMBERS:
            offences.append(f"line {node.lineno}: {name}(...) builds evidence from a bare "
                            "number; declare a Bound and use bound.check(...)")
        for keyword in node.keywords:
            if keyword.arg == "bound" and _is_number(keyword.value):
                offences.append(f"line {node.lineno}: {name}(bound=<number>); pass the "
                                "declared Bound")
        if name in BOUND_CONSTRUCTORS and id(node) in in_function:
            offences.append(f"line {node.lineno}: {name}(...) inside a function; declare it "
                            "at module level")
    return sorted(offences, key=lambda o: int(o.split(":")[0].split()[1]))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_no_bare_threshold_in_a_track(path: Path) -> None:
    offences = bare_thresholds(path)
    assert not offences, "\n".join(offences)


def entry_lines(path: Path) -> int:
    """A track module's lines without its module docstring (the derivation it quotes)."""
    tree = ast.parse(path.read_text())
    total = len(path.read_text().splitlines())
    first = tree.body[0] if tree.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        total -= (first.end_lineno or first.lineno) - first.lineno + 1
    return total


def test_no_track_entry_is_over_200_lines() -> None:
    """Issue 18: the largest entry ≤ 200 lines (its measures live in properties/, its
    procedures in tracks/procedures/, counted separately)."""
    sizes = {p.stem: entry_lines(p) for p in MODULES if p.stem.startswith("track_")}
    assert len(sizes) == 30 and max(sizes.values()) <= 200, sorted(sizes.items(),
                                                                   key=lambda kv: -kv[1])[:3]


def test_the_audit_sees_each_kind_of_offence(tmp_path: Path) -> None:
    source = tmp_path / "track_99_example.py"
    source.write_text(
        "from properties import at_most, at_most_bound, worst_case\n"
        "OK = at_most_bound(1.0, 'declared')\n"
        "def run(ctx):\n"
        "    ctx.check(at_most('x', 2.0, 1.0))\n"
        "    worst_case(None, None, bound=1 + 1e-9, max_examples=1, seed=0)\n"
        "    worst_case(None, None, bound=OK, max_examples=1, seed=0)\n"
        "    local = at_most_bound(0.5, 'in the run path')\n"
        "    ctx.check(OK.check('x', 0.5))\n")
    offences = bare_thresholds(source)
    assert [o.split(":")[0] for o in offences] == ["line 4", "line 5", "line 7"], offences
