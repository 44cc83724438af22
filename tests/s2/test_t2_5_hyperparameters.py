"""2.5: run verdicts (diverged / stalled / failed to learn / trained) and the write-up's comparisons (a tie is
called a tie, a clear win is named, diverged runs are labelled, never compared)."""
from __future__ import annotations

import math

import numpy as np

from experiments.s2_optimization._shared_b import Variant
from experiments.s2_optimization.t2_5_hyperparameters import (BASELINE, GROUPS, Result, headline, run_verdict,
                                                              sgd_name, write_up)
from utils.history import History
from utils.report import compare_predictions


def test_run_verdict():
    assert run_verdict(History(train_loss=[1.0, math.nan], status="diverged"), None, 10) == "diverged"
    assert run_verdict(History(train_loss=[2.30, 2.29, 2.28]), 0.25, 10) == "stalled"       # within 10% of ln 10
    assert run_verdict(History(train_loss=[26.0, 10.9, 2.44]), 0.16, 10) == "failed to learn"  # blew up, never recovered
    assert run_verdict(History(train_loss=[1.0, 0.4]), 0.85, 10) == "trained"
    assert run_verdict(History(train_loss=[1.0, 0.4]), 0.15, 10) == "failed to learn"          # under twice chance
    assert run_verdict(History(train_loss=[1.0, 0.4]), math.nan, 10) == "failed to learn"


def _paired(n, a_right, b_start, b_right):
    a = np.zeros(n, bool)
    a[:a_right] = True
    b = np.zeros(n, bool)
    b[b_start:b_start + b_right] = True
    return a, b


def _variant(acc, loss=(1.0, 0.5), diverged=False, **change):
    h = History(train_loss=list(loss) + ([math.nan] if diverged else []), val_loss=[0.9, 0.6], val_acc=[0.7, acc],
                status="diverged" if diverged else "done")
    return Variant({**BASELINE, **change}, h, [math.nan if diverged else acc], [h.status], [1.0], 1000)


def _result(batch_pair):
    """batch 1024 vs baseline decided by ``batch_pair`` (its right/wrong arrays); Adam lr 0.1 diverged."""
    variants = {"baseline": _variant(0.83)}
    for group in GROUPS.values():
        for name, change in group.items():
            variants[name] = _variant(0.8, **change)
    variants["Adam lr 0.1"] = _variant(math.nan, diverged=True, lr=0.1)
    lrs = [1e-4, 0.1, 1.0]
    variants[sgd_name(1e-4)] = _variant(0.1, loss=(2.30, 2.29), optimizer="SGD", lr=1e-4)
    variants[sgd_name(0.1)] = _variant(0.75, optimizer="SGD", lr=0.1)
    variants[sgd_name(1.0)] = _variant(math.nan, diverged=True, optimizer="SGD", lr=1.0)
    verdicts = {n: run_verdict(v.history, v.history.final("val_acc"), 10) for n, v in variants.items()}
    comparisons = {"batch 1024": compare_predictions("batch 1024", batch_pair[1], "baseline", batch_pair[0])}
    return Result("fashion-mnist", 10, 784, 3600, 2000, 3, 1, lrs, variants, verdicts, comparisons,
                  comparisons["batch 1024"], None)


def test_write_up_calls_a_small_gap_a_tie():
    r = _result(_paired(2000, 1660, 100, 1650))      # 100 vs 90 discordant: no evidence
    text = write_up(r)
    assert "No measurable difference between batch 1024 and baseline" in text
    assert headline(r) == "batch 1024 ≈ baseline (tie)"
    assert "2000 test images" in text and "may be noise" not in text


def test_write_up_names_a_clear_winner_and_labels_divergence_and_stall():
    r = _result(_paired(2000, 1800, 100, 1500))
    text = write_up(r)
    assert "Baseline beats batch 1024 in test accuracy by 15.0 points" in text
    assert headline(r) == "baseline beats batch 1024"
    assert "Adam lr 0.1 diverged: not compared." in text
    assert "Explosion: lr 1 (diverged)" in text and "Stall: lr 0.0001" in text
    assert "Only plain SGD lr 0.1 trained (75.0%)" in text
