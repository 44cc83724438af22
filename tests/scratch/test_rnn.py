"""scratch.rnn and layers.RNN against torch.nn.RNN in float64: weights in torch's layout
(copied without a transpose), forward states, BPTT gradients of inputs, initial state and
every weight (rtol 1e-10), and finite differences of the functional pairs."""
import numpy as np
import pytest
import torch

from scratch.gradcheck import check_layer
from scratch.layers import RNN
from scratch.rnn import RNNCache, rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward


def test_from_torch_copies_the_weights_without_a_transpose():
    torch.manual_seed(0)
    module = torch.nn.RNN(4, 6, batch_first=True).double()
    layer = RNN.from_torch(module, dtype=np.float64)
    assert list(layer.params) == ["weight_ih", "weight_hh", "bias"]
    np.testing.assert_array_equal(layer.params["weight_ih"], module.weight_ih_l0.detach().numpy())
    np.testing.assert_array_equal(layer.params["weight_hh"], module.weight_hh_l0.detach().numpy())
    np.testing.assert_array_equal(layer.params["bias"],
                                  (module.bias_ih_l0 + module.bias_hh_l0).detach().numpy())


def test_rnn_sequence_matches_torch(rng, torch_ref):
    torch.manual_seed(2)
    module = torch.nn.RNN(4, 6, nonlinearity="tanh", batch_first=True).double()
    layer = RNN.from_torch(module, dtype=np.float64)
    x = rng.standard_normal((3, 5, 4))
    x_t = torch_ref.leaf(x)
    out_t, h_last_t = module(x_t)
    out = layer.forward(x)
    torch_ref.assert_close(out, out_t.detach().numpy())
    torch_ref.assert_close(out[:, -1], h_last_t[0].detach().numpy())
    dout = rng.standard_normal(out.shape)
    dx_t, dwih_t, dwhh_t, dbih_t, dbhh_t = torch_ref.vjp(
        out_t, dout, x_t, module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0,
        module.bias_hh_l0)
    torch_ref.assert_close(layer.backward(dout), dx_t)
    torch_ref.assert_close(layer.grads["weight_ih"], dwih_t)   # same layout: no transpose
    torch_ref.assert_close(layer.grads["weight_hh"], dwhh_t)
    torch_ref.assert_close(layer.grads["bias"], dbih_t)
    torch_ref.assert_close(dbih_t, dbhh_t)  # both torch biases get the same gradient


def test_rnn_last_state_only(rng, torch_ref):
    torch.manual_seed(3)
    module = torch.nn.RNN(3, 4, batch_first=True).double()
    layer = RNN.from_torch(module, return_sequences=False, dtype=np.float64)
    x = rng.standard_normal((2, 6, 3))
    x_t = torch_ref.leaf(x)
    _, h_last_t = module(x_t)
    out = layer.forward(x)
    torch_ref.assert_close(out, h_last_t[0].detach().numpy())
    dout = rng.standard_normal(out.shape)
    dx_t, dwhh_t = torch_ref.vjp(h_last_t[0], dout, x_t, module.weight_hh_l0)
    torch_ref.assert_close(layer.backward(dout), dx_t)
    torch_ref.assert_close(layer.grads["weight_hh"], dwhh_t)


def test_rnn_without_bias_single_sequence_single_step(rng, torch_ref):
    module = torch.nn.RNN(2, 3, batch_first=True, bias=False).double()
    layer = RNN.from_torch(module, dtype=np.float64)
    assert list(layer.params) == ["weight_ih", "weight_hh"]
    x = rng.standard_normal((1, 1, 2))
    x_t = torch_ref.leaf(x)
    out_t, _ = module(x_t)
    torch_ref.assert_close(layer.forward(x), out_t.detach().numpy())
    dout = rng.standard_normal((1, 1, 3))
    dx_t, dwih_t = torch_ref.vjp(out_t, dout, x_t, module.weight_ih_l0)
    torch_ref.assert_close(layer.backward(dout), dx_t)
    torch_ref.assert_close(layer.grads["weight_ih"], dwih_t)
    np.testing.assert_array_equal(layer.grads["weight_hh"], 0)  # h0 = 0 and one step: W_hh unused


def test_functional_sequence_with_an_initial_state_matches_torch(rng, torch_ref):
    n, steps, d, h = 2, 4, 3, 5
    arrays = {"x": rng.standard_normal((n, steps, d)), "h0": rng.standard_normal((n, h)),
              "weight_ih": rng.standard_normal((h, d)) * 0.5,
              "weight_hh": rng.standard_normal((h, h)) * 0.5, "bias": rng.standard_normal(h)}
    out, cache = rnn_forward(*arrays.values())
    assert isinstance(cache, RNNCache)
    leaves = {k: torch_ref.leaf(v) for k, v in arrays.items()}
    out_t, _ = torch.func.functional_call(
        torch.nn.RNN(d, h, batch_first=True).double(),
        {"weight_ih_l0": leaves["weight_ih"], "weight_hh_l0": leaves["weight_hh"],
         "bias_ih_l0": leaves["bias"], "bias_hh_l0": torch.zeros(h, dtype=torch.float64)},
        (leaves["x"], leaves["h0"][None]))
    torch_ref.assert_close(out, out_t.detach().numpy())
    dout = rng.standard_normal(out.shape)
    for name, ours, theirs in zip(arrays, rnn_backward(dout, cache),
                                  torch_ref.vjp(out_t, dout, *leaves.values())):
        torch_ref.assert_close(ours, theirs, name)


def test_rnn_step_matches_torch_cell(rng, torch_ref):
    arrays = [rng.standard_normal(s) for s in [(3, 4), (3, 5), (5, 4), (5, 5), (5,)]]
    x, h, w_ih, w_hh, b = (torch_ref.leaf(a) for a in arrays)
    out_t = torch.tanh(x @ w_ih.T + h @ w_hh.T + b)
    out, cache = rnn_step_forward(*arrays)
    torch_ref.assert_close(out, out_t.detach().numpy())
    dout = rng.standard_normal(out.shape)
    for ours, theirs in zip(rnn_step_backward(dout, cache), torch_ref.vjp(out_t, dout, x, h, w_ih, w_hh, b)):
        torch_ref.assert_close(ours, theirs)


@pytest.mark.parametrize("forward, backward, first", [(rnn_step_forward, rnn_step_backward, "prev_h"),
                                                      (rnn_forward, rnn_backward, "h0")])
def test_functional_pairs_pass_finite_differences(rng, forward, backward, first):
    x_shape = (2, 3) if forward is rnn_step_forward else (2, 3, 3)
    inputs = {"x": rng.standard_normal(x_shape), first: rng.standard_normal((2, 4)),
              "weight_ih": rng.standard_normal((4, 3)) * 0.5,
              "weight_hh": rng.standard_normal((4, 4)) * 0.5, "bias": rng.standard_normal(4)}
    errors = check_layer(forward, inputs, backward, rng=rng, eps=3e-4, order=4)
    assert set(errors) == set(inputs)
    assert max(errors.values()) < 1e-8, errors


def test_default_init_matches_torch_bounds_and_unsupported_modules_are_refused():
    layer = RNN(3, 100, rng=0)
    assert layer.params["weight_ih"].shape == (100, 3) and layer.params["weight_ih"].dtype == np.float32
    for param in layer.params.values():  # torch: U(±1/√H) for every weight and bias
        assert 0.9 * 0.1 < np.abs(param).max() <= 0.1
    for module in (torch.nn.RNN(2, 3, num_layers=2), torch.nn.RNN(2, 3, bidirectional=True),
                   torch.nn.RNN(2, 3, nonlinearity="relu")):
        with pytest.raises(ValueError, match="only single-layer"):
            RNN.from_torch(module)
