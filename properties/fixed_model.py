"""A user's own model held fixed in the properties, everything else still drawn.

"Certify your own model" runs the same track code as the suite's own certification: where a
track draws its models with `contractive_models()` or `gradient_models()`, it draws
`FixedModel` instead (`st.just`), and hypothesis keeps drawing the starts, inputs, pairs,
perturbations and nudges around it. One source of truth: the user's model meets exactly the
checks the suite's models meet.

The protocol a user's model must satisfy (checked by `FixedModel.__init__`):

- it is an `eqprop_core.LoopedMLP` (a subclass is fine): the dynamics are the update map
  h ← T(h) = φ(h W_effᵀ + x U_effᵀ + b), with W_eff = `effective_weight(W)`, U_eff =
  `effective_input_weight(U)`, readout V_eff h + c with V_eff = `effective_readout_weight(V)`;
  a subclass with structured parameters overrides only these three pure maps;
- its raw parameters are W (n, n), U (n, n_in), b (n,), V (n_out, n), c (n_out,);
- `activation` is one of eqprop_core's registered activations (the witness needs φ, φ′, φ⁻¹);
- it has an energy iff W_eff is symmetric (`symmetric=True`); without one, the tracks that need
  an energy (descent, the energy form of EP) are skipped with that reason;
- `lipschitz_certificate()` is the model's own claimed bound L (tracks 2–4 hold it to scipy's).

The model is certified in float64 (the witness's precision and the tolerances of tracks 1–16):
`build()` returns a fresh float64 deep copy each time, so no track can alter the user's object
or leak a change into another check.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.util
import json
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eqprop_core import ACTIVATIONS, LoopedMLP

# What a track may require of a fixed model, and how each requirement is read off the model.
REQUIREMENTS = {
    "symmetric": "an energy (symmetric W_eff)",
    "asymmetric": "an asymmetric W_eff (W != W^T)",
    "spectral_norm": "spectral normalization (spectral_norm=True)",
    "standard_parametrization": "the standard parametrization W_eff = gamma sym(W)/sigma "
    "(the witness redoes that chain rule; a subclass overriding effective_weight is not it)",
}


class ModelProtocolError(ValueError):
    """The object given as a user's model does not satisfy the protocol (one-line reason)."""


def model_definition(model: LoopedMLP) -> dict[str, Any]:
    """What, beside the parameters, defines the dynamics: the class (qualified name, so a
    subclass with its own effective maps differs), the widths and every configuration flag."""
    cls = type(model)
    return {"class": f"{cls.__module__}.{cls.__qualname__}",
            "widths": [model.n_in, model.n_hidden, model.n_out],
            "symmetric": bool(model.symmetric), "spectral_norm": bool(model.spectral_norm),
            "io_spectral_norm": bool(getattr(model, "io_spectral_norm", False)),
            "gamma": float(model.gamma), "activation": model.activation.name,
            "sn_method": str(getattr(model, "sn_method", "exact")), "dtype": str(model.dtype)}


def _standard_parametrization(model: LoopedMLP) -> bool:
    cls = type(model)
    return all(getattr(cls, name) is getattr(LoopedMLP, name) for name in (
        "effective_weight", "effective_input_weight", "effective_readout_weight"))


@dataclass(eq=False)
class FixedModel:
    """A user's LoopedMLP presented like a `ModelSpec`: `build()`, `inputs`, `labels`, `with_`.

    `source` names where it came from (e.g. 'examples.user_model:build'); it is the repr, so
    a recorded worst example or counterexample names the user's model.
    """

    model: LoopedMLP
    source: str
    seed: int = 0
    weight_factor: float = 1.0  # with_(weight_scale=…): raw W scaled by this
    drive_factor: float = 1.0  # with_(drive_scale=…): U and b scaled by this
    flags: tuple[tuple[str, Any], ...] = ()  # with_(symmetric=…, spectral_norm=…, gamma=…)

    def __post_init__(self) -> None:
        check_protocol(self.model, self.source)

    @cached_property
    def digest(self) -> str:
        """The first 12 hex digits of sha256 over what defines the model (`model_definition`:
        class, configuration, then every raw parameter's name, dtype, shape and float64 bytes):
        part of the repr, so cached measurements keyed by repr never mix two models."""
        sha = hashlib.sha256(json.dumps(model_definition(self.model), sort_keys=True).encode())
        for name, param in sorted(self.model.named_parameters()):
            sha.update(f"{name} {param.dtype} {tuple(param.shape)}".encode())
            sha.update(param.detach().cpu().double().numpy().tobytes())
        return sha.hexdigest()[:12]

    def __repr__(self) -> str:
        changes = [f"sha256 {self.digest}"]
        changes += [f"weight x{self.weight_factor:.6g}"] if self.weight_factor != 1 else []
        changes += [f"drive x{self.drive_factor:.6g}"] if self.drive_factor != 1 else []
        changes += [f"{k}={v!r}" for k, v in self.flags]
        return f"FixedModel({self.source!r}, {', '.join(changes)})"

    # -- what a ModelSpec offers ------------------------------------------------------------
    def build(self) -> LoopedMLP:
        """A fresh float64 copy of the user's model, with this spec's changes applied."""
        model = copy.deepcopy(self.model).to(torch.float64)
        for name, value in self.flags:
            setattr(model, name, value)
        with torch.no_grad():
            model.W.mul_(self.weight_factor)
            model.U.mul_(self.drive_factor)
            model.b.mul_(self.drive_factor)
        return model

    @property
    def n_in(self) -> int:
        return self.model.n_in

    @property
    def n_hidden(self) -> int:
        return self.model.n_hidden

    @property
    def n_out(self) -> int:
        return self.model.n_out

    @property
    def activation(self) -> str:
        return self.model.activation.name

    @property
    def dtype(self) -> str:
        return "float64"

    def _flag(self, name: str) -> Any:
        return dict(self.flags).get(name, getattr(self.model, name))

    @property
    def symmetric(self) -> bool:
        return bool(self._flag("symmetric"))

    @property
    def spectral_norm(self) -> bool:
        return bool(self._flag("spectral_norm"))

    @property
    def gamma(self) -> float:
        return float(self._flag("gamma"))

    @property
    def weight_scale(self) -> float:
        """‖sym(W)‖₂ of the raw weight (as `ModelSpec.weight_scale`: before SN, after
        symmetrizing)."""
        W = self.model.W.detach().cpu().double().numpy() * self.weight_factor
        S = 0.5 * (W + W.T) if self.symmetric else W
        return float(np.linalg.norm(S, 2))

    @property
    def drive_scale(self) -> float:
        return self.drive_factor

    def inputs(self, batch: int, scale: float = 1.0, seed: int | None = None) -> torch.Tensor:
        """A (batch, n_in) float64 standard-normal input batch × scale, reproducible."""
        rng = np.random.default_rng(self.seed + 1 if seed is None else seed)
        return torch.as_tensor(scale * rng.standard_normal((batch, self.n_in)),
                               dtype=torch.float64)

    def labels(self, batch: int, seed: int | None = None) -> torch.Tensor:
        rng = np.random.default_rng(self.seed + 2 if seed is None else seed)
        return torch.as_tensor(rng.integers(0, self.n_out, batch), dtype=torch.int64)

    def with_(self, **changes: Any) -> FixedModel:
        """The same model with a track's change: weight_scale (rescale raw W to ‖sym W‖₂ =
        value), drive_scale (U, b × value), symmetric / spectral_norm / gamma (flags)."""
        factor, drive, flags = self.weight_factor, self.drive_factor, dict(self.flags)
        for key, value in changes.items():
            if key == "weight_scale":
                current = self.weight_scale
                factor = factor * (float(value) / current) if current > 0 else factor
            elif key == "drive_scale":
                drive = float(value)
            elif key in ("symmetric", "spectral_norm", "gamma"):
                flags[key] = value
            else:
                raise ValueError(f"a fixed model cannot change {key!r}")
        return FixedModel(self.model, self.source, self.seed, factor, drive,
                          tuple(sorted(flags.items())))

    # -- preconditions --------------------------------------------------------------------
    def unmet(self, requirements: tuple[str, ...]) -> list[str]:
        """The track requirements (keys of REQUIREMENTS) this model does not satisfy."""
        have = {
            "symmetric": self.symmetric,
            "asymmetric": not self.symmetric,
            "spectral_norm": self.spectral_norm,
            "standard_parametrization": _standard_parametrization(self.model),
        }
        for name in requirements:
            if name not in have:
                raise ValueError(f"unknown model requirement {name!r}; known: "
                                 f"{sorted(REQUIREMENTS)}")
        return [REQUIREMENTS[name] for name in requirements if not have[name]]


def check_protocol(model: object, source: str) -> None:
    """ModelProtocolError with a one-line reason unless `model` satisfies the protocol."""
    if not isinstance(model, LoopedMLP):
        raise ModelProtocolError(
            f"{source} returned {type(model).__name__}, not an eqprop_core.LoopedMLP (or a "
            "subclass): see properties/fixed_model.py for what a model must provide")
    if model.activation.name not in ACTIVATIONS:
        raise ModelProtocolError(f"{source}: activation {model.activation.name!r} is not one of "
                                 f"eqprop_core's {sorted(ACTIVATIONS)}")
    shapes = {"W": (model.n_hidden, model.n_hidden), "U": (model.n_hidden, model.n_in),
              "b": (model.n_hidden,), "V": (model.n_out, model.n_hidden), "c": (model.n_out,)}
    params = dict(model.named_parameters())
    for name, shape in shapes.items():
        if name not in params:
            raise ModelProtocolError(f"{source}: the model has no parameter {name!r}")
        if tuple(params[name].shape) != shape:
            raise ModelProtocolError(f"{source}: parameter {name} has shape "
                                     f"{tuple(params[name].shape)}, expected {shape}")
        if not torch.isfinite(params[name]).all():
            raise ModelProtocolError(f"{source}: parameter {name} has non-finite entries")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def load_factory(target: str, *, flag: str = "--model") -> Any:
    """The callable named by 'package.module:factory' or 'path/to/file.py:factory'.

    ValueError with a one-line reason when the module or the name cannot be found. The current
    directory is importable (as with `python -m`), so `examples.user_model:build` works from
    the project root; a file's own directory is importable (as with `python path/to/file.py`),
    so a file may import its siblings.
    """
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{flag} {target!r}: expected 'package.module:factory' or "
                         "'path/to/file.py:factory'")
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise ValueError(f"{flag} {target!r}: no file {path}")
        folder = str(path.resolve().parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:  # a module calling sys.exit() is refused too
            raise ValueError(f"{flag} {target!r}: importing {path} failed: "
                             f"{_first_line(exc)}") from None
    else:
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(module_name)
        except (Exception, SystemExit) as exc:  # a module calling sys.exit() is refused too
            raise ValueError(f"{flag} {target!r}: cannot import {module_name}: "
                             f"{_first_line(exc)}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ValueError(f"{flag} {target!r}: {module_name} has no callable {attr!r}")
    return factory


def call_factory(target: str, seed: int, *, flag: str = "--model") -> Any:
    """What the factory named by `target` returns, called with torch seeded with `seed` (the
    caller's random state untouched); ValueError with one line when it cannot be loaded or
    raises."""
    factory = load_factory(target, flag=flag)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            return factory()
        except (Exception, SystemExit) as exc:
            raise ValueError(f"{flag} {target!r}: the factory raised "
                             f"{_first_line(exc)}") from None


def load_fixed_model(target: str, seed: int = 0) -> FixedModel:
    """Call the factory (torch seeded with `seed`) and wrap its model; ValueError on failure."""
    return FixedModel(call_factory(target, seed), target, seed)
