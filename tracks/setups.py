"""What a dataset benchmark (tracks 25–28) trains: a `Setup`, read from a TOML file.

The two built-in profiles are the files `tracks/setups/quick.toml` and `full.toml`; a user's
file of the same form (`python -m tracks.run --track 25 --setup my.toml`) replaces the
profile's. Every key is optional except the ones the profile files set; an unknown key, a value
of the wrong type or an impossible value is a `ValueError` naming it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from eqprop_core.variants import SN_MODES, VARIANTS

SETUPS = Path(__file__).with_name("setups")


@dataclass(frozen=True)
class Setup:
    """What one profile trains: subset sizes (None: the whole split), width, epochs, seeds, the
    learning-rate grid, the phases (T_free, T_nudged) and which variants / SN arms."""

    n_train: int | None
    n_test: int | None
    hidden: int
    epochs: int
    seeds: int
    rates: tuple[float, ...]
    steps: tuple[int, int] = (30, 10)
    batch_size: int = 64
    validation: float = 0.2
    variants: tuple[str, ...] = tuple(VARIANTS)
    sn_modes: tuple[str, ...] = SN_MODES

    def __post_init__(self) -> None:
        if self.seeds < 2:
            raise ValueError(f"a confidence interval needs ≥ 2 seeds, got {self.seeds}")
        if not self.rates or any(not r > 0 for r in self.rates):
            raise ValueError(f"learning-rate grid must be positive numbers, got {self.rates}")
        if "off" not in self.sn_modes:
            raise ValueError("the SN comparison needs the 'off' arm")
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants:
            raise ValueError(f"variants {list(self.variants)}: choose from {list(VARIANTS)}")
        unknown = [m for m in self.sn_modes if m not in SN_MODES]
        if unknown:
            raise ValueError(f"sn_modes {list(self.sn_modes)}: choose from {list(SN_MODES)}")

    def describe(self) -> str:
        sizes = ("whole splits" if self.n_train is None else
                 f"{self.n_train:,} train / {self.n_test:,} test")
        return (f"{sizes}, hidden {self.hidden}, T = {self.steps[0]} free + {self.steps[1]} "
                f"nudged, {self.epochs} epochs, batch {self.batch_size}, {self.seeds} seeds, "
                f"Adam lr grid {{{', '.join(f'{r:g}' for r in self.rates)}}} chosen per arm on "
                f"a {self.validation:.0%} validation split")


def _typed(key: str, value: Any, kind: type, *, positive: bool = True) -> Any:
    """`value` as `kind` (an int is accepted for a float), else ValueError naming `key`."""
    ok = (isinstance(value, kind) or (kind is float and isinstance(value, int))) and \
        not isinstance(value, bool)
    if not ok or (positive and not value > 0):
        raise ValueError(f"setup key {key!r} = {value!r}: expected a "
                         f"{'positive ' if positive else ''}{kind.__name__}")
    return kind(value)


def setup_from_mapping(values: dict[str, Any], source: str = "setup") -> Setup:
    """A Setup from a parsed TOML table; ValueError naming the key of any bad entry."""
    fields = {f.name for f in dataclasses.fields(Setup)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {', '.join(unknown)}; the keys are "
                         f"{', '.join(sorted(fields))}")
    missing = sorted(k for k in ("hidden", "epochs", "seeds", "rates") if k not in values)
    if missing:
        raise ValueError(f"{source}: missing key(s) {', '.join(missing)}")
    kinds = {"n_train": int, "n_test": int, "hidden": int, "epochs": int, "seeds": int,
             "batch_size": int, "validation": float}
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in kinds:
            out[key] = _typed(key, value, kinds[key])
        elif key == "rates":
            if not isinstance(value, list) or not value:
                raise ValueError(f"setup key 'rates' = {value!r}: expected a list of rates")
            out[key] = tuple(_typed("rates", r, float) for r in value)
        elif key == "steps":
            if not isinstance(value, list) or len(value) != 2:
                raise ValueError(f"setup key 'steps' = {value!r}: expected [T_free, T_nudged]")
            out[key] = tuple(_typed("steps", s, int) for s in value)
        else:  # variants, sn_modes
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"setup key {key!r} = {value!r}: expected a list of names")
            out[key] = tuple(value)
    if ("n_train" in out) != ("n_test" in out):
        raise ValueError(f"{source}: give both n_train and n_test, or neither (whole splits)")
    out.setdefault("n_train", None)
    out.setdefault("n_test", None)
    if not 0 < out.get("validation", 0.2) < 1:
        raise ValueError(f"setup key 'validation' = {out['validation']!r}: expected a share "
                         "in (0, 1)")
    try:
        return Setup(**out)
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from None


def load_setup(path: Path | str) -> Setup:
    """The Setup in TOML file `path`; ValueError (one line) when it is absent or invalid."""
    path = Path(path)
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ValueError(f"setup file {path}: {err.strerror or err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"setup file {path} is not TOML: {err}") from None
    return setup_from_mapping(values, f"setup file {path}")


PROFILES = {name: load_setup(SETUPS / f"{name}.toml") for name in ("quick", "full")}
