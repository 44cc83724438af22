"""Helpers tasks 2.5 and 2.9 share: PyTorch MLP variants trained one factor at a time away from a
baseline (same split, same initial-weight seed, same batch order), each variant's per-example test
outcomes, and every variant compared with the baseline by the project's rule (utils.report).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from models import MLP, count_parameters
from utils.data import train_val_split
from utils.history import History
from utils.report import Comparison, compare_runs
from utils.train import predict

ACTIVATIONS = {"ReLU": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "GELU": nn.GELU}


@dataclass
class Variant:
    """One setting trained on every seed of the run."""
    config: dict[str, Any]         # hidden, activation, dropout, optimizer, lr, batch
    history: History               # the first seed's
    test_accuracy: list[float]     # per seed; nan where the run diverged
    status: list[str]              # per seed: "done" | "diverged"
    seconds: list[float]           # per seed, training wall time
    parameters: int

    @property
    def finished(self) -> bool:
        return all(s != "diverged" for s in self.status) and all(math.isfinite(a) for a in self.test_accuracy)

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.test_accuracy)) if self.finished else math.nan


def build_mlp(cfg: dict, in_features: int, classes: int) -> MLP:
    return MLP(in_features, tuple(cfg["hidden"]), classes, dropout=cfg["dropout"],
               activation=ACTIVATIONS[cfg["activation"]])


def make_optimizer(cfg: dict, params) -> torch.optim.Optimizer:
    if cfg["optimizer"] == "Adam":
        return torch.optim.Adam(params, lr=cfg["lr"])
    if cfg["optimizer"] == "SGD+momentum":
        return torch.optim.SGD(params, lr=cfg["lr"], momentum=0.9)
    if cfg["optimizer"] == "SGD":
        return torch.optim.SGD(params, lr=cfg["lr"])
    raise ValueError(f"unknown optimizer {cfg['optimizer']!r}")


def train_variants(ctx, ds, settings: dict[str, dict], *, epochs: int, keep: tuple[str, ...] = ()):
    """Train an MLP for every (seed, setting) on ``ds``; settings map a name to a full config.

    Every setting of one seed starts from the same initial-weight seed and batch order (where the
    architecture is the same, the same weights). The batch size is clipped to the training split.
    Returns (variants, correct, models, train_examples): ``correct[name]`` is the first seed's
    per-test-example right/wrong array (absent for a diverged run); ``models`` the first seed's trained
    models named in ``keep``; ``train_examples`` the size of the training split (validation held out).
    """
    train, val = train_val_split(ds.x_train, ds.y_train, ctx.cfg.val_fraction, seed=ctx.seed)
    in_features = int(np.prod(ds.shape))
    variants: dict[str, Variant] = {}
    correct: dict[str, np.ndarray] = {}
    models: dict[str, nn.Module] = {}
    seeds = ctx.seeds()

    def train_one(job):
        s, name = job
        cfg = settings[name]
        torch.manual_seed(s)
        model = build_mlp(cfg, in_features, ds.num_classes)
        history = ctx.fit(model, train, val, epochs=epochs, optimizer=make_optimizer(cfg, model.parameters()),
                          batch_size=min(cfg["batch"], len(train[1])), seed=s, description=name)
        right = None
        if not history.diverged:
            pred = predict(model, ds.x_test, ctx.cfg.eval_batch_size, ctx.device).argmax(1)
            right = (pred.cpu() == ds.y_test).numpy()
        kept = model.eval() if s == seeds[0] and name in keep else None
        return history, right, count_parameters(model), kept

    jobs = [(s, name) for s in seeds for name in settings]
    done = ctx.map(train_one, jobs, "settings", info=lambda j, out: f"{j[1]}: {out[0].status}")
    for (s, name), (history, right, params, kept) in zip(jobs, done):
        acc = math.nan if right is None else float(right.mean())
        if s == seeds[0]:
            if right is not None:
                correct[name] = right
            variants[name] = Variant(dict(settings[name]), history, [], [], [], params)
            if kept is not None:
                models[name] = kept
        v = variants[name]
        v.test_accuracy.append(acc)
        v.status.append(history.status)
        v.seconds.append(history.seconds)
    return variants, correct, models, len(train[1])


def compare(variants: dict[str, Variant], correct: dict[str, np.ndarray], a: str, b: str) -> Comparison | None:
    """a vs b by the rule (seed spread with several seeds, else McNemar); None if either diverged."""
    va, vb = variants[a], variants[b]
    if not (va.finished and vb.finished and a in correct and b in correct):
        return None
    return compare_runs(a, b, seeds_a=va.test_accuracy, seeds_b=vb.test_accuracy,
                        correct_a=correct[a], correct_b=correct[b])


def compare_to_baseline(variants, correct, baseline: str, names) -> dict[str, Comparison]:
    """Each of ``names`` against the baseline (diverged runs are left out)."""
    out = {}
    for name in names:
        c = compare(variants, correct, name, baseline)
        if c is not None:
            out[name] = c
    return out


def seeds_note(n_seeds: int, test_examples: int) -> str:
    """How the comparisons were decided, in words."""
    if n_seeds > 1:
        return f"{n_seeds} seeds: a difference counts when it exceeds the seed spread"
    return (f"one seed: McNemar's exact test on the paired predictions for the same {test_examples} test "
            f"images (one image = {100 / test_examples:.2f} points)")
