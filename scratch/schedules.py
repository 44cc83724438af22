"""Learning-rate schedules as closed-form functions of the step (or epoch) index t = 0, 1, ...

`schedule.lr_at(t)` is the learning rate to use for step t, i.e. the value torch's
optimizer holds after `scheduler.step()` has been called t times. Schedules that
torch.optim.lr_scheduler also has (StepLR, MultiStepLR, ExponentialLR, PolynomialLR,
CosineAnnealingLR, CyclicLR, OneCycleLR, LinearLR, ConstantLR, SequentialLR) take the
same arguments (base_lr replaces the optimizer's lr) and agree with torch to float
precision. Not in torch: LinearWarmup with start_factor 0 (torch's LinearLR requires
start_factor > 0), PolynomialLR's end_lr, and WarmupCosine (a SequentialLR shortcut).
Momentum cycling (CyclicLR/OneCycleLR's cycle_momentum) is not modelled.

    sched = WarmupCosine(base_lr=0.1, warmup_steps=100, total_steps=1000)
    sched.apply(optimizer, t)          # optimizer.lr = sched.lr_at(t)
    curve = lr_curve(sched, 1000)      # np.ndarray of 1000 learning rates
"""
from __future__ import annotations

import bisect
import math
from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np


class Schedule(ABC):
    """Base class: subclasses implement lr_at(t)."""

    @abstractmethod
    def lr_at(self, t: int) -> float:
        """Learning rate for step t = 0, 1, ..."""

    def __call__(self, t: int) -> float:
        return self.lr_at(t)

    def apply(self, optimizer, t: int) -> float:
        """Set optimizer.lr to the rate for step t and return it."""
        optimizer.lr = self.lr_at(t)
        return optimizer.lr

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


def lr_curve(schedule: Schedule, n_steps: int) -> np.ndarray:
    """Learning rates for t = 0 .. n_steps-1 as a float64 array."""
    return np.array([schedule.lr_at(t) for t in range(n_steps)], dtype=np.float64)


class ConstantLR(Schedule):
    """base_lr · factor for t < total_iters, then base_lr (torch's ConstantLR).
    The default factor=1 gives a plain constant learning rate."""

    def __init__(self, base_lr: float, factor: float = 1.0, total_iters: int = 0) -> None:
        self.base_lr, self.factor, self.total_iters = base_lr, factor, total_iters

    def lr_at(self, t: int) -> float:
        return self.base_lr * (self.factor if t < self.total_iters else 1.0)


class StepLR(Schedule):
    """Multiply by gamma every step_size steps: lr = base_lr · γ^⌊t / step_size⌋."""

    def __init__(self, base_lr: float, step_size: int, gamma: float = 0.1) -> None:
        self.base_lr, self.step_size, self.gamma = base_lr, step_size, gamma

    def lr_at(self, t: int) -> float:
        return self.base_lr * self.gamma ** (t // self.step_size)


class MultiStepLR(Schedule):
    """Multiply by gamma at each milestone: lr = base_lr · γ^(number of milestones ≤ t)."""

    def __init__(self, base_lr: float, milestones: Sequence[int], gamma: float = 0.1) -> None:
        self.base_lr, self.milestones, self.gamma = base_lr, sorted(milestones), gamma

    def lr_at(self, t: int) -> float:
        return self.base_lr * self.gamma ** bisect.bisect_right(self.milestones, t)


class ExponentialLR(Schedule):
    """lr = base_lr · γ^t."""

    def __init__(self, base_lr: float, gamma: float) -> None:
        self.base_lr, self.gamma = base_lr, gamma

    def lr_at(self, t: int) -> float:
        return self.base_lr * self.gamma ** t


class PolynomialLR(Schedule):
    """lr = (base_lr - end_lr) · (1 - min(t, T)/T)^power + end_lr, T = total_iters.
    end_lr = 0 is torch's PolynomialLR."""

    def __init__(self, base_lr: float, total_iters: int = 5, power: float = 1.0,
                 end_lr: float = 0.0) -> None:
        self.base_lr, self.total_iters, self.power, self.end_lr = base_lr, total_iters, power, end_lr

    def lr_at(self, t: int) -> float:
        remaining = 1.0 - min(self.total_iters, t) / self.total_iters
        return (self.base_lr - self.end_lr) * remaining ** self.power + self.end_lr


class CosineAnnealingLR(Schedule):
    """lr = η_min + ½(base_lr - η_min)(1 + cos(π t / T_max)); like torch it keeps
    following the cosine (rising again) for t > T_max."""

    def __init__(self, base_lr: float, T_max: int, eta_min: float = 0.0) -> None:
        self.base_lr, self.T_max, self.eta_min = base_lr, T_max, eta_min

    def lr_at(self, t: int) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


class CyclicLR(Schedule):
    """Cyclical learning rate (Smith 2017), torch's CyclicLR: linear ramps between
    base_lr and max_lr, step_size_up steps up then step_size_down (default: the same) down.

    mode 'triangular': constant amplitude; 'triangular2': amplitude halves every cycle;
    'exp_range': amplitude scaled by gamma^t.
    """

    def __init__(self, base_lr: float, max_lr: float, step_size_up: int = 2000,
                 step_size_down: int | None = None, mode: str = "triangular",
                 gamma: float = 1.0) -> None:
        if mode not in ("triangular", "triangular2", "exp_range"):
            raise ValueError(f"unknown CyclicLR mode {mode!r}")
        self.base_lr, self.max_lr, self.mode, self.gamma = base_lr, max_lr, mode, gamma
        self.step_size_up = float(step_size_up)
        self.step_size_down = float(step_size_down) if step_size_down is not None else self.step_size_up
        self.total_size = self.step_size_up + self.step_size_down
        self.step_ratio = self.step_size_up / self.total_size

    def lr_at(self, t: int) -> float:
        cycle = math.floor(1 + t / self.total_size)             # 1-based cycle number
        x = 1.0 + t / self.total_size - cycle                   # position in the cycle, [0, 1)
        if x <= self.step_ratio:
            scale = x / self.step_ratio                         # rising edge 0 → 1
        else:
            scale = (x - 1) / (self.step_ratio - 1)             # falling edge 1 → 0
        if self.mode == "triangular":
            amplitude = 1.0
        elif self.mode == "triangular2":
            amplitude = 1 / (2.0 ** (cycle - 1))
        else:
            amplitude = self.gamma ** t
        return self.base_lr + (self.max_lr - self.base_lr) * scale * amplitude


class OneCycleLR(Schedule):
    """1cycle policy (Smith & Topin), torch's OneCycleLR.

    Warm up from max_lr/div_factor to max_lr over the first pct_start of total_steps,
    then anneal ('cos' or 'linear') to max_lr/(div_factor·final_div_factor).
    three_phase=True returns to the initial lr symmetrically before the final anneal.
    Valid for t = 0 .. total_steps (torch raises beyond that, and so does this).
    """

    def __init__(self, max_lr: float, total_steps: int, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False) -> None:
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.max_lr, self.total_steps, self.pct_start = max_lr, total_steps, pct_start
        self.anneal_strategy, self.three_phase = anneal_strategy, three_phase
        self.initial_lr = max_lr / div_factor
        self.min_lr = self.initial_lr / final_div_factor
        warmup_end = float(pct_start * total_steps) - 1
        if three_phase:
            # (end step, start lr, end lr) of each phase, as torch lays them out
            self.phases = [(warmup_end, self.initial_lr, max_lr),
                           (float(2 * pct_start * total_steps) - 2, max_lr, self.initial_lr),
                           (total_steps - 1, self.initial_lr, self.min_lr)]
        else:
            self.phases = [(warmup_end, self.initial_lr, max_lr),
                           (total_steps - 1, max_lr, self.min_lr)]

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)  # cosine from start to end
        return (end - start) * pct + start                                     # straight line

    def lr_at(self, t: int) -> float:
        if t > self.total_steps:
            raise ValueError(f"step {t} is beyond total_steps={self.total_steps}")
        start_step = 0.0
        for end_step, start_lr, end_lr in self.phases[:-1]:
            if t <= end_step:
                return self._anneal(start_lr, end_lr, (t - start_step) / (end_step - start_step))
            start_step = end_step
        end_step, start_lr, end_lr = self.phases[-1]  # the last phase takes every later step
        return self._anneal(start_lr, end_lr, (t - start_step) / (end_step - start_step))


class LinearLR(Schedule):
    """Linear interpolation of a multiplicative factor over total_iters steps (torch's LinearLR):
    lr = base_lr · (start_factor + (end_factor - start_factor) · min(t, T)/T)."""

    def __init__(self, base_lr: float, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5) -> None:
        self.base_lr, self.start_factor, self.end_factor = base_lr, start_factor, end_factor
        self.total_iters = total_iters

    def lr_at(self, t: int) -> float:
        progress = min(self.total_iters, t) / self.total_iters
        return self.base_lr * (self.start_factor + (self.end_factor - self.start_factor) * progress)


class LinearWarmup(LinearLR):
    """Linear warm-up from base_lr·start_factor (default 0) to base_lr over warmup_steps,
    then constant. Equals torch's LinearLR(start_factor, 1.0, warmup_steps) when start_factor > 0."""

    def __init__(self, base_lr: float, warmup_steps: int, start_factor: float = 0.0) -> None:
        super().__init__(base_lr, start_factor, 1.0, warmup_steps)


class SequentialLR(Schedule):
    """Run schedules one after another (torch's SequentialLR): schedule i is active from
    milestone i-1 on, with its own step count restarting at 0 there."""

    def __init__(self, schedules: Sequence[Schedule], milestones: Sequence[int]) -> None:
        if len(milestones) != len(schedules) - 1:
            raise ValueError("need exactly one milestone fewer than schedules")
        self.schedules, self.milestones = list(schedules), list(milestones)

    def lr_at(self, t: int) -> float:
        index = bisect.bisect_right(self.milestones, t)
        start = self.milestones[index - 1] if index > 0 else 0
        return self.schedules[index].lr_at(t - start)


class WarmupCosine(SequentialLR):
    """Linear warm-up over warmup_steps, then cosine annealing to eta_min at total_steps.
    Same as torch's SequentialLR([LinearLR(start_factor, 1, warmup_steps),
    CosineAnnealingLR(T_max=total_steps - warmup_steps, eta_min)], [warmup_steps])."""

    def __init__(self, base_lr: float, warmup_steps: int, total_steps: int,
                 eta_min: float = 0.0, start_factor: float = 0.0) -> None:
        if not 0 < warmup_steps < total_steps:
            raise ValueError("need 0 < warmup_steps < total_steps")
        super().__init__([LinearWarmup(base_lr, warmup_steps, start_factor),
                          CosineAnnealingLR(base_lr, total_steps - warmup_steps, eta_min)],
                         [warmup_steps])
