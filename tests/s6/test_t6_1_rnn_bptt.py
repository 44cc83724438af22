"""6.1: the NumPy BPTT against torch autograd and finite differences, the echo data, and the write-up."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from experiments.s6_recurrent import t6_1_rnn_bptt as t
from scratch import RNN, Linear
from utils.history import History

# scratch parameter name -> the torch tensor whose gradient it must equal (either weight layout)
TORCH_GRAD = {"weight_ih": lambda r: r.weight_ih_l0.grad, "weight_hh": lambda r: r.weight_hh_l0.grad,
              "bias": lambda r: r.bias_ih_l0.grad, "W_xh": lambda r: r.weight_ih_l0.grad.T,
              "W_hh": lambda r: r.weight_hh_l0.grad.T, "b": lambda r: r.bias_ih_l0.grad}


def test_numpy_bptt_matches_torch_autograd(single_torch_thread):
    vocab, hidden, steps, delay = 5, 7, 9, 3
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    rnn = nn.RNN(vocab, hidden, batch_first=True).double()
    head = nn.Linear(hidden, vocab).double()
    model = t.ScratchEchoRNN(vocab, hidden, delay, rng=rng, dtype=np.float64)
    model.rnn = RNN.from_torch(rnn, dtype=np.float64)
    model.out = Linear.from_torch(head, dtype=np.float64)
    model.layers = {"rnn": model.rnn, "out": model.out}

    x, _, targets = t.echo_sequences(rng, 4, steps, vocab, delay)
    loss, _ = model.loss_and_backward(x, targets)
    out, _ = rnn(torch.tensor(x))
    ref = F.cross_entropy(head(out[:, delay:]).reshape(-1, vocab), torch.tensor(targets).reshape(-1))
    ref.backward()

    assert loss == pytest.approx(ref.item(), abs=1e-12)
    grads = dict(model.named_grads())
    assert len(grads) == 5
    for name, g in grads.items():
        layer, param = name.split(".")
        expected = TORCH_GRAD[param](rnn) if layer == "rnn" else getattr(head, param).grad
        np.testing.assert_allclose(g, expected.numpy(), atol=1e-12, err_msg=name)


def test_bptt_gradient_check_meets_tolerance():
    errors = t.bptt_gradient_check(seed=3)
    assert len(errors) == 5 and {k.split(".")[0] for k in errors} == {"rnn", "out"}
    assert max(errors.values()) < t.TOLERANCE


def test_clip_global_norm_scales_jointly():
    grads = [np.array([3.0, 0.0]), np.array([[4.0]])]
    assert t.clip_global_norm(grads, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(grads[0], [0.6, 0.0])
    np.testing.assert_allclose(grads[1], [[0.8]])
    small = [np.array([0.3, 0.4])]
    assert t.clip_global_norm(small, 1.0) == pytest.approx(0.5)
    np.testing.assert_allclose(small[0], [0.3, 0.4])   # below the bar: untouched


def test_echo_targets_are_the_delayed_inputs():
    x, tokens, targets = t.echo_sequences(np.random.default_rng(1), 6, 10, 4, 3)
    assert x.shape == (6, 10, 4) and targets.shape == (6, 7)
    np.testing.assert_array_equal(x.argmax(-1), tokens)
    np.testing.assert_array_equal(targets, tokens[:, :7])   # the target read out at step t is the symbol at t - 3


def test_lag_decoding_reads_a_state_that_holds_the_last_two_symbols():
    rng = np.random.default_rng(0)
    x, tokens, _ = t.echo_sequences(rng, 400, 12, 4, 1)
    h = np.concatenate([x, np.roll(x, 1, axis=1)], axis=2)   # h_t = [one-hot x_t, one-hot x_{t-1}]
    h[:, 0, 4:] = 0
    correct = t.lag_decoding(h, x, tokens, [0, 1, 3])
    assert {lag: c.shape for lag, c in correct.items()} == {0: (200, 9), 1: (200, 9), 3: (200, 9)}
    assert correct[0].mean() == 1.0 and correct[1].mean() == 1.0
    assert correct[3].mean() < 0.4                            # x_{t-3} is not in the state: near chance


def _result(acc_delay, acc_last, significant, comparison):
    lag_acc = {lag: 1.0 for lag in range(t.DELAY)} | {t.DELAY: acc_delay, t.DELAY + 1: 0.8, t.DELAY + 2: acc_last}
    hist = History(train_loss=[1.4, 0.5, 0.01], train_acc=[0.25, 0.8, 1.0], unit="step", seconds=1.0)
    c = comparison(f"{t.DELAY} steps back", acc_delay, f"{t.DELAY + 2} steps back", acc_last, significant=significant,
                   metric="decoding accuracy", higher_is_better=True, percent=True, n=4500)
    return t.Result({"rnn.weight_ih": 3e-10, "out.weight": 1e-11}, hist, [0.5, 7.0, 1.0], 0.002, 0.999, 1000,
                    lag_acc, c, 9, np.zeros((t.STEPS, t.HIDDEN)), [0] * t.STEPS, [0] * (t.STEPS - t.DELAY))


def test_write_up_names_the_fading_when_the_rule_sees_it(comparison):
    text = t.write_up(_result(1.0, 0.42, True, comparison))
    assert "Decodability fades past the delay" in text and "5 steps back beats 7 steps back" in text
    assert "3.00e-10" in text and "below the tolerance" in text
    assert "33.3%" in text   # one of the three steps was clipped (norm 7 > 5)


def test_write_up_calls_a_tie_a_tie(comparison):
    text = t.write_up(_result(0.99, 0.985, False, comparison))
    assert "as well as the one 5 steps back" in text and "No measurable difference" in text
    assert "beats" not in text and "fades" not in text
