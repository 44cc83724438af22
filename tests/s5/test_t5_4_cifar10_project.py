"""5.4: the write-up from hand-built results (baseline beaten or tied, TTA, regularisation) and the JSON round trip."""
from __future__ import annotations

import numpy as np

from experiments.s5_modern.t5_4_cifar10_project import Result, write_up
from utils.history import History
from utils.report import compare_predictions
from utils.results import load_result, save_result

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _result(acc=0.85, base=0.70, no_tta=0.848, val=(0.7, 0.8), base_train=0.95, n=2000):
    u = np.random.default_rng(0).random(n)
    h = History(train_loss=[1.5, 1.0], train_acc=[0.6, 0.82], val_loss=[1.0, 0.7], val_acc=list(val),
                epoch_seconds=[30.0, 30.0])
    hb = History(train_loss=[1.0, 0.2], train_acc=[0.7, base_train], val_loss=[1.0, 1.1], val_acc=[0.68, 0.70],
                 epoch_seconds=[5.0, 5.0])
    cm = np.diag([90] * 10)
    cm[3, 5] = 25
    per = {c: 0.8 + 0.01 * i for i, c in enumerate(CLASSES)}
    return Result("cifar10", CLASSES, [16, 32, 64, 128], 400_000, 545_098, h, hb, acc, no_tta, base, n, per,
                  {c: 0.7 for c in CLASSES}, cm, compare_predictions("CifarNet", u < acc, "SmallCNN baseline", u < base),
                  compare_predictions("flip TTA", u < acc, "no TTA", u < no_tta), np.zeros((16, 3, 3, 3)),
                  np.zeros((4, 32, 32, 3)), np.zeros((4, 8, 32, 32)))


def test_win_over_the_baseline_and_what_worked():
    text = write_up(_result())
    assert "CifarNet beats the plain baseline" in text and "CifarNet beats SmallCNN baseline" in text
    worked = text.split("## What worked")[1].split("## What did not")[0]
    assert "architecture and recipe as a whole (85.0% vs 70.0%)" in worked
    assert "train−validation gap +2.0 points vs the baseline's +25.0" in worked
    assert "flip test-time augmentation" in text.split("## What did not")[1]   # 1 point on 2000: a tie
    assert "cat → dog (25 images)" in text and "30.0 s per epoch" in text


def test_tie_with_the_baseline_names_no_winner():
    text = write_up(_result(acc=0.70, base=0.70, no_tta=0.70))
    assert "No measurable difference from the plain baseline" in text
    assert "CifarNet beats" not in text and "baseline beats" not in text and "TTA beats" not in text
    assert "nothing measurably, at this budget" in text or "architecture and recipe" in text.split("## What did not")[1]


def test_tta_win_and_still_rising_validation():
    text = write_up(_result(acc=0.85, no_tta=0.80, val=(0.7, 0.8)))
    assert "Flip TTA beats no TTA" in text.split("## What worked")[1].split("## What did not")[0]
    assert "more epochs: validation accuracy was still at its best" in text
    plateau = write_up(_result(val=(0.85, 0.8)))
    assert "had stopped rising" in plateau


def test_no_overfitting_means_regularisation_is_not_credited():
    text = write_up(_result(base_train=0.70))
    assert "neither network over-fits" in text.split("## What did not")[1]


def test_round_trip(tmp_path):
    r = _result()
    save_result(tmp_path / "r.json", r)
    back = load_result(Result, tmp_path / "r.json")
    assert np.array_equal(back.confusion, r.confusion) and write_up(back) == write_up(r)
