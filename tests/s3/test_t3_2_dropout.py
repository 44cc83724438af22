"""3.2 dropout: the gap and test accuracy are compared by the rule; a tie names no best dropout."""
from __future__ import annotations

import numpy as np

from experiments.s3_regularization._shared import compare_gaps
from experiments.s3_regularization.t3_2_dropout import Result, write_up
from utils.history import History
from utils.report import compare_predictions
from utils.results import load_result, save_result

N_TRAIN, N_TEST = 3000, 2000


def right(k: int, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[:k] = True
    return out


def make_result(train_right: dict[str, int], test_right: dict[str, int]) -> Result:
    tr = {p: right(k, N_TRAIN) for p, k in train_right.items()}
    te = {p: right(k, N_TEST) for p, k in test_right.items()}
    h0 = History(train_loss=[1.0, 0.3, 0.1], train_acc=[0.7, 0.9, 0.97], val_loss=[0.6, 0.45, 0.55],
                 val_acc=[0.8, 0.84, 0.83])
    h5 = History(train_loss=[1.5, 0.6, 0.4], train_acc=[0.6, 0.8, 0.86], val_loss=[0.8, 0.5, 0.44],
                 val_acc=[0.7, 0.83, 0.85])
    return Result(dataset="fashion-mnist", input_size=784, num_classes=10, train_examples=N_TRAIN, val_examples=1000,
                  test_examples=N_TEST, epochs=3, seeds=[42], histories={"0.0": h0, "0.5": h5},
                  train_accuracy={p: [float(v.mean())] for p, v in tr.items()},
                  test_accuracy={p: [float(v.mean())] for p, v in te.items()},
                  status={"0.0": ["done"], "0.5": ["done"]},
                  test_comparison=compare_predictions("dropout 0.5", te["0.5"], "dropout 0.0", te["0.0"]),
                  gap_comparison=compare_gaps("dropout 0.5", "dropout 0.0", train_a=tr["0.5"], train_b=tr["0.0"],
                                              test_a=te["0.5"], test_b=te["0.0"]))


def test_equal_test_accuracy_is_a_tie_and_a_narrower_gap_is_named():
    # Both 83.4% on the test set (the 96.39%-both case); the gap 13.3 vs 6.9 points.
    r = make_result({"0.0": 2901, "0.5": 2710}, {"0.0": 1668, "0.5": 1668})
    assert r.test_comparison.winner is None
    text = " ".join(write_up(r).split())
    assert "No measurable difference between dropout 0.5 and dropout 0.0 in test accuracy" in text
    assert "Dropout 0.5 beats dropout 0.0 in generalization gap (train − test accuracy) by 6.4 points" in text
    assert "This agrees with the textbook" in text
    assert "Across seeds" not in text and "best" not in text
    assert "2000 test images" in text and "one seed" in text
    assert "dropout 0.0: validation loss was lowest at epoch 2 (0.450) and rose to 0.550" in text


def test_a_clear_accuracy_win_is_named_and_a_gap_tie_said():
    r = make_result({"0.0": 2700, "0.5": 2850}, {"0.0": 1500, "0.5": 1600})   # both gaps 15 points; test +5
    assert r.test_comparison.winner == "dropout 0.5" and r.gap_comparison.winner is None
    text = " ".join(write_up(r).split())
    assert "Dropout 0.5 beats dropout 0.0 in test accuracy by 5.0 points" in text
    assert "No measurable difference between dropout 0.5 and dropout 0.0 in generalization gap" in text
    assert "neither confirms nor refutes it" in text


def test_a_wider_gap_with_dropout_is_called_against_the_textbook():
    r = make_result({"0.0": 2700, "0.5": 2990}, {"0.0": 1700, "0.5": 1700})
    assert r.gap_comparison.winner == "dropout 0.0"
    text = " ".join(write_up(r).split())
    assert "goes against the textbook expectation that dropout narrows the gap" in text


def test_result_round_trips_through_json(tmp_path):
    r = make_result({"0.0": 2901, "0.5": 2710}, {"0.0": 1668, "0.5": 1700})
    save_result(tmp_path / "result.json", r)
    back = load_result(Result, tmp_path / "result.json")
    assert write_up(back) == write_up(r)
    assert isinstance(back.histories["0.5"], History)
