"""1.4 manual backprop vs autograd: gradients agree, and the speed verdict follows the rule."""
from __future__ import annotations

import numpy as np

from experiments.s1_foundations.t1_4_backprop_vs_autograd import (Result, gradient_difference, torch_and_scratch_mlp,
                                                                  write_up)
from utils.report import compare_errors, compare_predictions
from utils.results import load_result, save_result


def test_manual_backprop_matches_autograd_in_float64(single_torch_thread):
    net, copy = torch_and_scratch_mlp((12, 9, 7, 4), seed=0, dtype=np.float64)
    rng = np.random.default_rng(0)
    grad_gap, loss_gap = gradient_difference(net, copy, rng.standard_normal((16, 12)), rng.integers(0, 4, 16))
    assert grad_gap < 1e-12 and loss_gap < 1e-12


def make_result(numpy_ms: float, torch_ms: float) -> Result:
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1.0, 100)
    ms = {"numpy": list(numpy_ms + noise + rng.normal(0, 0.1, 100)), "torch": list(torch_ms + noise)}
    right = np.arange(2000) < 1460
    return Result(dataset="fashion-mnist", sizes=[784, 256, 128, 10], steps=100, batch=64,
                  grad_diff={"float64": [2e-17, 4e-16], "float32": [1e-8, 1e-7]},
                  losses={"numpy": [2.3, 1.0], "torch": [2.3, 1.0 + 3e-7]}, ms=ms, matmul_ms=[1.5] * 100,
                  weight_gap=4e-7, test_examples=2000, test_accuracy={"numpy": 0.73, "torch": 0.73},
                  speed=compare_errors("NumPy", ms["numpy"], "PyTorch", ms["torch"], metric="time per step (ms)"),
                  accuracy=compare_predictions("NumPy", right, "PyTorch", right))


def test_equal_times_are_a_tie():
    text = " ".join(write_up(make_result(10.0, 10.0)).split())
    assert "No measurable difference in time per step" in text
    assert "was faster" not in text
    assert "No measurable difference between NumPy and PyTorch in test accuracy" in text
    assert "tolerance 1e-10: passed" in text


def test_a_clear_gap_names_the_faster_one():
    text = " ".join(write_up(make_result(10.0, 14.0)).split())
    assert "NumPy was faster per step" in text and "PyTorch's per-operation overhead" in text
    assert "2000 test examples" in text


def test_result_round_trips_through_json(tmp_path):
    r = make_result(10.0, 14.0)
    save_result(tmp_path / "result.json", r)
    assert write_up(load_result(Result, tmp_path / "result.json")) == write_up(r)
