"""5.1: the write-up from hand-built results (structure check, fit, per-class), and the JSON round trip."""
from __future__ import annotations

from experiments.s5_modern.t5_1_resnet18 import Result, write_up
from utils.history import History
from utils.results import load_result, save_result

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _result(tv=11_173_962, train_acc=(0.5, 0.8), val_acc=(0.5, 0.6), width=16):
    h = History(train_loss=[1.5, 0.8], train_acc=list(train_acc), val_loss=[1.4, 1.1], val_acc=list(val_acc),
                epoch_seconds=[10.0, 12.0], seconds=22.0)
    per_class = {c: 0.5 + 0.04 * i for i, c in enumerate(CLASSES)}
    return Result("cifar10", CLASSES, width, 700_000, 11_173_962, tv, [2, 2, 2, 2], [2, 2, 2, 2], tv == 11_173_962,
                  h, 0.62, 10_000, per_class)


def test_write_up_states_both_counts_and_the_match():
    text = write_up(_result())
    assert "11,173,962" in text and "the same count" in text and "identical shapes" in text
    assert "[2, 2, 2, 2]" in text
    assert "narrowed to width 16" in text and "700,000" in text


def test_write_up_names_a_mismatch_with_its_size():
    text = write_up(_result(tv=11_170_000))
    assert "a difference of +3,962" in text and "differ in shape" in text


def test_write_up_reads_the_curves():
    over = write_up(_result(train_acc=(0.5, 0.9), val_acc=(0.7, 0.6)))
    assert "30.0 points above validation" in over and "peaked at epoch 1" in over
    close = write_up(_result(train_acc=(0.5, 0.61), val_acc=(0.5, 0.6), width=64))
    assert "no sign of over-fitting" in close and "still at its best in the last epoch" in close
    assert "narrowed" not in close


def test_write_up_names_hardest_and_easiest_class_and_accuracy_interval():
    text = write_up(_result())
    assert "hardest class\nwas airplane (50.0%)" in text.replace("The hardest", "hardest")
    assert "easiest\ntruck (86.0%)" in text or "easiest truck (86.0%)" in text.replace("\n", " ")
    assert "10000 test" in text.replace(",", "") or "10,000" in text


def test_result_round_trips_through_json(tmp_path):
    r = _result()
    save_result(tmp_path / "result.json", r)
    back = load_result(Result, tmp_path / "result.json")
    assert back.history.val_acc == r.history.val_acc and back.per_class == r.per_class
    assert write_up(back) == write_up(r)
