"""Hypothesis profiles: `ci` (derandomized, deterministic), `dev`, `thorough`.

Solver-heavy properties run with deadline=None: a fixed-point solve's time varies with the
contraction factor, and a timing flake is not a property violation.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import hypothesis
from hypothesis import HealthCheck, settings

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile(
    "ci", derandomize=True, database=None, max_examples=25, deadline=None,
    suppress_health_check=_SLOW_OK, print_blob=True,
)
settings.register_profile("dev", max_examples=50, deadline=None, suppress_health_check=_SLOW_OK)
settings.register_profile(
    "thorough", max_examples=500, deadline=None, suppress_health_check=_SLOW_OK
)

PROFILES = ("ci", "dev", "thorough")


def load_profile_from_env(default: str = "dev") -> str:
    """Load $HYPOTHESIS_PROFILE (default `default`); ValueError on an unknown name."""
    name = os.environ.get("HYPOTHESIS_PROFILE", default)
    if name not in PROFILES:
        raise ValueError(f"HYPOTHESIS_PROFILE={name!r} is not one of {PROFILES}")
    settings.load_profile(name)
    return name


def track_settings(max_examples: int) -> settings:
    """Settings for a track's property search: no example database (so a run depends only on
    its seed, never on what an earlier run saved), no deadline, slow data allowed."""
    return settings(
        max_examples=max_examples, database=None, deadline=None, derandomize=False,
        suppress_health_check=_SLOW_OK, print_blob=False,
    )


HARVESTING_SINCE = (6, 131)  # the first Hypothesis that harvests local modules' constants


class HypothesisInternalsChanged(RuntimeError):
    """The Hypothesis internal that keeps draws a function of the seed is not where it was."""


def _local_constants_hook() -> Any:
    """Hypothesis's `providers` module if it harvests local constants through the internal this
    suite patches; None for a version before the harvesting; HypothesisInternalsChanged (naming
    the version) for a version that harvests but no longer has that internal."""
    version = tuple(int(part) for part in hypothesis.__version__.split(".")[:2])
    if version < HARVESTING_SINCE:
        return None
    providers: ModuleType | None
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:
        providers = None
    if providers is None or not all(hasattr(providers, name) for name in
                                    ("_get_local_constants", "Constants", "CONSTANTS_CACHE")) \
            or not hasattr(providers.CONSTANTS_CACHE, "cache"):
        raise HypothesisInternalsChanged(
            f"hypothesis {hypothesis.__version__} no longer has "
            "hypothesis.internal.conjecture.providers._get_local_constants / Constants / "
            "CONSTANTS_CACHE.cache, which eqprop-verify patches so that a track's draws depend "
            "only on its seed; without it results would change with the modules imported. "
            "Install a tested hypothesis (pyproject.toml pins the range) or update "
            "properties/profiles.py:draws_depend_only_on_seed")
    return providers


@contextlib.contextmanager
def draws_depend_only_on_seed() -> Iterator[None]:
    """Stop hypothesis from mixing numeric literals of imported project modules into its draws.

    Hypothesis ≥ 6.131 seeds generation with constants collected from every *local* module in
    sys.modules, so the same seed drew different examples depending on which modules happened to
    be imported (the runner vs pytest, one xdist worker vs another). Track results must be a
    function of the seed alone, so track searches see no local constants. This patches a
    hypothesis internal: before 6.131 there is nothing to patch; a later version without the
    internal raises HypothesisInternalsChanged, naming the version — never a silent fallback.
    """
    providers = _local_constants_hook()
    if providers is None:
        yield
        return
    hook, cache = providers._get_local_constants, providers.CONSTANTS_CACHE
    empty = providers.Constants()

    def clear() -> None:
        cache.cache.clear()

    providers._get_local_constants = lambda: empty
    clear()
    try:
        yield
    finally:
        providers._get_local_constants = hook
        clear()
