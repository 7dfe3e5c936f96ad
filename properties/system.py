"""The System protocol: how the suite meets a researcher's own EqProp code.

A System is any object (a plain class, an `nn.Module`) with

    params: dict[str, Tensor]                     named raw parameters θ (the keys of gradients)
    init_state(x) -> (B, n)                       the flat state, layers concatenated
    step(h, x, params, *, beta=0.0, y=None)       one update h ↦ T_β(h), pure in `params`
    cost(h, y) -> (B,)                            the per-sample cost C read at the state
                                                  (or cost(h, y, params): a cost with
                                                  parameters of its own, such as a readout)

and optionally (each unlocks checks; absent, those checks skip with the reason)

    energy(h, x, params) -> (B,)                  fixed points of T_0 are its stationary points
    ep_gradient(x, y, *, beta, estimator) -> dict the implementation's OWN estimate of +dℒ/dθ,
                                                  ℒ = mean_b C(h*_b, y_b); `estimators` names
                                                  the supported ones ("one_sided", "symmetric")
    free_phase(x) -> (B, n)                       its own free phase (its own steps)
    lipschitz(params) -> float                    a claimed Lipschitz bound of T_0
    sample(batch, seed) -> (x, y)                 a deterministic batch to certify on

`sample` extends the issue's form because the suite must feed the code inputs and targets of
the right kinds; a System without it gets a one-line error saying so.

The witness (`properties.system_witness`) calls only `init_state`, `step`, `cost`, `energy`
and `sample` — never `ep_gradient`, `free_phase` or `lipschitz`, which are what it checks.
It works in float64 on copies of the parameters (`params64()`); `step` must therefore be pure
in the `params` it is given and accept float64 tensors. The premises every check relies on are
verified on load (`SystemUnderTest.__init__`), each violation a `SystemProtocolError` with one
line: shapes, dtypes, finiteness, purity in `params`, row-wise independence of the batch, and
the sign convention of `ep_gradient` (+dℒ/dθ, not the descent direction).
"""

from __future__ import annotations

import copy
import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from .evidence import MeasurementFailed

ESTIMATORS = ("one_sided", "symmetric")
REQUIRED = ("params", "init_state", "step", "cost")
OPTIONAL = ("energy", "ep_gradient", "free_phase", "lipschitz")

# What a track may require of a System, and the sentence a skip gives.
CAPABILITIES = {
    "energy": "an energy(h, x, params)",
    "ep_gradient": "its own ep_gradient(x, y, *, beta, estimator)",
    "free_phase": "its own free_phase(x)",
    "lipschitz": "a claimed lipschitz(params)",
}


@runtime_checkable
class System(Protocol):
    """What a researcher's EqProp implementation provides (see the module docstring)."""

    params: dict[str, Tensor]

    def init_state(self, x: Tensor) -> Tensor: ...

    def step(self, h: Tensor, x: Tensor, params: dict[str, Tensor], *, beta: float = 0.0,
             y: Tensor | None = None) -> Tensor: ...

    def cost(self, h: Tensor, y: Tensor) -> Tensor: ...


class SystemProtocolError(ValueError):
    """The object given as a System breaks the protocol (one-line reason)."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _as64(value: Any) -> Tensor:
    return torch.as_tensor(value).detach().to(torch.float64)


@dataclass(eq=False)
class SystemUnderTest:
    """A user's System with the suite's float64 view of it and its load-time checks.

    `source` names where it came from ('examples/systems/primitive_mlp.py:build'); the repr
    carries it and a digest of the parameters, so a record says which system it certified.
    `batch`: how many samples the checks certify on (drawn by the system's `sample`).
    """

    system: Any
    source: str
    batch: int = 8

    def __post_init__(self) -> None:
        self._check_protocol()

    # -- the float64 view ---------------------------------------------------------------------
    def params64(self) -> dict[str, Tensor]:
        """Fresh float64 copies of θ (the witness perturbs and differentiates these)."""
        return {k: _as64(v).clone() for k, v in self.system.params.items()}

    def data(self, seed: int, batch: int | None = None) -> tuple[Tensor, Tensor]:
        """(x, y) from the system's `sample`, in float64 where floating."""
        x, y = self.system.sample(self.batch if batch is None else batch, int(seed))
        x, y = torch.as_tensor(x), torch.as_tensor(y)
        return (x.detach().double() if x.is_floating_point() else x,
                y.detach().double() if y.is_floating_point() else y)

    def init_state(self, x: Tensor) -> Tensor:
        return _as64(self.system.init_state(x))

    def step(self, h: Tensor, x: Tensor, params: dict[str, Tensor] | None = None, *,
             beta: float = 0.0, y: Tensor | None = None) -> Tensor:
        """T_β(h) with θ = `params` (default: a float64 copy of the system's own)."""
        params = self.params64() if params is None else params
        if beta == 0:
            return self.system.step(h, x, params)
        return self.system.step(h, x, params, beta=beta, y=y)

    def cost(self, h: Tensor, y: Tensor, params: dict[str, Tensor] | None = None) -> Tensor:
        """C(h, y), or C(h, y; θ) for a cost with parameters of its own (a readout)."""
        if not self.cost_takes_params:
            return self.system.cost(h, y)
        return self.system.cost(h, y, self.params64() if params is None else params)

    @cached_property
    def cost_takes_params(self) -> bool:
        """Whether `cost` accepts θ as a third argument (the protocol's extension)."""
        try:
            return len(inspect.signature(self.system.cost).parameters) >= 3
        except (TypeError, ValueError):
            return False

    def energy(self, h: Tensor, x: Tensor, params: dict[str, Tensor] | None = None) -> Tensor:
        return self.system.energy(h, x, self.params64() if params is None else params)

    # -- what the witness checks (the user's own code) ------------------------------------------
    def has(self, capability: str) -> bool:
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}; known: {sorted(CAPABILITIES)}")
        return callable(getattr(self.system, capability, None))

    def unmet(self, requirements: tuple[str, ...]) -> list[str]:
        return [CAPABILITIES[r] for r in requirements if not self.has(r)]

    @cached_property
    def estimators(self) -> tuple[str, ...]:
        declared = tuple(getattr(self.system, "estimators", ("one_sided",)))
        return tuple(e for e in ESTIMATORS if e in declared)

    def ep_gradient(self, x: Tensor, y: Tensor, *, beta: float, estimator: str
                    ) -> dict[str, Tensor]:
        """The user's own estimate of +dℒ/dθ, float64, run on a deep copy (so no call can
        change the system another check sees)."""
        own = copy.deepcopy(self.system)
        try:
            grads = own.ep_gradient(self._cast(x), self._cast(y), beta=beta,
                                    estimator=estimator)
        except (TypeError, AttributeError):
            raise  # a call the protocol allows failed on its signature: a protocol error
        except Exception as exc:  # its own phases failing is a measurement, not a crash
            raise MeasurementFailed(f"the System's own ep_gradient(beta={beta:g}, "
                                    f"{estimator}) returned a gradient", float("nan"),
                                    "no exception", error=_first_line(exc)) from None
        return {k: _as64(v) for k, v in grads.items()}

    def free_phase(self, x: Tensor) -> Tensor:
        try:
            return _as64(copy.deepcopy(self.system).free_phase(self._cast(x)))
        except (TypeError, AttributeError):
            raise
        except Exception as exc:
            raise MeasurementFailed("the System's own free_phase returned a state", float("nan"),
                                    "no exception", error=_first_line(exc)) from None

    def claimed_lipschitz(self) -> float:
        return float(self.system.lipschitz(
            {k: v.detach().clone() for k, v in self.system.params.items()}))

    def _cast(self, t: Tensor) -> Tensor:
        """An input in the dtype of the system's own parameters (its code runs in its dtype)."""
        dtype = next(iter(self.system.params.values())).dtype
        return t.to(dtype) if t.is_floating_point() else t

    # -- identity -----------------------------------------------------------------------------
    @cached_property
    def digest(self) -> str:
        h = hashlib.sha256(type(self.system).__qualname__.encode())
        for name in sorted(self.system.params):
            value = self.system.params[name].detach().cpu().double().contiguous().numpy()
            h.update(name.encode())
            h.update(str(value.shape).encode())
            h.update(value.tobytes())
        return h.hexdigest()

    def __repr__(self) -> str:
        return f"System('{self.source}', sha256 {self.digest[:12]})"

    @cached_property
    def n_state(self) -> int:
        x, _ = self.data(0)
        return int(self.init_state(x).shape[1])

    # -- the load-time checks ------------------------------------------------------------------
    def _fail(self, reason: str) -> SystemProtocolError:
        return SystemProtocolError(f"{self.source}: {reason}")

    def _call(self, what: str, fn: Callable[..., Any]) -> Any:  # fn(): may be a lambda z=z: …
        try:
            return fn()
        except (SystemProtocolError, MeasurementFailed):
            raise
        except Exception as exc:
            raise self._fail(f"{what} raised {_first_line(exc)}") from None

    def _check_protocol(self) -> None:
        system = self.system
        missing = [name for name in REQUIRED if not hasattr(system, name)]
        if missing:
            raise self._fail(f"{type(system).__name__} lacks {', '.join(missing)} (a System "
                             "needs params, init_state, step, cost: see properties/system.py)")
        if not callable(getattr(system, "sample", None)):
            raise self._fail("no sample(batch, seed) -> (x, y): the suite needs inputs and "
                             "targets to certify on (see properties/system.py)")
        params = system.params
        if not isinstance(params, dict) or not params:
            raise self._fail("params must be a non-empty dict[str, Tensor]")
        for name, value in params.items():
            if not isinstance(value, Tensor) or not value.is_floating_point():
                raise self._fail(f"params[{name!r}] is not a floating-point tensor")
            if not torch.isfinite(value).all():
                raise self._fail(f"params[{name!r}] has non-finite entries")
        x, y = self._call("sample(batch, seed)", lambda: self.data(0))
        if x.ndim < 1 or x.shape[0] != self.batch:
            raise self._fail(f"sample({self.batch}, 0) gave x of shape {tuple(x.shape)}; its "
                             f"first dimension must be the batch {self.batch}")
        h = self._call("init_state(x)", lambda: self.init_state(x))
        if h.ndim != 2 or h.shape[0] != self.batch:
            raise self._fail(f"init_state(x) has shape {tuple(h.shape)}, expected "
                             f"({self.batch}, n): the flat state, layers concatenated")
        T = self._call("step(h, x, params)", lambda: self.step(h, x))
        if not isinstance(T, Tensor) or T.shape != h.shape or T.dtype != torch.float64:
            raise self._fail(f"step(h, x, params) returned {getattr(T, 'shape', type(T))} "
                             f"{getattr(T, 'dtype', '')} for a float64 state of shape "
                             f"{tuple(h.shape)}: it must return the same shape and dtype")
        if not torch.isfinite(T).all():
            raise self._fail("step(h, x, params) returned non-finite values at init_state(x)")
        self._check_pure(h, x, T)
        self._check_rows(h, x, T)
        C = self._call("cost(h, y)", lambda: self.cost(T, y))
        if not isinstance(C, Tensor) or C.shape != (self.batch,):
            raise self._fail(f"cost(h, y) returned shape {tuple(getattr(C, 'shape', ()))}, "
                             f"expected ({self.batch},): one cost per sample")
        Tb = self._call("step(h, x, params, beta=0.1, y=y)",
                        lambda: self.step(h, x, beta=0.1, y=y))
        if Tb.shape != h.shape:
            raise self._fail(f"the nudged step returned shape {tuple(Tb.shape)}")
        if self.has("energy"):
            E = self._call("energy(h, x, params)", lambda: self.energy(h, x))
            if not isinstance(E, Tensor) or E.shape != (self.batch,):
                raise self._fail(f"energy(h, x, params) returned shape "
                                 f"{tuple(getattr(E, 'shape', ()))}, expected ({self.batch},)")
        if self.has("ep_gradient"):
            if not self.estimators:
                raise self._fail(f"estimators must name some of {ESTIMATORS}")
            try:
                grads = self._call("ep_gradient", lambda: self.ep_gradient(
                    x, y, beta=0.01, estimator=self.estimators[-1]))
            except MeasurementFailed:
                return  # its phases failed here: the tracks record that as a measurement
            for name, g in grads.items():
                if name not in params:
                    raise self._fail(f"ep_gradient returned {name!r}, which is not in params "
                                     f"({', '.join(params)})")
                if g.shape != params[name].shape:
                    raise self._fail(f"ep_gradient[{name!r}] has shape {tuple(g.shape)}, "
                                     f"params[{name!r}] {tuple(params[name].shape)}")
                if not torch.isfinite(g).all():
                    raise self._fail(f"ep_gradient[{name!r}] has non-finite entries at beta "
                                     "0.01")
            self._check_sign(x, y, grads)

    def _check_pure(self, h: Tensor, x: Tensor, T: Tensor) -> None:
        """step(h, x, θ') must follow θ': a step reading self.params cannot be differentiated
        or perturbed by the witness."""
        T_same = self._call("step", lambda: self.step(h, x))
        if not torch.equal(T_same, T):
            raise self._fail("step(h, x, params) is not deterministic: two calls differed by "
                             f"{float((T_same - T).abs().max()):.3g}")
        # probed off init_state too: at h = 0 a map without biases does not depend on θ
        probe = h + 0.1 * torch.randn(h.shape, dtype=h.dtype,
                                      generator=torch.Generator().manual_seed(0))
        moved = {k: v * 1.5 + 0.1 for k, v in self.params64().items()}
        same = [self._call("step", lambda z=z: self.step(z, x)) for z in (h, probe)]
        after = [self._call("step with other params", lambda z=z: self.step(z, x, moved))
                 for z in (h, probe)]
        if all(torch.equal(a, b) for a, b in zip(same, after)):
            raise self._fail("step(h, x, params) ignores the params it is given (does it read "
                             "self.params?): it must be pure in params")

    def _check_rows(self, h: Tensor, x: Tensor, T: Tensor) -> None:
        """Sample b's update depends on sample b only (the witness solves per sample)."""
        if self.batch < 2:
            return
        h2 = h.clone()
        h2[1:] = h2[1:] + 0.1
        T2 = self._call("step", lambda: self.step(h2, x))
        if not torch.allclose(T2[0], T[0], rtol=0, atol=1e-12):
            raise self._fail("step couples the samples of a batch (changing samples 1.. moved "
                             "sample 0's update): the witness needs a per-sample map")

    def _check_sign(self, x: Tensor, y: Tensor, grads: dict[str, Tensor]) -> None:
        """+dℒ/dθ, not −: a step of −ε·g must lower ℒ where one of +ε·g raises it (ℒ at the
        Newton equilibrium; only a gross sign error is refused here, the tracks measure the
        rest; five steps of the extrapolation suffice for a sign)."""
        from .system_witness import directional_derivative

        slope = directional_derivative(self, x, y, grads, levels=5).value
        norm2 = float(sum((g * g).sum() for g in grads.values()))
        if norm2 > 0 and np.isfinite(slope) and slope < -0.5 * norm2:
            raise self._fail(
                f"ep_gradient looks like -dL/dtheta: <grad L, g> = {slope:.3g} against "
                f"||g||^2 = {norm2:.3g}; return +dL/dtheta, the gradient (the suite descends it)")


def load_system(target: str, *, batch: int = 8, seed: int = 0) -> SystemUnderTest:
    """Call the factory named by 'package.module:factory' or 'path/to/file.py:factory' (torch
    seeded with `seed`) and check its System (a LoopedMLP is wrapped as one); ValueError with
    one line on any failure."""
    from .fixed_model import call_factory

    return as_system(call_factory(target, seed, flag="--system"), target, batch=batch, seed=seed)


def as_system(obj: Any, source: str, *, batch: int = 8, seed: int = 0) -> SystemUnderTest:
    """A System under test from a System, or from the suite's own LoopedMLP (through
    `eqprop_core.system.LoopedMLPSystem`: the same protocol, the same checks)."""
    from eqprop_core import LoopedMLP
    from eqprop_core.system import LoopedMLPSystem

    if isinstance(obj, LoopedMLP):
        obj = LoopedMLPSystem(obj, seed)
    return SystemUnderTest(obj, source, batch)
