"""Helpers of tasks 2.1–2.4: the optimizers and 2-D loss surfaces of 2.2 (kept here so the task
module stays readable), and the scratch schedules torch has but ``scratch.schedules`` lacks (2.3)."""
from __future__ import annotations

import math

import numpy as np
import torch

import scratch
from scratch.schedules import Schedule

OPTIMIZER_NAMES = ("SGD", "SGD+momentum", "Nesterov", "RMSprop", "Adam", "AdamW")


def optimizer_spec(name: str):
    """(scratch optimizer class, torch.optim class, shared keyword arguments) for one of OPTIMIZER_NAMES."""
    return {"SGD": (scratch.SGD, torch.optim.SGD, {}),
            "SGD+momentum": (scratch.SGD, torch.optim.SGD, {"momentum": 0.9}),
            "Nesterov": (scratch.SGD, torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
            "RMSprop": (scratch.RMSprop, torch.optim.RMSprop, {}),
            "Adam": (scratch.Adam, torch.optim.Adam, {}),
            "AdamW": (scratch.AdamW, torch.optim.AdamW, {"weight_decay": 0.01})}[name]


class Rosenbrock:
    """f(x, y) = (1 − x)² + 100 (y − x²)²: a curved, narrow valley with its minimum at (1, 1)."""
    title = "Rosenbrock valley"
    minimum = (1.0, 1.0)
    start = (-1.2, 1.0)    # the classic starting point
    box = ((-1.5, 1.5), (-0.5, 1.6))

    def value(self, x, y):       # works on NumPy arrays and torch tensors alike
        return (1 - x) ** 2 + 100 * (y - x * x) ** 2

    def grad(self, p):
        x, y = p
        return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


class IllConditionedBowl:
    """f(v) = ½ vᵀ A v with A's eigenvalues 1 and 25 (condition number 25), axes rotated by 30°."""
    title = "Ill-conditioned bowl (κ = 25)"
    minimum = (0.0, 0.0)
    start = (-4.0, 2.5)
    box = ((-5.0, 5.0), (-4.0, 4.0))
    _c, _s = math.cos(math.pi / 6), math.sin(math.pi / 6)
    # A = R diag(1, 25) Rᵀ
    a11 = _c * _c + 25 * _s * _s
    a12 = _c * _s - 25 * _c * _s
    a22 = _s * _s + 25 * _c * _c

    def value(self, x, y):
        return 0.5 * (self.a11 * x * x + 2 * self.a12 * x * y + self.a22 * y * y)

    def grad(self, p):
        x, y = p
        return np.array([self.a11 * x + self.a12 * y, self.a12 * x + self.a22 * y])


SURFACES = {"Rosenbrock": Rosenbrock(), "IllConditionedBowl": IllConditionedBowl()}
# Learning rates per surface, chosen by hand so every path is stable and readable (not tuned to win), and
# non-chaotic for 3000 steps (RMSprop at 1e-2 on the valley starts to amplify round-off after ~500 steps).
TRAJECTORY_LRS = {
    "Rosenbrock": {"SGD": 1.5e-3, "SGD+momentum": 3e-4, "Nesterov": 3e-4, "RMSprop": 5e-3, "Adam": 5e-2, "AdamW": 5e-2},
    "IllConditionedBowl": {"SGD": 0.07, "SGD+momentum": 0.02, "Nesterov": 0.02, "RMSprop": 0.05, "Adam": 0.2,
                           "AdamW": 0.2},
}


def optimizer_trajectory(surface, name: str, lr: float, steps: int, start=None):
    """The path of one optimizer from `start` (default surface.start), run by scratch.optim and torch.optim (float64).

    Both optimizers are handed the same hand-written gradient at every step, so any difference is in the
    update rules alone. Returns (scratch path, torch path, max |hand-written − autograd gradient| at every
    10th point of the torch path); the paths are (steps + 1, 2) arrays.
    """
    scratch_cls, torch_cls, kwargs = optimizer_spec(name)
    start = surface.start if start is None else start
    point = np.array(start, dtype=np.float64)
    opt = scratch_cls([point], lr=lr, **kwargs)
    tensor = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt_t = torch_cls([tensor], lr=lr, **kwargs)
    path, path_t = [point.copy()], [tensor.detach().numpy().copy()]
    grad_gap = 0.0
    for step in range(steps):
        opt.step([surface.grad(point)])
        hand = surface.grad(tensor.detach().numpy())
        if step % 10 == 0:   # autograd every 10th step, only to check the hand-written gradient
            opt_t.zero_grad()
            surface.value(tensor[0], tensor[1]).backward()
            grad_gap = max(grad_gap, float(np.max(np.abs(tensor.grad.numpy() - hand))))
        tensor.grad = torch.from_numpy(hand)
        opt_t.step()
        path.append(point.copy())
        path_t.append(tensor.detach().numpy().copy())
    return np.array(path), np.array(path_t), grad_gap


def comparison_table(comps) -> str:
    """A Markdown table of Comparisons (the leader against each other one): values, Δ, interval, verdict."""
    from utils.report import table

    rows = []
    for c in comps:
        p = "" if c.p_value is None else ("< 0.001" if c.p_value < 0.001 else f"{c.p_value:.2g}")
        evidence = (f"margin: sum of seed std devs, {c.n} seeds" if c.method == "seeds" else
                    f"{c.method}, 95% interval, {c.n} test examples")
        rows.append((f"{c.name_a} vs {c.name_b}", f"{c.shown(c.value_a)} vs {c.shown(c.value_b)}",
                     f"{c.shown_diff(signed=True)} ± {100 * c.half_width:.1f}", p or "—", evidence, c.verdict()))
    return table(["comparison", "accuracy", "Δ ± margin (points)", "p", "evidence", "verdict"], rows)


# ------------------------------------------------------------------ 2.3: schedules scratch.schedules lacks
class CosineWarmRestarts(Schedule):
    """Cosine annealing with warm restarts (SGDR, torch's CosineAnnealingWarmRestarts stepped once per step):
    the lr falls from base_lr to eta_min over T_0 steps, jumps back, and each later cycle is T_mult× longer."""

    def __init__(self, base_lr: float, T_0: int, T_mult: int = 1, eta_min: float = 0.0) -> None:
        self.base_lr, self.T_0, self.T_mult, self.eta_min = base_lr, T_0, T_mult, eta_min

    def lr_at(self, t: int) -> float:
        t_cur, t_i = t, self.T_0
        while t_cur >= t_i:
            t_cur, t_i = t_cur - t_i, t_i * self.T_mult
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


class PlateauLR(Schedule):
    """Reduce-on-plateau as torch's ReduceLROnPlateau (mode 'min', relative threshold, no cooldown):
    ``step(metric)`` after each evaluation; when the metric has not improved on its best by the
    relative ``threshold`` for more than ``patience`` evaluations, the lr is multiplied by ``factor``.
    ``lr_at(t)`` is the current lr (it depends on the metrics seen, not on t)."""

    def __init__(self, base_lr: float, factor: float = 0.1, patience: int = 1, threshold: float = 1e-4,
                 min_lr: float = 0.0) -> None:
        self.lr, self.factor, self.patience, self.threshold, self.min_lr = base_lr, factor, patience, threshold, min_lr
        self.best, self.bad = math.inf, 0

    def lr_at(self, t: int) -> float:
        return self.lr

    def step(self, metric: float) -> None:
        if metric < self.best * (1 - self.threshold):
            self.best, self.bad = metric, 0
        else:
            self.bad += 1
        if self.bad > self.patience:
            new = max(self.lr * self.factor, self.min_lr)
            if self.lr - new > 1e-8:
                self.lr = new
            self.bad = 0


def torch_plateau_lrs(base_lr: float, metrics, factor: float, patience: int) -> list[float]:
    """torch's ReduceLROnPlateau fed the same metrics: the lr after each step (to check PlateauLR)."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=factor, patience=patience)
    out = []
    for m in metrics:
        sched.step(m)
        out.append(opt.param_groups[0]["lr"])
    return out
