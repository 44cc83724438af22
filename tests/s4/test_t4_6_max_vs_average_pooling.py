"""4.6: verdicts and write-up from hand-built results (ties and real differences, McNemar on paired images)."""
from __future__ import annotations

import numpy as np

from experiments.s4_cnn.t4_6_max_vs_average_pooling import POOLS, SHIFTS, Result, write_up
from utils.history import History
from utils.report import compare_predictions


def _paired(n, acc_a, acc_b, seed=0):
    """Right/wrong of two classifiers on n images with the given accuracies, agreeing as much as possible."""
    base = np.random.default_rng(seed).random(n)
    return base < acc_a, base < acc_b


def _result(stability: dict[int, tuple[float, float]], n=2000) -> Result:
    acc, cons, acc_cmp, stab_cmp = {p: {} for p in POOLS}, {p: {} for p in POOLS}, {}, {}
    for d in SHIFTS:
        a, b = _paired(n, 0.9 - 0.05 * d, 0.9 - 0.05 * d, seed=d)
        acc["max"][str(d)], acc["avg"][str(d)] = [float(a.mean())], [float(b.mean())]
        acc_cmp[str(d)] = compare_predictions(POOLS["max"], a, POOLS["avg"], b, metric=f"accuracy at {d} px")
        if d:
            sa, sb = _paired(n, *stability[d], seed=10 + d)
            cons["max"][str(d)], cons["avg"][str(d)] = [float(sa.mean())], [float(sb.mean())]
            stab_cmp[str(d)] = compare_predictions(POOLS["max"], sa, POOLS["avg"], sb, metric=f"unchanged at {d} px")
    for p in POOLS:
        cons[p]["0"] = [1.0]
    return Result("digits", 1000, 100, n, 3, [42], {p: History() for p in POOLS}, acc, cons, acc_cmp, stab_cmp,
                  np.zeros((4, 4, 28, 28)), list("→←↓↑"))


def test_tie_everywhere_names_no_winner():
    r = _result({1: (0.95, 0.95), 2: (0.90, 0.90), 3: (0.85, 0.85)})
    assert r.verdict == "shift stability (1–3 px): max ≈ average pooling (tie)"
    text = write_up(r)
    assert "do not show the textbook expectation" in text
    assert "beats" not in text and "2000 test images" in text and "McNemar" in text


def test_average_pooling_more_stable_contradicts_the_textbook():
    r = _result({1: (0.90, 0.96), 2: (0.80, 0.88), 3: (0.85, 0.85)})
    assert r.verdict == "average pooling more shift-stable at 1, 2 px, tie at 3 px"
    text = write_up(r)
    assert "This contradicts the textbook expectation" in text
    assert "Average pooling beats max pooling in unchanged at 1 px" in text


def test_max_pooling_more_stable_agrees_and_mixed_is_mixed():
    r = _result({1: (0.96, 0.90), 2: (0.90, 0.90), 3: (0.90, 0.90)})
    assert r.verdict == "max pooling more shift-stable at 1 px, tie at 2, 3 px"
    assert "This agrees with the textbook expectation" in write_up(r)
    mixed = _result({1: (0.96, 0.90), 2: (0.80, 0.90), 3: (0.90, 0.90)})
    assert mixed.verdict.startswith("shift stability: mixed")
    assert "The evidence is mixed" in write_up(mixed)
