"""Simulated hardware non-idealities: noisy neurons, low-precision states and weights.

A neuromorphic or analog substrate does not run h ← T(h) exactly. Two of its departures are
modelled here, both as maps the dynamics pass through, never as changes to the algorithm:

State transforms s, used as `ep_gradients(..., state_transform=s)` (and `EqProp(...,
state_transform=s)` in training, where inference runs through the same s): every update of every
phase becomes h ← s(T(h)).

    neuron_noise(σ):      s(h) = h + σ ξ,  ξ ~ N(0, I) drawn afresh at every update
    quantize_states(b):   s(h) = q_b(h),   q_b(v) = Δ · clamp(round(v/Δ), −Q, Q),
                          Q = 2^(b−1) − 1,  Δ = r/Q  (r the state range, 1 for tanh)
    compose(s₁, s₂, …):   s(h) = …s₂(s₁(h))  (e.g. a noisy analog update, then an ADC)

Weight precision: `quantize_weights(model, b)` makes the dynamics, the readout and every gradient
estimate use per-tensor fake-quantized matrices

    W_eff → q(W_eff),  U_eff → q(U_eff),  V_eff → q(V_eff),   q(M) = s_M · round(M / s_M),
    s_M = max|M| / Q  (symmetric, per tensor, 2^b − 1 levels; INT8: integers −127…127 × s_M),

i.e. the device stores integer matrices and one scale each, while the learner keeps float
"shadow" parameters (quantization-aware training). The quantizer sits on the matrices the
dynamics *use* (after symmetrization and spectral normalization), because those are what a chip
would hold; quantizing the raw W instead would not make W_eff = γ·½(W + Wᵀ)/σ̂ representable.
The vector–Jacobian product that carries EP's gradient from W_eff back to the raw W treats q as
the identity (straight-through estimator): dq/dM := I. Biases b, c stay in float (on integer
hardware they live in the wide accumulator).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import TracebackType

import torch
from torch import Tensor, nn

StateTransform = Callable[[Tensor], Tensor]

MAX_BITS = 32  # finer grids than this are below float32 resolution on [−1, 1] anyway


def _check_bits(bits: object) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= MAX_BITS:
        raise ValueError(
            f"bits must be an integer in [2, {MAX_BITS}] (a symmetric quantizer needs the "
            f"levels −1, 0, 1 at least), got {bits!r}"
        )
    return bits


def quantization_levels(bits: int) -> int:
    """Q = 2^(bits−1) − 1: the symmetric quantizer's levels are kΔ for the integers |k| ≤ Q."""
    return 2 ** (_check_bits(bits) - 1) - 1


def quantization_step(bits: int, range: float = 1.0) -> float:
    """Δ = range / (2^(bits−1) − 1), the spacing of the `bits`-bit grid on [−range, range]
    (INT8 on [−1, 1]: Δ = 1/127)."""
    if isinstance(range, bool) or not isinstance(range, (int, float)) or not (
            math.isfinite(range) and range > 0):
        raise ValueError(f"range must be a positive finite number, got {range!r}")
    return float(range) / quantization_levels(bits)


def quantize(values: Tensor, bits: int, range: float = 1.0) -> Tensor:
    """q(v) = Δ · clamp(round(v/Δ), −Q, Q) elementwise, Δ = `quantization_step(bits, range)`.

    Round to nearest (ties to even, `torch.round`), so |q(v) − v| ≤ Δ/2 for |v| ≤ range and
    values beyond ±range saturate at ±QΔ = ±range. A complex tensor is quantized in its real and
    imaginary parts separately (two real registers).
    """
    step = quantization_step(bits, range)
    levels = quantization_levels(bits)
    if values.is_complex():
        return torch.complex(quantize(values.real, bits, range),
                             quantize(values.imag, bits, range))
    return torch.clamp(torch.round(values / step), -levels, levels) * step


def neuron_noise(std: float, generator: torch.Generator | None = None) -> StateTransform:
    """s(h) = h + σ ξ with ξ ~ N(0, I) drawn afresh at every call (every update of every phase).

    The noise model is additive, white in time and independent across neurons and samples, with
    standard deviation σ = `std` in the units of the state (tanh states lie in [−1, 1]).
    Complex states (holomorphic EP) get independent noise of std σ on the real *and* the
    imaginary part: a physical neuron's state is real, so a complex state on hardware is two real
    quantities, each held by a noisy unit (variance 2σ² per complex neuron). σ = 0 is the
    identity (h is returned unchanged and no random numbers are drawn). `generator` makes the
    noise reproducible; it must live on the states' device.
    """
    if isinstance(std, bool) or not isinstance(std, (int, float)) or not (
            math.isfinite(std) and std >= 0):
        raise ValueError(f"std must be a finite number ≥ 0, got {std!r}")
    std = float(std)

    def add_noise(h: Tensor) -> Tensor:
        if std == 0:
            return h
        real = h.real if h.is_complex() else h
        noise = torch.randn(real.shape, generator=generator, dtype=real.dtype, device=h.device)
        if h.is_complex():
            imag = torch.randn(real.shape, generator=generator, dtype=real.dtype,
                               device=h.device)
            noise = torch.complex(noise, imag)
        return h + std * noise

    return add_noise


def quantize_states(bits: int, range: float = 1.0) -> StateTransform:
    """s(h) = q_b(h): every neuron's state held on the symmetric `bits`-bit grid of [−range,
    range] after each update (`quantize`: round to nearest, saturating, complex parts
    separately). For tanh states range = 1 covers every value the dynamics can produce."""
    quantization_step(bits, range)  # validates both

    def to_grid(h: Tensor) -> Tensor:
        return quantize(h, bits, range)

    return to_grid


def compose(*transforms: StateTransform) -> StateTransform:
    """s(h) = s_k(…s₂(s₁(h))): the transforms applied left to right (compose(noise, quantize):
    a noisy analog update, then digitized). No transforms is the identity."""
    for index, transform in enumerate(transforms):
        if not callable(transform):
            raise ValueError(f"transform {index} is not callable: {transform!r}")

    def chained(h: Tensor) -> Tensor:
        for transform in transforms:
            h = transform(h)
        return h

    return chained


# -- weights ----------------------------------------------------------------------------------
def fake_quantize(matrix: Tensor, bits: int) -> Tensor:
    """q(M) = s · clamp(round(M/s), −Q, Q), s = max|M|/Q (per-tensor symmetric), with a
    straight-through gradient: the value is exactly q(M), the derivative w.r.t. M the identity.
    A zero matrix is returned as is."""
    _check_bits(bits)
    with torch.no_grad():
        peak = float(matrix.detach().abs().max()) if matrix.numel() else 0.0
        if peak == 0.0:
            return matrix
        quantized = quantize(matrix.detach(), bits, peak)
    # q + (M − M.detach()): the value is q exactly (the bracket is an exact zero), the VJP is I.
    return quantized + (matrix - matrix.detach())


class WeightQuantized:
    """Mixin placed in front of a model's class by `quantize_weights`: the three
    parametrizations θ ↦ θ_eff, each followed by the per-tensor `fake_quantize`."""

    weight_bits: int

    def effective_weight(self, W: Tensor) -> Tensor:
        return fake_quantize(super().effective_weight(W), self.weight_bits)  # type: ignore[misc]

    def effective_input_weight(self, U: Tensor) -> Tensor:
        return fake_quantize(super().effective_input_weight(U),  # type: ignore[misc]
                             self.weight_bits)

    def effective_readout_weight(self, V: Tensor) -> Tensor:
        return fake_quantize(super().effective_readout_weight(V),  # type: ignore[misc]
                             self.weight_bits)


_QUANTIZED_CLASSES: dict[type, type] = {}


def _quantized_class(cls: type) -> type:
    if cls not in _QUANTIZED_CLASSES:
        _QUANTIZED_CLASSES[cls] = type(f"WeightQuantized{cls.__name__}", (WeightQuantized, cls),
                                       {"__doc__": cls.__doc__})
    return _QUANTIZED_CLASSES[cls]


class QuantizedWeights:
    """Handle of an installed weight quantization: `.remove()` restores the float model; as a
    context manager it removes itself on exit (`with quantize_weights(model, 8): …`)."""

    def __init__(self, model: nn.Module, bits: int) -> None:
        self.model = model
        self.bits = bits
        self.original_class = type(model)

    @property
    def installed(self) -> bool:
        return isinstance(self.model, WeightQuantized)

    def remove(self) -> None:
        if self.installed:
            self.model.__class__ = self.original_class
            del self.model.weight_bits

    def __enter__(self) -> nn.Module:
        return self.model

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.remove()


def quantize_weights(model: nn.Module, bits: int) -> QuantizedWeights:
    """Make `model`'s dynamics, readout and EP gradients use `bits`-bit per-tensor symmetric
    fake-quantized W_eff, U_eff, V_eff (module doc), in place; returns the handle that undoes it.

    The model's class is replaced by a subclass whose `effective_weight`,
    `effective_input_weight` and `effective_readout_weight` quantize what the originals return
    (the mechanism of `torch.nn.utils.parametrize`); the raw parameters are untouched, so the
    optimizer keeps updating float shadow weights. ValueError for bad `bits`, a model without
    these parametrizations, or a model already quantized.
    """
    bits = _check_bits(bits)
    for method in ("effective_weight", "effective_input_weight", "effective_readout_weight"):
        if not callable(getattr(model, method, None)):
            raise ValueError(f"model {type(model).__name__} has no {method}(): quantize_weights "
                             "needs the LoopedMLP parametrizations")
    if isinstance(model, WeightQuantized):
        raise ValueError(f"model already has {model.weight_bits}-bit weights; remove() first")
    handle = QuantizedWeights(model, bits)
    model.__class__ = _quantized_class(type(model))
    model.weight_bits = bits  # type: ignore[assignment]
    return handle
