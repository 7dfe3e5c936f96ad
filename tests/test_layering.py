"""One direction of dependency (STYLE.md): tracks → properties → (eqprop_core, theory).

Read from the source with `ast` (nothing is imported), every import statement wherever it stands
— module level, inside a function, under `if TYPE_CHECKING:` — and every
`importlib.import_module("…")` / `__import__("…")` of a literal name:
(i)   no track module (`tracks/track_*.py`) imports another track module, absolutely or
      relatively: what two tracks share lives in `properties/` (or the runner's modules);
(ii)  no test imports a track module: a track's mathematics is tested in `properties/`, its
      runnable through the registry and the runner (`tracks.registry`, `tracks.run`);
(iii) `theory` imports nothing of `eqprop_core`: it is the independent witness;
(iv)  `eqprop_core` imports nothing of `theory`, `properties` or `tracks`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TRACK_MODULE = re.compile(r"^tracks\.track_\d+")


def imported_names(source: str, module: str, is_package: bool = False
                   ) -> Iterator[tuple[int, str]]:
    """(line, absolute dotted name) of everything `source`, the code of `module`, imports.

    `from a.b import c` yields a.b and a.b.c (c may be a submodule); a relative import is resolved
    against `module`'s package."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            parts = package[:len(package) - node.level + 1] if node.level else []
            base = ".".join([*parts, *([node.module] if node.module else [])])
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module"
                   or isinstance(node.func, ast.Name)
                   and node.func.id in ("import_module", "__import__"))):
            yield node.lineno, node.args[0].value


def within(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


@dataclass(frozen=True)
class Rule:
    """Files matching `patterns` (relative to the repository root) must not import a name for
    which `forbidden(name, importer)` holds."""

    name: str
    patterns: tuple[str, ...]
    forbidden: Callable[[str, str], bool]

    def files(self) -> list[Path]:
        return sorted({p for pattern in self.patterns for p in ROOT.glob(pattern)})

    def violations(self, source: str, module: str, is_package: bool = False
                   ) -> list[tuple[int, str]]:
        """(line, forbidden name) per offending line, the first name it imports that is."""
        found: dict[int, str] = {}
        for line, name in imported_names(source, module, is_package):
            if self.forbidden(name, module):
                found.setdefault(line, name)
        return sorted(found.items())


def another_track(name: str, importer: str) -> bool:
    found = TRACK_MODULE.match(name)
    return bool(found) and not within(importer, name.split(".")[0] + "." + name.split(".")[1])


RULES = {
    "track imports a track": Rule("no track imports another track", ("tracks/track_*.py",),
                                  another_track),
    "test imports a track": Rule("no test imports a track module",
                                 ("tests/*.py", "tracks/test_*.py"),
                                 lambda name, _: bool(TRACK_MODULE.match(name))),
    "theory imports eqprop_core": Rule("theory imports nothing of eqprop_core", ("theory/*.py",),
                                       lambda name, _: within(name, "eqprop_core")),
    "eqprop_core imports the suite": Rule(
        "eqprop_core imports nothing of theory, properties or tracks", ("eqprop_core/*.py",),
        lambda name, _: within(name, "theory", "properties", "tracks")),
}


def module_of(path: Path) -> tuple[str, bool]:
    """(dotted module name, is a package's __init__) of a file under the repository root."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


@pytest.mark.parametrize("key", list(RULES))
def test_the_layering_holds(key: str) -> None:
    rule = RULES[key]
    files = rule.files()
    assert files, f"{rule.name}: no files match {rule.patterns}"  # a pattern gone stale
    offending = [f"{path.relative_to(ROOT)}:{line} imports {name}"
                 for path in files
                 for line, name in rule.violations(path.read_text(encoding="utf-8"),
                                                   *module_of(path))]
    assert not offending, f"{rule.name}:\n" + "\n".join(offending)


# The detector itself: each planted import is flagged at its line, each allowed one is not.
PLANTED = [
    ("track imports a track", "tracks.track_06_noise_damping",
     "from .track_05_jacobian_spectrum import MIN_RHO", [1]),
    ("track imports a track", "tracks.track_06_noise_damping",
     "import numpy\nfrom . import track_05_jacobian_spectrum as t5", [2]),
    ("track imports a track", "tracks.track_24_reproducibility",
     "def run(ctx):\n    from tracks.track_16_ep_through_sn import without_sn", [2]),
    ("track imports a track", "tracks.track_06_noise_damping",
     "import tracks.track_05_jacobian_spectrum", [1]),
    ("track imports a track", "tracks.track_06_noise_damping",
     "from .premises import describe_models\nfrom properties.contraction_rate import MIN_RHO\n"
     "from tracks.registry import track", []),
    ("track imports a track", "tracks.track_06_noise_damping",
     "from .track_06_noise_damping import LOCAL_SIZE", []),  # itself, not another track
    ("test imports a track", "tests.test_gradient_tracks_13_15",
     "from tracks import track_13_holomorphic as t13", [1]),
    ("test imports a track", "tests.test_benchmark",
     "import importlib\nMNIST = importlib.import_module('tracks.track_25_mnist').MNIST", [2]),
    ("test imports a track", "tests.test_runner",
     "from tracks.registry import all_tracks\nfrom tracks.run import run_track\n"
     "import tracks.benchmark", []),
    ("theory imports eqprop_core", "theory.spectra",
     "from eqprop_core.model import LoopedMLP", [1]),
    ("theory imports eqprop_core", "theory.asynchronous",
     '"""NumPy only: imports nothing of eqprop_core."""\nimport numpy as np', []),
    ("eqprop_core imports the suite", "eqprop_core.model",
     "import numpy\n\n\ndef f():\n    from ..properties import strategies", [5]),
    ("eqprop_core imports the suite", "eqprop_core.model", "import theory.spectra", [1]),
    ("eqprop_core imports the suite", "eqprop_core.model",
     "from .spectral import rounding_margin\nimport theorem_prover", []),
]


@pytest.mark.parametrize("key, module, source, lines", PLANTED)
def test_the_detector_flags_exactly_the_planted_imports(key: str, module: str, source: str,
                                                        lines: list[int]) -> None:
    assert [line for line, _ in RULES[key].violations(source, module)] == lines


def test_relative_imports_resolve_against_the_package() -> None:
    assert sorted(imported_names("from ..theory import spectra", "properties.scaling")) == [
        (1, "theory"), (1, "theory.spectra")]
    assert sorted(imported_names("from . import search", "properties", is_package=True)) == [
        (1, "properties"), (1, "properties.search")]
