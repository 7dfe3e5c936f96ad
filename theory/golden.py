"""Golden reference: Equilibrium Propagation recomputed from its definition in NumPy/SciPy.

An independent witness for `eqprop_core.ep_gradients` (track 23). It reads only the numbers of a
`Network` and solves every phase by Newton's method in float64 (complex128 for complex nudges),
a different algorithm from the solvers under test (plain iteration, Anderson).

Phases. With a = Ux + b, per sample, the nudged equilibrium h_β is the root of

    F_β(h) = h − φ(z),   z = W_eff h + a − β Vᵀ(p − t),   p = softmax(Vh + c), t = onehot(y),

so β = 0 is the free phase h_0 = φ(W_eff h_0 + a). Newton's step solves
(I − diag φ′(z) [W_eff − β Vᵀ(diag p − ppᵀ)V]) δ = −F_β(h); for complex β all of it is the
holomorphic extension (no conjugates), which is what the Cauchy formula below differentiates.

EP gradients. Let g(β) = mean_b ∂E/∂θ(h_β) for the energy parameters θ, with

    ∂E/∂W_eff = −½ h hᵀ              (symmetric W_eff: the energy E of the model)
    ∂E/∂W_eff = −h h_0ᵀ              (asymmetric W_eff: vector-field form, pre-synaptic h_0)
    ∂E/∂U = −h xᵀ,   ∂E/∂b = −h.

EP's theorem: dℒ/dθ = g′(0) (exact for a symmetric W_eff). Every estimator here is the mean of
difference quotients [g(β_k) − g(0)] / β_k over a set of nudges, real part taken:

    one_sided    {β}                          g′(0) + O(β)
    symmetric    {β, −β}                      [g(β) − g(−β)] / 2β = g′(0) + O(β²)
    holomorphic  {|β| e^{2πik/N}}, k < N      the N-point trapezoidal Cauchy integral, O(|β|^N)

(For symmetric the g(0) terms cancel; for the circle, (1/N) Σ_k g(β_k)/β_k = g′(0) + O(|β|^N)
because Σ_k β_k^m / β_k vanishes unless m ≡ 1 mod N.) The readout V, c lies outside E: it gets
its explicit gradient (p − t)h_0ᵀ, p − t at h_0, batch-averaged. The W_eff gradient reaches the
raw W by `pull_back_to_raw` (the hand-derived chain rule of symmetrization and spectral
normalization). The implicit gradient is `implicit_gradients`, reused from `theory.gradients`.
"""

from __future__ import annotations

import cmath
import math

import numpy as np
import scipy.linalg

from .activations import nonlinearity
from .gradients import equilibria, implicit_gradients, pull_back_to_raw, read_batch
from .network import Network, as_array

Array = np.ndarray
ESTIMATORS = ("one_sided", "symmetric", "holomorphic")
DEFAULT_POINTS = 4  # the holomorphic estimator's N unless told otherwise
TOLERANCE = 1e-14  # ‖F_β(h)‖₂ per sample: a few ulps of a state of norm ≤ √n

__all__ = [
    "ESTIMATORS",
    "GoldenGradients",
    "ep_gradients",
    "free_phase",
    "implicit_gradients",
    "nudged_phase",
    "nudges",
]


def _softmax(logits: Array) -> Array:
    """softmax of a vector, holomorphically extended to complex logits (shift by max Re)."""
    e = np.exp(logits - logits.real.max())
    return e / e.sum()


def _phi_and_slope(activation: str, z: Array) -> tuple[Array, Array]:
    """φ(z) and φ′(z); complex z uses the analytic continuation of φ."""
    if not np.iscomplexobj(z):
        act = nonlinearity(activation)
        return act.phi(z), act.slope(z)
    if activation == "tanh":
        t = np.tanh(z)
        return t, 1 - t * t
    if activation == "sigmoid":
        s = 1 / (1 + np.exp(-z))
        return s, s * (1 - s)
    nonlinearity(activation)  # raises ValueError naming the known ones
    raise ValueError(f"no analytic continuation of {activation!r} for complex states")


def _check_beta(beta: object, *, complex_ok: bool) -> complex | float:
    kinds = (int, float, complex) if complex_ok else (int, float)
    if isinstance(beta, bool) or not isinstance(beta, kinds) or not cmath.isfinite(beta):
        raise ValueError(f"beta must be a finite {'number' if complex_ok else 'real number'}, "
                         f"got {beta!r}")
    return beta


def _nudged_root(net: Network, a: Array, t: Array, beta: complex | float, h: Array,
                 tol: float, max_iter: int) -> tuple[Array, float]:
    """Newton on F_β(h) = h − φ(W_eff h + a − β Vᵀ(p − t)) for one sample, from h."""
    W, V, c = net.weight, net.V, net.c
    eye = np.eye(W.shape[0])

    def pre_activation(v: Array) -> tuple[Array, Array]:
        p = _softmax(V @ v + c)
        return W @ v + a - beta * (V.T @ (p - t)), p

    def residual_of(v: Array) -> Array:
        return v - _phi_and_slope(net.activation, pre_activation(v)[0])[0]

    F = residual_of(h)
    norm = float(np.linalg.norm(F))
    for _ in range(max_iter):
        if norm <= tol:
            break
        z, p = pre_activation(h)
        _, slope = _phi_and_slope(net.activation, z)
        softmax_jacobian = np.diag(p) - np.outer(p, p)
        jac = eye - slope[:, None] * (W - beta * (V.T @ softmax_jacobian @ V))
        step = scipy.linalg.solve(jac, -F)
        # Backtrack on ‖F‖ so that a far start (large |β|) still converges; near the root
        # the full step is taken and convergence is quadratic.
        t_step = 1.0
        while t_step > 1e-6:
            trial = h + t_step * step
            F_trial = residual_of(trial)
            n_trial = float(np.linalg.norm(F_trial))
            if n_trial < norm:
                break
            t_step *= 0.5
        else:
            break  # no decrease along Newton's direction: stalled at the round-off floor
        h, F, norm = trial, F_trial, n_trial
    return h, norm


def free_phase(net: Network, x: object, *, tol: float = TOLERANCE) -> Array:
    """h_0 = φ(W_eff h_0 + Ux + b) for each row of x by Newton (`theory.equilibria`): (B, n)."""
    x = np.atleast_2d(as_array(x))
    if x.ndim != 2 or x.shape[1] != net.U.shape[1]:
        raise ValueError(f"x must have shape (batch, {net.U.shape[1]}), got {x.shape}")
    return equilibria(net, x, tol=tol)


def nudged_phase(net: Network, x: object, y: object, beta: complex | float, *,
                 start: Array | None = None, tol: float = TOLERANCE,
                 max_iter: int = 100) -> Array:
    """h_β for each row of x: the root of F_β (module doc), by Newton from `start` (default
    the free phase). Complex β gives complex128 states. ValueError if a sample's residual
    ‖F_β(h)‖₂ stays above tol."""
    beta = _check_beta(beta, complex_ok=True)
    x, target = read_batch(net, x, y)
    dtype = np.complex128 if isinstance(beta, complex) else np.float64
    start = free_phase(net, x, tol=tol) if start is None else np.atleast_2d(start)
    if start.shape != (x.shape[0], net.weight.shape[0]):
        raise ValueError(f"start must have shape {(x.shape[0], net.weight.shape[0])}, "
                         f"got {start.shape}")
    drive = net.drive(x)
    states = []
    for row, (a, t, h) in enumerate(zip(drive, target, start)):
        h, residual = _nudged_root(net, a, t, beta, np.asarray(h, dtype=dtype), tol, max_iter)
        if not residual <= tol:
            raise ValueError(
                f"nudged phase (beta={beta}) did not converge for sample {row}: residual "
                f"{residual:.3e} > tol {tol:.1e}"
            )
        states.append(h)
    return np.array(states, dtype=dtype)


def nudges(estimator: str, beta: float,
           n_points: int | None = None) -> tuple[complex | float, ...]:
    """The nudges β_k whose difference quotients the estimator averages (module doc)."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {list(ESTIMATORS)}")
    beta = float(_check_beta(beta, complex_ok=False).real)
    if beta == 0:
        raise ValueError("beta must be non-zero: EP divides by the nudge strength")
    if estimator != "holomorphic":
        if n_points is not None:
            raise ValueError(f"n_points applies to the holomorphic estimator only, "
                             f"not {estimator!r}")
        return (float(beta),) if estimator == "one_sided" else (float(beta), -float(beta))
    n = DEFAULT_POINTS if n_points is None else n_points
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n_points must be a positive integer, got {n_points!r}")
    return tuple(abs(beta) * cmath.exp(2j * math.pi * k / n) for k in range(n))


class GoldenGradients(dict):
    """{W, U, b, V, c}: float64 arrays shaped like the model's parameters, with the phases
    behind them — free_state (B, n), nudged_states {β_k: (B, n)} — and the nudges used."""

    def __init__(self, grads: dict[str, Array], *, free_state: Array,
                 nudged_states: dict[complex | float, Array], betas: tuple) -> None:
        super().__init__(grads)
        self.free_state = free_state
        self.nudged_states = nudged_states
        self.betas = betas


def _energy_partials(h: Array, x: Array, h_free: Array, directed: bool) -> dict[str, Array]:
    """g = mean_b ∂E/∂θ at the states h (B, n); W_eff in the vector-field form if directed."""
    B = h.shape[0]
    w = -(h.T @ h_free) / B if directed else -0.5 * (h.T @ h) / B
    return {"W": w, "U": -(h.T @ x) / B, "b": -h.mean(axis=0)}


def ep_gradients(net: Network, x: object, y: object, *, beta: float,
                 estimator: str = "symmetric", n_points: int | None = None,
                 tol: float = TOLERANCE) -> GoldenGradients:
    """EP's estimate of ∇_θ mean CE(V h* + c, y) for the raw parameters (module doc), with the
    conventions of `eqprop_core.ep_gradients`. ValueError on bad β, N, labels or a phase that
    Newton cannot solve to `tol`."""
    betas = nudges(estimator, beta, n_points)
    x, target = read_batch(net, x, y)
    labels = target.argmax(axis=1)
    directed = not net.symmetric
    h_free = free_phase(net, x, tol=tol)
    free_partials = _energy_partials(h_free, x, h_free, directed)
    states, estimate = {}, {k: np.zeros_like(v, dtype=np.complex128)
                            for k, v in free_partials.items()}
    for beta_k in betas:  # complex β_k (holomorphic) give complex128 states
        h_k = nudged_phase(net, x, labels, beta_k, start=h_free, tol=tol)
        states[beta_k] = h_k
        for k, v in _energy_partials(h_k, x, h_free, directed).items():
            estimate[k] += (v - free_partials[k]) / beta_k
    grads = {k: np.real(v) / len(betas) for k, v in estimate.items()}
    error = np.array([_softmax(row) for row in h_free @ net.V.T + net.c]) - target
    grads["V"] = error.T @ h_free / len(x)
    grads["c"] = error.mean(axis=0)
    grads["W"] = pull_back_to_raw(net, grads["W"])
    return GoldenGradients({k: grads[k] for k in ("W", "U", "b", "V", "c")},
                           free_state=h_free, nudged_states=states, betas=betas)
