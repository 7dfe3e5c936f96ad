"""The trainer, the learning rules and the four variants: fast checks on small real data."""

from __future__ import annotations

import math

import pytest
import torch

from eqprop_core import LoopedMLP, bptt_gradients, ep_gradients
from eqprop_core.data import load_dataset
from eqprop_core.train import (
    BPTT,
    Backprop,
    EqProp,
    FeedForwardMLP,
    evaluate,
    free_phase,
    recurrent_spectrum,
    train,
)
from eqprop_core.variants import SN_MODES, VARIANTS, build, get_variant, sn_flags


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0).subset(300, 100, seed=0)


def test_eqprop_rule_is_ep_gradients_and_bptt_rule_is_bptt() -> None:
    torch.manual_seed(0)
    model = LoopedMLP(5, 7, 3, dtype=torch.float64)
    x, y = torch.randn(4, 5, dtype=torch.float64), torch.tensor([0, 1, 2, 1])
    signal = EqProp("symmetric", 0.1, steps=(30, 10)).gradients(model, x, y)
    reference = ep_gradients(model, x, y, beta=0.1, steps=(30, 10))
    assert all(torch.equal(signal.grads[k], reference[k]) for k in reference)
    signal = BPTT(30).gradients(model, x, y)
    reference = bptt_gradients(model, x, y, steps=30)
    assert all(torch.allclose(signal.grads[k], reference[k], rtol=1e-12, atol=1e-15)
               for k in reference)


def test_training_lowers_the_loss_and_is_deterministic(digits) -> None:
    runs = []
    for _ in range(2):
        model, rule = build("standard", 64, 32, 10, seed=3)
        runs.append((train(model, rule, digits, epochs=5, lr=1e-2, seed=1, progress=False),
                     model))
    (run, model), (again, model_again) = runs
    assert run.outcome == "completed" and len(run.history) == 6
    assert run.history[-1].test_loss < 0.5 * run.history[0].test_loss
    assert run.final_test_accuracy > 0.8  # chance is 0.1
    assert run.series("test_accuracy") == again.series("test_accuracy")
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), model_again.parameters()))


def test_recorded_spectrum_is_the_dynamics_matrix(digits) -> None:
    model, rule = build("directed", 64, 16, 10, sn="off", seed=0)
    probe = digits.x_train[:8].flatten(1)
    spectrum = recurrent_spectrum(model, rule.infer(model, probe).state, probe)
    W = model.recurrent_weight().detach().double()
    assert abs(spectrum["sigma_eff"] - float(torch.linalg.matrix_norm(W, ord=2))) < 1e-12
    assert spectrum["rho"] <= spectrum["lipschitz"] + 1e-12
    assert recurrent_spectrum(FeedForwardMLP(3, 4, 2), None, None) == {}


def test_divergence_is_a_recorded_outcome_not_a_crash(digits) -> None:
    model, rule = build("standard", 64, 16, 10, sn="off", seed=0)
    with torch.no_grad():
        model.W[0, 0] = float("nan")
    run = train(model, rule, digits, epochs=2, lr=1e-3, progress=False)
    assert run.outcome == "diverged"
    assert run.divergence["epoch"] == 1 and run.divergence["batch"] == 0
    assert len(run.history) == 1  # the initialization only


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0, "lr": 1e-3}, "epochs"),
    ({"epochs": 1, "lr": 0.0}, "lr"),
    ({"epochs": 1, "lr": float("nan")}, "lr"),
    ({"epochs": 1, "lr": 1e-3, "batch_size": 0}, "batch_size"),
])
def test_bad_training_arguments_are_refused(digits, kwargs, message) -> None:
    model, rule = build("standard", 64, 8, 10)
    with pytest.raises(ValueError, match=message):
        train(model, rule, digits, progress=False, **kwargs)


def test_wrong_feature_count_and_nan_data_are_refused(digits) -> None:
    model, rule = build("standard", 10, 8, 10)
    with pytest.raises(ValueError, match="features"):
        train(model, rule, digits, epochs=1, lr=1e-3, progress=False)
    model, rule = build("standard", 64, 8, 10)
    x = digits.x_train.clone()
    x[0, 0, 0, 0] = float("nan")
    broken = type(digits)(**{**digits.__dict__, "x_train": x})
    with pytest.raises(ValueError, match="non-finite"):
        train(model, rule, broken, epochs=1, lr=1e-3, progress=False)


def test_variants_share_one_initialization_per_seed() -> None:
    reference = dict(build("standard", 6, 5, 3, sn="off", seed=7)[0].named_parameters())
    for variant in VARIANTS:
        for sn in SN_MODES:
            model, rule = build(variant, 6, 5, 3, sn=sn, seed=7)
            assert all(torch.equal(p, reference[k]) for k, p in model.named_parameters())
            assert model.spectral_norm == (sn != "off")
            assert model.io_spectral_norm == (sn == "all")
            assert model.symmetric == (variant != "directed")
            assert rule.estimator == get_variant(variant).rule.estimator
    other = dict(build("standard", 6, 5, 3, seed=8)[0].named_parameters())
    assert not torch.equal(other["W"], reference["W"])


def test_every_variant_and_sn_mode_trains(digits) -> None:
    for variant in VARIANTS:
        for sn in SN_MODES:
            model, rule = build(variant, 64, 16, 10, sn=sn, seed=0, steps=(15, 5))
            run = train(model, rule, digits, epochs=2, lr=1e-2, progress=False)
            assert run.outcome == "completed", (variant, sn)
            assert run.history[-1].test_loss < 0.8 * run.history[0].test_loss, (variant, sn)
            assert run.final_test_accuracy > 0.4, (variant, sn, run.final_test_accuracy)
            if sn != "off":
                assert run.history[-1].sigma_eff <= 0.95 * (1 + 1e-6)


def test_all_layers_sn_bounds_input_and_readout() -> None:
    model, _ = build("standard", 20, 10, 4, sn="all", seed=0)
    for matrix in (model.input_weight(), model.readout_weight(), model.recurrent_weight()):
        matrix = matrix.detach()
        assert float(torch.linalg.matrix_norm(matrix.double(), ord=2)) <= 0.95 * (1 + 1e-6)


def test_unknown_variant_and_sn_mode_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown variant"):
        build("enhanced", 4, 4, 2)
    with pytest.raises(ValueError, match="unknown SN mode"):
        sn_flags("sometimes")


def test_inference_as_trained_and_evaluation(digits) -> None:
    model, rule = build("standard", 64, 16, 10, seed=0)
    x = digits.x_test.flatten(1)
    out = free_phase(model, x[:5], 30)
    assert out.logits.shape == (5, 10) and out.residual.shape == (5,)
    solved = free_phase(model, x[:5], None, tol=1e-6)
    assert float(solved.residual.max()) <= 1e-6
    result = evaluate(model, rule, x, digits.y_test)
    assert 0 <= result.accuracy <= 1 and math.isfinite(result.loss)
    assert evaluate(FeedForwardMLP(64, 8, 10), Backprop(), x, digits.y_test).converged_share == 1
