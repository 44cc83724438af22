"""4.3: the write-up reads the numbers it is given (over-fitting or not, the weakest classes, the table)."""
from __future__ import annotations

import numpy as np

from experiments.s4_cnn.t4_3_pytorch_cnn import Result, write_up
from utils.history import History
from utils.report import confusion_matrix, per_class_report

CLASSES = ["T-shirt", "Trouser", "Shirt"]


def _result(val_loss):
    true = np.array([0] * 10 + [1] * 10 + [2] * 10)
    pred = true.copy()
    pred[20:26] = 0                                   # 6 shirts taken for T-shirts
    pred[0] = 2
    cm = confusion_matrix(true, pred, 3)
    h = History(train_loss=[0.9, 0.5, 0.4], train_acc=[0.7, 0.85, 0.9], val_loss=list(val_loss),
                val_acc=[0.72, 0.8, 0.77], epoch_seconds=[1.0, 1.0, 1.0])
    return Result("fashion-mnist", CLASSES, 1234, h, float((pred == true).mean()), 30, cm,
                  per_class_report(cm, CLASSES),
                  np.zeros((0, 28, 28)), [], [], [], int((pred != true).sum()))


def test_rising_validation_loss_is_called_overfitting_and_the_weakest_class_is_named():
    text = write_up(_result([0.6, 0.45, 0.52]))
    assert "lowest at epoch 2 of 3" in text and "0.4500 → 0.5200" in text and "over-fitting" in text
    assert "7 test images were misclassified" in text
    assert "**Shirt taken for T-shirt** (6 of 10" in text
    assert "The classes with the lowest recall were Shirt (40.0%)" in text
    # precision 4/5 (one T-shirt taken for a shirt), recall 4/10
    assert "| Shirt | 80.0% | 40.0% | 0.533 | 10 |" in text


def test_falling_validation_loss_says_more_epochs_would_help():
    text = write_up(_result([0.6, 0.5, 0.45]))
    assert "still falling at the last epoch (0.4500)" in text and "over-fitting" not in text.split("## Errors")[0]
