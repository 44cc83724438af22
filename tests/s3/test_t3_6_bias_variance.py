"""3.6 bias–variance: the U-shape and a best degree only through the rule; ties name a group, not a winner."""
from __future__ import annotations

import numpy as np

from experiments.s3_regularization.t3_6_bias_variance import PARTS, Pick, Result, write_up
from utils.report import compare_errors
from utils.results import load_result, save_result

DEGREES = [1, 2, 3, 4, 5, 6]
TEST_MSE = {1: 0.24, 2: 0.24, 3: 0.063, 4: 0.06301, 5: 0.07, 6: 1.2}


def errors(mean: float, seed: int) -> np.ndarray:
    return mean + np.random.default_rng(seed).normal(0, 0.002, 200)


def pick(lowest: int, test_mse: dict[int, float]) -> Pick:
    base = errors(test_mse[lowest], 0)
    return Pick(lowest, {d: compare_errors(f"degree {lowest}", base, f"degree {d}",
                                           base + (test_mse[d] - test_mse[lowest]) + errors(0, d) * 0.1,
                                           metric="expected test MSE", block=10, unit="test points")
                         for d in DEGREES if d != lowest})


def make_result(test_mse=TEST_MSE) -> Result:
    bias = np.array([0.2, 0.2, 0.005, 0.005, 5e-5, 6e-5])
    var = np.array([0.004, 0.006, 0.008, 0.01, 0.012, 1.1])
    noise = np.full(6, 0.0625)
    mse = np.array([test_mse[d] for d in DEGREES])
    parts = {"bias_squared": bias, "variance": var, "noise": noise, "test_mse": mse,
             "residual": mse - bias - var - noise}
    one_seed = {k: v[None, :].copy() for k, v in parts.items()}
    boot = {k: v.copy() for k, v in one_seed.items()}
    boot["variance"] = boot["variance"] * 3
    lowest = min(DEGREES, key=lambda d: test_mse[d])
    x = np.linspace(0, 1, 30)
    return Result(degrees=DEGREES, n_train=30, n_test=200, noise=0.25, n_models=200, seeds=[42], x=x,
                  y0=np.sin(2 * np.pi * x), x_test=np.linspace(0, 1, 200), boot=boot, fresh=one_seed,
                  single_train=np.linspace(0.27, 0.02, 6)[None, :], single_test=mse[None, :],
                  rank_deficient=np.array([0, 0, 0, 0, 0.1, 0.6]),
                  shown={d: np.zeros((3, 200)) for d in (1, lowest, 6)},
                  pick_boot=pick(lowest, test_mse), pick_fresh=pick(lowest, test_mse))


def test_neighbouring_degrees_tie_and_no_single_best_is_named():
    r = make_result()
    assert set(r.pick_fresh.tied(DEGREES)) == {3, 4}
    text = " ".join(write_up(r).split())
    assert "**Test error is U-shaped**" in text
    assert "the rule cannot separate it from degree(s) 4, so no single best degree is named" in text
    assert "Degree 3 beats degree 1 in expected test MSE" in text and "Degree 3 beats degree 6" in text
    assert "variance first exceeds bias² at degree 3" in text
    assert "200 test points" in text


def test_a_clear_minimum_is_named():
    r = make_result(TEST_MSE | {4: 0.09})
    assert r.pick_fresh.tied(DEGREES) == [3]
    text = " ".join(write_up(r).split())
    assert "the rule separates degree 3 from every other degree" in text
    assert "no single best degree" not in text
    assert "pointed to the same degree as the truth here" in text


def test_a_minimum_at_the_edge_is_not_a_u_shape():
    r = make_result({1: 0.05, 2: 0.06, 3: 0.07, 4: 0.08, 5: 0.09, 6: 1.2})
    text = " ".join(write_up(r).split())
    assert "not U-shaped by the rule in this run" in text


def test_result_round_trips_through_json(tmp_path):
    r = make_result()
    save_result(tmp_path / "result.json", r)
    back = load_result(Result, tmp_path / "result.json")
    assert isinstance(back.pick_fresh, Pick) and set(back.boot) == set(PARTS)
    assert write_up(back) == write_up(r)
