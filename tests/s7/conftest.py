"""Builders for hand-made section-7 results: comparisons with a known verdict."""
from __future__ import annotations

import pytest

from utils.report import Comparison


def make_comparison(name_a: str, value_a: float, name_b: str, value_b: float, *, significant: bool,
                    metric: str = "test accuracy", higher_is_better: bool = True, n: int = 1000,
                    percent: bool = True) -> Comparison:
    """A one-seed comparison whose verdict is fixed: p = 0.001 (a real difference) or 0.5 (a tie)."""
    diff = value_a - value_b
    return Comparison(name_a, name_b, value_a, value_b, diff, abs(diff) / (3 if significant else 0.5),
                      "mcnemar" if percent else "bootstrap", n, higher_is_better,
                      0.001 if significant else 0.5, percent, metric)


@pytest.fixture
def comparison():
    return make_comparison
