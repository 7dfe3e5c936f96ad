"""Unit-test configuration: the hypothesis profile and shared fixtures.

The profile comes from $HYPOTHESIS_PROFILE (CI sets `ci`: derandomized, no database), `dev`
otherwise; an unknown name is a ValueError at collection, not a silently different run.
"""

from __future__ import annotations

import os

import pytest
import torch
from threadpoolctl import threadpool_limits

from eqprop_core import LoopedMLP
from properties.profiles import load_profile_from_env

from .builders import slow_contraction as build_slow_contraction

load_profile_from_env("dev")
# Unit tests solve tiny systems: one thread per pytest-xdist worker avoids oversubscribing cores
# (torch's and scipy's BLAS alike).
torch.set_num_threads(1)
threadpool_limits(1, user_api="blas")
# The runner's CLI (`tracks.run.main`) runs the tracks in this process unless a test asks for
# parallel jobs: the fake tracks exist only here, and xdist already takes the cores.
os.environ["EQPROP_JOBS"] = "1"


@pytest.fixture
def slow_contraction() -> tuple[LoopedMLP, torch.Tensor]:
    """Symmetric SN model (γ = 0.95), small drive: ρ(J*) ≈ 0.95, a slow plain iteration."""
    return build_slow_contraction()


@pytest.fixture
def fake_tracks(monkeypatch: pytest.MonkeyPatch) -> dict:
    """The runner's tracks replaced by `tests/fake_tracks.py` (edit the dict to change one)."""
    import tracks.run

    from .fake_tracks import registry as fake_registry

    registry = fake_registry()
    monkeypatch.setattr(tracks.run, "all_tracks", lambda: registry)
    return registry
