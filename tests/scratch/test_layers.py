"""scratch.layers against torch in float64 (rtol 1e-10): forward values, input gradients,
parameter gradients and running statistics, on chosen edge cases and on a seeded sweep of
random shapes for every layer class (batch size 1 included); a 1 % error planted in any
layer's backward fails the comparison."""
import inspect
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from scratch import layers
from scratch.layers import (Activation, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout,
                            Flatten, Layer, LayerNorm, Linear, MaxPool2d)

SWEEP_DRAWS = 4  # draw 0 has batch size 1


# --------------------------------------------------------------------------- every layer, random shapes

def test_the_cases_cover_every_layer_class(layer_cases, layer_case):
    classes = {cls for cls in vars(layers).values()
               if isinstance(cls, type) and issubclass(cls, Layer) and cls.__module__ == layers.__name__
               and not inspect.isabstract(cls) and not cls.__name__.startswith("_")}
    covered = {type(layer_case(name, 0).layer) for name in layer_cases}
    # Activation(name) is the base of the named activation classes, which are all covered
    assert covered == classes - {Activation}
    assert len(covered) == 18


@pytest.mark.parametrize("draw", range(SWEEP_DRAWS))
def test_random_shapes_match_torch(case_name, draw, layer_case, torch_ref):
    case = layer_case(case_name, draw)
    if draw == 0:
        assert case.x.shape[0] == 1
    torch_ref.compare_case(case, np.random.default_rng(draw))


def test_a_one_percent_error_in_any_backward_fails_the_torch_comparison(planted, torch_ref):
    clean, mutated, target = planted
    gradients = torch_ref.compare_case(clean, np.random.default_rng(0))  # the real backward passes
    assert np.abs(gradients[target]).max() > 1e-3, "a zero gradient would hide the error"
    with pytest.raises(AssertionError, match=re.escape(f"[gradient {target}]")):
        torch_ref.compare_case(mutated, np.random.default_rng(0))


# --------------------------------------------------------------------------- linear

def test_linear_matches_torch(rng, torch_ref):
    torch.manual_seed(0)
    module = torch.nn.Linear(7, 4).double()
    layer = Linear.from_torch(module, dtype=np.float64)
    x = rng.standard_normal((5, 7))
    x_t = torch_ref.leaf(x)
    out_t = module(x_t)
    torch_ref.assert_close(layer.forward(x), out_t.detach().numpy())
    dout = rng.standard_normal(out_t.shape)
    dx_t, dw_t, db_t = torch_ref.vjp(out_t, dout, x_t, module.weight, module.bias)
    torch_ref.assert_close(layer.backward(dout), dx_t)
    torch_ref.assert_close(layer.grads["weight"], dw_t)
    torch_ref.assert_close(layer.grads["bias"], db_t)


def test_linear_default_init_matches_torch_bounds():
    layer = Linear(400, 50, rng=0)
    bound = 1 / np.sqrt(400)  # torch: kaiming_uniform_(a=√5) == U(±1/√fan_in)
    for param in layer.params.values():
        assert param.dtype == np.float32
        assert 0.9 * bound < np.abs(param).max() <= bound
    he = Linear(400, 50, init="he", rng=0).params["weight"]
    assert 0.9 * np.sqrt(6 / 400) < np.abs(he).max() <= np.sqrt(6 / 400)
    assert not Linear(4, 3, init="zeros").params["weight"].any()
    assert "bias" not in Linear(4, 3, bias=False).params
    with pytest.raises(ValueError, match="unknown init"):
        Linear(4, 3, init="bogus")


# --------------------------------------------------------------------------- conv

CONV_CASES = [
    # (input shape, out channels, kernel, stride, padding, bias)
    ((2, 3, 8, 8), 4, 3, 1, 0, True),
    ((2, 3, 9, 7), 5, 3, 2, 1, True),        # non-square, odd sizes, stride 2, padding 1
    ((3, 2, 10, 7), 3, (3, 2), 2, 2, True),  # non-square kernel
    ((1, 1, 7, 11), 2, 2, 3, 0, True),       # stride > kernel: some pixels are never read
    ((2, 4, 5, 6), 3, 5, 1, 2, True),        # "same" padding
    ((2, 3, 6, 5), 4, 3, 1, 1, False),       # no bias
    ((1, 3, 5, 4), 2, 1, 1, 0, True),        # 1×1 kernel, batch size 1
    ((2, 2, 6, 6), 3, 1, 2, 1, False),       # 1×1 kernel with padding: border outputs see only zeros
    ((1, 2, 5, 7), 3, (5, 7), 1, 0, True),   # kernel as large as the input: 1×1 output
    ((2, 2, 4, 3), 2, (6, 5), 1, 1, False),  # kernel as large as the padded input
    ((1, 1, 1, 1), 2, 1, 1, 0, True),        # a single pixel
]


@pytest.mark.parametrize("shape, out_channels, kernel, stride, padding, bias", CONV_CASES)
def test_conv2d_matches_torch(rng, torch_ref, shape, out_channels, kernel, stride, padding, bias):
    torch.manual_seed(1)
    module = torch.nn.Conv2d(shape[1], out_channels, kernel, stride=stride, padding=padding,
                             bias=bias).double()
    layer = Conv2d.from_torch(module, dtype=np.float64)
    assert set(layer.params) == ({"weight", "bias"} if bias else {"weight"})
    x = rng.standard_normal(shape)
    x_t = torch_ref.leaf(x)
    out_t = module(x_t)
    out = layer.forward(x)
    assert out.shape == tuple(out_t.shape)
    torch_ref.assert_close(out, out_t.detach().numpy())
    dout = rng.standard_normal(out.shape)
    expected = torch_ref.vjp(out_t, dout, x_t, *module.parameters())
    torch_ref.assert_close(layer.backward(dout), expected[0])
    for name, grad in zip(["weight", "bias"], expected[1:]):
        torch_ref.assert_close(layer.grads[name], grad)


def test_conv2d_float32_stays_float32(rng):
    layer = Conv2d(1, 8, 3, padding=1, rng=rng)
    x = rng.standard_normal((4, 1, 12, 12)).astype(np.float32)
    out = layer.forward(x)
    dx = layer.backward(np.ones_like(out))
    assert out.dtype == dx.dtype == layer.grads["weight"].dtype == np.float32
    reference = TF.conv2d(torch.from_numpy(x), torch.from_numpy(layer.params["weight"]),
                          torch.from_numpy(layer.params["bias"]), padding=1)
    np.testing.assert_allclose(out, reference.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("module", [torch.nn.Conv2d(2, 2, 3, dilation=2),
                                    torch.nn.Conv2d(2, 2, 3, groups=2),
                                    torch.nn.Conv2d(2, 2, 3, stride=(1, 2))])
def test_conv2d_from_torch_refuses_what_it_cannot_compute(module):
    with pytest.raises(ValueError):
        Conv2d.from_torch(module)


# --------------------------------------------------------------------------- pooling, flatten

POOL_CASES = [
    # (input shape, kernel, stride, padding)
    ((2, 3, 8, 8), 2, 2, 0),
    ((2, 3, 9, 7), 3, 2, 0),    # overlapping windows, non-square input
    ((2, 2, 7, 10), 3, 1, 1),   # stride 1 with padding
    ((1, 2, 11, 8), 2, 3, 0),   # stride > kernel, batch size 1
    ((2, 1, 6, 9), (2, 3), 2, 1),
    ((1, 2, 4, 5), (4, 5), 1, 0),  # window as large as the input
]


@pytest.mark.parametrize("pool, torch_pool", [(MaxPool2d, TF.max_pool2d), (AvgPool2d, TF.avg_pool2d)])
@pytest.mark.parametrize("shape, kernel, stride, padding", POOL_CASES)
def test_pooling_matches_torch(rng, torch_ref, pool, torch_pool, shape, kernel, stride, padding):
    x = rng.standard_normal(shape)
    x_t = torch_ref.leaf(x)
    out_t = torch_pool(x_t, kernel, stride, padding)
    layer = pool(kernel, stride, padding)
    torch_ref.assert_close(layer.forward(x), out_t.detach().numpy())
    dout = rng.standard_normal(out_t.shape)
    torch_ref.assert_close(layer.backward(dout), torch_ref.vjp(out_t, dout, x_t)[0])


def test_max_pool_ties_route_to_first_max_like_torch(rng, torch_ref):
    # many exact ties, overlapping windows: gradients must go where torch sends them
    x = rng.integers(0, 2, (2, 2, 7, 7)).astype(np.float64)
    x_t = torch_ref.leaf(x)
    out_t = TF.max_pool2d(x_t, 3, 2)
    layer = MaxPool2d(3, 2)
    np.testing.assert_array_equal(layer.forward(x), out_t.detach().numpy())
    dout = rng.standard_normal(out_t.shape)
    torch_ref.assert_close(layer.backward(dout), torch_ref.vjp(out_t, dout, x_t)[0])


def test_pool_default_stride_is_kernel(rng):
    x = rng.standard_normal((1, 1, 6, 6))
    assert MaxPool2d(2).forward(x).shape == (1, 1, 3, 3)
    assert AvgPool2d(3).forward(x).shape == (1, 1, 2, 2)


def test_flatten_roundtrip(rng):
    x = rng.standard_normal((3, 2, 4, 5))
    layer = Flatten()
    np.testing.assert_array_equal(layer.forward(x), x.reshape(3, 40))
    dout = rng.standard_normal((3, 40))
    np.testing.assert_array_equal(layer.backward(dout), dout.reshape(x.shape))


# --------------------------------------------------------------------------- normalisation

@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 5, 6)])
def test_batchnorm_train_and_eval_match_torch_over_several_batches(rng, torch_ref, shape):
    channels = shape[1]
    module = (torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d)(channels).double()
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(rng.standard_normal(channels)))
        module.bias.copy_(torch.from_numpy(rng.standard_normal(channels)))
    layer = (BatchNorm1d if len(shape) == 2 else BatchNorm2d).from_torch(module, dtype=np.float64)

    def compare(x):
        x_t = torch_ref.leaf(x)
        out_t = module(x_t)
        torch_ref.assert_close(layer.forward(x, training=module.training), out_t.detach().numpy())
        dout = rng.standard_normal(shape)
        dx_t, dw_t, db_t = torch_ref.vjp(out_t, dout, x_t, module.weight, module.bias)
        torch_ref.assert_close(layer.backward(dout), dx_t)
        torch_ref.assert_close(layer.grads["weight"], dw_t)
        torch_ref.assert_close(layer.grads["bias"], db_t)
        torch_ref.assert_close(layer.buffers["running_mean"], module.running_mean.numpy())
        torch_ref.assert_close(layer.buffers["running_var"], module.running_var.numpy())

    module.train()
    for step in range(3):  # running statistics accumulate over several batches
        compare(rng.standard_normal(shape) * (step + 1) + step)
    assert np.abs(layer.buffers["running_mean"]).min() > 0.05  # they really moved
    module.eval()
    running_before = layer.buffers["running_mean"].copy()
    compare(rng.standard_normal(shape))
    np.testing.assert_array_equal(layer.buffers["running_mean"], running_before)


@pytest.mark.parametrize("layer_cls, torch_cls, shape", [
    (BatchNorm1d, torch.nn.BatchNorm1d, (1, 4)),
    (BatchNorm1d, torch.nn.BatchNorm1d, (1, 4, 1)),
    (BatchNorm2d, torch.nn.BatchNorm2d, (1, 3, 1, 1)),
])
def test_batchnorm_with_one_value_per_channel_fails_like_torch(rng, layer_cls, torch_cls, shape):
    message = "Expected more than 1 value per channel when training"
    x = rng.standard_normal(shape)
    with pytest.raises(ValueError, match=message):
        torch_cls(shape[1]).double()(torch.from_numpy(x))
    layer = layer_cls(shape[1], dtype=np.float64)
    with pytest.raises(ValueError, match=message):
        layer.forward(x, training=True)
    np.testing.assert_array_equal(layer.buffers["running_mean"], 0)  # nothing was updated
    np.testing.assert_array_equal(layer.buffers["running_var"], 1)


def test_batchnorm_single_sample_in_eval_mode_and_with_spatial_values_matches_torch(rng, torch_ref):
    module = torch.nn.BatchNorm1d(4).double().eval()
    with torch.no_grad():
        module.running_mean.copy_(torch.from_numpy(rng.standard_normal(4)))
        module.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2, 4)))
    layer = BatchNorm1d.from_torch(module, dtype=np.float64)
    x = rng.standard_normal((1, 4))
    torch_ref.assert_close(layer.forward(x, training=False), module(torch.from_numpy(x)).detach().numpy())
    module2d = torch.nn.BatchNorm2d(3).double()            # N = 1 but H·W = 6 values per channel
    layer2d = BatchNorm2d.from_torch(module2d, dtype=np.float64)
    x = rng.standard_normal((1, 3, 2, 3))
    torch_ref.assert_close(layer2d.forward(x), module2d(torch.from_numpy(x)).detach().numpy())
    torch_ref.assert_close(layer2d.buffers["running_var"], module2d.running_var.numpy())


@pytest.mark.parametrize("shape, normalized_shape", [((6, 8), (8,)), ((2, 5, 3, 4), (3, 4)),
                                                     ((1, 5), (5,))])
def test_layernorm_matches_torch(rng, torch_ref, shape, normalized_shape):
    module = torch.nn.LayerNorm(normalized_shape).double()
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(rng.standard_normal(normalized_shape)))
        module.bias.copy_(torch.from_numpy(rng.standard_normal(normalized_shape)))
    layer = LayerNorm.from_torch(module, dtype=np.float64)
    x = rng.standard_normal(shape) * 3 + 1
    x_t = torch_ref.leaf(x)
    out_t = module(x_t)
    torch_ref.assert_close(layer.forward(x), out_t.detach().numpy())
    dout = rng.standard_normal(shape)
    dx_t, dw_t, db_t = torch_ref.vjp(out_t, dout, x_t, module.weight, module.bias)
    torch_ref.assert_close(layer.backward(dout), dx_t)
    torch_ref.assert_close(layer.grads["weight"], dw_t)
    torch_ref.assert_close(layer.grads["bias"], db_t)


# --------------------------------------------------------------------------- dropout

def test_dropout_is_inverted_and_reproducible():
    x = np.ones((200, 100))
    layer = Dropout(0.3, rng=7)
    out = layer.forward(x, training=True)
    kept = out != 0
    assert abs(1 - kept.mean() - 0.3) < 0.01
    np.testing.assert_allclose(out[kept], 1 / 0.7)      # survivors scaled by 1/(1-p)
    assert abs(out.mean() - 1) < 0.02                   # expectation preserved
    dout = np.arange(x.size, dtype=float).reshape(x.shape)
    np.testing.assert_allclose(layer.backward(dout), dout * kept / 0.7, rtol=1e-15)
    np.testing.assert_array_equal(Dropout(0.3, rng=7).forward(x), out)  # same seed, same mask
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    np.testing.assert_array_equal(layer.backward(dout), dout)
    assert not Dropout(1.0).forward(x).any()


def test_dropout_keeps_the_same_fraction_as_torch():
    torch.manual_seed(0)
    x = np.ones((100, 100))
    ours = Dropout(0.3, rng=0).forward(x)
    theirs = TF.dropout(torch.from_numpy(x), 0.3, training=True).numpy()
    assert set(np.unique(ours)) == set(np.unique(theirs)) == {0.0, 1 / 0.7}
    assert abs((ours == 0).mean() - (theirs == 0).mean()) < 0.02  # both ≈ 0.3 (binomial sd 0.005)
