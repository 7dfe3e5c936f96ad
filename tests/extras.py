"""Tests of what an optional extra (Ray, TensorBoard) unlocks, run as if it were absent."""

from __future__ import annotations

import builtins
from typing import Any

import pytest


def hide_module(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """Make `import module` fail as it does where the extra is not installed."""
    real_import = builtins.__import__

    def refuse(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == module or name.startswith(f"{module}."):
            raise ImportError(f"{module} is not installed (hidden by the test)")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse)
