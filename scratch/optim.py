"""Optimizers that update NumPy parameter arrays in place, step for step identical
to torch.optim (SGD, RMSprop, Adam, AdamW) with the same hyper-parameters.

    opt = Adam(model.param_arrays(), lr=1e-3)
    opt.step(model.grad_arrays())      # after backward
    opt.lr = 0.5e-3                    # schedules set the learning rate like this
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np


class Optimizer(ABC):
    """Holds the parameter list, the learning rate `lr` and per-parameter state."""

    def __init__(self, params: Sequence[np.ndarray], lr: float) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        self.lr = lr
        self.state: list[dict[str, np.ndarray]] = [{} for _ in self.params]
        self.step_count = 0

    def step(self, grads: Sequence[np.ndarray]) -> None:
        """Update every parameter in place from its gradient (same order as params)."""
        grads = list(grads)
        if len(grads) != len(self.params):
            raise ValueError(f"got {len(grads)} gradients for {len(self.params)} parameters")
        self.step_count += 1
        for param, grad, state in zip(self.params, grads, self.state):
            if grad.shape != param.shape:
                raise ValueError(f"gradient shape {grad.shape} != parameter shape {param.shape}")
            self._update(param, grad, state)

    @abstractmethod
    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict) -> None:
        """Apply one update to `param` in place, keeping per-parameter buffers in `state`."""


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay.

    Same update as torch.optim.SGD: g ← g + λθ; b ← μ b + (1 - dampening) g (b = g on the
    first step); g ← g + μ b if nesterov else b; θ ← θ - lr g.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires momentum > 0 and zero dampening")
        super().__init__(params, lr)
        self.momentum, self.dampening = momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov

    def _update(self, param, grad, state):
        if self.weight_decay != 0:
            grad = grad + self.weight_decay * param             # g ← g + λθ  (L2 penalty)
        if self.momentum != 0:
            if "momentum_buffer" not in state:
                buf = state["momentum_buffer"] = grad.copy()    # b₁ = g₁
            else:
                buf = state["momentum_buffer"]
                buf *= self.momentum                            # b ← μ b + (1 - τ) g
                buf += (1 - self.dampening) * grad
            grad = grad + self.momentum * buf if self.nesterov else buf  # Nesterov: g + μ b
        param -= self.lr * grad                                 # θ ← θ - η g


class RMSprop(Optimizer):
    """RMSprop as torch.optim.RMSprop: v ← α v + (1 - α) g²; θ ← θ - lr g / (√v + ε).

    centered=True subtracts the squared running mean of g from v; momentum > 0 keeps a
    buffer b ← μ b + g / (√v + ε) and steps θ ← θ - lr b.
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False) -> None:
        super().__init__(params, lr)
        self.alpha, self.eps, self.weight_decay = alpha, eps, weight_decay
        self.momentum, self.centered = momentum, centered

    def _update(self, param, grad, state):
        if self.weight_decay != 0:
            grad = grad + self.weight_decay * param             # g ← g + λθ
        if not state:
            state["square_avg"] = np.zeros_like(param)
            if self.centered:
                state["grad_avg"] = np.zeros_like(param)
            if self.momentum > 0:
                state["momentum_buffer"] = np.zeros_like(param)
        square_avg = state["square_avg"]
        square_avg *= self.alpha                                # v ← α v + (1 - α) g²
        square_avg += (1 - self.alpha) * grad * grad
        if self.centered:
            grad_avg = state["grad_avg"]
            grad_avg *= self.alpha                              # m ← α m + (1 - α) g
            grad_avg += (1 - self.alpha) * grad
            denom = np.sqrt(square_avg - grad_avg * grad_avg) + self.eps  # √(v - m²) + ε
        else:
            denom = np.sqrt(square_avg) + self.eps              # √v + ε  (ε outside the root)
        if self.momentum > 0:
            buf = state["momentum_buffer"]
            buf *= self.momentum                                # b ← μ b + g / (√v + ε)
            buf += grad / denom
            param -= self.lr * buf                              # θ ← θ - η b
        else:
            param -= self.lr * grad / denom                     # θ ← θ - η g / (√v + ε)


class Adam(Optimizer):
    """Adam (Kingma & Ba) as torch.optim.Adam, with L2 weight decay added to the gradient.

    m ← β₁m + (1-β₁)g;  v ← β₂v + (1-β₂)g²;  θ ← θ - lr·(m/(1-β₁ᵗ)) / (√(v/(1-β₂ᵗ)) + ε)
    amsgrad=True uses the running maximum of v in the denominator.
    """

    decoupled_weight_decay = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        super().__init__(params, lr)
        self.beta1, self.beta2 = betas
        self.eps, self.weight_decay, self.amsgrad = eps, weight_decay, amsgrad

    def _update(self, param, grad, state):
        if self.weight_decay != 0:
            if self.decoupled_weight_decay:
                param *= 1 - self.lr * self.weight_decay        # AdamW: θ ← θ - η λ θ, outside the moments
            else:
                grad = grad + self.weight_decay * param         # Adam: g ← g + λθ, inside the moments
        if not state:
            state["exp_avg"] = np.zeros_like(param)
            state["exp_avg_sq"] = np.zeros_like(param)
            if self.amsgrad:
                state["max_exp_avg_sq"] = np.zeros_like(param)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        t = self.step_count
        m *= self.beta1                                         # m ← β₁ m + (1 - β₁) g
        m += (1 - self.beta1) * grad
        v *= self.beta2                                         # v ← β₂ v + (1 - β₂) g²
        v += (1 - self.beta2) * grad * grad
        if self.amsgrad:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]                         # v̂ uses max over time
        bias_correction1 = 1 - self.beta1 ** t                  # m̂ = m / (1 - β₁ᵗ)
        bias_correction2 = 1 - self.beta2 ** t                  # v̂ = v / (1 - β₂ᵗ)
        denom = np.sqrt(v) / math.sqrt(bias_correction2) + self.eps  # √v̂ + ε
        param -= (self.lr / bias_correction1) * m / denom       # θ ← θ - η m̂ / (√v̂ + ε)


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter) as torch.optim.AdamW: decoupled weight decay
    θ ← θ(1 - lr·λ) before the Adam step; default weight_decay 0.01 like torch."""

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
