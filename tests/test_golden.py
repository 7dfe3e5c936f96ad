"""theory.golden: the independent EqProp reference, against theory and against the torch code."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eqprop_core import ep_gradients
from properties import ModelSpec, agreement, as_numpy
from theory import golden, implicit_gradients
from theory.activations import nonlinearity

SPEC = ModelSpec(n_in=3, n_hidden=6, weight_scale=1.0, structure="gaussian", seed=5,
                 gamma=0.9, drive_scale=1.0)
BATCH = 4


def problem(spec: ModelSpec = SPEC):
    model = spec.build()
    return model, as_numpy(model), spec.inputs(BATCH).numpy(), spec.labels(BATCH).numpy()


def relative_error(estimate: dict, reference: dict) -> float:
    return agreement(estimate, reference).worst_relative_error


def test_nudged_phase_solves_its_equation_and_reduces_to_the_free_phase() -> None:
    _, net, x, y = problem()
    h_free = golden.free_phase(net, x)
    assert np.abs(golden.nudged_phase(net, x, y, 0.0) - h_free).max() <= 1e-15
    beta = 0.3
    h = golden.nudged_phase(net, x, y, beta)
    logits = h @ net.V.T + net.c
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    z = h @ net.weight.T + net.drive(x) - beta * (p - np.eye(net.V.shape[0])[y]) @ net.V
    assert np.abs(h - nonlinearity("tanh").phi(z)).max() <= 1e-14
    assert np.abs(h - h_free).max() >= 1e-3  # the nudge moved the state


def test_complex_nudge_gives_complex_states_conjugate_to_the_conjugate_nudge() -> None:
    _, net, x, y = problem()
    beta = 0.2 * np.exp(0.7j)
    h = golden.nudged_phase(net, x, y, complex(beta))
    h_conj = golden.nudged_phase(net, x, y, complex(np.conj(beta)))
    assert h.dtype == np.complex128 and np.abs(h.imag).max() >= 1e-4
    assert np.abs(h - np.conj(h_conj)).max() <= 1e-14  # F_β̄(h̄) = conj F_β(h): real φ, V, c


def test_golden_ep_converges_to_the_implicit_gradient_at_the_predicted_order() -> None:
    _, net, x, y = problem()
    implicit = implicit_gradients(net, x, y)

    def error(estimator: str, beta: float, n_points: int | None = None) -> float:
        return relative_error(golden.ep_gradients(net, x, y, beta=beta, estimator=estimator,
                                                  n_points=n_points), implicit)

    one_sided = [error("one_sided", b) for b in (1e-2, 1e-3)]
    symmetric = [error("symmetric", b) for b in (1e-2, 1e-3)]
    assert 0.9 <= math.log10(one_sided[0] / one_sided[1]) <= 1.1  # bias O(β)
    assert 1.85 <= math.log10(symmetric[0] / symmetric[1]) <= 2.15  # bias O(β²)
    assert symmetric[1] <= 1e-5
    holomorphic = [error("holomorphic", b, n_points=4) for b in (0.1, 0.05)]
    assert 3.8 <= math.log2(holomorphic[0] / holomorphic[1]) <= 4.2  # bias O(|β|^N), N = 4
    assert error("holomorphic", 0.05, n_points=8) <= 1e-9


def test_golden_vector_field_ep_is_biased_for_an_asymmetric_model() -> None:
    _, net, x, y = problem(SPEC.with_(symmetric=False, spectral_norm=False, weight_scale=0.9))
    implicit = implicit_gradients(net, x, y)
    small_beta = golden.ep_gradients(net, x, y, beta=1e-4, estimator="symmetric")
    assert agreement(small_beta, implicit).relative_error["W"] >= 1e-2  # does not vanish


@pytest.mark.parametrize("symmetric,spectral_norm", [(True, True), (True, False),
                                                     (False, True), (False, False)])
@pytest.mark.parametrize("estimator,n_points", [("one_sided", None), ("symmetric", None),
                                                ("holomorphic", 3)])
def test_golden_matches_the_torch_estimator(symmetric: bool, spectral_norm: bool,
                                            estimator: str, n_points: int | None) -> None:
    spec = SPEC.with_(symmetric=symmetric, spectral_norm=spectral_norm,
                      weight_scale=1.0 if spectral_norm else 0.8)
    model, net, x, y = problem(spec)
    reference = golden.ep_gradients(net, x, y, beta=0.1, estimator=estimator,
                                    n_points=n_points)
    estimate = ep_gradients(model, spec.inputs(BATCH), spec.labels(BATCH), beta=0.1,
                            estimator=estimator, n_points=n_points, tol=1e-14)
    assert set(reference) == {name for name, _ in model.named_parameters()}
    gap = max(float(np.abs(estimate[k].numpy() - reference[k]).max()) for k in reference)
    assert gap <= 1e-10
    assert np.abs(estimate.free_state.numpy() - reference.free_state).max() <= 1e-12


@pytest.mark.parametrize("kwargs,message", [
    ({"beta": 0.0}, "non-zero"),
    ({"beta": math.nan}, "finite"),
    ({"beta": math.inf}, "finite"),
    ({"beta": 0.1j}, "finite real"),
    ({"beta": 0.1, "estimator": "holomorphic", "n_points": 0}, "n_points"),
    ({"beta": 0.1, "estimator": "symmetric", "n_points": 4}, "holomorphic estimator only"),
    ({"beta": 0.1, "estimator": "two_sided"}, "unknown estimator"),
])
def test_bad_nudges_are_refused(kwargs: dict, message: str) -> None:
    _, net, x, y = problem()
    with pytest.raises(ValueError, match=message):
        golden.ep_gradients(net, x, y, **kwargs)


def test_bad_batches_are_refused() -> None:
    _, net, x, y = problem()
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        golden.ep_gradients(net, x, np.array([0, 1, 2, 3]), beta=0.1)
    with pytest.raises(ValueError, match="integer labels"):
        golden.ep_gradients(net, x, y.astype(float), beta=0.1)
    with pytest.raises(ValueError, match="integer labels"):
        golden.ep_gradients(net, x, y[:2], beta=0.1)
    with pytest.raises(ValueError, match="shape"):
        golden.ep_gradients(net, x[:, :2], y, beta=0.1)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        golden.ep_gradients(net, bad, y, beta=0.1)


def test_an_unsolved_phase_is_refused_with_its_residual() -> None:
    _, net, x, y = problem()
    with pytest.raises(ValueError, match=r"did not converge .* residual"):
        golden.nudged_phase(net, x, y, 0.1, start=np.zeros((BATCH, 6)), max_iter=1)
