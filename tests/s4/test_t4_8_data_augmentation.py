"""4.8: the generalisation-gap comparison, verdicts and write-up from hand-built results, JSON round trip."""
from __future__ import annotations

import numpy as np
import pytest

from experiments.s4_cnn.t4_8_data_augmentation import GapComparison, Result, compare_gaps, write_up
from utils.history import History
from utils.report import compare_predictions, compare_seeds
from utils.results import load_result, save_result


def _right(n, acc, seed):
    return np.random.default_rng(seed).random(n) < acc


def test_compare_gaps_tie_when_the_gaps_are_equal():
    train, val = _right(300, 0.95, 0), _right(400, 0.75, 1)
    c = compare_gaps("augmented", train, val, "plain", train.copy(), val.copy())
    assert c.diff == 0 and c.winner is None and c.p_value >= 0.05
    assert "300 training and 400 validation images" in c.sentence()


def test_compare_gaps_finds_a_clearly_smaller_gap():
    train_p, val_p = np.ones(300, bool), _right(400, 0.70, 1)          # gap 30 points
    train_a, val_a = _right(300, 0.90, 2), val_p | _right(400, 0.5, 3)  # higher val, lower fit: gap ≈ 5 points
    c = compare_gaps("augmented", train_a, val_a, "plain", train_p, val_p)
    assert c.winner == "augmented" and c.p_value < 0.01
    assert c.diff == pytest.approx((train_a.mean() - val_a.mean()) - (1 - val_p.mean()))
    assert c.verdict() == "augmented beats plain"


def _result(gap: GapComparison, test, final) -> Result:
    return Result("fashion-mnist", "random crop (pad 2)", True, 300, 400, 2000, 12, 32, ["original"],
                  np.zeros((1, 8, 28, 28)),
                  {k: History(train_loss=[2.0, 1.0, t], val_loss=[1.0, 0.8, 0.9]) for k, t in (("plain", 0.5),
                                                                                             ("augmented", 1.2))},
                  {k: [0.5, 0.7, 0.8] for k in ("plain", "augmented")}, final, gap, test)


def _final(train_p, val_p, train_a, val_a, test_p=0.7, test_a=0.7):
    return {"plain": {"train": [train_p], "val": [val_p], "gap": [train_p - val_p], "test": [test_p]},
            "augmented": {"train": [train_a], "val": [val_a], "gap": [train_a - val_a], "test": [test_a]}}


def test_write_up_tie_names_no_winner():
    train, val = _right(300, 0.95, 0), _right(400, 0.75, 1)
    test = _right(2000, 0.7, 2)
    r = _result(compare_gaps("augmented", train, val, "plain", train, val),
                compare_predictions("augmented", test, "plain", test), _final(0.95, 0.75, 0.95, 0.75))
    assert r.verdict == "generalisation gap: augmented ≈ plain (tie)"
    text = write_up(r)
    assert "no measurable difference in over-fitting" in text and "nor is there one in test accuracy" in text
    assert "beats" not in text and "2000 images" in text
    assert "kept falling after the validation minimum for: plain (1.000 → 0.500) —" in text  # not augmented (1.2)
    assert "may be noise" not in text and "real generalisation" not in text


def test_write_up_smaller_gap_without_test_gain_splits_the_gap():
    train_p, val_p = np.ones(300, bool), _right(400, 0.70, 1)
    train_a, val_a = _right(300, 0.90, 2), val_p | _right(400, 0.2, 3)
    test = _right(2000, 0.7, 4)
    gap = compare_gaps("augmented", train_a, val_a, "plain", train_p, val_p)
    f = _final(1.0, float(val_p.mean()), float(train_a.mean()), float(val_a.mean()))
    r = _result(gap, compare_predictions("augmented", test, "plain", test), f)
    assert r.verdict == "augmented training has the smaller generalisation gap"
    text = write_up(r)
    assert "reduced over-fitting but brought no measurable test-accuracy gain" in text
    fit = 100 * (1.0 - train_a.mean())
    assert f"clean training accuracy fell by {fit:.1f} points and validation accuracy rose by" in text


def test_seed_comparison_round_trips_as_a_gap_comparison(tmp_path):
    c = compare_seeds("augmented", [0.05, 0.06, 0.04], "plain", [0.20, 0.22, 0.21], higher_is_better=False,
                      metric="generalisation gap (train − validation accuracy)")
    gap = GapComparison(**vars(c))
    test = compare_seeds("augmented", [0.80, 0.81, 0.82], "plain", [0.70, 0.71, 0.72])
    f = {"plain": {"train": [1.0] * 3, "val": [0.79] * 3, "gap": [0.21] * 3, "test": [0.71] * 3},
         "augmented": {"train": [0.9] * 3, "val": [0.85] * 3, "gap": [0.05] * 3, "test": [0.81] * 3}}
    r = _result(gap, test, f)
    assert "seed spread" in gap.sentence()
    text = write_up(r)
    assert "reduced over-fitting and raised test accuracy, as the textbook expects" in text
    save_result(tmp_path / "result.json", r)
    back = load_result(Result, tmp_path / "result.json")
    assert isinstance(back.gap, GapComparison) and write_up(back) == text
