"""3.4 L1 vs L2: sparsity stated from the numbers, accuracy differences only through the rule."""
from __future__ import annotations

import numpy as np

from experiments.s3_regularization.t3_4_l1_vs_l2 import THRESHOLD, VARIANTS, Result, write_up
from utils.report import compare_predictions, compare_seeds
from utils.results import load_result, save_result

N_TEST = 2000


def right(k: int) -> np.ndarray:
    out = np.zeros(N_TEST, dtype=bool)
    out[:k] = True
    return out


def make_result(test_right: dict[str, int], sparsity: dict[str, list[float]]) -> Result:
    c = {k: right(v) for k, v in test_right.items()}
    names = {"none": "no penalty", "l1": "L1, λ = 1e-4", "l2": "L2, λ = 1e-3"}
    seeds = [42 + i for i in range(len(sparsity["l1"]))]
    grid = np.logspace(-6, 0, 200)
    return Result(dataset="fashion-mnist", input_size=784, num_classes=10, train_examples=3000, val_examples=1000,
                  test_examples=N_TEST, epochs=15, seeds=seeds, n_weights=566_528,
                  val_accuracy={k: [0.83] * len(seeds) for k in VARIANTS},
                  test_accuracy={k: [v / N_TEST] * len(seeds) for k, v in test_right.items()}, sparsity=sparsity,
                  initial_sparsity=0.026, per_layer={k: [0.6, 0.5, 0.4, 0.2] for k in VARIANTS},
                  exact_zero={"none": 0.0, "l1": 0.0, "l2": 0.0}, bins=np.logspace(-6, 0, 11),
                  histograms={k: np.ones(10, dtype=np.int64) for k in [*VARIANTS, "initial"]}, grid=grid,
                  below={k: np.clip(np.log10(grid) / 6 + 1, 0, 1) for k in [*VARIANTS, "initial"]},
                  prune_shares=[0.0, 0.5, 0.9], pruned_accuracy={k: [v / N_TEST, v / N_TEST, 0.5]
                                                                 for k, v in test_right.items()},
                  pruned_at_threshold={k: v / N_TEST for k, v in test_right.items()},
                  accuracy={f"{a}_vs_{b}": compare_predictions(names[a], c[a], names[b], c[b])
                            for a, b in (("l1", "l2"), ("l1", "none"), ("l2", "none"))},
                  sparsity_comparison=(compare_seeds("L1", sparsity["l1"], "L2", sparsity["l2"],
                                                     metric=f"share of weights below {THRESHOLD:g}")
                                       if len(seeds) > 1 else None))


def test_equal_accuracy_is_a_tie_and_sparsity_is_read_from_the_numbers():
    r = make_result({"none": 1640, "l1": 1641, "l2": 1643}, {"none": [0.024], "l1": [0.576], "l2": [0.123]})
    text = " ".join(write_up(r).split())
    assert ("L1 left 57.6% of the 566,528 weights below 0.001, L2 12.3%, no penalty 2.4% (initial weights 2.6%): "
            "L1 left 4.7× as many near-zero weights as L2.") in text
    assert "This is the textbook picture" in text
    assert "No measurable difference between L1, λ = 1e-4 and L2, λ = 1e-3 in test accuracy" in text
    assert "beats" not in text
    assert "2000 test images" in text and "one seed" in text
    assert "None of the L1 network's weights are exactly zero" in text


def test_a_clear_accuracy_gap_and_l2_sparser_against_the_textbook():
    r = make_result({"none": 1500, "l1": 1500, "l2": 1700},
                    {"none": [0.02, 0.021, 0.019], "l1": [0.05, 0.052, 0.051], "l2": [0.20, 0.21, 0.19]})
    text = " ".join(write_up(r).split())
    assert "L2 left 3.9× as many near-zero weights as L1" in text
    assert "L2 beats L1 in share of weights below 0.001 by 14.9 points" in text
    assert "This goes against the textbook expectation that L1 is the sparser one" in text
    assert "on every weight above 0.05" in text
    assert "L2, λ = 1e-3 beats L1, λ = 1e-4 in test accuracy by 10.0 points" in text
    assert "3 seeds" in text


def test_result_round_trips_through_json(tmp_path):
    r = make_result({"none": 1640, "l1": 1641, "l2": 1643}, {"none": [0.024], "l1": [0.576], "l2": [0.123]})
    save_result(tmp_path / "result.json", r)
    back = load_result(Result, tmp_path / "result.json")
    assert back.sparsity_comparison is None
    assert write_up(back) == write_up(r)
