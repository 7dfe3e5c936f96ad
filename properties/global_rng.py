"""The process-wide random states — torch's (CPU and CUDA), NumPy's and `random`'s: kept as they
were around a computation, disturbed like a caller would, read back in comparable form.

A measurement that must depend on its seed alone is checked against all three: run inside
`isolated_global_state` it leaves the caller's generators untouched (`run_track` reseeds torch
and NumPy); `scramble_global_rng` leaves them in some caller's state first, and
`global_rng_state` tells whether a call changed them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import numpy as np
import torch


@contextmanager
def isolated_global_state() -> Iterator[None]:
    """Whatever runs inside (e.g. `run_track`, which reseeds torch and NumPy) leaves the global
    RNG states of torch (CPU and CUDA), NumPy and `random` as they were."""
    numpy_state, python_state = np.random.get_state(), random.getstate()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)



def scramble_global_rng(seed: int) -> None:
    """Reseed torch, NumPy and `random` with `seed` and draw from each: a caller's state."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    torch.rand(7), np.random.rand(7), random.random()


def global_rng_state() -> tuple[bytes, tuple[Any, ...], tuple[Any, ...]]:
    """The global states of torch (CPU), NumPy and `random`, in comparable form."""
    # legacy=True (the default) returns the tuple; numpy's stub picks the dict overload
    kind, keys, *rest = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state())
    return torch.get_rng_state().numpy().tobytes(), (kind, keys.tobytes(), *rest), \
        random.getstate()

