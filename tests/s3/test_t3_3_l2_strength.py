"""3.3 L2 strength: a best λ only through the rule; a tie with λ = 0 is reported as a tie."""
from __future__ import annotations

import numpy as np

from experiments.s3_regularization.t3_3_l2_strength import SMALL, Result, write_up
from utils.history import History
from utils.report import compare_predictions
from utils.results import load_result, save_result

LABELS = ["0", "1e-4", "1e-3", "1e-2"]
N_VAL, N_TEST = 1000, 2000


def right(k: int, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[:k] = True
    return out


def make_result(val_right: dict[str, int], test_right: dict[str, int] | None = None) -> Result:
    test_right = test_right or {k: 2 * v for k, v in val_right.items()}
    val = {k: right(v, N_VAL) for k, v in val_right.items()}
    test = {k: right(v, N_TEST) for k, v in test_right.items()}
    top = max(LABELS, key=lambda k: val_right[k])
    other = "0" if top != "0" else max((k for k in LABELS if k != "0"), key=lambda k: val_right[k])
    bins = np.logspace(-6, 0, 11)
    return Result(dataset="fashion-mnist", input_size=784, num_classes=10, train_examples=3000, val_examples=N_VAL,
                  test_examples=N_TEST, epochs=15, seeds=[42], labels=LABELS,
                  val_accuracy={k: [v / N_VAL] for k, v in val_right.items()},
                  train_accuracy={"0": [0.94], "1e-4": [0.933], "1e-3": [0.921], "1e-2": [0.857]},
                  test_accuracy={k: [v / N_TEST] for k, v in test_right.items()},
                  weight_l2_norm={"0": [23.2], "1e-4": [20.9], "1e-3": [13.6], "1e-2": [6.0]},
                  final_penalty={"0": [0.0], "1e-4": [0.044], "1e-3": [0.184], "1e-2": [0.356]},
                  histories={k: History(val_loss=[0.7, 0.5, 0.45]) for k in LABELS}, bins=bins,
                  histograms={k: np.ones(10, dtype=np.int64) for k in [*LABELS, "initial"]},
                  small_share={"0": 0.024, "1e-4": 0.052, "1e-3": 0.123, "1e-2": 0.392, "initial": 0.026}, top=top,
                  against_top={k: compare_predictions(f"λ = {top}", val[top], f"λ = {k}", val[k],
                                                      metric="validation accuracy", unit="validation images")
                               for k in LABELS if k != top},
                  test_comparison=compare_predictions(f"λ = {top}", test[top], f"λ = {other}", test[other]))


def test_a_tie_with_lambda_zero_names_no_best():
    r = make_result({"0": 840, "1e-4": 842, "1e-3": 838, "1e-2": 790})
    assert r.top == "1e-4" and set(r.tied) == {"1e-4", "0", "1e-3"}
    assert r.headline_comparison.verdict() == "λ = 1e-4 ≈ λ = 0 (tie)"
    text = " ".join(write_up(r).split())
    assert "**no best λ is named** — in particular, the penalty did not measurably beat no penalty." in text
    assert "Best λ" not in text
    assert "the gain is inside the noise, so this run neither confirms nor refutes it" in text
    assert "λ = 1e-4 beats λ = 1e-2 in validation accuracy by 5.2 points" in text
    assert "1000 validation images" in text and "2000 test images" in text
    assert f"share of weights below {SMALL:g} went 2.4% → 5.2% → 12.3% → 39.2%" in text


def test_a_clear_winner_is_the_best_lambda():
    r = make_result({"0": 800, "1e-4": 880, "1e-3": 820, "1e-2": 760})
    assert r.tied == ["1e-4"]
    text = " ".join(write_up(r).split())
    assert "**Best λ on validation: 1e-4** (88.0%): the rule separates it from every other λ." in text
    assert "λ = 1e-4 beats λ = 0 in validation accuracy by 8.0 points" in text
    assert "This supports the textbook expectation" in text
    assert "no best λ" not in text


def test_lambda_zero_on_top_against_the_textbook():
    r = make_result({"0": 900, "1e-4": 820, "1e-3": 810, "1e-2": 700})
    assert r.top == "0" and r.tied == ["0"]
    text = " ".join(write_up(r).split())
    assert "**Best λ on validation: 0**" in text
    assert "this run goes against it: λ = 1e-4 narrowed the train − validation gap only from 4.0 to 11.3 points" in text


def test_result_round_trips_through_json(tmp_path):
    r = make_result({"0": 840, "1e-4": 842, "1e-3": 838, "1e-2": 790})
    save_result(tmp_path / "result.json", r)
    back = load_result(Result, tmp_path / "result.json")
    assert write_up(back) == write_up(r)
    assert back.histograms["initial"].dtype == np.int64
