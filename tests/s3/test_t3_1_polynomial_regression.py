"""3.1 polynomial regression: labels from the numbers, and a best degree only when the rule separates it."""
from __future__ import annotations

import numpy as np

from experiments.s3_regularization.t3_1_polynomial_regression import Result, write_up
from utils.report import compare_errors
from utils.results import load_result, save_result


def errors(mean: float, n: int = 500, seed: int = 0) -> np.ndarray:
    return np.abs(np.random.default_rng(seed).normal(mean, 0.01, n))


def make_result(test15: float) -> Result:
    """Degree 3 lowest; degree 1 clearly worse; degree 15 at ``test15`` (per-point errors around it)."""
    tr, te = {1: [0.18], 3: [0.03], 15: [0.007]}, {1: [0.26], 3: [0.070], 15: [test15]}
    e = {1: errors(0.26, seed=1), 3: errors(0.070, seed=3), 15: errors(test15, seed=3) + (test15 - 0.070)}
    against = {d: compare_errors("degree 3", e[3], f"degree {d}", e[d], metric="test MSE", block=25,
                                 unit="test points") for d in (1, 15)}
    x = np.linspace(0, 1, 20)
    return Result(degrees=[1, 3, 15], n_train=20, n_test=500, noise=0.25, seeds=[42], train_mse=tr, test_mse=te,
                  x_train=x, y_train=np.sin(2 * np.pi * x), x_grid=np.linspace(0, 1, 50),
                  fit_curves={d: np.zeros(50) for d in (1, 3, 15)}, curve_degrees=list(range(1, 16)),
                  curve_train_mse=list(np.linspace(0.2, 0.007, 15)), curve_test_mse=[0.26, 0.25] + [0.07] * 13,
                  lowest=3, against_lowest=against)


def test_a_clear_winner_is_the_well_fit_model():
    r = make_result(test15=5.0)
    assert r.tied == [3]
    text = " ".join(write_up(r).split())
    assert "Degree **3** has the lowest test MSE (0.0700; noise floor σ² = 0.0625)" in text
    assert "it is the well-fit model" in text
    assert "Degree 3 beats degree 15 in test MSE" in text and "Degree 3 beats degree 1 in test MSE" in text
    assert "Degree 1 is **under-fit**: even its training MSE (0.1800) is 2.9× the noise variance" in text
    assert "Degree 15 is **over-fit**" in text and "714× larger" in text
    assert "training MSE never rises with degree" in text


def test_a_tie_names_no_best_degree():
    r = make_result(test15=0.0700)   # degree 15 as good as degree 3 on the test points
    assert r.tied == [3, 15]
    assert r.label(3) == "lowest test MSE (tie)"
    text = " ".join(write_up(r).split())
    assert "the rule cannot separate it from degree 15: no single best degree is named" in text
    assert "No measurable difference between degree 3 and degree 15" in text
    assert "it is the well-fit model" not in text and "Degree **3**" not in text


def test_result_round_trips_through_json(tmp_path):
    r = make_result(test15=5.0)
    save_result(tmp_path / "result.json", r)
    back = load_result(Result, tmp_path / "result.json")
    assert write_up(back) == write_up(r)
    assert back.against_lowest[15].winner == "degree 3"
