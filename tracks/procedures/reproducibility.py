"""Track 24's procedures: the (device, dtype) variants compared with the CPU float64 reference,
the matmul flags recorded beside them, and the same EqProp training run in each variant (digits,
hidden 32, Adam 2e-3, batch 64, identical initialization and data order), and the lines of the
account."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from eqprop_core import LoopedMLP
from eqprop_core.data import Dataset
from eqprop_core.train import EqProp, train
from eqprop_core.variants import SN_MODES, VARIANTS, build
from properties.rounding_tolerances import as_array, compare_computations

TRAIN_HIDDEN, TRAIN_LR, TRAIN_BATCH = 32, 2e-3, 64


def variants() -> list[tuple[str, torch.dtype]]:
    """(device, dtype) pairs compared with the CPU float64 reference."""
    found = [("cpu", torch.float32)]
    if torch.cuda.is_available():
        found += [("cuda", torch.float32), ("cuda", torch.float64)]
    return found


def label(device: str, dtype: torch.dtype) -> str:
    return f"{device} {str(dtype).removeprefix('torch.')}"


def measure_variants(data: Dataset, seed: int, *, hidden: int, batch: int, seeds: int
                     ) -> dict[str, list[dict[str, Any]]]:
    """Per variant (`label`), `compare_computations` of the "standard" LoopedMLP drawn at each
    of `seeds` seeds from `seed` on, on the first `batch` digits test images."""
    x = data.x_test.flatten(1)[:batch]
    y = data.y_test[:batch]
    measured: dict[str, list[dict[str, Any]]] = {}
    for device, dtype in variants():
        name = label(device, dtype)
        measured[name] = []
        for s in range(seed, seed + seeds):
            model, _ = build("standard", data.n_features, hidden, data.n_classes, seed=s)
            measured[name].append(compare_computations(model, x, y, device, dtype))
    return measured


def matmul_flags() -> dict[str, Any]:
    flags: dict[str, Any] = {"float32_matmul_precision": torch.get_float32_matmul_precision()}
    if torch.cuda.is_available():
        flags["cuda_matmul_allow_tf32"] = bool(torch.backends.cuda.matmul.allow_tf32)
        flags["cudnn_allow_tf32"] = bool(torch.backends.cudnn.allow_tf32)
        flags["cuda_device"] = torch.cuda.get_device_name(0)
    return flags


def trained(model: LoopedMLP, data: Dataset, *, device: str, dtype: torch.dtype, epochs: int,
            seed: int) -> tuple[LoopedMLP, list[float], torch.Tensor]:
    """(trained copy, test accuracy per epoch, test predictions on the CPU)."""
    variant = copy.deepcopy(model).to(device=device, dtype=dtype)
    rule = EqProp()
    run = train(variant, rule, data.to(dtype=dtype, device=device), epochs=epochs,
                lr=TRAIN_LR, batch_size=TRAIN_BATCH, seed=seed, progress=False)
    x = data.x_test.flatten(1).to(device=device, dtype=dtype)
    predictions = rule.infer(variant, x).logits.argmax(dim=1).cpu()
    return variant, run.series("test_accuracy"), predictions


def parameter_divergence(a: LoopedMLP, b: LoopedMLP) -> float:
    """‖θ_a − θ_b‖/‖θ_b‖ over all raw parameters (float64, CPU)."""
    pa = np.concatenate([as_array(p).ravel() for p in a.parameters()])
    pb = np.concatenate([as_array(p).ravel() for p in b.parameters()])
    return float(np.linalg.norm(pa - pb) / np.linalg.norm(pb))


def same_seed_note(seed: int, numbers: Sequence[int], differing: list[int],
                   same_seed: list[Any]) -> str:
    return (f"same seed {seed}: tracks {', '.join(map(str, numbers))} give "
            f"{len(numbers) - len(differing)}/{len(numbers)} byte-identical canonical JSON "
            f"(this interpreter vs a fresh one); sha256 "
            + ", ".join(f"{c.number}: {c.sha256[0][:12]}" for c in same_seed))


def variant_note(vs: str, first: dict[str, Any]) -> str:
    return (f"{vs}: W_eff {first['weight']['measured']:.3g} (bound "
            f"{first['weight']['bound']:.3g}); h_0 {first['state']['measured']:.3g} "
            f"(tol {first['state']['tolerance']:.3g}); logits "
            f"{first['logits']['measured']:.3g} (tol {first['logits']['tolerance']:.3g}); "
            f"EP gradients {max(first['gradients']['measured'].values()):.3g} (worst "
            f"ratio {first['gradients']['ratio']:.3g}, beta {first['beta']:.3g}, "
            f"K = {first['steps']})")


def initialization_note(seed: int) -> str:
    return (f"matched initialization at seed {seed}: {len(VARIANTS)} variants x "
            f"{len(SN_MODES)} SN modes, identical raw parameters, different at seed "
            f"{seed + 1}, independent of the global RNG state")


def training_note(name: str, reference: str, curve: list[float], base_curve: list[float],
                  disagreement: float, divergence: float) -> str:
    return (f"training {name} vs {reference}: final test accuracy {100 * curve[-1]:.2f}% vs "
            f"{100 * base_curve[-1]:.2f}%, {100 * disagreement:.2f}% of predictions differ, "
            f"parameters differ by {divergence:.2g} (relative)")
