"""2.4 LR range test: smoothing, the steepest-descent rule, the range test itself, and the analysis on
suggestions that train well, tie with the best, or miss."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from experiments.s2_optimization.t2_4_lr_range_test import (FACTORS, Result, lr_range_test, smooth_losses,
                                                            suggest_lr, write_up)
from utils.history import History


def test_smooth_losses_bias_correction():
    np.testing.assert_allclose(smooth_losses([3.0] * 5, beta=0.9), 3.0)   # no pull towards 0 at the start
    np.testing.assert_allclose(smooth_losses([1.0, 0.0], beta=0.5), [1.0, 1 / 3])


def test_suggest_lr_finds_the_steepest_descent_before_the_minimum():
    lrs = np.logspace(-5, 0, 300)
    t = np.log10(lrs)
    loss = 2 - np.tanh(2 * (t + 3)) + np.where(t > -1, 50 * (t + 1) ** 2, 0)   # steepest at 1e-3, blows up > 1e-1
    lr, index = suggest_lr(lrs, loss)
    assert lr == pytest.approx(1e-3, rel=0.05)
    assert index < np.argmin(loss)


def test_lr_range_test_runs_its_steps_over_several_passes(single_torch_thread):
    torch.manual_seed(0)
    x, y = torch.randn(160, 10), torch.randint(0, 3, (160,))
    model = torch.nn.Linear(10, 3)
    opt = torch.optim.SGD(model.parameters(), lr=1e-6)
    lrs, raw, smoothed, stopped = lr_range_test(model, x, y, opt, lr_min=1e-6, lr_max=1e-3, steps=120,
                                                batch_size=16, seed=0)          # 10 batches a pass: 12 passes
    assert not stopped and len(lrs) == len(raw) == len(smoothed) == 120
    assert lrs[0] == pytest.approx(1e-6) and lrs[-1] == pytest.approx(1e-3)
    assert lrs[1] / lrs[0] == pytest.approx(1e3 ** (1 / 119))
    np.testing.assert_allclose(smoothed, smooth_losses(raw))


def test_lr_range_test_stops_when_the_loss_explodes(single_torch_thread):
    torch.manual_seed(0)
    x, y = torch.randn(640, 10), torch.randint(0, 3, (640,))
    model = torch.nn.Linear(10, 3)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    lrs, raw, smoothed, stopped = lr_range_test(model, x, y, opt, lr_min=1e-4, lr_max=1e4, steps=100,
                                                batch_size=8, seed=0)
    assert stopped and 10 < len(lrs) < 100
    assert smoothed[-1] > 4 * smoothed.min() or not np.isfinite(raw).all()


def result(acc: dict[str, list[float]], n: int = 2000, diverged: tuple[str, ...] = ()) -> Result:
    rng = np.random.default_rng(0)
    lrs = np.logspace(-5, -0.5, 150)
    smoothed = np.linspace(2.3, 0.9, 150)
    correct = {k: np.isin(np.arange(n), rng.permutation(n)[:round(v[0] * n)]) for k, v in acc.items()}
    hist = {k: History(train_loss=[1.0, float("nan")] if k in diverged else [1.0, 0.6],
                       status="diverged" if k in diverged else "done") for k in acc}
    return Result("fashion-mnist", 10, 5400, n, 64, 200, lrs, smoothed + 0.01, smoothed, True, 0.017, 80, 140,
                  {k: 0.017 * f for k, f in FACTORS.items()}, 3, [42] * len(next(iter(acc.values()))), acc,
                  correct, hist)


def test_write_up_when_the_suggestion_is_the_best():
    acc = {"suggested ÷ 10": [0.74], "suggested ÷ 3": [0.80], "suggested": [0.84], "suggested × 3": [0.83],
           "suggested × 10": [0.10]}
    text = write_up(result(acc, diverged=("suggested × 10",)))
    assert "**The suggested lr gave the best short run** (84.0%) of the 5 tried" in text
    assert "Ten times the suggestion (0.17) diverged" in text
    assert "too small a rate spends the epoch budget crawling" in text


def test_write_up_within_two_points_and_a_tie_by_the_rule():
    acc = {"suggested ÷ 10": [0.815], "suggested ÷ 3": [0.82], "suggested": [0.830], "suggested × 3": [0.837],
           "suggested × 10": [0.70]}
    text = write_up(result(acc))
    assert "0.7 points below the best (83.7% at lr 0.051), within the 2-point margin" in text
    assert "not distinguishable: No measurable difference between suggested lr and best short run" in text
    assert "missed" not in text and "within 2 points of the suggestion" in text      # ÷ 10: 81.5% vs 83.0%


def test_write_up_says_when_the_suggestion_missed():
    acc = {"suggested ÷ 10": [0.60, 0.61], "suggested ÷ 3": [0.70, 0.70], "suggested": [0.75, 0.76],
           "suggested × 3": [0.83, 0.84], "suggested × 10": [0.82, 0.81]}
    text = write_up(result(acc))
    assert "**The suggestion missed: its short run reached 75.5%, 8.0 points below the best" in text
    assert "Best short run (lr 0.051) beats suggested lr" in text and "seeds" in text
    assert "trains well" not in text
