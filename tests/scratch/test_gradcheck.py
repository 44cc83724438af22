"""scratch.gradcheck: the finite-difference checker itself, every op of the package below 1e-8,
every layer class passing it on random shapes, and a 1 % error planted in any gradient of
any layer's backward making the check fail."""
import re

import numpy as np
import pytest

from scratch import activations as act
from scratch.gradcheck import check_all_layers, check_layer, numerical_gradient, relative_error
from scratch.layers import Conv2d, Dropout

THRESHOLD = 1e-8  # what "the gradient is right" means in these tests (float64, 4th-order stencil)


def assert_gradients_match_finite_differences(case):
    """The check the mutation test must see fail: every gradient of the layer within THRESHOLD."""
    errors = check_layer(case.layer, case.x, rng=0, eps=3e-4, order=4, training=case.training)
    assert set(errors) == {"x", *case.layer.params}
    worst = {name: error for name, error in errors.items() if not error < THRESHOLD}
    assert not worst, f"gradients off: {worst}"


@pytest.mark.parametrize("draw", [0, 1])  # draw 0: batch size 1
def test_every_layer_passes_finite_differences(case_name, draw, layer_case):
    assert_gradients_match_finite_differences(layer_case(case_name, draw))


def test_a_one_percent_error_in_any_backward_fails_finite_differences(planted):
    clean, mutated, target = planted
    assert_gradients_match_finite_differences(clean)
    with pytest.raises(AssertionError, match=re.escape(f"gradients off: {{'{target}': ")):
        assert_gradients_match_finite_differences(mutated)


def test_check_all_layers_everything_below_1e_minus_8():
    results = check_all_layers(np.random.default_rng(0))
    names = [r["name"] for r in results]
    assert names == ["linear", "conv2d (stride 2, padding 1)", "maxpool2d (k3, s2)",
                     "avgpool2d (k3, s2, p1)", *act.ACTIVATIONS, "softmax_cross_entropy", "bce",
                     "bce_with_logits", "mse", "mae", "huber (delta 1)", "rnn_step",
                     "rnn_sequence (BPTT, T=4)", "batchnorm1d (train)", "batchnorm2d (train)",
                     "layernorm", "dropout (p 0.4, fixed mask)"]
    worst = {r["name"]: r["max_rel_error"] for r in results if not r["max_rel_error"] < THRESHOLD}
    assert not worst, worst
    assert all(r["max_rel_error"] == max(r["errors"].values()) for r in results)


def test_gradcheck_detects_a_wrong_gradient(rng):
    x = np.abs(rng.standard_normal((3, 4))) + 0.1

    def wrong_backward(dout, cache):
        return act.relu_backward(dout, cache) * 1.01  # 1 % off

    assert check_layer(act.relu_forward, {"x": x}, act.relu_backward, rng=rng)["x"] < 1e-9
    assert check_layer(act.relu_forward, {"x": x}, wrong_backward, rng=rng)["x"] > 4e-3  # 0.01/2.01


def test_conv2d_finite_differences_stride2_padding1(rng):
    layer = Conv2d(2, 3, 3, stride=2, padding=1, rng=rng, dtype=np.float64)
    errors = check_layer(layer, rng.standard_normal((2, 2, 5, 8)), rng=rng, eps=1e-5)
    assert set(errors) == {"x", "weight", "bias"}
    assert max(errors.values()) < 1e-7, errors


def test_numerical_gradient_and_relative_error_basics():
    x = np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(numerical_gradient(lambda v: np.sum(v ** 3), x), 3 * x ** 2, rtol=1e-8)
    np.testing.assert_allclose(numerical_gradient(lambda v: np.sum(v ** 3), x, eps=1e-3, order=4),
                               3 * x ** 2, rtol=1e-12)
    np.testing.assert_array_equal(x, [1.0, -2.0, 3.0])  # restored
    dout = np.array([2.0, 0.5])  # array output: the gradient of Σ f(x)·dout
    np.testing.assert_allclose(numerical_gradient(lambda v: v[:2] * v[2], x, dout=dout),
                               [6.0, 1.5, 2 * 1 - 0.5 * 2], rtol=1e-8)
    with pytest.raises(ValueError):
        numerical_gradient(lambda v: v.sum(), x, order=3)
    assert relative_error(np.array([1.0, 0.0]), np.array([1.0, 0.0])) == 0
    assert relative_error(np.array([1.0]), np.array([3.0])) == pytest.approx(0.5)


def test_dropout_layer_gradcheck_replays_its_mask(rng):
    errors = check_layer(Dropout(0.5, rng=3), rng.standard_normal((4, 5)), rng=rng)
    assert errors["x"] < THRESHOLD
