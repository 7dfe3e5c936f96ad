"""The subspace spectral bound (`eqprop_core.spectral`): σ̂ ≥ σ_max by scipy, whatever the cache.

Claims under test, each against `scipy.linalg.svdvals` in float64 (never the code under test):
the raw bound of `subspace_spectral_bound` holds against a stale reference after drawn update
sequences (sizes 0…1e3, including a new top direction orthogonal to the reference subspace);
`SubspaceSpectralNorm` is within its tolerance after every call and exact to rounding after a
refresh; refreshes happen when they must and not otherwise; the model option keeps σ_max(W_eff)
≤ γ, stays out of state_dict and survives deepcopy. Negative control: the Ritz value s alone (a
power-iteration-style estimate) is caught under-estimating σ_max on a drawn case.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import find, given, settings
from hypothesis import strategies as st

from eqprop_core import LoopedMLP
from eqprop_core.spectral import (
    CholeskySpectralNorm,
    SubspaceSpectralNorm,
    certified_spectral_norm,
    cholesky_certified_below,
    rounding_margin,
    schur_upper_bound,
    spectrally_normalize,
    subspace_reference,
    subspace_spectral_bound,
)
from eqprop_core.variants import build
from properties.strategies import ModelSpec

DTYPES = {"float32": torch.float32, "float64": torch.float64}
UPDATE_SIZES = (0.0, 1e-6, 1e-3, 1e-1, 1.0, 1e3)


def sigma_max(weight: torch.Tensor) -> float:
    return float(scipy.linalg.svdvals(weight.detach().double().cpu().numpy())[0])


def drawn_matrix(rng: np.random.Generator, shape: tuple[int, int], scale: float,
                 symmetric: bool, dtype: torch.dtype) -> torch.Tensor:
    """Gaussian entries of the given scale plus a random rank-1 spike (a separated top)."""
    a = scale * rng.standard_normal(shape)
    a += scale * rng.uniform(0, 3) * np.outer(rng.standard_normal(shape[0]),
                                              rng.standard_normal(shape[1]))
    matrix = torch.as_tensor(a, dtype=dtype)
    return 0.5 * (matrix + matrix.T) if symmetric else matrix


cases = st.fixed_dictionaries({
    "symmetric": st.booleans(),
    "rows": st.integers(1, 32),
    "cols": st.integers(1, 32),
    "rank": st.integers(1, 12),
    "scale": st.sampled_from([1e-3, 1.0, 1e3]),
    "dtype": st.sampled_from(sorted(DTYPES)),
    "updates": st.lists(st.sampled_from(UPDATE_SIZES), min_size=1, max_size=6),
    "seed": st.integers(0, 2**16),
})


def matrices(case: dict) -> list[torch.Tensor]:
    """The initial matrix and the matrix after each update of the drawn sequence."""
    rng = np.random.default_rng(case["seed"])
    shape = (case["rows"], case["rows"] if case["symmetric"] else case["cols"])
    dtype = DTYPES[case["dtype"]]
    current = drawn_matrix(rng, shape, case["scale"], case["symmetric"], dtype)
    sequence = [current]
    for size in case["updates"]:
        current = current + drawn_matrix(rng, shape, size, case["symmetric"], dtype)
        sequence.append(current)
    return sequence


# -- the bound itself ---------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(cases)
def test_stale_reference_bound_is_above_scipy_sigma_after_drawn_updates(case: dict) -> None:
    first, *later = matrices(case)
    reference = subspace_reference(first, case["rank"], symmetric=case["symmetric"])
    for weight in [first, *later]:
        estimate = subspace_spectral_bound(weight, reference)
        truth = sigma_max(weight)
        assert estimate.upper >= truth, (estimate, truth)
        assert float(estimate.ritz) <= truth * (1 + 1e-12) + 1e-300  # interlacing: a lower bound


@settings(max_examples=60, deadline=None)
@given(cases, st.sampled_from([1e-4, 1e-3, 1e-2]))
def test_cached_bound_is_certified_and_within_tolerance_after_every_call(
        case: dict, tolerance: float) -> None:
    bound = SubspaceSpectralNorm(rank=case["rank"], tolerance=tolerance)
    for weight in matrices(case):
        sigma = float(bound(weight, symmetric=case["symmetric"]))
        truth = sigma_max(weight)
        assert truth <= sigma <= (1 + tolerance) * truth, (sigma, truth)
        normalized = spectrally_normalize(weight, 0.95, symmetric=case["symmetric"],
                                          bound=bound)
        assert sigma_max(normalized) <= 0.95
    assert 1 <= bound.refreshes <= bound.calls // 2 + 1  # each matrix evaluated twice


@settings(max_examples=40, deadline=None)
@given(cases)
def test_a_refresh_is_exact_to_rounding(case: dict) -> None:
    weight = matrices(case)[0]
    bound = SubspaceSpectralNorm(rank=case["rank"])
    sigma = float(bound(weight, symmetric=case["symmetric"]))
    n = min(weight.shape)
    allowed = rounding_margin(n, weight.dtype) + 1e-10
    assert bound.refreshes == 1
    assert 0 <= sigma / sigma_max(weight) - 1 <= allowed


def orthogonal_spike(n: int, rank: int, size: float, seed: int) -> tuple[torch.Tensor, ...]:
    """(A_ref, A_ref + size·zzᵀ) with z ⊥ the top-`rank` eigenvectors of A_ref: the update
    creates a new top direction the reference subspace cannot see."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n)) / math.sqrt(n)
    a_ref = torch.as_tensor(a + a.T)
    _, vectors = torch.linalg.eigh(a_ref)
    kept = vectors[:, torch.linalg.eigvalsh(a_ref).abs().argsort(descending=True)[:rank]]
    z = torch.as_tensor(rng.standard_normal(n))
    z = z - kept @ (kept.T @ z)
    z = z / z.norm()
    return a_ref, a_ref + size * torch.outer(z, z)


@pytest.mark.parametrize("size", [10.0, 1e2, 1e3])
def test_a_new_top_direction_orthogonal_to_the_subspace_is_caught_by_the_tail(
        size: float) -> None:
    a_ref, a_new = orthogonal_spike(40, 4, size, seed=3)
    reference = subspace_reference(a_ref, 4, symmetric=True)
    estimate = subspace_spectral_bound(a_new, reference)
    truth = sigma_max(a_new)
    assert float(estimate.ritz) < 0.9 * truth  # the subspace misses the new direction ...
    assert estimate.upper >= truth  # ... and the tail r = |λ_5| + ‖Δ‖_F still bounds it
    bound = SubspaceSpectralNorm(rank=4)
    bound(a_ref, symmetric=True)
    assert truth <= float(bound(a_new, symmetric=True)) <= (1 + bound.tolerance) * truth
    assert bound.refreshes == 2


def ritz_under_estimates(case: dict) -> bool:
    """The check 'estimate ≥ σ_max', applied to the Ritz value s of a stale reference."""
    first, *later = matrices(case)
    reference = subspace_reference(first, case["rank"], symmetric=case["symmetric"])
    return any(float(subspace_spectral_bound(w, reference).ritz) < sigma_max(w) * (1 - 1e-6)
               for w in later)


def test_control_the_ritz_value_alone_is_caught_under_estimating() -> None:
    counterexample = find(cases, ritz_under_estimates,
                          settings=settings(max_examples=200, database=None, derandomize=True))
    first, *later = matrices(counterexample)
    reference = subspace_reference(first, counterexample["rank"],
                                   symmetric=counterexample["symmetric"])
    gaps = [float(subspace_spectral_bound(w, reference).ritz) / sigma_max(w) for w in later]
    assert min(gaps) < 1 - 1e-6


# -- the Schur bound and its inputs -------------------------------------------------------------
@given(st.floats(0, 1e3), st.floats(0, 1e3), st.floats(0, 1e3))
def test_schur_bound_is_above_both_blocks_and_exact_without_coupling(
        ritz: float, coupling: float, tail: float) -> None:
    upper = schur_upper_bound(ritz, coupling, tail)
    assert upper >= max(ritz, tail) * (1 - 1e-15)
    assert upper <= max(ritz, tail) + coupling * (1 + 1e-12) + 1e-12
    assert schur_upper_bound(ritz, 0.0, tail) == pytest.approx(max(ritz, tail), rel=1e-15)


def test_refresh_triggers_on_loose_bound_shape_and_symmetry_but_not_on_small_steps() -> None:
    rng = np.random.default_rng(0)
    a = torch.as_tensor(rng.standard_normal((30, 30)))
    a = a + a.T
    bound = SubspaceSpectralNorm(rank=6, tolerance=1e-3)
    bound(a, symmetric=True)
    small = a + 1e-7 * torch.as_tensor(rng.standard_normal((30, 30)))
    bound(0.5 * (small + small.T), symmetric=True)
    assert bound.refreshes == 1 and bound.last is not None
    assert bound.last.tightness <= 1e-3
    bound(a + 5.0 * torch.eye(30), symmetric=True)  # the spectrum shifts far beyond the tail
    assert bound.refreshes == 2
    bound(torch.as_tensor(rng.standard_normal((30, 31))))  # new shape
    assert bound.refreshes == 3
    square = torch.as_tensor(rng.standard_normal((30, 30)))
    bound(square + square.T, symmetric=True)
    bound(square + square.T, symmetric=False)  # same shape, other symmetry promise
    assert bound.refreshes == 5
    bound.reset()
    assert (bound.calls, bound.refreshes, bound.reference) == (0, 0, None)


def test_zero_and_non_finite_matrices_as_the_exact_method() -> None:
    bound = SubspaceSpectralNorm()
    assert float(bound(torch.zeros(5, 5), symmetric=True)) == 0.0
    assert math.isinf(float(bound(torch.full((5, 5), float("nan")))))
    assert torch.equal(spectrally_normalize(torch.zeros(4, 4), 0.9, bound=bound),
                       torch.zeros(4, 4))


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_rank_is_refused_naming_it(bad: object) -> None:
    with pytest.raises(ValueError, match=f"rank must be a positive integer, got {bad!r}"):
        SubspaceSpectralNorm(rank=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0.0, -1e-3, float("nan"), float("inf")])
def test_bad_tolerance_is_refused_naming_it(bad: float) -> None:
    with pytest.raises(ValueError, match="tolerance must be a positive finite number"):
        SubspaceSpectralNorm(tolerance=bad)


# -- in-place updates (what an optimizer does) -----------------------------------------------
def test_the_reference_is_a_copy_not_a_view_of_a_float64_weight() -> None:
    """Regression: `.to(float64)` of a float64 W is W itself; the reference once aliased it, so
    an in-place update moved W_ref with W and ‖W − W_ref‖_F, the tail's growth, read 0."""
    weight = torch.randn(7, 7, dtype=torch.float64)
    reference = subspace_reference(weight, 1, symmetric=False)
    before = reference.weight.clone()
    with torch.no_grad():
        weight.add_(1.0)
    assert reference.weight.data_ptr() != weight.data_ptr()
    assert torch.equal(reference.weight, before)


def test_shrunk_counterexample_of_track_1_seed_5_keeps_the_margin() -> None:
    """The case hypothesis shrank at `tracks.run --track 1 --seed 5` (σ_max(W_eff)/γ = 1.00018
    by scipy with the aliased reference): n = 7, rank 1, γ = 0.5, in-place updates 0.01, 1."""
    spec = ModelSpec(n_in=1, n_hidden=7, weight_scale=0.001, structure="gaussian", seed=1,
                     symmetric=False, spectral_norm=True, gamma=0.5, drive_scale=0.0,
                     activation="tanh", dtype="float64", n_out=3)
    model = LoopedMLP(1, 7, 3, symmetric=False, gamma=0.5, dtype=torch.float64,
                      sn_method="subspace")
    model.load_state_dict(spec.build().state_dict())
    model.spectral_bounds["W"] = SubspaceSpectralNorm(rank=1)
    ratios = [sigma_max(model.recurrent_weight()) / 0.5]
    for size in (0.01, 1.0):
        with torch.no_grad():
            model.W.add_(torch.as_tensor(size * np.random.default_rng(2).standard_normal((7, 7))))
        ratios.append(sigma_max(model.recurrent_weight()) / 0.5)
    assert max(ratios) <= 1.0, ratios


inplace_cases = st.fixed_dictionaries({
    "symmetric": st.booleans(),
    "n": st.integers(1, 9),
    "rank": st.integers(1, 3),
    "gamma": st.sampled_from([0.05, 0.5, 0.9]),
    "scale": st.sampled_from([1e-6, 1e-3, 1.0]),
    "dtype": st.sampled_from(sorted(DTYPES)),
    "updates": st.lists(st.tuples(st.sampled_from([0.0, 1e-6, 1e-4, 1e-2, 1.0, 1e3]),
                                  st.sampled_from(["gaussian", "spike", "orthogonal_to_top"])),
                        min_size=1, max_size=8),
    "seed": st.integers(0, 2**16),
})


def adversarial_update(weight: torch.Tensor, size: float, kind: str,
                       rng: np.random.Generator) -> torch.Tensor:
    """A raw update of the given size: Gaussian, a rank-1 spike, or a spike orthogonal to the
    current top singular pair (a new top direction a stale subspace cannot see)."""
    n = weight.shape[0]
    if kind == "gaussian":
        update = rng.standard_normal((n, n))
    else:
        u, v = rng.standard_normal(n), rng.standard_normal(n)
        if kind == "orthogonal_to_top" and n > 1:
            left, _, right = np.linalg.svd(weight.detach().double().numpy())
            u -= left[:, 0] * (left[:, 0] @ u)
            v -= right[0] * (right[0] @ v)
        update = np.outer(u, v) / max(np.linalg.norm(u) * np.linalg.norm(v), 1e-300)
    return torch.as_tensor(size * update, dtype=weight.dtype)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(inplace_cases)
def test_tiny_asymmetric_low_gamma_models_under_adversarial_inplace_updates(case: dict) -> None:
    """σ_max(W_eff) ≤ γ by scipy after every in-place update of W (the optimizer's way), on the
    smallest models, ranks 1–3 and margins γ down to 0.05, where a missed term shows most."""
    n, dtype = case["n"], DTYPES[case["dtype"]]
    rng = np.random.default_rng(case["seed"])
    model = LoopedMLP(1, n, 2, symmetric=case["symmetric"], gamma=case["gamma"], dtype=dtype,
                      sn_method="subspace")
    with torch.no_grad():
        model.W.copy_(torch.as_tensor(case["scale"] * rng.standard_normal((n, n)), dtype=dtype))
    model.spectral_bounds["W"] = SubspaceSpectralNorm(rank=case["rank"])
    floor = (1 - rounding_margin(n, dtype)) / (1 + model.spectral_bounds["W"].tolerance)
    for size, kind in [(0.0, "gaussian"), *case["updates"]]:
        with torch.no_grad():
            model.W.add_(adversarial_update(model.W, size, kind, rng))
        ratio = sigma_max(model.recurrent_weight()) / case["gamma"]
        if not bool(model.W.detach().any()):  # updates cancelled exactly: W_eff = W = 0
            assert ratio == 0.0
            continue
        assert floor <= ratio <= 1.0, (ratio, size, kind)


# -- the model option ---------------------------------------------------------------------------
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_subspace_model_keeps_the_margin_through_large_raw_updates(
        symmetric: bool, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    model = LoopedMLP(6, 48, 3, symmetric=symmetric, dtype=dtype, sn_method="subspace",
                      io_spectral_norm=True)
    rng = np.random.default_rng(1)
    tolerance = model.spectral_bounds["W"].tolerance
    for size in (0.0, 1e-3, 1.0, 1e3, 1e-2):
        with torch.no_grad():
            for p in (model.W, model.U, model.V):
                p.add_(torch.as_tensor(size * rng.standard_normal(p.shape), dtype=dtype))
        for matrix in (model.recurrent_weight(), model.input_weight(), model.readout_weight()):
            sigma = sigma_max(matrix)
            assert model.gamma / (1 + tolerance) <= sigma <= model.gamma


def test_subspace_option_is_outside_state_dict_and_survives_deepcopy() -> None:
    exact, _ = build("standard", 5, 40, 3, seed=2, sn_method="exact")
    subspace, _ = build("standard", 5, 40, 3, seed=2, sn_method="subspace")
    assert exact.sn_method == "exact" and exact.spectral_bounds == {}
    assert list(subspace.state_dict()) == list(exact.state_dict())
    subspace.recurrent_weight()  # a warm start exists now
    twin = copy.deepcopy(subspace)
    fresh = LoopedMLP(5, 40, 3, sn_method="subspace")
    fresh.load_state_dict(subspace.state_dict())  # its own (empty) warm start
    gamma = exact.gamma
    for model in (subspace, twin, fresh):
        assert gamma / 1.001 <= sigma_max(model.recurrent_weight()) <= gamma
    ratio = (subspace.recurrent_weight() / exact.recurrent_weight()).detach().double()
    assert float((ratio - 1).abs().max()) <= 1e-3 + 1e-5
    assert "sn_method='subspace'" in repr(subspace) and "sn_method" not in repr(exact)


def test_subspace_gradient_matches_the_exact_one_right_after_a_refresh() -> None:
    torch.manual_seed(0)
    exact = LoopedMLP(4, 64, 2, dtype=torch.float64)
    subspace = LoopedMLP(4, 64, 2, dtype=torch.float64, sn_method="subspace")
    subspace.load_state_dict(exact.state_dict())
    G = torch.randn(64, 64, dtype=torch.float64)
    grads = []
    for model in (exact, subspace):
        W = model.W.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(model.effective_weight(W), W, grad_outputs=G)
        grads.append(grad)
    assert float((grads[1] - grads[0]).norm() / grads[0].norm()) <= 1e-8


def test_unknown_sn_method_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="unknown sn_method 'power'"):
        LoopedMLP(3, 4, 2, sn_method="power")
    with pytest.raises(ValueError, match="unknown sn_method 'svd'"):
        build("standard", 3, 4, 2, sn_method="svd")


# -- the Cholesky certificate (the training default) -------------------------------------------
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), seed=st.integers(0, 2**16), scale=st.sampled_from([1e-3, 1.0, 1e3]),
       gap=st.sampled_from([1e-9, 1e-6, 1e-3]))
def test_the_cholesky_certificate_holds_above_the_top_and_fails_below_it(
        n: int, seed: int, scale: float, gap: float) -> None:
    rng = np.random.default_rng(seed)
    A = scale * rng.standard_normal((n, n))
    A = 0.5 * (A + A.T)
    top = float(scipy.linalg.eigvalsh(A)[-1])
    size = float(np.abs(scipy.linalg.eigvalsh(A)).max())
    matrix = torch.as_tensor(A)
    above = cholesky_certified_below(matrix, top + gap * size)
    assert above is not None and above >= top
    assert above <= (top + gap * size) + 1e-11 * size
    # Negative control: a shift below λ_max is never certified.
    assert cholesky_certified_below(matrix, top - gap * size) is None
    # negated=True certifies λ_max(−A), the same number as passing −A.
    bottom = -float(scipy.linalg.eigvalsh(A)[0])
    for shift in (bottom + gap * size, bottom - gap * size):
        assert cholesky_certified_below(matrix, shift, negated=True) == \
            cholesky_certified_below(-matrix, shift)
    assert cholesky_certified_below(matrix, bottom - gap * size, negated=True) is None


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cholesky_norm_bounds_sigma_max_through_updates_and_spikes(
        symmetric: bool, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(3)
    bound = CholeskySpectralNorm(rank=4)
    W = rng.standard_normal((30, 30))
    tightness = []
    for step in range(40):
        size = [1e-4, 1e-2, 1.0, 1e3][step % 4]
        W = W + size * rng.standard_normal(W.shape)
        if step == 25:
            u = rng.standard_normal(30)
            W = W + 1e3 * np.outer(u, u)  # a spike outside the warm subspace
        weight = torch.as_tensor(0.5 * (W + W.T) if symmetric else W, dtype=dtype)
        exact = float(scipy.linalg.svdvals(weight.double().numpy())[0])
        sigma = float(bound(weight, symmetric=symmetric))
        assert sigma >= exact
        tightness.append(sigma / exact - 1)
    margin = rounding_margin(30, dtype)
    assert max(tightness) <= (1 + bound.tolerance) * (1 + margin) * (1 + 1e-12) - 1
    assert bound.calls == 40 and 1 <= bound.refreshes < 40  # most calls: no eigensolver


def test_cholesky_norm_edge_cases_and_gradient() -> None:
    bound = CholeskySpectralNorm()
    assert math.isinf(float(bound(torch.full((3, 3), float("nan")))))
    assert float(bound(torch.zeros(4, 4))) == 0.0
    with pytest.raises(ValueError, match="rank"):
        CholeskySpectralNorm(rank=0)
    torch.manual_seed(0)
    W = torch.randn(20, 20, dtype=torch.float64, requires_grad=True)
    bound(W.detach())  # a warm start
    sigma = bound(W)
    sigma.backward()
    exact = certified_spectral_norm(W)
    low, high = float(exact.detach()), float(sigma.detach())
    assert low <= high <= low * (1 + 1e-3 + 1e-9)
    U, _, Vh = np.linalg.svd(W.detach().numpy())
    assert np.abs(W.grad.numpy() - np.outer(U[:, 0], Vh[0])).max() < 1e-6


def test_training_models_default_to_the_cholesky_bound_and_keep_the_margin() -> None:
    model, _ = build("standard", 5, 40, 3, seed=2)
    assert model.sn_method == "cholesky"
    assert isinstance(model.spectral_bounds["W"], CholeskySpectralNorm)
    assert LoopedMLP(5, 40, 3).sn_method == "exact"  # the reference stays the model's default
    sigma = sigma_max(model.recurrent_weight())
    assert model.gamma / (1.001 * (1 + 1e-5)) <= sigma <= model.gamma


def test_cholesky_norm_is_a_function_of_the_matrix_on_repeated_evaluation() -> None:
    torch.manual_seed(1)
    bound = CholeskySpectralNorm(rank=3)
    W = torch.randn(12, 12)
    first = [float(bound(W)) for _ in range(3)]
    assert first[0] == first[1] == first[2] and bound.calls == 3
    moved = float(bound(W + 1e-3))  # a new matrix moves the subspace and is certified afresh
    assert moved != first[0] and moved >= float(certified_spectral_norm(W + 1e-3)) / (1 + 1e-5)


def test_cholesky_norm_keeps_each_dtypes_margin_for_the_same_values() -> None:
    """A float32 matrix and its exact float64 cast: the same values, but σ̂ carries the
    weight dtype's rounding margin (a cache keyed on values alone once returned float32's)."""
    torch.manual_seed(2)
    W = torch.randn(8, 8)
    W = 0.5 * (W + W.T)
    bound = CholeskySpectralNorm()
    single, double = float(bound(W, symmetric=True)), float(bound(W.double(), symmetric=True))
    expected = rounding_margin(8, torch.float32) - rounding_margin(8, torch.float64)
    assert single / double - 1 == pytest.approx(expected, rel=1e-3)
