"""2.7: the depth models, the gradient-norm probe, the residual block's gradients, and the write-up's
comparisons (a tie is called a tie, a clear win is named)."""
from __future__ import annotations

import numpy as np
import pytest

from experiments.s2_optimization.t2_7_gradient_flow import (ARCHITECTURES, Result, ResidualBlock, depth_model,
                                                            flow_phrase, headline_verdict, ratio, weight_grad_norms,
                                                            write_up)
from scratch.gradcheck import check_layer
from utils.history import History
from utils.report import compare_predictions


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_depth_model_has_depth_weight_matrices(arch):
    model = depth_model(arch, depth=6, width=16, seed=0)
    rng = np.random.default_rng(0)
    norms = weight_grad_norms(model, rng.standard_normal((32, 64)).astype(np.float32), rng.integers(0, 10, 32))
    assert len(norms) == 6 and all(np.isfinite(norms)) and min(norms) > 1e-8


def test_sigmoid_gradient_vanishes_and_residual_does_not():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((128, 64)).astype(np.float32), rng.integers(0, 10, 128)
    r = {arch: ratio(weight_grad_norms(depth_model(arch, depth=12, width=32, seed=0), x, y))
         for arch in ("sigmoid", "ReLU + residual")}
    assert r["sigmoid"] < 1e-4 < 1e-2 < r["ReLU + residual"] < 10


def test_residual_block_gradients():
    block = ResidualBlock(6, activation="tanh", init="xavier_normal", rng=0, dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((4, 6))
    errors = check_layer(block, x, eps=1e-3, order=4, rng=0)
    assert set(errors) == {"x", "weight", "bias"}
    assert max(errors.values()) < 1e-8


def _paired(n, a_right, b_start, b_right):
    a = np.zeros(n, bool)
    a[:a_right] = True
    b = np.zeros(n, bool)
    b[b_start:b_start + b_right] = True
    return a, b


def _result(residual_vs_sigmoid):
    depths = [2, 6]
    norms = {a: {str(d): {"init": list(np.geomspace(10.0 ** (1 - d) if a == "sigmoid" else 0.5, 1.0, d)),
                          "trained": list(np.geomspace(1e-7 if a == "sigmoid" else 0.05, 0.1, d))} for d in depths}
             for a in ARCHITECTURES}
    acc = {a: {str(d): [0.9] for d in depths} for a in ARCHITECTURES}
    status = {a: {str(d): "done" for d in depths} for a in ARCHITECTURES}
    deepest = {a: History(train_loss=[2.3, 1.0, 0.5]) for a in ARCHITECTURES}
    name_r, name_s = "ReLU + residual depth 6", "sigmoid depth 6"
    comparisons = {f"{name_r} vs {name_s}": compare_predictions(name_r, residual_vs_sigmoid[0], name_s,
                                                                residual_vs_sigmoid[1])}
    return Result(depths, 16, 3, 0.05, [0], 64, 360, norms, acc, status, deepest, comparisons)


def test_write_up_calls_a_small_gap_a_tie():
    r = _result(_paired(360, 330, 20, 328))      # 20 vs 18 discordant images: no evidence
    text, verdict = write_up(r), headline_verdict(r)
    assert "No measurable difference between ReLU + residual depth 6 and sigmoid depth 6" in text
    assert "(tie)" in verdict and "beats" not in verdict
    assert "360 test digits" in text


def test_write_up_names_a_clear_winner():
    r = _result(_paired(360, 340, 40, 40))       # 340 vs 40 right
    text, verdict = write_up(r), headline_verdict(r)
    assert "ReLU + residual depth 6 beats sigmoid depth 6" in text
    assert verdict == "ReLU + residual depth 6 beats sigmoid depth 6"
    assert "a factor 1e+04 smaller" in text       # sigmoid ratio 0.1 at depth 2, 1e-5 at depth 6


def test_flow_phrase_reports_the_measured_ratios():
    r = _result(_paired(360, 340, 40, 40))
    assert flow_phrase(r) == "depth 6: first/last-layer gradient 1e-05 (sigmoid) vs 0.5 (ReLU) at init"
