"""One training loop for every learning rule: real EqProp, and the BPTT and backprop baselines.

Each step is θ ← Adam(θ, g) on a mini-batch, where the rule supplies g ≈ ∇_θ ℒ,
ℒ = mean CE(logits, y):

    EqProp     g from a free phase and nudged phases (`ep_gradients`): the difference of ∂E/∂θ
               between phases, no autograd through the dynamics. Truncated phases by default
               (T_free plain updates, then T_nudged per nudge from the free state), as trained
               in practice.
    BPTT       BASELINE: autograd through the same model's T unrolled updates from h = 0.
    Backprop   BASELINE: a feed-forward tanh MLP (`FeedForwardMLP`) differentiated by autograd.

Recorded per epoch (`EpochRecord`): train accuracy and loss (of the free phase each step
measured, before its update), test accuracy and loss (inference exactly as trained: the same
T_free updates), the share of test samples whose free phase met `tol` (‖T(h) − h‖₂ ≤ tol at the
state read out), effective ‖W_eff‖₂ of the matrix the dynamics use, the certificate L, ρ(J) at the
probe batch's free states, and wall time. A run that produces non-finite losses, gradients,
parameters or residuals *diverges*: the loop stops and the run records where and why
(`TrainingRun.outcome == "diverged"`), it does not raise.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from .bptt import unroll
from .gradients import cross_entropy, ep_gradients
from .model import LoopedMLP, default_tolerance, layer_widths, uniform_parameter
from .solvers import all_finite, is_positive_integer

Monitor = Callable[[nn.Module], dict[str, float]]


@dataclass(frozen=True)
class Inference:
    """What a forward pass measured: logits (B, n_out) and the residual ‖T(h) − h‖₂ (B,) at the
    state read out (zeros for a feed-forward model, which has no fixed point to miss)."""

    logits: Tensor
    residual: Tensor
    state: Tensor | None = None


@dataclass(frozen=True)
class BatchSignal:
    """A rule's gradient estimate keyed like `named_parameters()`, and the forward it came from."""

    grads: dict[str, Tensor]
    inference: Inference


class LearningRule(Protocol):
    @property
    def label(self) -> str: ...

    def gradients(self, model: Any, x: Tensor, y: Tensor) -> BatchSignal: ...

    def infer(self, model: Any, x: Tensor) -> Inference: ...


def _check_steps(steps: object, label: str) -> None:
    if not is_positive_integer(steps):
        raise ValueError(f"{label} must be a positive integer, got {steps!r}")


def free_phase(model: LoopedMLP, x: Tensor, steps: int | None, *,
               state_transform: Callable[[Tensor], Tensor] | None = None,
               tol: float | None = None, max_steps: int = 2000) -> Inference:
    """The free phase as trained: `steps` plain updates h ← s(T(h)) from h = 0 (s the state
    transform, identity by default), or a solve to `tol` when steps is None; residual measured
    with the ideal map T."""
    x = model.validate_input(x)
    with torch.no_grad():
        if steps is None:
            h, stats = model.equilibrium(x, tol=tol, max_steps=max_steps)
            return Inference(model.readout(h), stats.residual, h)
        T = model.update_map(x)
        h = x.new_zeros(x.shape[0], model.n_hidden)
        for _ in range(steps):
            h = T(h) if state_transform is None else state_transform(T(h))
        residual = torch.linalg.vector_norm(T(h) - h, dim=1)
        return Inference(model.readout(h), residual, h)


@dataclass(frozen=True)
class EqProp:
    """Real EqProp: `ep_gradients` with this estimator and nudge, truncated to `steps` =
    (T_free, T_nudged) updates per phase (None: each phase solved to the model's tolerance)."""

    estimator: str = "symmetric"
    beta: float = 0.2
    n_points: int | None = None
    steps: tuple[int, int] | None = (30, 10)
    state_transform: Callable[[Tensor], Tensor] | None = None

    @property
    def label(self) -> str:
        points = f", N={self.n_points}" if self.n_points else ""
        steps = "" if self.steps is None else f", T={self.steps[0]}+{self.steps[1]}"
        return f"EqProp ({self.estimator}, β={self.beta:g}{points}{steps})"

    def gradients(self, model: LoopedMLP, x: Tensor, y: Tensor) -> BatchSignal:
        # Training reads the free phase's residual only: the nudged phases' closing residual
        # (one more update of every nudged state) is not computed — except under a state
        # transform, whose draws (neuron noise) that evaluation takes part in.
        g = ep_gradients(model, x, y, beta=self.beta, estimator=self.estimator,
                         n_points=self.n_points, steps=self.steps, on_unconverged="record",
                         state_transform=self.state_transform,
                         nudged_residuals=self.steps is None or self.state_transform is not None)
        with torch.no_grad():
            logits = model.readout(g.free_state)
        return BatchSignal(dict(g), Inference(logits, g.free.residual, g.free_state))

    def infer(self, model: LoopedMLP, x: Tensor) -> Inference:
        return free_phase(model, x, None if self.steps is None else self.steps[0],
                          state_transform=self.state_transform)


@dataclass(frozen=True)
class BPTT:
    """BASELINE, not EqProp: the same recurrent model, differentiated by autograd through
    `steps` unrolled updates from h = 0 (memory linear in steps)."""

    steps: int = 30

    def __post_init__(self) -> None:
        _check_steps(self.steps, "BPTT steps")

    @property
    def label(self) -> str:
        return f"BPTT baseline (T={self.steps})"

    def gradients(self, model: LoopedMLP, x: Tensor, y: Tensor) -> BatchSignal:
        x = model.validate_input(x)
        params = dict(model.named_parameters())
        with torch.enable_grad():
            h, T = unroll(model, x, self.steps)
            logits = model.readout(h)
            grads = torch.autograd.grad(cross_entropy(logits, y), list(params.values()))
            with torch.no_grad():
                residual = torch.linalg.vector_norm(T(h) - h, dim=1)
        return BatchSignal(dict(zip(params, grads)),
                           Inference(logits.detach(), residual, h.detach()))

    def infer(self, model: LoopedMLP, x: Tensor) -> Inference:
        return free_phase(model, x, self.steps)


class FeedForwardMLP(nn.Module):
    """BASELINE: logits = V tanh(U x + b) + c, the feed-forward counterpart of LoopedMLP
    (same widths, activation and initialization scale; no recurrence, no equilibrium)."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int, *,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.n_in, self.n_hidden, self.n_out = layer_widths(n_in, n_hidden, n_out)

        self.U = uniform_parameter(n_hidden, n_in, fan_in=n_in, dtype=dtype)
        self.b = uniform_parameter(n_hidden, fan_in=n_in, dtype=dtype)
        self.V = uniform_parameter(n_out, n_hidden, fan_in=n_hidden, dtype=dtype)
        self.c = uniform_parameter(n_out, fan_in=n_hidden, dtype=dtype)

    @property
    def dtype(self) -> torch.dtype:
        return self.U.dtype

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(x @ self.U.T + self.b) @ self.V.T + self.c


@dataclass(frozen=True)
class Backprop:
    """BASELINE: autograd through a feed-forward network (`FeedForwardMLP`)."""

    @property
    def label(self) -> str:
        return "backprop MLP baseline"

    def gradients(self, model: FeedForwardMLP, x: Tensor, y: Tensor) -> BatchSignal:
        params = dict(model.named_parameters())
        with torch.enable_grad():
            logits = model(x)
            grads = torch.autograd.grad(cross_entropy(logits, y), list(params.values()))
        return BatchSignal(dict(zip(params, grads)),
                           Inference(logits.detach(), logits.new_zeros(x.shape[0])))

    def infer(self, model: FeedForwardMLP, x: Tensor) -> Inference:
        with torch.no_grad():
            logits = model(x)
        return Inference(logits, logits.new_zeros(x.shape[0]))


# -- measurements ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Evaluation:
    """Accuracy and loss of inference as trained, and how many free phases met `tol`."""

    accuracy: float
    loss: float
    converged_share: float
    max_residual: float
    median_residual: float


def evaluate(model: nn.Module, rule: LearningRule, x: Tensor, y: Tensor, *,
             batch_size: int = 1000, tol: float | None = None) -> Evaluation:
    """Run `rule.infer` over (x, y) in batches; residuals ≤ tol (default: the model dtype's
    `default_tolerance`) count as converged."""
    dtype = next(model.parameters()).dtype
    tol = default_tolerance(dtype) if tol is None else tol
    x = x.flatten(1).to(dtype)
    correct, loss_sum, residuals = 0, 0.0, []
    for start in range(0, x.shape[0], batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        out = rule.infer(model, xb)
        correct += int((out.logits.argmax(dim=1) == yb).sum())
        loss_sum += float(cross_entropy(out.logits, yb)) * xb.shape[0]
        residuals.append(out.residual.double())
    residual = torch.cat(residuals)
    finite = torch.isfinite(residual)
    return Evaluation(
        accuracy=correct / x.shape[0], loss=loss_sum / x.shape[0],
        converged_share=float((finite & (residual <= tol)).double().mean()),
        max_residual=float(residual.max()), median_residual=float(residual.median()),
    )


def recurrent_spectrum(model: nn.Module, states: Tensor | None, x: Tensor | None) -> dict:
    """‖W_eff‖₂, the certificate L and max ρ(J) over the probe states, J = diag(φ′(a)) W_eff with
    a = W_eff h + U_eff x + b (float64, torch). Empty for a model without recurrence."""
    if not isinstance(model, LoopedMLP):
        return {}
    with torch.no_grad():
        weight = model.recurrent_weight().double()
        if not torch.isfinite(weight).all():  # a diverged model: measured, not decomposed
            return {"sigma_eff": float("nan"), "lipschitz": float("nan"), "rho": None}
        sigma = float(torch.linalg.matrix_norm(weight, ord=2))
        out = {"sigma_eff": sigma, "lipschitz": sigma * model.activation.max_slope,
               "rho": None}
        if states is not None and x is not None and math.isfinite(sigma):
            pre = states.double() @ weight.T + model.input_drive(x).double()
            slope = model.activation.derivative(pre)
            if model.symmetric:
                # D W is similar to D^½ W D^½ (symmetric): its eigenvalues are real.
                root = slope.clamp_min(0).sqrt()
                eig = torch.linalg.eigvalsh(root[:, :, None] * weight * root[:, None, :])
            else:
                eig = torch.linalg.eigvals(slope[:, :, None] * weight)
            out["rho"] = float(eig.abs().max())
        return out


@dataclass
class EpochRecord:
    """Everything measured after `epoch` epochs (epoch 0: the initialization, before training)."""

    epoch: int
    train_accuracy: float | None
    train_loss: float | None
    test_accuracy: float
    test_loss: float
    converged_share: float
    max_residual: float
    median_residual: float
    sigma_eff: float | None
    lipschitz: float | None
    rho: float | None
    train_s: float
    eval_s: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainingRun:
    """A training run's history; `outcome` is "completed" or "diverged" (with `divergence`)."""

    rule: str
    lr: float
    epochs: int
    seed: int
    tol: float
    history: list[EpochRecord] = field(default_factory=list)
    outcome: str = "completed"
    divergence: dict[str, Any] | None = None

    @property
    def final_test_accuracy(self) -> float:
        return self.history[-1].test_accuracy

    @property
    def best_test_accuracy(self) -> float:
        return max(r.test_accuracy for r in self.history)

    @property
    def train_seconds(self) -> float:
        return sum(r.train_s for r in self.history)

    def series(self, key: str) -> list[Any]:
        """One metric over the recorded epochs (extra keys included)."""
        return [getattr(r, key) if hasattr(r, key) else r.extra.get(key) for r in self.history]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def progress_enabled(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return not os.environ.get("CI") and sys.stderr.isatty()


def apply_update(optimizer: torch.optim.Optimizer, params: dict[str, nn.Parameter],
                 grads: dict[str, Tensor]) -> None:
    """θ ← optimizer(θ, g): each parameter's .grad set to the rule's estimate g (in the
    parameter's dtype), then one optimizer step (the update of every training step)."""
    for name, p in params.items():
        p.grad = grads[name].to(p.dtype)
    optimizer.step()


def largest_step_overflows(optimizer: torch.optim.Adam, dtype: torch.dtype) -> float | None:
    """Adam's largest step size lr/(1 − β₁ᵗ) = lr/(1 − β₁) (at t = 1), when `dtype` cannot hold
    it, else None. torch converts the step size to the parameters' dtype, so one beyond its
    range fails inside the optimizer instead of giving the (diverging) update it stands for."""
    group = optimizer.param_groups[0]
    step = group["lr"] / (1 - group["betas"][0])
    return step if step > torch.finfo(dtype).max else None


def train(
    model: nn.Module,
    rule: LearningRule,
    data: Any,
    *,
    epochs: int,
    lr: float,
    batch_size: int = 64,
    seed: int = 0,
    tol: float | None = None,
    monitors: Sequence[Monitor] = (),
    probe: int = 16,
    progress: bool | None = None,
    weight_transform: Callable[[nn.Module], None] | None = None,
    description: str | None = None,
) -> TrainingRun:
    """Train `model` by `rule` with Adam(lr) for `epochs` passes over `data` (a Dataset: x_train,
    y_train, x_test, y_test), shuffled by a generator seeded with `seed`.

    monitors: callables model → {name: float}, recorded in each epoch's `extra` (e.g. a scipy
    spectrum of W_eff). weight_transform(model) runs after each optimizer step (e.g. weight
    quantization). progress: a tqdm bar per epoch; default on for an interactive terminal and
    off under CI. Returns the TrainingRun; divergence ends it early as a recorded outcome.
    """
    _check_steps(epochs, "epochs")
    _check_steps(batch_size, "batch_size")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (
            math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    dtype = next(model.parameters()).dtype
    tol = default_tolerance(dtype) if tol is None else tol
    x_train, y_train = data.x_train.flatten(1).to(dtype), data.y_train
    x_test, y_test = data.x_test.flatten(1).to(dtype), data.y_test
    if x_train.shape[1] != getattr(model, "n_in", x_train.shape[1]):
        raise ValueError(f"data has {x_train.shape[1]} features but the model takes "
                         f"{model.n_in}")
    for name, x in (("x_train", x_train), ("x_test", x_test)):
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} contains non-finite values (NaN or ±inf)")
    params = dict(model.named_parameters())
    optimizer = torch.optim.Adam(params.values(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    probe_x = x_train[:probe]
    run = TrainingRun(rule=rule.label, lr=float(lr), epochs=int(epochs), seed=seed, tol=tol)

    def measure(epoch: int, train_acc: float | None, train_loss: float | None,
                train_s: float) -> EpochRecord:
        started = time.perf_counter()
        test = evaluate(model, rule, x_test, y_test, tol=tol)
        spectrum = recurrent_spectrum(model, rule.infer(model, probe_x).state, probe_x)
        extra = {}
        for monitor in monitors:
            extra.update(monitor(model))
        return EpochRecord(
            epoch=epoch, train_accuracy=train_acc, train_loss=train_loss,
            test_accuracy=test.accuracy, test_loss=test.loss,
            converged_share=test.converged_share, max_residual=test.max_residual,
            median_residual=test.median_residual, sigma_eff=spectrum.get("sigma_eff"),
            lipschitz=spectrum.get("lipschitz"), rho=spectrum.get("rho"), train_s=train_s,
            eval_s=time.perf_counter() - started, extra=extra)

    run.history.append(measure(0, None, None, 0.0))
    overflow = largest_step_overflows(optimizer, dtype)
    if overflow is not None:
        run.outcome = "diverged"
        run.divergence = {"epoch": 1, "batch": 0, "step_size": overflow,
                          "reason": f"Adam's step size lr/(1 - beta1) = {overflow:.3g} overflows "
                                    f"{dtype}: the first update is not representable"}
        return run
    show = progress_enabled(progress)
    n_batches = math.ceil(x_train.shape[0] / batch_size)
    for epoch in range(1, epochs + 1):
        order = torch.randperm(x_train.shape[0], generator=generator)
        started = time.perf_counter()
        correct, loss_sum, seen = 0, 0.0, 0
        bar = None
        if show:
            from tqdm.auto import tqdm
            bar = tqdm(total=n_batches, desc=f"{description or rule.label} epoch {epoch}/"
                       f"{epochs}", leave=False, file=sys.stderr)
        for index in range(n_batches):
            batch = order[index * batch_size:(index + 1) * batch_size]
            xb, yb = x_train[batch], y_train[batch]
            signal = rule.gradients(model, xb, yb)
            logits = signal.inference.logits
            loss = cross_entropy(logits, yb)
            if not all_finite(loss, signal.inference.residual, *signal.grads.values()):
                run.outcome = "diverged"
                run.divergence = {
                    "epoch": epoch, "batch": index, "loss": float(loss),
                    "max_residual": float(signal.inference.residual.max()),
                    "reason": "non-finite loss, residual or gradient"}
                break
            correct += int((logits.argmax(dim=1) == yb).sum())
            loss_sum += float(loss) * xb.shape[0]
            seen += xb.shape[0]
            apply_update(optimizer, params, signal.grads)
            if weight_transform is not None:
                with torch.no_grad():
                    weight_transform(model)
            if not all_finite(*params.values()):
                run.outcome = "diverged"
                run.divergence = {"epoch": epoch, "batch": index,
                                  "reason": "non-finite parameters after the update"}
                break
            if bar is not None:
                bar.update(1)
                bar.set_postfix(acc=f"{correct / seen:.3f}", loss=f"{loss_sum / seen:.3f}")
        if bar is not None:
            bar.close()
        train_s = time.perf_counter() - started
        if run.outcome == "diverged":
            break
        run.history.append(measure(epoch, correct / seen, loss_sum / seen, train_s))
    return run
