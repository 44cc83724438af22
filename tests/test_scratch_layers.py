"""Scratch layers vs PyTorch autograd (forward values, input and parameter gradients)
and vs finite differences, all in float64."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from scratch import activations as act
from scratch import functional as F
from scratch import losses
from scratch.gradcheck import check_all_layers, check_layer, numerical_gradient, relative_error
from scratch.layers import (RNN, Activation, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout,
                            Flatten, LayerNorm, Linear, MaxPool2d)
from scratch.rnn import rnn_step_backward, rnn_step_forward

TOL = dict(rtol=1e-10, atol=1e-12)


pytestmark = pytest.mark.usefixtures("single_torch_thread")


def tensor(array, grad=True):
    return torch.tensor(array, dtype=torch.float64, requires_grad=grad)


def torch_grads(out, dout, *tensors):
    """Vector-Jacobian products d<out, dout>/d tensor, via autograd."""
    return [g.numpy() for g in torch.autograd.grad(out, tensors, torch.from_numpy(dout))]


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# --------------------------------------------------------------------------- linear / conv

def test_linear_matches_torch(rng):
    torch.manual_seed(0)
    module = torch.nn.Linear(7, 4).double()
    layer = Linear.from_torch(module, dtype=np.float64)
    x = rng.standard_normal((5, 7))
    x_t = tensor(x)
    out_t = module(x_t)
    out = layer.forward(x)
    np.testing.assert_allclose(out, out_t.detach().numpy(), **TOL)
    dout = rng.standard_normal(out.shape)
    dx_t, dw_t, db_t = torch_grads(out_t, dout, x_t, module.weight, module.bias)
    np.testing.assert_allclose(layer.backward(dout), dx_t, **TOL)
    np.testing.assert_allclose(layer.grads["weight"], dw_t, **TOL)
    np.testing.assert_allclose(layer.grads["bias"], db_t, **TOL)


def test_linear_default_init_matches_torch_bounds():
    layer = Linear(400, 50, rng=0)
    bound = 1 / np.sqrt(400)  # torch: kaiming_uniform_(a=√5) == U(±1/√fan_in)
    for param in layer.params.values():
        assert param.dtype == np.float32
        assert np.abs(param).max() <= bound
        assert np.abs(param).max() > 0.9 * bound
    he = Linear(400, 50, init="he", rng=0).params["weight"]
    assert np.abs(he).max() > 0.9 * np.sqrt(6 / 400)
    assert not Linear(4, 3, init="zeros").params["weight"].any()
    with pytest.raises(ValueError):
        Linear(4, 3, init="bogus")


CONV_CASES = [
    # (input shape, out channels, kernel, stride, padding)
    ((2, 3, 8, 8), 4, 3, 1, 0),
    ((2, 3, 9, 7), 5, 3, 2, 1),        # non-square, odd sizes, stride 2, padding 1
    ((3, 2, 10, 7), 3, (3, 2), 2, 2),  # non-square kernel
    ((1, 1, 7, 11), 2, 2, 3, 0),       # stride > kernel: some pixels are never read
    ((2, 4, 5, 6), 3, 5, 1, 2),        # "same" padding
]


@pytest.mark.parametrize("shape, out_channels, kernel, stride, padding", CONV_CASES)
def test_conv2d_matches_torch(rng, shape, out_channels, kernel, stride, padding):
    torch.manual_seed(1)
    module = torch.nn.Conv2d(shape[1], out_channels, kernel, stride=stride, padding=padding).double()
    layer = Conv2d.from_torch(module, dtype=np.float64)
    x = rng.standard_normal(shape)
    x_t = tensor(x)
    out_t = module(x_t)
    out = layer.forward(x)
    assert out.shape == tuple(out_t.shape)
    np.testing.assert_allclose(out, out_t.detach().numpy(), **TOL)
    dout = rng.standard_normal(out.shape)
    dx_t, dw_t, db_t = torch_grads(out_t, dout, x_t, module.weight, module.bias)
    np.testing.assert_allclose(layer.backward(dout), dx_t, **TOL)
    np.testing.assert_allclose(layer.grads["weight"], dw_t, **TOL)
    np.testing.assert_allclose(layer.grads["bias"], db_t, **TOL)


def test_conv2d_finite_differences_stride2_padding1(rng):
    layer = Conv2d(2, 3, 3, stride=2, padding=1, rng=rng, dtype=np.float64)
    errors = check_layer(layer, rng.standard_normal((2, 2, 5, 8)), rng=rng, eps=1e-5)
    assert set(errors) == {"x", "weight", "bias"}
    assert max(errors.values()) < 1e-7, errors


def test_conv2d_float32_stays_float32(rng):
    layer = Conv2d(1, 8, 3, padding=1, rng=rng)
    x = rng.standard_normal((4, 1, 12, 12)).astype(np.float32)
    out = layer.forward(x)
    dx = layer.backward(np.ones_like(out))
    assert out.dtype == dx.dtype == layer.grads["weight"].dtype == np.float32
    reference = TF.conv2d(torch.from_numpy(x), torch.from_numpy(layer.params["weight"]),
                          torch.from_numpy(layer.params["bias"]), padding=1)
    np.testing.assert_allclose(out, reference.numpy(), rtol=1e-5, atol=1e-5)


def test_conv2d_rejects_channel_mismatch(rng):
    with pytest.raises(ValueError):
        F.conv2d_forward(np.zeros((1, 2, 5, 5)), np.zeros((3, 1, 3, 3)), None)


# --------------------------------------------------------------------------- pooling

POOL_CASES = [
    # (input shape, kernel, stride, padding)
    ((2, 3, 8, 8), 2, 2, 0),
    ((2, 3, 9, 7), 3, 2, 0),    # overlapping windows, non-square input
    ((2, 2, 7, 10), 3, 1, 1),   # stride 1 with padding
    ((1, 2, 11, 8), 2, 3, 0),   # stride > kernel
    ((2, 1, 6, 9), (2, 3), 2, 1),
]


@pytest.mark.parametrize("shape, kernel, stride, padding", POOL_CASES)
def test_max_pool_matches_torch(rng, shape, kernel, stride, padding):
    x = rng.standard_normal(shape)
    x_t = tensor(x)
    out_t = TF.max_pool2d(x_t, kernel, stride, padding)
    layer = MaxPool2d(kernel, stride, padding)
    out = layer.forward(x)
    np.testing.assert_array_equal(out, out_t.detach().numpy())
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(layer.backward(dout), torch_grads(out_t, dout, x_t)[0], **TOL)


def test_max_pool_ties_route_to_first_max_like_torch(rng):
    # many exact ties, overlapping windows: gradients must go where torch sends them
    x = rng.integers(0, 2, (2, 2, 7, 7)).astype(np.float64)
    x_t = tensor(x)
    out_t = TF.max_pool2d(x_t, 3, 2)
    layer = MaxPool2d(3, 2)
    np.testing.assert_array_equal(layer.forward(x), out_t.detach().numpy())
    dout = rng.standard_normal(out_t.shape)
    np.testing.assert_allclose(layer.backward(dout), torch_grads(out_t, dout, x_t)[0], **TOL)


@pytest.mark.parametrize("shape, kernel, stride, padding", POOL_CASES)
def test_avg_pool_matches_torch(rng, shape, kernel, stride, padding):
    x = rng.standard_normal(shape)
    x_t = tensor(x)
    out_t = TF.avg_pool2d(x_t, kernel, stride, padding)
    layer = AvgPool2d(kernel, stride, padding)
    out = layer.forward(x)
    np.testing.assert_allclose(out, out_t.detach().numpy(), **TOL)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(layer.backward(dout), torch_grads(out_t, dout, x_t)[0], **TOL)


def test_pool_default_stride_is_kernel(rng):
    x = rng.standard_normal((1, 1, 6, 6))
    assert MaxPool2d(2).forward(x).shape == (1, 1, 3, 3)
    assert AvgPool2d(3).forward(x).shape == (1, 1, 2, 2)


def test_flatten_roundtrip(rng):
    x = rng.standard_normal((3, 2, 4, 5))
    layer = Flatten()
    assert layer.forward(x).shape == (3, 40)
    dout = rng.standard_normal((3, 40))
    np.testing.assert_array_equal(layer.backward(dout), dout.reshape(x.shape))


# --------------------------------------------------------------------------- activations

TORCH_ACTIVATIONS = {
    "sigmoid": ({}, torch.sigmoid),
    "tanh": ({}, torch.tanh),
    "relu": ({}, TF.relu),
    "leaky_relu": ({"negative_slope": 0.2}, lambda t: TF.leaky_relu(t, 0.2)),
    "elu": ({"alpha": 1.5}, lambda t: TF.elu(t, 1.5)),
    "gelu": ({}, TF.gelu),
    "softplus": ({"beta": 2.0, "threshold": 10.0}, lambda t: TF.softplus(t, 2.0, 10.0)),
    "silu": ({}, TF.silu),
}


@pytest.mark.parametrize("name", list(act.ACTIVATIONS))
def test_activation_matches_torch(rng, name):
    kwargs, torch_fn = TORCH_ACTIVATIONS[name]
    # wide range incl. saturation (|x| = 40) and softplus's threshold region
    x = np.concatenate([rng.standard_normal(50) * 3, np.linspace(-40, 40, 81), [0.0]])
    x_t = tensor(x)
    out_t = torch_fn(x_t)
    fn, grad_fn = act.ACTIVATIONS[name]
    np.testing.assert_allclose(fn(x, **kwargs), out_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    derivative_t = torch_grads(out_t, np.ones_like(x), x_t)[0]
    np.testing.assert_allclose(grad_fn(x, **kwargs), derivative_t, rtol=1e-12, atol=1e-14)
    layer = Activation(name, **kwargs)
    layer.forward(x)
    dout = rng.standard_normal(x.shape)
    np.testing.assert_allclose(layer.backward(dout), dout * derivative_t, rtol=1e-12, atol=1e-14)


def test_named_activation_functions_exist():
    for name in act.ACTIVATIONS:
        out, cache = getattr(act, f"{name}_forward")(np.array([0.5, -1.0]))
        dx = getattr(act, f"{name}_backward")(np.ones(2), cache)
        np.testing.assert_allclose(dx, getattr(act, f"{name}_grad")(np.array([0.5, -1.0])))


def test_activations_keep_float32():
    x = np.linspace(-3, 3, 7, dtype=np.float32)
    for fn, grad_fn in act.ACTIVATIONS.values():
        assert fn(x).dtype == np.float32
        assert grad_fn(x).dtype == np.float32


# --------------------------------------------------------------------------- losses

def _compare_loss(loss_fn, torch_fn, pred, target, target_t=None, **kwargs):
    pred_t = tensor(pred)
    target_t = torch.tensor(target) if target_t is None else target_t
    loss_t = torch_fn(pred_t, target_t)
    loss, dpred = loss_fn(pred, target, **kwargs)
    np.testing.assert_allclose(loss, loss_t.item(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dpred, torch_grads(loss_t, np.array(1.0), pred_t)[0],
                               rtol=1e-10, atol=1e-14)


def test_softmax_cross_entropy_matches_torch(rng):
    logits, labels = rng.standard_normal((6, 5)) * 3, rng.integers(0, 5, 6)
    _compare_loss(losses.softmax_cross_entropy, TF.cross_entropy, logits, labels)


def test_softmax_cross_entropy_is_stable():
    logits = np.array([[1000.0, 0.0, -1000.0], [-1000.0, 1000.0, 0.0]])
    loss, dlogits = losses.softmax_cross_entropy(logits, np.array([2, 1]))
    assert np.isfinite(loss) and np.all(np.isfinite(dlogits))
    np.testing.assert_allclose(loss, 1000.0)  # (2000 + 0) / 2
    np.testing.assert_allclose(dlogits.sum(axis=1), 0, atol=1e-15)


def test_bce_matches_torch(rng):
    probs, targets = rng.uniform(0.01, 0.99, (4, 3)), rng.uniform(0, 1, (4, 3))
    _compare_loss(losses.bce, TF.binary_cross_entropy, probs, targets)
    # torch clamps log at -100: p = 0 or 1 stays finite
    probs = np.array([0.0, 1.0, 0.5])
    targets = np.array([1.0, 0.0, 1.0])
    _compare_loss(losses.bce, TF.binary_cross_entropy, probs, targets)


def test_bce_with_logits_matches_torch_and_is_stable(rng):
    logits, targets = rng.standard_normal((5, 2)) * 4, rng.integers(0, 2, (5, 2)).astype(float)
    _compare_loss(losses.bce_with_logits, TF.binary_cross_entropy_with_logits, logits, targets)
    extreme = np.array([800.0, -800.0, 0.0])
    _compare_loss(losses.bce_with_logits, TF.binary_cross_entropy_with_logits, extreme,
                  np.array([0.0, 1.0, 1.0]))


def test_regression_losses_match_torch(rng):
    pred, target = rng.standard_normal((5, 3)) * 2, rng.standard_normal((5, 3))
    _compare_loss(losses.mse, TF.mse_loss, pred, target)
    _compare_loss(losses.mae, TF.l1_loss, pred, target)
    for delta in (0.5, 1.0, 2.0):
        _compare_loss(losses.huber, lambda p, t: TF.huber_loss(p, t, delta=delta), pred, target,
                      delta=delta)


def test_mae_gradient_is_zero_at_ties_like_torch():
    target = np.array([1.0, 2.0])
    _compare_loss(losses.mae, TF.l1_loss, target.copy(), target)


# --------------------------------------------------------------------------- normalisation

@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 5, 6)])
def test_batchnorm_train_and_eval_match_torch(rng, shape):
    channels = shape[1]
    module = (torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d)(channels).double()
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(rng.standard_normal(channels)))
        module.bias.copy_(torch.from_numpy(rng.standard_normal(channels)))
    layer = (BatchNorm1d if len(shape) == 2 else BatchNorm2d).from_torch(module, dtype=np.float64)
    module.train()
    for step in range(3):  # running statistics accumulate over several batches
        x = rng.standard_normal(shape) * (step + 1) + step
        x_t = tensor(x)
        out_t = module(x_t)
        out = layer.forward(x, training=True)
        np.testing.assert_allclose(out, out_t.detach().numpy(), **TOL)
        dout = rng.standard_normal(shape)
        dx_t, dw_t, db_t = torch_grads(out_t, dout, x_t, module.weight, module.bias)
        np.testing.assert_allclose(layer.backward(dout), dx_t, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(layer.grads["weight"], dw_t, **TOL)
        np.testing.assert_allclose(layer.grads["bias"], db_t, **TOL)
    np.testing.assert_allclose(layer.buffers["running_mean"], module.running_mean.numpy(), **TOL)
    np.testing.assert_allclose(layer.buffers["running_var"], module.running_var.numpy(), **TOL)

    module.eval()
    x = rng.standard_normal(shape)
    x_t = tensor(x)
    out_t = module(x_t)
    running_before = layer.buffers["running_mean"].copy()
    out = layer.forward(x, training=False)
    np.testing.assert_array_equal(layer.buffers["running_mean"], running_before)
    np.testing.assert_allclose(out, out_t.detach().numpy(), **TOL)
    dout = rng.standard_normal(shape)
    dx_t, dw_t, db_t = torch_grads(out_t, dout, x_t, module.weight, module.bias)
    np.testing.assert_allclose(layer.backward(dout), dx_t, **TOL)
    np.testing.assert_allclose(layer.grads["weight"], dw_t, **TOL)
    np.testing.assert_allclose(layer.grads["bias"], db_t, **TOL)


@pytest.mark.parametrize("shape, normalized_shape", [((6, 8), (8,)), ((2, 5, 3, 4), (3, 4))])
def test_layernorm_matches_torch(rng, shape, normalized_shape):
    module = torch.nn.LayerNorm(normalized_shape).double()
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(rng.standard_normal(normalized_shape)))
        module.bias.copy_(torch.from_numpy(rng.standard_normal(normalized_shape)))
    layer = LayerNorm.from_torch(module, dtype=np.float64)
    x = rng.standard_normal(shape) * 3 + 1
    x_t = tensor(x)
    out_t = module(x_t)
    np.testing.assert_allclose(layer.forward(x), out_t.detach().numpy(), **TOL)
    dout = rng.standard_normal(shape)
    dx_t, dw_t, db_t = torch_grads(out_t, dout, x_t, module.weight, module.bias)
    np.testing.assert_allclose(layer.backward(dout), dx_t, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(layer.grads["weight"], dw_t, **TOL)
    np.testing.assert_allclose(layer.grads["bias"], db_t, **TOL)


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


def test_dropout_functional_fixed_mask(rng):
    x = rng.standard_normal((3, 4))
    mask = rng.random((3, 4)) > 0.5
    out, cache = F.dropout_forward(x, 0.5, mask=mask)
    np.testing.assert_allclose(out, x * mask * 2)
    np.testing.assert_allclose(F.dropout_backward(np.ones_like(x), cache), mask * 2.0)


# --------------------------------------------------------------------------- RNN

def test_rnn_sequence_matches_torch(rng):
    torch.manual_seed(2)
    module = torch.nn.RNN(4, 6, nonlinearity="tanh", batch_first=True).double()
    layer = RNN.from_torch(module, dtype=np.float64)
    x = rng.standard_normal((3, 5, 4))
    x_t = tensor(x)
    out_t, h_last_t = module(x_t)
    out = layer.forward(x)
    np.testing.assert_allclose(out, out_t.detach().numpy(), **TOL)
    np.testing.assert_allclose(out[:, -1], h_last_t[0].detach().numpy(), **TOL)
    dout = rng.standard_normal(out.shape)
    dx_t, dwih_t, dwhh_t, dbih_t, dbhh_t = torch_grads(
        out_t, dout, x_t, module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0,
        module.bias_hh_l0)
    np.testing.assert_allclose(layer.backward(dout), dx_t, **TOL)
    np.testing.assert_allclose(layer.grads["W_xh"], dwih_t.T, **TOL)
    np.testing.assert_allclose(layer.grads["W_hh"], dwhh_t.T, **TOL)
    np.testing.assert_allclose(layer.grads["b"], dbih_t, **TOL)
    np.testing.assert_allclose(dbih_t, dbhh_t, **TOL)  # both torch biases get the same gradient


def test_rnn_last_state_only(rng):
    torch.manual_seed(3)
    module = torch.nn.RNN(3, 4, batch_first=True).double()
    layer = RNN.from_torch(module, return_sequences=False, dtype=np.float64)
    x = rng.standard_normal((2, 6, 3))
    x_t = tensor(x)
    _, h_last_t = module(x_t)
    out = layer.forward(x)
    np.testing.assert_allclose(out, h_last_t[0].detach().numpy(), **TOL)
    dout = rng.standard_normal(out.shape)
    dx_t, dwhh_t = torch_grads(h_last_t[0], dout, x_t, module.weight_hh_l0)
    np.testing.assert_allclose(layer.backward(dout), dx_t, **TOL)
    np.testing.assert_allclose(layer.grads["W_hh"], dwhh_t.T, **TOL)


def test_rnn_step_matches_torch_cell(rng):
    x, h = rng.standard_normal((3, 4)), rng.standard_normal((3, 5))
    W_xh, W_hh, b = rng.standard_normal((4, 5)), rng.standard_normal((5, 5)), rng.standard_normal(5)
    tensors = [tensor(a) for a in (x, h, W_xh, W_hh, b)]
    out_t = torch.tanh(tensors[0] @ tensors[2] + tensors[1] @ tensors[3] + tensors[4])
    out, cache = rnn_step_forward(x, h, W_xh, W_hh, b)
    np.testing.assert_allclose(out, out_t.detach().numpy(), **TOL)
    dout = rng.standard_normal(out.shape)
    for ours, theirs in zip(rnn_step_backward(dout, cache), torch_grads(out_t, dout, *tensors)):
        np.testing.assert_allclose(ours, theirs, **TOL)


# --------------------------------------------------------------------------- gradient checker

def test_check_all_layers_everything_below_1e_minus_8():
    results = check_all_layers(np.random.default_rng(0))
    names = {r["name"] for r in results}
    for expected in ["linear", "conv2d (stride 2, padding 1)", "maxpool2d (k3, s2)",
                     "avgpool2d (k3, s2, p1)", *act.ACTIVATIONS, "softmax_cross_entropy", "bce",
                     "bce_with_logits", "mse", "mae", "huber (delta 1)", "rnn_step",
                     "batchnorm1d (train)", "batchnorm2d (train)", "layernorm",
                     "dropout (p 0.4, fixed mask)"]:
        assert expected in names
    worst = {r["name"]: r["max_rel_error"] for r in results if r["max_rel_error"] >= 1e-8}
    assert not worst, worst


def test_gradcheck_detects_a_wrong_gradient(rng):
    x = rng.standard_normal((3, 4))

    def wrong_backward(dout, cache):
        return act.relu_backward(dout, cache) * 1.01  # 1 % off

    errors = check_layer(act.relu_forward, {"x": np.abs(x) + 0.1}, wrong_backward, rng=rng)
    assert errors["x"] > 1e-3


def test_numerical_gradient_and_relative_error_basics():
    x = np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(numerical_gradient(lambda v: np.sum(v ** 3), x), 3 * x ** 2,
                               rtol=1e-8)
    np.testing.assert_allclose(numerical_gradient(lambda v: np.sum(v ** 3), x, eps=1e-3, order=4),
                               3 * x ** 2, rtol=1e-12)
    np.testing.assert_array_equal(x, [1.0, -2.0, 3.0])  # restored
    assert relative_error(np.array([1.0, 0.0]), np.array([1.0, 0.0])) == 0
    assert relative_error(np.array([1.0]), np.array([3.0])) == pytest.approx(0.5)


def test_dropout_layer_gradcheck_replays_its_mask(rng):
    errors = check_layer(Dropout(0.5, rng=3), rng.standard_normal((4, 5)), rng=rng)
    assert errors["x"] < 1e-8
