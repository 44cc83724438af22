"""Builders for hand-made section-6 results: comparisons with a known verdict and training runs."""
from __future__ import annotations

import pytest

from experiments.s6_recurrent._shared import SumRun
from utils.history import History
from utils.report import Comparison


def make_comparison(name_a: str, value_a: float, name_b: str, value_b: float, *, significant: bool,
                    metric: str = "test MSE", higher_is_better: bool = False, n: int = 1000,
                    percent: bool = False) -> Comparison:
    """A one-seed comparison whose verdict is fixed: p = 0.001 (a real difference) or 0.5 (a tie)."""
    diff = value_a - value_b
    return Comparison(name_a, name_b, value_a, value_b, diff, abs(diff) / (3 if significant else 0.5),
                      "mcnemar" if percent else "bootstrap", n, higher_is_better,
                      0.001 if significant else 0.5, percent, metric)


def make_run(test_mse: float, *, params: int = 1000, epoch_seconds: float = 0.05, epochs: int = 5,
             reached: int | None = 3) -> SumRun:
    h = History(train_loss=[0.3] * epochs, val_loss=[0.3] * (epochs - 1) + [test_mse],
                epoch_seconds=[epoch_seconds] * epochs, seconds=epoch_seconds * epochs, stopped_epoch=epochs)
    return SumRun(h, test_mse, [0.9 * test_mse, 1.1 * test_mse], params, reached)


@pytest.fixture
def comparison():
    return make_comparison


@pytest.fixture
def sum_run():
    return make_run
