"""The synthetic task the example Systems are certified on.

    x ~ U[−1, 1]^n_in,   y = one-hot(argmax_j (T x)_j),   T ~ N(0, 1)^{n_out × n_in} fixed

A fixed random teacher T: every `sample(batch, seed)` is reproducible, and the targets are
one-hot vectors in [0, 1], as an MSE-trained EqProp network's outputs are.
"""

from __future__ import annotations

import torch
from torch import Tensor


class TeacherTask:
    """`sample(batch, seed)` of the task above for n_in inputs and n_out classes."""

    def __init__(self, n_in: int, n_out: int, seed: int) -> None:
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.teacher = torch.randn(self.n_out, self.n_in, dtype=torch.float64,
                                   generator=torch.Generator().manual_seed(int(seed)))

    def sample(self, batch: int, seed: int) -> tuple[Tensor, Tensor]:
        """(x (batch, n_in), y (batch, n_out) one-hot), float64, from `seed`."""
        g = torch.Generator().manual_seed(int(seed))
        x = 2 * torch.rand(batch, self.n_in, dtype=torch.float64, generator=g) - 1
        y = torch.nn.functional.one_hot((x @ self.teacher.T).argmax(1), self.n_out)
        return x, y.to(torch.float64)
