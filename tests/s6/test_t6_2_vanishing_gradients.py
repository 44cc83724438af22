"""6.2: the write-up follows the measured decay and the rule's verdict."""
from __future__ import annotations

import numpy as np

from experiments.s6_recurrent import t6_2_vanishing_gradients as t


def _result(lstm_orders: float, significant: bool, comparison):
    orders = {"rnn": 22.0, "lstm": lstm_orders, "lstm_forget_bias_1": 9.0}
    decay = {v: {T: 10 ** (o * T / 100) for T in t.LENGTHS} for v, o in orders.items()}
    factor = {v: {T: 10 ** (-o / 100) for T in t.LENGTHS} for v, o in orders.items()}
    versus = {"lstm": comparison("LSTM", lstm_orders, "vanilla RNN", 22.0, significant=significant,
                                 metric="orders of magnitude lost over 100 steps", n=128),
              "lstm_forget_bias_1": comparison("LSTM, forget-gate bias 1", 9.0, "vanilla RNN", 22.0, significant=True,
                                               metric="orders of magnitude lost over 100 steps", n=128)}
    curves = {v: {T: np.ones(T) for T in t.LENGTHS} for v in orders}
    return t.Result([0], 128, curves, decay, {v: {T: [np.log10(d[T])] for T in t.LENGTHS} for v, d in decay.items()},
                    factor, versus)


def test_lstm_that_keeps_its_gradient_is_named_the_winner(comparison):
    text = t.write_up(_result(3.0, True, comparison))
    assert "LSTM beats vanilla RNN" in text and "as the textbook says" in text
    assert "goes against the textbook" not in text
    assert "1.0e-22" in text          # the RNN's first-step share at T = 100


def test_lstm_that_vanishes_too_is_reported_against_the_textbook(comparison):
    text = t.write_up(_result(21.8, False, comparison))
    assert "goes against the textbook" in text and "No measurable difference between LSTM and vanilla RNN" in text
    assert "LSTM beats vanilla RNN" not in text
    assert "12.8 orders of magnitude less decay" in " ".join(text.split())   # bias 1 vs bias 0: 21.8 - 9.0
