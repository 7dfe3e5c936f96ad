"""LayeredEqProp: masks, layered energy and dynamics, EP vs BPTT, the chain's SN certificates.

The references are independent: SciPy spectra, the NumPy rebuild of W_eff and the hand-derived
chain rule in `theory.layered`, and BPTT through a long unroll (a REFERENCE, not EqProp).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.linalg
import torch

import theory
from eqprop_core import bptt_gradients, ep_gradients
from eqprop_core.layered import LayeredEqProp, layer_slices, path_graph_norm
from properties import agreement, as_numpy
from theory.layered import Chain, block_norm_bound, layered_implicit_gradients

SIZES = {2: (5, 4), 3: (5, 4, 3)}
ARMS = list(itertools.product((2, 3), ("global", "per_layer"), (True, False)))


def layered(depth: int, mode: str = "global", symmetric: bool = True, seed: int = 0,
            **options) -> LayeredEqProp:
    torch.manual_seed(seed)
    return LayeredEqProp(3, SIZES[depth], 2, sn_mode=mode, symmetric=symmetric,
                         dtype=torch.float64, **options)


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(4, 3, generator=g, dtype=torch.float64), torch.tensor([0, 1, 1, 0])


def chain_of(model: LayeredEqProp) -> Chain:
    return Chain(model.layer_sizes, symmetric=model.symmetric,
                 sn_mode=model.sn_mode if model.spectral_norm else None, gamma=model.gamma,
                 layer_gamma=model.layer_gamma)


@pytest.mark.parametrize("depth,mode,symmetric", ARMS)
def test_masks_hold_in_parameters_and_ep_gradients(depth, mode, symmetric):
    model = layered(depth, mode, symmetric)
    x, y = batch()
    g = ep_gradients(model, x, y, beta=1e-2, tol=1e-13)
    with torch.no_grad():
        for tensor, mask in ((model.recurrent_weight(), model.weight_mask),
                             (g["W"], model.weight_mask),
                             (model.input_weight(), model.input_mask), (g["U"], model.input_mask),
                             (model.readout_weight(), model.readout_mask),
                             (g["V"], model.readout_mask)):
            assert float((tensor * (1 - mask)).abs().max()) == 0.0
            assert float((tensor * mask).abs().max()) > 0.0  # the blocks themselves are used


@pytest.mark.parametrize("depth,mode,symmetric", ARMS)
def test_numpy_rebuild_of_w_eff(depth, mode, symmetric):
    model = layered(depth, mode, symmetric, seed=3)
    net = as_numpy(model)
    rebuilt = chain_of(model).weight(net.W)
    assert np.linalg.norm(rebuilt - net.weight) <= 1e-13 * np.linalg.norm(net.weight)
    if symmetric:
        assert np.array_equal(net.weight, net.weight.T)


@pytest.mark.parametrize("depth", (2, 3))
def test_layered_energy_and_dynamics(depth):
    """E = ΣG − Σ h_{l+1}ᵀW_l h_l − h_1ᵀU x − Σ b_lᵀh_l and h_l ← φ(W_{l−1}h_{l−1} + W_lᵀh_{l+1} +
    b_l), written layer by layer, equal the LoopedMLP forms; ∇E(h*) = 0 at the equilibrium."""
    model = layered(depth)
    x, _ = batch()
    h = 0.9 * torch.tanh(torch.randn(4, model.n_hidden, dtype=torch.float64))
    with torch.no_grad():
        W, U, b = model.recurrent_weight(), model.input_weight(), model.b
        hs = model.split_layers(h)
        s = model.layer_slices
        blocks = [W[upper, lower] for lower, upper in model.couplings()]
        energy = model.activation.primitive_of_inverse(h).sum(dim=1)
        energy = energy - sum(((hs[l + 1] @ Wl) * hs[l]).sum(dim=1) for l, Wl in enumerate(blocks))
        energy = energy - (hs[0] * (x @ U[s[0]].T)).sum(dim=1)
        energy = energy - sum((hs[l] * b[s[l]]).sum(dim=1) for l in range(depth))
        assert torch.allclose(energy, model.energy(h, x), atol=1e-12, rtol=0)

        step = model.step(h, x)
        for l in range(depth):
            drive = b[s[l]] + (x @ U[s[0]].T if l == 0 else hs[l - 1] @ blocks[l - 1].T)
            if l + 1 < depth:
                drive = drive + hs[l + 1] @ blocks[l]
            assert torch.allclose(step[:, s[l]], torch.tanh(drive), atol=1e-13, rtol=0)

        h_star, stats = model.equilibrium(x, tol=1e-14)
        assert stats.all_converged
        assert float(model.energy_gradient(h_star, x).abs().max()) <= 1e-12


@pytest.mark.parametrize("depth,mode", list(itertools.product((2, 3), ("global", "per_layer"))))
def test_ep_matches_bptt_on_a_tiny_layered_model(depth, mode):
    model = layered(depth, mode, seed=1)
    x, y = batch(1)
    ep = ep_gradients(model, x, y, beta=1e-3, tol=1e-14)
    reference = bptt_gradients(model, x, y, steps=600)  # L ≤ 0.95: truncation 0.95^600 ≈ 4e-14
    worst = agreement(ep, reference).worst_relative_error
    assert worst <= 1e-5  # measured ~1e-7 (bias β²); a wrong mask or chain rule is O(1)


@pytest.mark.parametrize("depth,mode,symmetric", ARMS)
def test_witness_chain_rule_matches_bptt(depth, mode, symmetric):
    """theory.layered's hand-derived pull-back to the raw W equals autograd through the unroll,
    directed chains included (the true gradient, which EP's vector-field form misses)."""
    model = layered(depth, mode, symmetric, seed=2)
    x, y = batch(2)
    witness = layered_implicit_gradients(as_numpy(model), chain_of(model), x, y)
    reference = bptt_gradients(model, x, y, steps=800)
    assert agreement(reference, witness).worst_relative_error <= 1e-10


def test_independent_feedback_biases_the_input_layer():
    model = layered(3, symmetric=False, seed=4)
    x, y = batch(4)
    witness = layered_implicit_gradients(as_numpy(model), chain_of(model), x, y)
    ep = ep_gradients(model, x, y, beta=1e-3, tol=1e-14)
    assert agreement(ep, witness, keys=["U"]).cosine["U"] < 0.99  # an unbiased U would be ~1


@pytest.mark.parametrize("depth", (2, 3, 4))
def test_global_sn_certifies(depth):
    torch.manual_seed(depth)
    model = LayeredEqProp(3, (6,) * depth, 2, dtype=torch.float64)
    with torch.no_grad():
        model.W.mul_(100.0)
    weight = model.recurrent_weight().detach().numpy()
    assert theory.spectral_norm(weight) <= model.gamma * (1 + 1e-12)
    assert theory.spectral_norm(weight) <= model.lipschitz_certificate() < 1.0


@pytest.mark.parametrize("depth", (2, 3, 4))
def test_per_layer_sn_chain_bound(depth):
    """‖W_eff‖₂ ≤ ‖A‖₂ ≤ 2 max‖W_l‖ cos(π/(L+1)) = γ with the default γ_b, by SciPy."""
    torch.manual_seed(10 + depth)
    model = LayeredEqProp(3, (6, 5, 4, 6)[:depth], 2, sn_mode="per_layer", dtype=torch.float64)
    weight = model.recurrent_weight().detach().numpy()
    sigma = theory.spectral_norm(weight)
    A_norm = block_norm_bound(weight, model.layer_sizes)
    assert sigma <= A_norm * (1 + 1e-12)
    assert A_norm <= model.block_norm_bound()
    assert model.block_norm_bound() <= model.layer_gamma * path_graph_norm(depth) * (1 + 1e-12)
    assert model.layer_gamma * path_graph_norm(depth) == pytest.approx(model.gamma, rel=1e-14)


@pytest.mark.parametrize("depth", (2, 3, 4, 5))
def test_path_graph_norm_is_the_path_spectrum(depth):
    P = np.diag(np.ones(depth - 1), 1) + np.diag(np.ones(depth - 1), -1)
    assert path_graph_norm(depth) == pytest.approx(theory.spectral_norm(P), abs=1e-14)


def aligned_chain(depth: int, layer_gamma: float) -> LayeredEqProp:
    """Rank-1 blocks W_l = u_{l+1} u_lᵀ sharing their singular vectors: the chain bound is tight."""
    model = LayeredEqProp(2, (4,) * depth, 2, sn_mode="per_layer", layer_gamma=layer_gamma,
                          dtype=torch.float64)
    u = torch.full((4,), 0.5, dtype=torch.float64)
    with torch.no_grad():
        model.W.zero_()
        for lower, upper in model.couplings():
            model.W[upper, lower] = torch.outer(u, u)
    return model


def test_chain_bound_is_tight_and_per_block_gamma_alone_is_not_a_certificate():
    """With aligned blocks ‖W_eff‖₂ = 2γ_b cos(π/(L+1)) exactly: γ_b = γ per block gives
    √2·0.95 ≈ 1.34 > 1 for L = 3 (no contraction), the default γ_b gives exactly γ."""
    naive = aligned_chain(3, layer_gamma=0.95)
    sigma = theory.spectral_norm(naive.recurrent_weight().detach().numpy())
    assert sigma == pytest.approx(0.95 * math.sqrt(2), rel=1e-12)
    assert sigma > 1.0
    default = aligned_chain(3, layer_gamma=0.95 / path_graph_norm(3))
    sigma = theory.spectral_norm(default.recurrent_weight().detach().numpy())
    assert sigma == pytest.approx(0.95, rel=1e-12)


def test_chain_spectrum_is_symmetric():
    """Bipartite chain: eigenvalues come in ± pairs, so σ_max is attained twice (module doc)."""
    model = layered(3, seed=5)
    eig = np.sort(scipy.linalg.eigvalsh(model.recurrent_weight().detach().numpy()))
    assert np.allclose(eig, -eig[::-1], atol=1e-13)


def test_layer_slices_and_split():
    assert layer_slices((3, 2, 4)) == (slice(0, 3), slice(3, 5), slice(5, 9))
    model = LayeredEqProp(2, (3, 2, 4), 2)
    parts = model.split_layers(torch.zeros(7, 9))
    assert [tuple(p.shape) for p in parts] == [(7, 3), (7, 2), (7, 4)]
    with pytest.raises(ValueError, match="9 units"):
        model.split_layers(torch.zeros(7, 8))


@pytest.mark.parametrize("kwargs,match", [
    ({"layer_sizes": (4,)}, "at least two"),
    ({"layer_sizes": (4, 0)}, "at least two positive"),
    ({"layer_sizes": "44"}, "sequence"),
    ({"sn_mode": "spectral"}, "spectral"),
    ({"layer_gamma": -1.0}, "-1.0"),
    ({"layer_gamma": float("nan")}, "nan"),
])
def test_bad_arguments_raise_value_error(kwargs, match):
    arguments = {"layer_sizes": (3, 2), **kwargs}
    with pytest.raises(ValueError, match=match):
        LayeredEqProp(2, n_out=2, **arguments)


@pytest.mark.parametrize("depth", (2, 3))
def test_chain_rule_agrees_with_the_dense_witness_on_the_blocks(depth):
    """Global SN: W_eff = r·sym(W) with W zero off the chain, so `theory.implicit_gradients`'s
    dense pull-back, restricted to the blocks (M∘·), must equal `theory.layered`'s."""
    model = layered(depth, seed=6)
    x, y = batch(6)
    dense = theory.implicit_gradients(as_numpy(model), x, y)
    chain = layered_implicit_gradients(as_numpy(model), chain_of(model), x, y)
    for name, mask in (("W", model.weight_mask), ("U", model.input_mask),
                       ("V", model.readout_mask)):
        masked = mask.numpy() * dense[name]
        assert np.abs(masked - chain[name]).max() <= 1e-15 * np.abs(chain[name]).max()
