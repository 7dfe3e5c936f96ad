"""Hypothesis profiles: `ci` (derandomized, deterministic), `dev`, `thorough`.

Solver-heavy properties run with deadline=None: a fixed-point solve's time varies with the
contraction factor, and a timing flake is not a property violation.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

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


@contextlib.contextmanager
def draws_depend_only_on_seed() -> Iterator[None]:
    """Stop hypothesis from mixing numeric literals of imported project modules into its draws.

    Hypothesis ≥ 6.131 seeds generation with constants collected from every *local* module in
    sys.modules, so the same seed drew different examples depending on which modules happened to
    be imported (the runner vs pytest, one xdist worker vs another). Track results must be a
    function of the seed alone, so track searches see no local constants. This patches a
    hypothesis internal; on versions without it, it does nothing.
    """
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover
        yield
        return
    hook = getattr(providers, "_get_local_constants", None)
    cache = getattr(providers, "CONSTANTS_CACHE", None)
    if hook is None or not hasattr(providers, "Constants"):
        yield
        return
    empty = providers.Constants()

    def clear() -> None:
        if cache is not None and hasattr(cache, "cache"):
            cache.cache.clear()

    providers._get_local_constants = lambda: empty
    clear()
    try:
        yield
    finally:
        providers._get_local_constants = hook
        clear()
