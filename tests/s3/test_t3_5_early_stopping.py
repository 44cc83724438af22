"""3.5 early stopping: over-fitting read from the curve, accuracy kept or lost only through the rule."""
from __future__ import annotations

import numpy as np
import torch

from experiments.s3_regularization.t3_5_early_stopping import Result, noisy_labels, write_up
from utils.history import History
from utils.report import compare_predictions
from utils.results import load_result, save_result

N_TEST = 360
VAL = [1.0, 0.8, 0.7, 0.72, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0]   # lowest at epoch 3, then rising


def right(k: int) -> np.ndarray:
    out = np.zeros(N_TEST, dtype=bool)
    out[:k] = True
    return out


def make_result(early_right: int, fixed_right: int, val=VAL) -> Result:
    fixed = History(train_loss=list(np.linspace(1.5, 0.1, len(val))), val_loss=list(val), best_epoch=int(np.argmin(val)) + 1,
                    stopped_epoch=len(val), seconds=20.0)
    early = History(train_loss=fixed.train_loss[:6], val_loss=list(val[:6]), best_epoch=3, stopped_epoch=6,
                    status="early_stopped", restored_best=True, seconds=12.0)
    return Result(dataset="digits", input_size=784, num_classes=10, train_examples=1150, val_examples=287,
                  test_examples=N_TEST, label_noise=0.1, lr=3e-3, epochs=len(val), patience=3, seeds=[42],
                  fixed=fixed, early=early, test_accuracy={"fixed": [fixed_right / N_TEST],
                                                           "early_stopping": [early_right / N_TEST]},
                  seconds={"fixed": [20.0], "early_stopping": [12.0]}, stopped=[6], best=[3], restore_error=0.0,
                  retrace_error=0.0, comparison=compare_predictions("early stopping", right(early_right),
                                                                   f"fixed {len(val)} epochs", right(fixed_right)))


def test_equal_accuracy_is_kept_not_gained():
    r = make_result(343, 342)
    assert r.overfit
    text = " ".join(write_up(r).split())
    assert "The fixed run over-fitted: its validation loss was lowest at epoch 3 (0.7000) and rose to 1.0000" in text
    assert "Early stopping ended training after epoch 6 of 10, 3 epochs after the lowest validation loss at epoch 3" in text
    assert "Epoch 3 is also where the whole 10-epoch run had its lowest validation loss" in text
    assert "**Saved**: 4 of 10 epochs and 40% of the fixed run's training time" in text
    assert "Early stopping kept the accuracy. No measurable difference between early stopping and fixed 10 epochs" in text
    assert "360 test images" in text and "beats" not in text


def test_a_clear_gain_is_named():
    r = make_result(340, 290)
    text = " ".join(write_up(r).split())
    # 340 and 290 of 360: 94.4% and 80.6% as shown, so the gain reads as their difference
    assert "Early stopping also gained accuracy. Early stopping beats fixed 10 epochs in test accuracy by 13.8 points" in text
    assert "early stopping 94.4%, fixed 10 epochs 80.6%" in text


def test_a_still_falling_curve_is_not_called_over_fitting():
    r = make_result(340, 340, val=[1.0, 0.8, 0.7, 0.72, 0.71, 0.7, 0.69, 0.68, 0.675, 0.67])
    assert not r.overfit
    text = " ".join(write_up(r).split())
    assert "The fixed run did not clearly over-fit here" in text
    assert "The fixed run later reached a lower validation loss (0.6700 at epoch 10): patience 3 stopped on a plateau." in text


def test_noisy_labels_flip_the_requested_share_to_other_classes():
    y = torch.arange(10).repeat(1000)
    noisy = noisy_labels(y, 0.1, seed=0)
    changed = noisy != y
    assert abs(changed.float().mean().item() - 0.1) < 0.01
    assert int(noisy.min()) >= 0 and int(noisy.max()) <= 9
    assert torch.equal(noisy_labels(y, 0.1, seed=0), noisy) and not torch.equal(y, noisy)
    assert torch.equal(noisy_labels(y, 0.0, seed=0), y)


def test_result_round_trips_through_json(tmp_path):
    r = make_result(343, 342)
    save_result(tmp_path / "result.json", r)
    back = load_result(Result, tmp_path / "result.json")
    assert isinstance(back.early, History) and back.early.status == "early_stopped"
    assert write_up(back) == write_up(r)
