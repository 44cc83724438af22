"""2.1 gradient checking: the whole-CNN check, and the analysis on passing and failing hand-built results."""
from __future__ import annotations

import numpy as np

import scratch
from experiments.s2_optimization.t2_1_gradient_checking import Result, composite_network_check, kind, write_up
from scratch.gradcheck import check_layer


def test_whole_cnn_gradient_check_is_far_below_the_bar():
    assert composite_network_check(seed=0) < 1e-8


def test_a_wrong_backward_pass_is_caught():
    class BrokenTanh(scratch.Tanh):
        def backward(self, dout):
            return 1.01 * super().backward(dout)      # a 1% error in the gradient

    x = np.random.default_rng(0).standard_normal((3, 4))
    assert max(check_layer(scratch.Tanh(), x, eps=3e-4, order=4, rng=0).values()) < 1e-9
    assert max(check_layer(BrokenTanh(), x, eps=3e-4, order=4, rng=0).values()) > 1e-3


def test_kind_names_each_family():
    assert kind("conv2d (stride 2, padding 1)") == "layer"
    assert kind("leaky_relu") == "activation" and kind("softplus") == "activation"
    assert kind("softmax_cross_entropy") == "loss" and kind("huber (delta 1)") == "loss"
    assert kind("rnn_sequence (BPTT, T=4)") == "recurrent" and kind("batchnorm2d (train)") == "normalisation"


def rows(*errors):
    return [{"name": name, "max_rel_error": e, "errors": {"x": e}, "input_shape": [2, 3]}
            for name, e in zip(["linear", "tanh", "rnn_step"], errors)]


def test_write_up_all_below_the_bar():
    text = write_up(Result(rows(1e-12, 3e-11, 2e-9), 1e-6, 3e-4, 1e-3, 4, float32_error=4e-3))
    assert "3 ops checked; worst relative error 2.0e-09 (rnn_step)" in text
    assert "All 3 are below the bar of 1e-06, the worst by a factor 500×" in text
    assert "fail" not in text and "| rnn_step | recurrent | (2, 3) | x 2.0e-09 | 2.0e-09 | yes |" in text
    assert "float32 Linear layer gives 4.0e-03, which is above the bar" in text


def test_write_up_names_the_op_that_fails():
    text = write_up(Result(rows(1e-12, 3e-5, 2e-9), 1e-6, 3e-4, 1e-3, 4, float32_error=4e-7))
    assert "**1 of 3 fail the bar of 1e-06: tanh**" in text
    assert "All 3 are below" not in text and "| 3.0e-05 | **no** |" in text
    assert "happens to pass the bar here" in text
