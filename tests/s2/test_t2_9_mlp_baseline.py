"""2.9: the write-up of the baseline and the architecture study (a tie is called a tie, a clear win is named,
results against the textbook say so with the measured reason)."""
from __future__ import annotations

import math

import numpy as np

from experiments.s2_optimization._shared_b import Variant
from experiments.s2_optimization.t2_9_mlp_baseline import BASELINE, STUDY, Result, describe, write_up
from utils.history import History
from utils.report import compare_predictions, describe_accuracy

CLASSES = [str(i) for i in range(10)]


def _paired(n, a_right, b_start, b_right):
    a = np.zeros(n, bool)
    a[:a_right] = True
    b = np.zeros(n, bool)
    b[b_start:b_start + b_right] = True
    return a, b


def _variant(acc, loss=0.4, val_loss=(0.6, 0.5, 0.45), **change):
    h = History(train_loss=[1.0, 0.6, loss], train_acc=[0.6, 0.8, 0.85], val_loss=list(val_loss),
                val_acc=[0.7, 0.8, acc])
    cfg = {**BASELINE, **change}
    params = 784 * cfg["hidden"][0] + 10 * cfg["hidden"][-1]
    return Variant(cfg, h, [acc], ["done"], [2.0], params)


def _result(no_dropout_pair):
    """'no dropout' vs baseline decided by ``no_dropout_pair``; sigmoid clearly worse, the rest ties."""
    variants = {"baseline": _variant(0.83, loss=0.47)}
    for group in STUDY.values():
        variants.update({n: _variant(0.83, **change) for n, change in group.items()})
    variants["sigmoid"] = _variant(0.79, loss=0.64, activation="sigmoid")
    tie = _paired(2000, 1660, 100, 1650)
    comparisons = {n: compare_predictions(n, tie[1], "baseline", tie[0]) for n in variants if n != "baseline"}
    worse = _paired(2000, 1800, 100, 1500)
    comparisons["sigmoid"] = compare_predictions("sigmoid", worse[1], "baseline", worse[0])
    comparisons["no dropout"] = compare_predictions("no dropout", no_dropout_pair[0], "baseline", no_dropout_pair[1])
    cm = np.eye(10, dtype=int) * 180
    cm[4, 2] = 45
    report = {c: {"precision": 0.9, "recall": 0.5 if c == "4" else 0.9, "f1-score": 0.9, "support": 200}
              for c in CLASSES}
    return Result("fashion-mnist (stand-in for mnist)", CLASSES, 5400, 2000, 3, 1, variants, comparisons, cm, report,
                  np.zeros((2, 28, 28)), [1, 2], [1, 3])


def test_write_up_calls_a_small_gap_a_tie():
    text = write_up(_result(_paired(2000, 1660, 100, 1650)))
    assert "No measurable difference between no dropout and baseline" in text
    assert "against the usual advice" not in text
    assert "2000 test images" in text and "may be noise" not in text
    assert "Baseline beats sigmoid in test accuracy by 15.0 points" in text and "lost on the test set" in text


def test_write_up_names_a_clear_winner_against_the_textbook():
    text = write_up(_result(_paired(2000, 1800, 100, 1500)))
    assert "No dropout beats baseline in test accuracy by 15.0 points" in text
    assert "against the usual advice" in text and "still falling at epoch 3" in text
    assert "**4 taken for 2** (45 of 225 test images of 4)" in text
    assert "784-512-256-10" in text and describe_accuracy(0.83, 2000) in text


def test_describe():
    assert describe(BASELINE) == "784-512-256-10"
    assert describe({"hidden": [64]}, 3072, 100) == "3072-64-100"
    assert not math.isnan(_variant(0.8).accuracy)
