"""scratch.functional: the forward/backward pairs themselves (the layers wrap them) against
torch.nn.functional in float64, their caches, argument checks and dtype preservation."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from scratch import functional as F


def test_linear_without_bias_on_a_sequence_batch(rng, torch_ref):
    x, weight = rng.standard_normal((2, 3, 5)), rng.standard_normal((4, 5))  # (..., in) input
    out, cache = F.linear_forward(x, weight, None)
    assert isinstance(cache, F.LinearCache) and not cache.has_bias
    x_t, w_t = torch_ref.leaf(x), torch_ref.leaf(weight)
    out_t = TF.linear(x_t, w_t)
    torch_ref.assert_close(out, out_t.detach().numpy())
    dout = rng.standard_normal(out.shape)
    dx, dweight, dbias = F.linear_backward(dout, cache)
    dx_t, dw_t = torch_ref.vjp(out_t, dout, x_t, w_t)
    torch_ref.assert_close(dx, dx_t)
    torch_ref.assert_close(dweight, dw_t)
    assert dbias is None


def test_conv2d_cache_is_a_named_tuple_of_what_backward_needs(rng):
    x, weight = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 2))
    out, cache = F.conv2d_forward(x, weight, None, stride=2, padding=1)
    assert isinstance(cache, F.ConvCache)
    assert cache._fields == ("cols", "weight", "padded_shape", "stride", "padding", "has_bias")
    assert out.shape == (2, 4, 3, 3)                   # Ho = (6 + 2 - 3)//2 + 1, Wo = (5 + 2 - 2)//2 + 1
    assert cache.cols.shape == (2, 3 * 3 * 2, 3 * 3)                # (N, C·kh·kw, Ho·Wo)
    assert cache.padded_shape == (2, 3, 8, 7)
    assert (cache.stride, cache.padding, cache.has_bias) == (2, 1, False)
    assert cache.weight is weight
    assert F.conv2d_backward(np.ones_like(out), cache)[2] is None    # no bias, no bias gradient


def test_conv2d_rejects_channel_mismatch():
    with pytest.raises(ValueError, match="channels"):
        F.conv2d_forward(np.zeros((1, 2, 5, 5)), np.zeros((3, 1, 3, 3)), None)


def test_conv2d_rejects_a_kernel_larger_than_the_padded_input():
    with pytest.raises(ValueError, match="does not fit"):
        F.conv2d_forward(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 7, 3)), None, padding=1)


def test_max_pool_pads_with_minus_infinity_like_torch(rng, torch_ref):
    x = -np.abs(rng.standard_normal((1, 2, 5, 4))) - 1    # all negative: zero padding would win
    out, cache = F.max_pool2d_forward(x, 2, 2, padding=1)
    assert isinstance(cache, F.MaxPoolCache) and cache.kernel == (2, 2)
    torch_ref.assert_close(out, TF.max_pool2d(torch.from_numpy(x), 2, 2, 1).numpy())
    assert out.max() < -1


def test_avg_pool_counts_zero_padding_like_torch(rng, torch_ref):
    x = rng.standard_normal((1, 1, 4, 4)) + 5
    out, cache = F.avg_pool2d_forward(x, 3, 1, padding=1)
    assert isinstance(cache, F.AvgPoolCache)
    torch_ref.assert_close(out, TF.avg_pool2d(torch.from_numpy(x), 3, 1, 1).numpy())
    assert out[0, 0, 0, 0] == pytest.approx(x[0, 0, :2, :2].sum() / 9)  # corner: 4 pixels, 5 zeros


def test_dropout_functional_fixed_mask(rng):
    x = rng.standard_normal((3, 4))
    mask = rng.random((3, 4)) > 0.5
    out, cache = F.dropout_forward(x, 0.5, mask=mask)
    np.testing.assert_array_equal(out, x * mask * 2)
    np.testing.assert_array_equal(F.dropout_backward(np.ones_like(x), cache), mask * 2.0)


def test_dropout_identity_cases_and_bad_probabilities(rng):
    x = rng.standard_normal((3, 4))
    for p, training in [(0.5, False), (0.0, True)]:
        out, cache = F.dropout_forward(x, p, training)
        assert out is x and cache is None
        assert F.dropout_backward(x, cache) is x
    out, cache = F.dropout_forward(x, 1.0)
    assert not out.any() and not F.dropout_backward(np.ones_like(x), cache).any()
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match="dropout probability"):
            F.dropout_forward(x, p)


def test_batchnorm_without_running_statistics_matches_torch(rng, torch_ref):
    x, gamma, beta = rng.standard_normal((5, 3, 2)), rng.standard_normal(3), rng.standard_normal(3)
    out, cache = F.batchnorm_forward(x, gamma, beta, None, None, training=True)
    assert isinstance(cache, F.BatchNormCache) and cache.axes == (0, 2)
    x_t, g_t, b_t = torch_ref.leaf(x), torch_ref.leaf(gamma), torch_ref.leaf(beta)
    out_t = TF.batch_norm(x_t, None, None, g_t, b_t, training=True)
    torch_ref.assert_close(out, out_t.detach().numpy())
    dout = rng.standard_normal(x.shape)
    for ours, theirs in zip(F.batchnorm_backward(dout, cache), torch_ref.vjp(out_t, dout, x_t, g_t, b_t)):
        torch_ref.assert_close(ours, theirs)


def test_spatial_batchnorm_refuses_one_value_per_channel():
    ones = np.ones(2)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        F.spatial_batchnorm_forward(np.zeros((1, 2, 1, 1)), ones, ones, None, None)
    out, _ = F.spatial_batchnorm_forward(np.zeros((1, 2, 1, 1)), ones, ones, ones * 0, ones,
                                         training=False)               # eval mode is defined
    np.testing.assert_allclose(out, 1.0)


def test_layernorm_over_two_trailing_axes_matches_torch(rng, torch_ref):
    x, gamma, beta = rng.standard_normal((2, 3, 4)), rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    out, cache = F.layernorm_forward(x, gamma, beta)
    assert isinstance(cache, F.LayerNormCache) and cache.axes == (1, 2)
    x_t, g_t, b_t = torch_ref.leaf(x), torch_ref.leaf(gamma), torch_ref.leaf(beta)
    out_t = TF.layer_norm(x_t, (3, 4), g_t, b_t)
    torch_ref.assert_close(out, out_t.detach().numpy())
    dout = rng.standard_normal(x.shape)
    for ours, theirs in zip(F.layernorm_backward(dout, cache), torch_ref.vjp(out_t, dout, x_t, g_t, b_t)):
        torch_ref.assert_close(ours, theirs)


def test_every_op_keeps_float32(rng):
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    c3, c4, c6 = (np.ones(n, np.float32) for n in (3, 4, 6))
    ops = {
        "linear": (F.linear_forward, F.linear_backward, (x.reshape(2, -1), np.ones((4, 108), np.float32), c4)),
        "conv2d": (F.conv2d_forward, F.conv2d_backward, (x, np.ones((2, 3, 3, 3), np.float32), None, 1, 1)),
        "max_pool2d": (F.max_pool2d_forward, F.max_pool2d_backward, (x, 2, 2, 1)),
        "avg_pool2d": (F.avg_pool2d_forward, F.avg_pool2d_backward, (x, 3, 1, 1)),
        "flatten": (F.flatten_forward, F.flatten_backward, (x,)),
        "dropout": (F.dropout_forward, F.dropout_backward, (x, 0.5, True, np.random.default_rng(0))),
        "batchnorm": (F.spatial_batchnorm_forward, F.spatial_batchnorm_backward,
                      (x, c3, c3, c3 * 0, c3.copy())),
        "layernorm": (F.layernorm_forward, F.layernorm_backward, (x, c6, c6 * 0)),
    }
    for name, (forward, backward, args) in ops.items():
        out, cache = forward(*args)
        grads = backward(np.ones_like(out), cache)
        grads = grads if isinstance(grads, tuple) else (grads,)
        assert out.dtype == np.float32, name
        assert all(g.dtype == np.float32 for g in grads if g is not None), name
