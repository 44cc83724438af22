"""1.5 loss functions: scratch losses match torch, robust fits resist outliers, and the write-up's verdicts."""
from __future__ import annotations

import numpy as np
import pytest

from experiments.s1_foundations.t1_5_loss_functions import (Curves, Result, losses_vs_torch, pointwise,
                                                            robust_line_fit, softmax_example, write_up)
from scratch import losses
from utils.report import compare_errors
from utils.results import load_result, save_result


def test_losses_match_torch():
    gaps = losses_vs_torch(np.linspace(-3, 3, 61))
    assert set(gaps) == {"mse", "mae", "huber", "bce", "bce_with_logits", "cross_entropy"}
    assert max(gaps.values()) < 1e-12


def test_pointwise_gives_per_element_values_and_gradients():
    err = np.array([-3.0, -0.5, 0.5, 3.0])
    values, grads = pointwise(losses.huber, err, np.zeros_like(err))
    np.testing.assert_allclose(values, [2.5, 0.125, 0.125, 2.5])
    np.testing.assert_allclose(grads, [-1.0, -0.5, 0.5, 1.0])
    values, grads = pointwise(losses.mse, err, np.zeros_like(err))
    np.testing.assert_allclose(values, err ** 2)
    np.testing.assert_allclose(grads, 2 * err)


def test_robust_line_fit_recovers_a_clean_line_and_resists_outliers():
    x = np.linspace(-1, 1, 50)
    a, b = robust_line_fit(x, 2 * x + 1, losses.mse)
    assert a == pytest.approx(2, abs=1e-3) and b == pytest.approx(1, abs=1e-3)
    y = 2 * x + 1
    y[::10] += 10                                              # 5 gross outliers
    _, b_mse = robust_line_fit(x, y, losses.mse)
    _, b_huber = robust_line_fit(x, y, losses.huber)
    assert b_mse == pytest.approx(2.0, abs=0.05)               # the mean shift: 5 × 10 / 50
    assert abs(b_huber - 1) < abs(b_mse - 1) / 2


def test_softmax_example():
    ex = softmax_example()
    assert sum(ex["softmax"]) == pytest.approx(1.0)
    assert ex["softmax_of_2x"][0] > ex["softmax"][0]
    assert ex["shift_invariance_gap"] < 1e-12
    assert ex["sigmoid_sum"] == pytest.approx(2.70, abs=0.01)


def make_result(shift: dict[str, float]) -> Result:
    """Clean test points and fits whose intercepts are off by ``shift``."""
    rng = np.random.default_rng(0)
    x_test = rng.uniform(-1, 1, 1000)
    y_test = 2 * x_test + 1 + rng.normal(0, 0.1, 1000)
    fits = {k: [2.0, 1.0 + s] for k, s in shift.items()}
    sq = {k: (a * x_test + b - y_test) ** 2 for k, (a, b) in fits.items()}
    robust = {f"{a} vs {b}": compare_errors(a, sq[a], b, sq[b], metric="squared error on clean points")
              for a, b in (("Huber", "MSE"), ("MAE", "MSE"), ("MAE", "Huber"))}
    x = np.linspace(-3, 3, 5)
    panel = Curves("Regression losses", "prediction − target", x, {k: x ** 2 for k in ("MSE", "MAE", "Huber")},
                   {"MSE": 2 * x, "MAE": np.sign(x), "Huber": np.clip(x, -1, 1)})
    return Result(torch_gap={"mse": 1e-17}, ce_check=1e-16, panels=[panel], fits=fits,
                  data={"x": x, "y": x, "outliers": np.array([0]), "x_test": x_test, "y_test": y_test}, robust=robust)


def test_equal_fits_are_a_tie():
    text = " ".join(write_up(make_result({"MSE": 0.0, "MAE": 0.0, "Huber": 0.0})).split())
    assert "No measurable difference between Huber and MSE" in text
    assert "beats" not in text
    assert "the rule confirms it for neither on these 1000 points" in text


def test_outlier_pulled_mse_loses():
    text = " ".join(write_up(make_result({"MSE": 1.0, "MAE": 0.0, "Huber": 0.1})).split())
    assert "Huber beats MSE in squared error on clean points" in text
    assert "MAE beats Huber" in text and "MAE also beat Huber" in text
    assert "so the outliers pull its line up" in text
    assert "| multi-class, one label | softmax (logits) | cross-entropy |" in text


def test_result_round_trips_through_json(tmp_path):
    r = make_result({"MSE": 1.0, "MAE": 0.0, "Huber": 0.1})
    save_result(tmp_path / "result.json", r)
    back = load_result(Result, tmp_path / "result.json")
    assert write_up(back) == write_up(r) and isinstance(back.panels[0], Curves)
