"""5.3: the write-up from hand-built results (transfer wins, tie, scratch wins) and the JSON round trip."""
from __future__ import annotations

import numpy as np

from experiments.s5_modern.t5_3_transfer_learning import METHODS, Result, write_up
from utils.history import History
from utils.report import compare_predictions
from utils.results import load_result, save_result


def _result(ft=(0.70, 0.85), fe=(0.65, 0.75), sc=(0.40, 0.84), n=1000):
    u = np.random.default_rng(0).random(n)
    acc = {"fine-tuning": dict(zip(["10", "all"], ft)), "feature extraction": dict(zip(["10", "all"], fe)),
           "from scratch": dict(zip(["10", "all"], sc))}

    def vs(key):
        i = 0 if key == "10" else 1
        return {m: compare_predictions(m, u < acc[m][key], "from scratch", u < sc[i]) for m in METHODS[:2]}

    return Result("cifar10", "own pretraining on cifar10, 5 source classes",
                  "ImageNet weights unavailable (offline), so our ResNet-18 was pretrained here on the source classes",
                  ["dog", "frog", "horse", "ship", "truck"], ["10", "all"], {"10": 10.0, "all": 4500.0}, acc, n,
                  {m: History(train_loss=[1.0, 0.5], val_acc=[0.3, 0.5]) for m in METHODS}, vs("10"), vs("all"), 0.8)


def test_transfer_win_is_named_with_the_source():
    text = write_up(_result())
    assert "transfer wins" in text and "Fine-tuning beats from scratch" in text
    assert "ImageNet weights unavailable" in text and "dog, frog, horse, ship, truck" in text
    assert "+30.0 points at 10 labels per class to +1.0 with all" in text
    assert "labels make up for the missing pretraining" in text


def test_a_tie_names_no_winner():
    r = _result(ft=(0.40, 0.84), fe=(0.40, 0.84), sc=(0.40, 0.84))
    text = write_up(r)
    assert "no method is measurably ahead" in text and "No measurable difference" in text
    assert "beats" not in text


def test_scratch_winning_is_reported_against_the_textbook():
    text = write_up(_result(ft=(0.30, 0.84), fe=(0.25, 0.80), sc=(0.45, 0.85)))
    assert "Against the textbook, training from scratch won" in text
    assert "From scratch beats fine-tuning" in text


def test_round_trip(tmp_path):
    r = _result()
    save_result(tmp_path / "r.json", r)
    back = load_result(Result, tmp_path / "r.json")
    assert back.accuracy == r.accuracy and write_up(back) == write_up(r)
