"""Gradient-descending dynamics (GDD; Ernoult et al. 2019): EP's step-by-step updates during the
nudged phase against BPTT's per-step gradients at the mirrored time steps.

Setting. A recurrent map h_{t+1} = F(h_t; θ) with a converged free state h_* = F(h_*), a loss
ℓ(h) per sample, and a nudged map T_β whose trajectory starts at h^β_0 = h_*:

    h^β_{t+1} = T_β(h^β_t),   t = 0, …, K − 1.

EP's per-step updates (descent updates: their sum over t is −∇ℒ, the step a learner takes):

    ΔEP_s(t) = (h^β_{t+1} − h^β_t) / β
    ΔEP_θ(t) = −(1/β) [∂E/∂θ(h^β_{t+1}) − ∂E/∂θ(h^β_t)]

Σ_t ΔEP_θ(t) telescopes to −(1/β)[∂E/∂θ(h^β_K) − ∂E/∂θ(h_*)], minus the one-sided EP gradient
estimate of `gradients.py` truncated at K nudged steps (it estimates +dℒ/dθ). The symmetric
version replaces each (1/β)[f(h^β) …] by (1/2β)[f(h^β) … − f(h^−β) …]: bias O(β²) instead of
O(β), but a cancellation error ~ε_mach|h|/β. The limit β → 0 itself is computed with an
imaginary nudge β = iε (complex-step differentiation: Im(·)/ε has no cancellation, bias O(ε²),
so ε = 1e-20 gives the limit to round-off; `step_schedule`).

BPTT, the REFERENCE: run the free map K steps from h_* (so h_t = h_* throughout), take
ℓ(h_K), and differentiate by autograd through per-step copies θ_0, …, θ_{K−1} of the parameters
(θ_t is the copy used in the single step h_{t+1} = F(h_t; θ_t)):

    ∇BPTT_s(t) = ∂ℓ/∂h_{K−t},   ∇BPTT_θ(t) = ∂ℓ/∂θ_{K−t−1}   (the step *into* h_{K−t}).

GDD is the statement ΔEP_s(t) → −∇BPTT_s(t) and ΔEP_θ(t) → −∇BPTT_θ(t) for every t as β → 0.
Linearizing around h_* with g = ∂ℓ/∂h(h_*) shows when it holds:

* Primitive-function dynamics (Ernoult et al.'s setting), F = ∂Φ/∂h and T_β = ∂Φ/∂h − β∂ℓ/∂h,
  with E = −Φ. With H = ∂²Φ/∂h² (symmetric), h^β_t = h_* + βδ_t + O(β²), δ_{t+1} = Hδ_t − g,
  so ΔEP_s(t) → δ_{t+1} − δ_t = −H^t g, while BPTT propagates ∂ℓ/∂h_{K−t} = (Hᵀ)^t g = H^t g.
  Both parameter sides are then ∂²Φ/∂θ∂h applied to those vectors: GDD is EXACT as β → 0.
* The tanh energy model (LoopedMLP), F(h) = φ(W h + Ux + b), T_β = φ(Wh + Ux + b − β∂ℓ/∂h),
  W = W_eff symmetric, D = diag φ′(a*), a* = W h_* + Ux + b. Now δ_{t+1} = D(Wδ_t − g), so

      ΔEP_s(t) → −(DW)^t D g = −D (WD)^t g = −D ∇BPTT_s(t)

  (BPTT propagates with Jᵀ = W D): the neuron updates are BPTT's gradients *seen through D*,
  same signs (D > 0) but not equal. The parameter updates carry D on both sides and match:
  ΔEP_b(t) → −D(WD)^t g = −∇BPTT_b(t), ΔEP_U(t) = ΔEP_b(t) xᵀ, and ΔEP_W(t) → the symmetric part
  of −D(WD)^t g h_*ᵀ, which is BPTT's gradient for the symmetric W_eff.
* Asymmetric W (vector-field EP, ∂Ê/∂W = −h h_*ᵀ): the nudged phase propagates with DW, BPTT
  with WᵀD; (DW)^t D ≠ D(WᵀD)^t, and GDD fails at every β.

Gradients here are PER SAMPLE: each sample b has its own trajectory and loss ℓ_b, so
`StepUpdates.neurons[t, b]` compares with ∂ℓ_b/∂h_b and `parameters[name][t, b]` with
∂ℓ_b/∂θ; the batch-mean gradient of ℒ = mean_b ℓ_b is the mean over b. Comparing per sample
keeps the per-sample signals from cancelling in a batch mean. The measures (`step_agreement`):
relative RMSE ‖ΔEP + ∇BPTT‖/‖∇BPTT‖ over all steps, samples and entries, and sign agreement.
For the LoopedMLP "W" is W_eff, the matrix the dynamics use (its map back to the raw W is the
same fixed linear map on both sides, see `gradients.py`); the readout V, c is outside the
dynamics and has no per-step form.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .gradients import (
    PhaseNotConverged,
    loss_gradient_wrt_state,
    nudge_schedule,
    nudged_map,
    one_hot_labels,
    phases,
)
from .model import LoopedMLP, layer_widths
from .solvers import get_solver, is_positive_integer

Parameters = dict[str, Tensor]
GDD_ESTIMATORS = ("one_sided", "symmetric", "complex_step")
FREE_TOLERANCE = 1e-13  # free phase residual: BPTT from h_* must stay at h_*


@dataclass(frozen=True)
class RecurrentProblem:
    """One model on one batch, as the GDD comparison needs it.

    free_state: h_* (B, n), the converged free phase; residual: its max ‖F(h_*) − h_*‖₂.
    parameters: θ per sample, {name: (B, *shape)}: the values the dynamics use.
    step: (h, θ) ↦ F(h; θ), the free update with explicit per-sample parameters (differentiable).
    nudged_map: β ↦ T_β (a complex β takes and returns complex128 states).
    energy_partials: h (…, B, n) ↦ {name: ∂E/∂θ(h) per sample (…, B, *shape)}, for a whole
        trajectory at once.
    loss: h ↦ ℓ_b(h) per sample (B,).
    neuron_scale: D per sample (B, n), the diagonal the neuron updates carry (ones when GDD is
        exact for the neurons; φ′(a*) for the tanh energy model).
    """

    free_state: Tensor
    residual: float
    parameters: Parameters
    step: Callable[[Tensor, Parameters], Tensor]
    nudged_map: Callable[[complex], Callable[[Tensor], Tensor]]
    energy_partials: Callable[[Tensor], Parameters]
    loss: Callable[[Tensor], Tensor]
    neuron_scale: Tensor


@dataclass(frozen=True)
class StepUpdates:
    """Per-step quantities for t = 0, …, K − 1: neurons (K, B, n), parameters {name: (K, B, …)}."""

    neurons: Tensor
    parameters: Parameters

    @property
    def steps(self) -> int:
        return self.neurons.shape[0]

    def items(self) -> list[tuple[str, Tensor]]:
        """("neurons", …) then each parameter: every quantity GDD compares."""
        return [("neurons", self.neurons), *self.parameters.items()]

    def scaled_neurons(self, scale: Tensor) -> StepUpdates:
        """The same updates with the neurons multiplied by a per-sample diagonal (B, n)."""
        return StepUpdates(self.neurons * scale, self.parameters)


def _batched(matrix: Tensor, v: Tensor) -> Tensor:
    """(B, m, n) @ (B, n) → (B, m): one matrix per sample."""
    return torch.einsum("bij,bj->bi", matrix, v)


def _outer(a: Tensor, b: Tensor) -> Tensor:
    """a bᵀ per leading index: (…, m), (…, n) → (…, m, n); b broadcast to a's leading shape."""
    return torch.einsum("...i,...j->...ij", a, b.to(a.dtype).expand(*a.shape[:-1], b.shape[-1]))


def _symmetric_part(matrix: Tensor) -> Tensor:
    return 0.5 * (matrix + matrix.transpose(-1, -2))


def _per_sample_loss(V: Tensor, c: Tensor, y: Tensor) -> Callable[[Tensor], Tensor]:
    labels = torch.as_tensor(y).long()
    return lambda h: torch.nn.functional.cross_entropy(h @ V.T + c, labels, reduction="none")


def _solved(T: Callable[[Tensor], Tensor], h0: Tensor, tol: float, max_steps: int,
            what: str) -> tuple[Tensor, float]:
    h, stats = get_solver("anderson")(T, h0, tol=tol, max_steps=max_steps)
    if not stats.all_converged:
        raise PhaseNotConverged(f"{what}: free phase {stats.summary()}; GDD compares trajectories "
                                "that start at the free fixed point")
    return h, stats.max_residual


def energy_model_problem(model: LoopedMLP, x: Tensor, y: Tensor, *,
                         tol: float = FREE_TOLERANCE, max_steps: int = 5000) -> RecurrentProblem:
    """The LoopedMLP F(h) = φ(W_eff h + Ux + b) with T_β = `nudged_map(model, x, y, β)`.

    Energy partials per sample: ∂E/∂W_eff = −½hhᵀ (symmetric W) or −h h_*ᵀ (asymmetric,
    vector-field form), ∂E/∂U = −hxᵀ, ∂E/∂b = −h (as in `eqprop_core.gradients`, before the
    batch mean). The BPTT step uses ½(W_t + W_tᵀ) for a symmetric model, so its gradient is the
    one of a symmetric W_eff, and W_t itself for an asymmetric one. D = φ′(a*) per sample.
    """
    x = model.validate_input(x)
    batch = x.shape[0]
    one_hot_labels(y, model.n_out, batch)  # validates the labels
    with torch.no_grad():
        weight = model.recurrent_weight().detach()
        V, c = model.readout_weight().detach(), model.c.detach()
        h_star, residual = _solved(nudged_map(model, x, y, 0.0), x.new_zeros(batch, model.n_hidden),
                                   tol, max_steps, "energy model")
        slope = model.activation.derivative(h_star @ weight.T + model.input_drive(x))
    phi = model.activation.phi
    symmetric = model.symmetric

    def step(h: Tensor, theta: Parameters) -> Tensor:
        W = _symmetric_part(theta["W"]) if symmetric else theta["W"]
        return phi(_batched(W, h) + _batched(theta["U"], x) + theta["b"])

    def partials(h: Tensor) -> Parameters:
        W = -0.5 * _outer(h, h) if symmetric else -_outer(h, h_star)
        return {"W": W, "U": -_outer(h, x), "b": -h}

    return RecurrentProblem(
        free_state=h_star, residual=residual,
        parameters={"W": weight.expand(batch, -1, -1),
                    "U": model.input_weight().detach().expand(batch, -1, -1),
                    "b": model.b.detach().expand(batch, -1)},
        step=step,
        nudged_map=lambda beta: (phases(model, x, y, torch.complex128).nudged_map(beta)
                                 if isinstance(beta, complex) else nudged_map(model, x, y, beta)),
        energy_partials=partials,
        loss=_per_sample_loss(V, c, y),
        neuron_scale=slope,
    )


# -- the primitive-function model -------------------------------------------------------------

@dataclass(frozen=True)
class Nonlinearity:
    """ρ with ρ′, ρ″, sup|ρ| and sup|ρ″| (the two sups enter the contraction bound)."""

    name: str
    rho: Callable[[Tensor], Tensor]
    slope: Callable[[Tensor], Tensor]
    curvature_bound: float
    value_bound: float


def _lipschitz_bound(W: Tensor, rho: Nonlinearity) -> float:
    """‖W‖₂ + sup|ρ″|·sup|ρ|·max_i Σ_j |W_ij| (the second term only when ρ″ ≠ 0)."""
    L = float(torch.linalg.matrix_norm(W, ord=2))
    if rho.curvature_bound > 0:
        L += rho.curvature_bound * rho.value_bound * float(W.abs().sum(dim=1).max())
    return L


NONLINEARITIES = {
    # Φ = ½hᵀWh + hᵀ(Ux + b): linear dynamics h ← Wh + Ux + b.
    "identity": Nonlinearity("identity", lambda h: h, torch.ones_like, 0.0, math.inf),
    # sup|tanh″| = 4/(3√3), at tanh(h) = ±1/√3.
    "tanh": Nonlinearity("tanh", torch.tanh, lambda h: 1 - torch.tanh(h) ** 2,
                         4 / (3 * math.sqrt(3)), 1.0),
}


@dataclass(frozen=True)
class PrimitiveModel:
    """Dynamics that are the gradient of a scalar primitive (Ernoult et al. 2019):

        Φ(h) = ½ ρ(h)ᵀ W ρ(h) + hᵀ(Ux + b),   h_{t+1} = ∂Φ/∂h = ρ′(h) ⊙ W_s ρ(h) + Ux + b,

    W_s = ½(W + Wᵀ) (W is kept symmetric, so W_s = W), readout ℓ = CE(Vh + c, y), nudged map
    T_β(h) = ∂Φ/∂h(h) − β ∂ℓ/∂h(h), and E = −Φ, so ∂E/∂W = −½ρρᵀ, ∂E/∂U = −hxᵀ, ∂E/∂b = −h.
    ρ = identity is the quadratic Φ = ½hᵀWh + hᵀ(Ux + b) (linear dynamics); ρ = tanh is not.

    Contraction: the map's Jacobian is diag(ρ″ ⊙ Wρ) + diag(ρ′) W diag(ρ′) (the drive enters
    linearly, so it drops out), and with sup ρ′ = 1, |(Wρ)_i| ≤ sup|ρ| Σ_j |W_ij|, its
    ‖·‖₂-Lipschitz constant is at most

        L = ‖W‖₂ + sup|ρ″| · sup|ρ| · max_i Σ_j |W_ij|          (`contraction_bound`),

    for every input; L < 1 makes h_* unique and reached from any start (Banach). For ρ = identity
    L = ‖W‖₂, exact. `random` scales W so that L is the value asked for.
    """

    W: Tensor
    U: Tensor
    b: Tensor
    V: Tensor
    c: Tensor
    nonlinearity: str = "tanh"

    @property
    def n_hidden(self) -> int:
        return self.W.shape[0]

    @property
    def rho(self) -> Nonlinearity:
        return NONLINEARITIES[self.nonlinearity]

    @classmethod
    def random(cls, n_in: int, n_hidden: int, n_out: int, *, lipschitz: float,
               drive_scale: float = 1.0, nonlinearity: str = "tanh",
               seed: int = 0) -> PrimitiveModel:
        """Gaussian symmetric W scaled so that `contraction_bound()` = lipschitz (in (0, 1)),
        U ~ drive_scale·N(0, 1/n_in), b ~ 0.1·drive_scale·N(0, 1), V ~ N(0, 1/n_hidden),
        c ~ 0.1·N(0, 1); float64, reproducible from the seed."""
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"unknown nonlinearity {nonlinearity!r}; choose one of "
                             f"{sorted(NONLINEARITIES)}")
        n_in, n_hidden, n_out = layer_widths(n_in, n_hidden, n_out)
        if not (isinstance(lipschitz, (int, float)) and 0 < lipschitz < 1):
            raise ValueError(f"lipschitz must lie in (0, 1) for a contraction, got {lipschitz!r}")
        g = torch.Generator().manual_seed(seed)

        def normal(*shape: int) -> Tensor:
            return torch.randn(*shape, generator=g, dtype=torch.float64)

        W = _symmetric_part(normal(n_hidden, n_hidden))
        W = lipschitz * W / _lipschitz_bound(W, NONLINEARITIES[nonlinearity])
        return cls(W=W, U=drive_scale * normal(n_hidden, n_in) / math.sqrt(n_in),
                   b=0.1 * drive_scale * normal(n_hidden),
                   V=normal(n_out, n_hidden) / math.sqrt(n_hidden), c=0.1 * normal(n_out),
                   nonlinearity=nonlinearity)

    def drive(self, x: Tensor) -> Tensor:
        """d = Ux + b per row: (B, n)."""
        return x @ self.U.T + self.b

    def primitive(self, h: Tensor, x: Tensor) -> Tensor:
        """Φ(h) per row: (B,)."""
        r = self.rho.rho(h)
        return 0.5 * ((r @ self.W) * r).sum(dim=1) + (h * self.drive(x)).sum(dim=1)

    def step(self, h: Tensor, x: Tensor) -> Tensor:
        """∂Φ/∂h = ρ′(h) ⊙ W_s ρ(h) + Ux + b: (B, n); complex h (a complex nudge) stays complex."""
        W = _symmetric_part(self.W).to(h.dtype)
        return self.rho.slope(h) * (self.rho.rho(h) @ W.T) + self.drive(x).to(h.dtype)

    def contraction_bound(self) -> float:
        """L ≥ the ‖·‖₂-Lipschitz constant of `step`, for every input (class docstring)."""
        return _lipschitz_bound(self.W, self.rho)

    def problem(self, x: Tensor, y: Tensor, *, tol: float = FREE_TOLERANCE,
                max_steps: int = 5000) -> RecurrentProblem:
        """GDD's view of this model on the batch (x (B, n_in), integer labels y (B,))."""
        x = torch.as_tensor(x, dtype=torch.float64)
        if x.ndim != 2 or x.shape[1] != self.U.shape[1]:
            raise ValueError(f"x must have shape (batch, {self.U.shape[1]}), got {tuple(x.shape)}")
        batch = x.shape[0]
        target = one_hot_labels(y, self.V.shape[0], batch)
        rho = self.rho
        with torch.no_grad():
            h_star, residual = _solved(lambda h: self.step(h, x), x.new_zeros(batch, self.n_hidden),
                                       tol, max_steps, "primitive model")

        def step(h: Tensor, theta: Parameters) -> Tensor:
            return (rho.slope(h) * _batched(_symmetric_part(theta["W"]), rho.rho(h))
                    + _batched(theta["U"], x) + theta["b"])

        def nudged(beta: complex) -> Callable[[Tensor], Tensor]:
            return lambda h: self.step(h, x) - beta * loss_gradient_wrt_state(
                h, self.V.to(h.dtype), self.c.to(h.dtype), target.to(h.dtype))

        def partials(h: Tensor) -> Parameters:
            r = rho.rho(h)
            return {"W": -0.5 * _outer(r, r), "U": -_outer(h, x), "b": -h}

        return RecurrentProblem(
            free_state=h_star, residual=residual,
            parameters={"W": self.W.expand(batch, -1, -1), "U": self.U.expand(batch, -1, -1),
                        "b": self.b.expand(batch, -1)},
            step=step, nudged_map=nudged, energy_partials=partials,
            loss=_per_sample_loss(self.V, self.c, y), neuron_scale=torch.ones_like(h_star),
        )


# -- the two sides of GDD ---------------------------------------------------------------------

def _check_steps(steps: object) -> int:
    if not is_positive_integer(steps):
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    return int(steps)  # type: ignore[call-overload]


def step_schedule(estimator: str, beta: float) -> list[tuple[complex, complex]]:
    """The nudges β_k and weights w_k with ΔEP = Re Σ_k w_k · (difference along trajectory k):

    one_sided     [(β, 1/β)]                        bias O(β)
    symmetric     [(β, 1/2β), (−β, −1/2β)]          bias O(β²), cancellation error ~ε_mach/β
    complex_step  [(iβ, 1/(iβ))], i.e. Im(·)/β      bias O(β²) with NO cancellation, so β = 1e-20
                  evaluates the limit β → 0 itself to round-off (complex-step differentiation,
                  Squire & Trapp 1998; the nudged phase runs in complex128, as holomorphic EP).
    """
    if estimator not in GDD_ESTIMATORS:
        raise ValueError(f"estimator must be one of {list(GDD_ESTIMATORS)}, got {estimator!r}")
    nudge_schedule("one_sided", beta)  # validates β: finite, real, non-zero
    beta = float(beta)
    if estimator == "one_sided":
        return [(beta, 1 / beta)]
    if estimator == "symmetric":
        return [(beta, 0.5 / beta), (-beta, -0.5 / beta)]
    return [(1j * beta, 1 / (1j * beta))]


@torch.no_grad()
def ep_step_updates(problem: RecurrentProblem, *, beta: float, steps: int,
                    estimator: str = "symmetric") -> StepUpdates:
    """EP's per-step descent updates ΔEP_s(t), ΔEP_θ(t), t = 0..K−1, from nudged trajectories
    started at h_* (module docstring). No autograd: states and ∂E/∂θ at states only.

    estimator: "one_sided", "symmetric" (the EP one runs) or "complex_step" (the β → 0 limit,
    see `step_schedule`).
    """
    K = _check_steps(steps)
    neurons: Tensor | float = 0.0
    parameters: dict[str, Tensor | float] = {name: 0.0 for name in problem.parameters}
    for beta_k, weight_k in step_schedule(estimator, beta):
        beta_k = beta_k if beta_k.imag else beta_k.real
        T = problem.nudged_map(beta_k)
        h = problem.free_state.to(torch.complex128) if beta_k.imag else problem.free_state
        states = [h]
        for _ in range(K):
            states.append(T(states[-1]))
        trajectory = torch.stack(states)  # (K + 1, B, n)
        neurons = neurons + (weight_k * (trajectory[1:] - trajectory[:-1])).real
        partials = problem.energy_partials(trajectory)  # (K + 1, B, …)
        for name, p in partials.items():
            parameters[name] = parameters[name] - (weight_k * (p[1:] - p[:-1])).real
    return StepUpdates(neurons, parameters)  # type: ignore[arg-type]


def bptt_step_gradients(problem: RecurrentProblem, *, steps: int) -> StepUpdates:
    """REFERENCE (autograd, not EqProp): BPTT's per-step gradients of ℓ_b(h_K) after K free steps
    from h_*, ∇BPTT_s(t) = ∂ℓ_b/∂h_{K−t} and ∇BPTT_θ(t) = ∂ℓ_b/∂θ_{K−t−1} (the per-step,
    per-sample copy used in the step into h_{K−t}); t = 0..K−1."""
    K = _check_steps(steps)
    with torch.enable_grad():
        copies = [{k: v.detach().clone().requires_grad_(True) for k, v in
                   problem.parameters.items()} for _ in range(K)]
        h = problem.free_state.detach()
        states = []
        for t in range(K):
            h = problem.step(h, copies[t])
            states.append(h)  # states[t] = h_{t+1}
        loss = problem.loss(h).sum()  # Σ_b ℓ_b: sample b's gradient is ∂ℓ_b/∂(its own copy)
        names = list(problem.parameters)
        flat = [c[k] for c in copies for k in names]
        grads = torch.autograd.grad(loss, states + flat)
    state_grads, param_grads = grads[:K], grads[K:]
    neurons = torch.stack([state_grads[K - 1 - t] for t in range(K)])  # ∂ℓ/∂h_{K−t}
    parameters = {name: torch.stack([param_grads[(K - 1 - t) * len(names) + j]
                                     for t in range(K)]) for j, name in enumerate(names)}
    return StepUpdates(neurons.detach(), {k: v.detach() for k, v in parameters.items()})


# -- how close the two sides are --------------------------------------------------------------

@dataclass(frozen=True)
class StepAgreement:
    """ΔEP against −∇BPTT over all steps, samples and entries of one quantity.

    relative_rmse: ‖ΔEP + ∇BPTT‖ / ‖∇BPTT‖ (Frobenius over t, b, entries);
    sign_agreement: share of entries with |∇BPTT| > floor·max|∇BPTT| where sign ΔEP = −sign ∇BPTT
    (entries at the round-off level have no meaningful sign); entries: how many were counted.
    """

    relative_rmse: float
    sign_agreement: float
    entries: int


SIGN_FLOOR = 1e-6  # relative to the largest |∇BPTT| of the quantity


def step_agreement(update: Tensor, gradient: Tensor, *,
                   floor: float = SIGN_FLOOR) -> StepAgreement:
    """Compare one quantity: update ΔEP (K, B, …) against gradient ∇BPTT (same shape)."""
    if update.shape != gradient.shape:
        raise ValueError(f"shapes differ: update {tuple(update.shape)}, "
                         f"gradient {tuple(gradient.shape)}")
    u, g = update.double().flatten(), gradient.double().flatten()
    norm = float(torch.linalg.vector_norm(g))
    rmse = float(torch.linalg.vector_norm(u + g)) / max(norm, torch.finfo(torch.float64).tiny)
    counted = g.abs() > floor * float(g.abs().max()) if g.numel() else g.bool()
    n = int(counted.sum())
    agree = float((torch.sign(u[counted]) == -torch.sign(g[counted])).double().mean()) if n \
        else math.nan
    return StepAgreement(rmse, agree, n)


def gdd_agreement(ep: StepUpdates, bptt: StepUpdates, *,
                  floor: float = SIGN_FLOOR) -> dict[str, StepAgreement]:
    """`step_agreement` for the neurons and each parameter: {"neurons": …, "W": …, …}."""
    if ep.steps != bptt.steps:
        raise ValueError(f"EP has {ep.steps} steps, BPTT {bptt.steps}")
    reference = dict(bptt.items())
    return {name: step_agreement(u, reference[name], floor=floor) for name, u in ep.items()}
