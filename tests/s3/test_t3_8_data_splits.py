"""3.8 data splits: split helpers with known answers; the chosen C and the spreads compared by the rule."""
from __future__ import annotations

import numpy as np
import pytest

from experiments.s3_regularization._shared import compare_spread
from experiments.s3_regularization.t3_8_data_splits import (Result, class_proportions, max_proportion_deviation,
                                                             random_split, stratified_split, write_up)
from utils.report import compare_errors, compare_predictions
from utils.results import load_result, save_result


def right(k: int, n: int = 360) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[:k] = True
    return out


def make_result(val_right: dict[float, int], single_sd: float) -> Result:
    ranked = sorted(val_right, key=lambda c: (-val_right[c], c))
    rng = np.random.default_rng(0)
    single = list(0.969 + rng.normal(0, single_sd, 50))
    kfold = list(0.969 + rng.normal(0, 0.002, 10))
    dev_r, dev_s = np.abs(rng.normal(0.04, 0.01, 500)), np.full(500, 0.002)
    props = {k: np.full(10, 0.1) for k in ("train", "validation", "test", "overall")}
    return Result(examples=1797, sizes={"train": 1078, "validation": 360, "test": 359},
                  val_accuracy={f"{c:g}": v / 360 for c, v in val_right.items()}, chosen_c=ranked[0],
                  c_comparison=compare_predictions(f"C = {ranked[0]:g}", right(val_right[ranked[0]]),
                                                   f"C = {ranked[1]:g}", right(val_right[ranked[1]]),
                                                   metric="validation accuracy", unit="validation images"),
                  test_accuracy=0.961, split_props=props, test_fraction=0.1, dev_random=dev_r, dev_strat=dev_s,
                  strat_comparison=compare_errors("a stratified split", dev_s, "a random split", dev_r,
                                                  metric="largest class-share deviation", unit="pairs of parts"),
                  example_props={"random": np.full(10, 0.1), "stratified": np.full(10, 0.1)}, k=5, single=single,
                  kfold=kfold, fold_accs=[[0.96, 0.97, 0.98, 0.97, 0.96]] * 10,
                  spread_comparison=compare_spread("5-fold CV", kfold, "single split", single))


def test_a_validation_tie_makes_the_chosen_c_a_choice_not_a_best():
    r = make_result({0.01: 338, 0.1: 347, 1.0: 352, 10.0: 352}, single_sd=0.0021)
    text = " ".join(write_up(r).split())
    assert "the validation part cannot separate it from the runner-up" in text
    assert "No measurable difference between C = 1 and C = 10 in validation accuracy" in text
    assert "So it is a choice, not a measured best." in text
    assert "No measurable difference between 5-fold CV and single split in standard deviation" in text
    assert "96.1% (95% interval" in text and "359 test examples" in text and "one image of 359 is 0.28 points" in text


def test_clear_differences_are_named():
    r = make_result({0.01: 300, 0.1: 320, 1.0: 355, 10.0: 330}, single_sd=0.009)
    text = " ".join(write_up(r).split())
    assert "**C = 1** is chosen: C = 1 beats C = 10 in validation accuracy by 6.9 points" in text
    assert "5-fold CV beats single split in standard deviation of the accuracy estimate" in text
    assert "A stratified split beats a random split in largest class-share deviation" in text


def test_stratified_split_keeps_class_proportions():
    y = np.repeat(np.arange(4), [100, 50, 30, 20])  # imbalanced classes
    parts = stratified_split(y, (0.6, 0.2, 0.2), seed=3)
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(y.size))  # disjoint and complete
    for part, frac in zip(parts, (0.6, 0.2, 0.2)):
        counts = np.bincount(y[part], minlength=4)
        assert np.all(np.abs(counts - frac * np.bincount(y)) <= 1)  # within one example per class
    assert max_proportion_deviation(y[parts[1]], y, 4) < 0.01


def test_random_split_and_proportions():
    parts = random_split(10, (0.7, 0.3), seed=0)
    assert [len(p) for p in parts] == [7, 3]
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(10))
    assert class_proportions([0, 0, 1, 3], 4) == pytest.approx([0.5, 0.25, 0.0, 0.25])
    assert max_proportion_deviation([0, 0], [0, 1], 2) == pytest.approx(0.5)


def test_result_round_trips_through_json(tmp_path):
    r = make_result({0.01: 338, 0.1: 347, 1.0: 352, 10.0: 352}, single_sd=0.0021)
    save_result(tmp_path / "result.json", r)
    back = load_result(Result, tmp_path / "result.json")
    assert write_up(back) == write_up(r)


def test_the_spread_rule_names_an_unpaired_bootstrap():
    # the two sets of estimates are independent: the sentence must not call the bootstrap paired
    text = compare_spread("5-fold CV", [0.96, 0.97, 0.965, 0.968], "single split", [0.95, 0.98, 0.93, 0.99]).sentence()
    assert "bootstrap of each set on its own" in text and "paired" not in text
