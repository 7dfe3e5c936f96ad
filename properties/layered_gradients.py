"""EP's gradient and nudge signal layer by layer in a layered energy network (track 21).

`measure(depth, draw, seed)` draws a seeded LayeredEqProp and its batch (`draw_problem`; SN global
for even draws, per layer for odd) and measures, against the independent references of
`theory.layered` (W_eff rebuilt in NumPy, the scipy implicit gradient carried back to the raw
masked W, the linear response dh/dβ): per block and per layer cosine and relative error of
symmetric EP at β = SMALL_BETA, both estimators at TRAINING_BETA, the fitted slope of log error vs
log β over WINDOW, the parametrization, masks and SN certificates, and the nudge signal per layer.
Every phase is solved to residual TOL by plain iteration. `beta_sweep` is the per-layer error
over PLOT_BETAS for one L = 3 draw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

import theory
from eqprop_core import ep_gradients, get_solver, nudged_map
from eqprop_core.layered import LayeredEqProp, path_graph_norm
from theory.layered import Chain, block_norms, layered_implicit_gradients, nudge_response

from .evidence import require_converged
from .extract import as_numpy
from .gradients import agreement, fitted_slope

N_IN, N_OUT, BATCH = 16, 5, 8
DEPTHS = {2: (24, 16), 3: (24, 16, 12)}
TOL = 1e-14
SOLVER = "fixed_point"  # plain iteration: a contraction with L ≤ 0.95 reaches 1e-14 in ~200 steps
SMALL_BETA, TRAINING_BETA = 1e-3, 0.1
WINDOW = (1e-3, 2e-3, 4e-3)  # where the β law is fitted (docstring, checks 7–8)
PLOT_BETAS = (1e-3, 2e-3, 4e-3, 1e-2, 3e-2, 0.1, 0.3)


def draw_problem(depth: int, draw: int, seed: int, *, symmetric: bool = True
                 ) -> tuple[LayeredEqProp, Chain, torch.Tensor, torch.Tensor]:
    """A seeded layered model (SN global for even draws, per-layer for odd) and its batch."""
    mode = "global" if draw % 2 == 0 else "per_layer"
    key = 1000 * seed + 100 * depth + draw + (50 if not symmetric else 0)
    with torch.random.fork_rng():
        torch.manual_seed(key)
        model = LayeredEqProp(N_IN, DEPTHS[depth], N_OUT, symmetric=symmetric, sn_mode=mode,
                              dtype=torch.float64)
    g = torch.Generator().manual_seed(key)
    x = torch.randn(BATCH, N_IN, generator=g, dtype=torch.float64)
    y = torch.randint(0, N_OUT, (BATCH,), generator=g)
    chain = Chain(model.layer_sizes, symmetric=symmetric, sn_mode=mode, gamma=model.gamma,
                  layer_gamma=model.layer_gamma)
    return model, chain, x, y


def layer_blocks(grad: dict[str, Any], model: LayeredEqProp) -> dict[str, tuple[int, np.ndarray]]:
    """{block name: (layer of its rows, 1-based; entries)} for U, W_l (and B_l), b_l."""
    def array(value: Any) -> np.ndarray:
        return value.detach().numpy() if hasattr(value, "detach") else np.asarray(value)

    W, U, b = array(grad["W"]), array(grad["U"]), array(grad["b"])
    s = model.layer_slices
    out = {"U": (1, U[s[0]])}
    for l, (lower, upper) in enumerate(model.couplings(), start=1):
        out[f"W{l}"] = (l + 1, W[upper, lower])
        if not model.symmetric:
            out[f"B{l}"] = (l, W[lower, upper])
    for l, rows in enumerate(s, start=1):
        out[f"b{l}"] = (l, b[rows])
    return out


def entries(blocks: dict[str, tuple[int, np.ndarray]]) -> dict[str, np.ndarray]:
    """{block name: entries}, the form `properties.agreement` compares."""
    return {k: v for k, (_, v) in blocks.items()}


def per_layer(values: dict[str, float], blocks: dict[str, tuple[int, np.ndarray]],
              depth: int, worst: Any = min) -> list[float]:
    """The worst of each layer's block values, layer 1..L."""
    return [worst(v for k, v in values.items() if blocks[k][0] == l) for l in range(1, depth + 1)]


def layer_vectors(blocks: dict[str, tuple[int, np.ndarray]], depth: int) -> dict[str, np.ndarray]:
    """Each layer's blocks concatenated: {"layer l": vector}."""
    return {f"layer {l}": np.concatenate([v.ravel() for k, (layer, v) in sorted(blocks.items())
                                          if layer == l]) for l in range(1, depth + 1)}


def nudged_states(model: LayeredEqProp, x: torch.Tensor, y: torch.Tensor, beta: float,
                  h0: torch.Tensor) -> torch.Tensor:
    h, stats = get_solver(SOLVER)(nudged_map(model, x, y, beta), h0, tol=TOL, max_steps=20000)
    require_converged(stats, f"nudged phase beta={beta:g}")
    return h


def off_chain(model: LayeredEqProp, grads: dict[str, torch.Tensor]) -> float:
    """Largest |entry| outside the chain blocks of W_eff, U_eff, V_eff and EP's W, U, V."""
    with torch.no_grad():
        pairs = ((model.recurrent_weight(), model.weight_mask), (grads["W"], model.weight_mask),
                 (model.input_weight(), model.input_mask), (grads["U"], model.input_mask),
                 (model.readout_weight(), model.readout_mask), (grads["V"], model.readout_mask))
        return max(float((t * (1 - m)).abs().max()) for t, m in pairs)


def measure(depth: int, draw: int, seed: int, *, symmetric: bool = True) -> dict[str, Any]:
    """Everything the checks and the plots read for one drawn model."""
    model, chain, x, y = draw_problem(depth, draw, seed, symmetric=symmetric)
    net = as_numpy(model)
    reference = layer_blocks(layered_implicit_gradients(net, chain, x, y, tol=TOL), model)
    ref_flat = entries(reference)
    ref_layers = layer_vectors(reference, depth)

    def ep(beta: float, estimator: str = "symmetric") -> Any:
        return ep_gradients(model, x, y, beta=beta, estimator=estimator, solver=SOLVER, tol=TOL,
                            max_steps=20000)

    small = ep(SMALL_BETA)
    small_agreement = agreement(entries(layer_blocks(small, model)), ref_flat)
    row: dict[str, Any] = {
        "depth": depth, "draw": draw, "sn_mode": chain.sn_mode, "symmetric": symmetric,
        "cosine": small_agreement.cosine, "relative_error": small_agreement.relative_error,
        "layer_cosine": per_layer(small_agreement.cosine, reference, depth),
        "layer_relative_error": per_layer(small_agreement.relative_error, reference, depth, max),
    }
    if not symmetric:
        return row

    training = {est: agreement(entries(layer_blocks(ep(TRAINING_BETA, est), model)), ref_flat)
                for est in ("symmetric", "one_sided")}
    row["training"] = {est: {"layer_cosine": per_layer(a.cosine, reference, depth),
                             "layer_relative_error": per_layer(a.relative_error, reference, depth,
                                                               max)}
                       for est, a in training.items()}
    slopes = {}
    for est in ("symmetric", "one_sided"):
        errors = []
        for beta in WINDOW:
            estimate = small if (est == "symmetric" and beta == SMALL_BETA) else ep(beta, est)
            errors.append(agreement(layer_vectors(layer_blocks(estimate, model), depth),
                                    ref_layers).relative_error)
        slopes[est] = [fitted_slope(WINDOW, [e[f"layer {l}"] for e in errors])
                       for l in range(1, depth + 1)]
    row["slopes"] = slopes

    # Parametrization, masks, certificates (SciPy on the matrix the dynamics use).
    weight = net.weight
    rebuilt = chain.weight(net.W)
    row["weff_mismatch"] = float(np.linalg.norm(rebuilt - weight) / np.linalg.norm(weight))
    row["off_chain"] = off_chain(model, small)
    row["L"] = theory.lipschitz_certificate(weight, "tanh")
    row["gamma"] = model.gamma
    A = block_norms(weight, model.layer_sizes)
    row["sigma"] = theory.spectral_norm(weight)
    row["block_bound"] = theory.spectral_norm(A)
    row["path_bound"] = float(A.max()) * path_graph_norm(depth)
    row["model_block_bound"] = model.block_norm_bound()

    # Nudge signal per layer, measured from EP's own phases, and the SciPy linear response.
    h0 = small.free_state
    response = nudge_response(net, x, y, tol=TOL)
    s = model.layer_slices
    row["response_error"] = []
    row["signal"] = {}
    for beta in (SMALL_BETA, TRAINING_BETA):
        plus = nudged_states(model, x, y, beta, h0)
        signal = [float(torch.linalg.norm((plus - h0)[:, sl])) / (beta * math.sqrt(BATCH))
                  for sl in s]
        per_unit = [v / math.sqrt(sl.stop - sl.start) for v, sl in zip(signal, s)]
        row["signal"][beta] = {"norm": signal, "per_unit": per_unit,
                               "ratio_to_output": [v / signal[-1] for v in signal]}
        if beta == SMALL_BETA:
            minus = nudged_states(model, x, y, -beta, h0)
            central = ((plus - minus) / (2 * beta)).numpy()
            row["response_error"] = [float(np.linalg.norm(central[:, sl] - response[:, sl])
                                           / np.linalg.norm(response[:, sl])) for sl in s]
    row["predicted_ratio"] = [float(np.linalg.norm(response[:, sl])
                                    / np.linalg.norm(response[:, s[-1]])) for sl in s]
    return row


def rounded(values: Sequence[float], digits: int = 3) -> list[float]:
    return [float(f"{v:.{digits}g}") for v in values]


def beta_sweep(seed: int) -> dict[str, list[list[float]]]:
    """Per-layer relative error over PLOT_BETAS for the first L = 3 draw, both estimators."""
    model, chain, x, y = draw_problem(3, 0, seed)
    reference = layer_vectors(layer_blocks(
        layered_implicit_gradients(as_numpy(model), chain, x, y, tol=TOL), model), 3)
    out = {}
    for est in ("symmetric", "one_sided"):
        errors = [agreement(layer_vectors(layer_blocks(ep_gradients(
            model, x, y, beta=b, estimator=est, solver=SOLVER, tol=TOL, max_steps=20000),
            model), 3), reference).relative_error for b in PLOT_BETAS]
        out[est] = [[e[f"layer {l}"] for e in errors] for l in (1, 2, 3)]
    return out
