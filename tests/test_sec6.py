"""Section 6 helpers: the NumPy BPTT against torch autograd, the data generators' labels, the
gradient probes on cases with a known answer, and the recurrent models' read-out."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from experiments import sec6_recurrent as sec6
from models import RecurrentClassifier, RecurrentRegressor


def test_numpy_bptt_matches_torch_autograd():
    vocab, hidden, steps, delay = 5, 7, 9, 3
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    rnn = nn.RNN(vocab, hidden, batch_first=True).double()
    head = nn.Linear(hidden, vocab).double()
    model = sec6.ScratchEchoRNN(vocab, hidden, delay, rng=rng, dtype=np.float64)
    model.rnn.load_weights(W_xh=rnn.weight_ih_l0.T, W_hh=rnn.weight_hh_l0.T, b=rnn.bias_ih_l0 + rnn.bias_hh_l0)
    model.out.load_weights(weight=head.weight, bias=head.bias)

    x, _, targets = sec6.echo_sequences(rng, 4, steps, vocab, delay)
    loss, _ = model.loss_and_backward(x, targets)
    out, _ = rnn(torch.tensor(x))
    logits = head(out[:, delay:])
    ref = F.cross_entropy(logits.reshape(-1, vocab), torch.tensor(targets).reshape(-1))
    ref.backward()

    assert loss == pytest.approx(ref.item(), abs=1e-12)
    grads = dict(model.named_grads())
    np.testing.assert_allclose(grads["rnn.W_xh"], rnn.weight_ih_l0.grad.T.numpy(), atol=1e-12)
    np.testing.assert_allclose(grads["rnn.W_hh"], rnn.weight_hh_l0.grad.T.numpy(), atol=1e-12)
    np.testing.assert_allclose(grads["rnn.b"], rnn.bias_ih_l0.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(grads["out.weight"], head.weight.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(grads["out.bias"], head.bias.grad.numpy(), atol=1e-12)


def test_bptt_gradient_check_meets_bar():
    errors = sec6.bptt_gradient_check(seed=3)
    assert set(errors) == {"rnn.W_xh", "rnn.W_hh", "rnn.b", "out.weight", "out.bias"}
    assert max(errors.values()) < 1e-6


def test_clip_global_norm_scales_jointly():
    grads = [np.array([3.0, 0.0]), np.array([[4.0]])]
    before = sec6.clip_global_norm(grads, 1.0)
    assert before == pytest.approx(5.0)
    np.testing.assert_allclose(grads[0], [0.6, 0.0])
    np.testing.assert_allclose(grads[1], [[0.8]])


def test_echo_targets_are_the_delayed_inputs():
    x, tokens, targets = sec6.echo_sequences(np.random.default_rng(1), 6, 10, 4, 3)
    assert x.shape == (6, 10, 4) and targets.shape == (6, 7)
    np.testing.assert_array_equal(x.argmax(-1), tokens)
    for t in range(3, 10):  # the target read out at step t is the symbol seen at t - 3
        np.testing.assert_array_equal(targets[:, t - 3], tokens[:, t - 3])
        np.testing.assert_array_equal(targets[:, t - 3], x[:, t - 3].argmax(-1))


def test_sum_sequences_target_is_scaled_sum():
    x, y = sec6.sum_sequences(20000, 25, torch.Generator().manual_seed(0))
    assert x.shape == (20000, 25, 1) and y.shape == (20000, 1)
    assert x.min() >= -1 and x.max() <= 1
    torch.testing.assert_close(y, x.sum(dim=1) / 5.0)
    assert float(y.var()) == pytest.approx(sec6.SUM_TARGET_VARIANCE, rel=0.05)


def test_both_ends_label_is_first_and_last_symbol():
    vocab = 4
    x, y = sec6.both_ends_sequences(500, 12, vocab, torch.Generator().manual_seed(0))
    tokens = x.argmax(-1)
    torch.testing.assert_close(y // vocab, tokens[:, 0])
    torch.testing.assert_close(y % vocab, tokens[:, -1])
    assert int(y.max()) < vocab * vocab and len(torch.unique(y)) == vocab * vocab


def test_windows_and_baselines_on_a_ramp():
    series = np.arange(10.0)
    inputs, targets = sec6.sliding_windows(series, 3)
    assert inputs.shape == (7, 3)
    np.testing.assert_array_equal(inputs[2], [2, 3, 4])
    np.testing.assert_array_equal(targets, np.arange(3.0, 10.0))
    np.testing.assert_array_equal(sec6.last_value_forecast(inputs), np.arange(2.0, 9.0))
    np.testing.assert_array_equal(sec6.moving_average_forecast(inputs, 3), np.arange(1.0, 8.0))  # lags 2 steps


def test_noisy_sine_noise_level():
    noisy, clean = sec6.noisy_sine_series(20000, 0.3, np.random.default_rng(0))
    assert np.std(noisy - clean) == pytest.approx(0.3, rel=0.03)


def test_spectral_radius_known_matrices():
    rotation = np.array([[0.0, -2.0], [2.0, 0.0]])  # eigenvalues ±2i
    assert sec6.spectral_radius(rotation) == pytest.approx(2.0)
    non_normal = np.array([[0.5, 10.0], [0.0, 0.3]])  # norm ≈ 10, but eigenvalues 0.5 and 0.3
    assert sec6.spectral_radius(non_normal) == pytest.approx(0.5)
    assert np.linalg.norm(non_normal, 2) > 9
    m = np.random.default_rng(0).standard_normal((50, 50))
    assert sec6.spectral_radius(m) == pytest.approx(max(abs(np.linalg.eigvals(m))))
    # circular law, which 6.3 relies on: N(0, 1/H) entries give ρ close to 1
    h = 400
    assert sec6.spectral_radius(np.random.default_rng(1).standard_normal((h, h)) / np.sqrt(h)) == pytest.approx(1, abs=0.1)


def test_input_gradient_norms_linear_regime():
    # One tanh unit with zero input and bias stays at h = 0 where tanh' = 1, so the
    # gradient of h_T with respect to x_t is exactly a · w^(T - t).
    a, w, steps = 0.7, 0.8, 12
    model = RecurrentRegressor(1, 1, cell="rnn").double()
    with torch.no_grad():
        model.rnn.weight_ih_l0.fill_(a)
        model.rnn.weight_hh_l0.fill_(w)
        model.rnn.bias_ih_l0.zero_()
        model.rnn.bias_hh_l0.zero_()
    norms = sec6.input_gradient_norms(model, torch.zeros(3, steps, 1, dtype=torch.float64),
                                      torch.ones(1, dtype=torch.float64))
    np.testing.assert_allclose(norms, a * w ** np.arange(steps - 1, -1, -1), rtol=1e-12)
    assert sec6.per_step_factor(norms) == pytest.approx(w)


def test_bidirectional_summary_joins_both_ends():
    torch.manual_seed(0)
    model = RecurrentClassifier(3, 5, 4, cell="gru", bidirectional=True)
    out, summary = model.encode(torch.randn(2, 6, 3))
    torch.testing.assert_close(summary, torch.cat([out[:, -1, :5], out[:, 0, 5:]], dim=1))
    assert model(torch.randn(2, 6, 3)).shape == (2, 4)


@pytest.mark.parametrize("cell,bidirectional", [("lstm", False), ("rnn", True), ("gru", True)])
def test_lengths_ignore_padding(cell, bidirectional):
    torch.manual_seed(0)
    model = RecurrentClassifier(3, 6, 2, cell=cell, bidirectional=bidirectional, num_layers=2).eval()
    short = torch.randn(1, 4, 3)
    padded = torch.cat([short, torch.randn(1, 3, 3)], dim=1)  # 3 padding steps of garbage
    torch.testing.assert_close(model(padded, lengths=torch.tensor([4])), model(short))


def test_token_input_and_forget_bias():
    model = RecurrentClassifier(8, 4, 3, cell="lstm", vocab_size=20, forget_bias=1.0)
    assert model(torch.randint(1, 20, (2, 5))).shape == (2, 3)
    assert torch.all(model.rnn.bias_ih_l0[4:8] == 1) and torch.all(model.rnn.bias_hh_l0[4:8] == 0)
    with pytest.raises(ValueError):
        RecurrentClassifier(3, 4, 2, cell="gru", forget_bias=1.0)
