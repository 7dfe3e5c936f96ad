"""The registry of tracks: `@track(...)` registers a module's `run(ctx)` under its number.

Adding a track is adding a module `tracks/track_NN_<name>.py` whose `run(ctx)` is decorated
with `@track(...)`; the runner CLI and `pytest tracks/` both read this registry, so they execute
the same code.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .context import TrackContext

GROUPS = {
    "A": "contraction and equilibrium",
    "B": "gradient agreement",
    "C": "learning with real EqProp",
    "D": "dataset benchmarks",
}


@dataclass(frozen=True)
class Track:
    number: int
    name: str
    group: str
    claim: str
    run: Callable[[TrackContext], None]
    threads: int | None = 1
    model_requires: tuple[str, ...] | None = None
    model_reason: str = ("it trains, sweeps or benchmarks the suite's own models; a given model "
                         "is certified by tracks 1-6 and 8-16")
    reference: str | None = None


_REGISTRY: dict[int, Track] = {}


@dataclass(frozen=True)
class SystemEntry:
    """How track `number` certifies a System (`--system`): `run(ctx)` with `ctx.system` set,
    and what the System must provide (keys of `properties.system.CAPABILITIES`)."""

    number: int
    run: Callable[[TrackContext], None]
    requires: tuple[str, ...] = ()

    @property
    def claim(self) -> str:
        """The claim as measured on a System: the first paragraph of the entry's docstring."""
        return " ".join((self.run.__doc__ or "").split("\n\n")[0].split())


_SYSTEM_ENTRIES: dict[int, SystemEntry] = {}


def on_system(number: int, *, requires: tuple[str, ...] = ()) -> Callable:
    """Register the decorated `run(ctx)` as track `number`'s check of a System: the same
    claim as the track, measured on `ctx.system` against the System witness."""

    def register(fn: Callable[[TrackContext], None]) -> Callable[[TrackContext], None]:
        if number in _SYSTEM_ENTRIES and _SYSTEM_ENTRIES[number].run is not fn:
            raise ValueError(f"track {number}'s System entry registered twice")
        _SYSTEM_ENTRIES[number] = SystemEntry(number, fn, tuple(requires))
        return fn

    return register


def system_entries() -> dict[int, SystemEntry]:
    """The tracks that run on a System, by number."""
    all_tracks()
    return dict(sorted(_SYSTEM_ENTRIES.items()))


def track(number: int, name: str, group: str, claim: str, *, threads: int | None = 1,
          model_requires: tuple[str, ...] | None = None,
          model_reason: str | None = None, reference: str | None = None) -> Callable:
    """Register the decorated `run(ctx)` as track `number`.

    `threads`: torch intra-op threads while the track runs. The default 1 suits tracks of small
    matrices, where BLAS threading costs more than it gains and oversubscribes the cores under
    `pytest -n auto`; a track with large batched work passes None (torch's default).

    `model_requires`: None if the track cannot certify a user's model (`--model`; then
    `model_reason` says why, and the track is skipped with it), else what the model must have
    (keys of `properties.fixed_model.REQUIREMENTS`; () for any model): a model lacking one is
    skipped with the reason.

    `reference`: what the track measures against, in one sentence (the independent reference:
    scipy, the NumPy witness, finite differences, BPTT), as the generated docs state it.
    """
    if group not in GROUPS:
        raise ValueError(f"unknown group {group!r}")

    def register(fn: Callable[[TrackContext], None]) -> Callable[[TrackContext], None]:
        if number in _REGISTRY and _REGISTRY[number].run is not fn:
            raise ValueError(f"track {number} registered twice")
        _REGISTRY[number] = Track(number, name, group, claim, fn, threads, model_requires,
                                  model_reason or Track.model_reason, reference)
        return fn

    return register


def all_tracks() -> dict[int, Track]:
    """Every implemented track, by number (imports the track modules on first use)."""
    import tracks

    for module in pkgutil.iter_modules(tracks.__path__):
        if module.name.startswith("track_"):
            importlib.import_module(f"tracks.{module.name}")
    return dict(sorted(_REGISTRY.items()))
