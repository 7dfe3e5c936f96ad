"""Track 24's procedures: the (device, dtype) variants compared with the CPU float64 reference,
the matmul flags recorded beside them, and the same EqProp training run in each variant (digits,
hidden 32, Adam 2e-3, batch 64, identical initialization and data order)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from eqprop_core import LoopedMLP
from eqprop_core.data import Dataset
from eqprop_core.train import EqProp, train
from eqprop_core.variants import build
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
