"""7.6: the series and the write-up."""
from __future__ import annotations

import numpy as np

from experiments.s7_attention import t7_6_forecasting_transformer as t
from utils.history import History


def test_series_noise_has_the_stated_size():
    noisy, clean = t.series(20000, np.random.default_rng(0))
    assert abs(np.std(noisy - clean) - t.NOISE) < 0.01


def make_result(comparison, significant: bool):
    h = History(train_loss=[0.5], val_loss=[0.4], epoch_seconds=[1.0])
    att = np.full(t.WINDOW, 1 / t.WINDOW)
    att[-1] = 0.2
    c = comparison("Transformer", 0.12, "LSTM", 0.15, significant=significant, metric="test MSE",
                   higher_is_better=False, percent=False)
    return t.Result(2400, 300, {"lstm": h, "transformer": h}, {"lstm": 10, "transformer": 20},
                    {"lstm": 0.15, "transformer": 0.12}, {"lstm": 0.3, "transformer": 0.28},
                    {"mse": {"lstm": [0.1, 0.2], "transformer": [0.1, 0.15]},
                     "mae": {"lstm": [0.2, 0.4], "transformer": [0.2, 0.3]}}, 0.09, c, c,
                    np.zeros(5), {"lstm": np.zeros(5), "transformer": np.zeros(5)}, att, att, np.zeros(t.WINDOW))


def test_write_up_winner_and_attention_peak(comparison):
    text = t.write_up(make_result(comparison, True))
    assert "Transformer beats LSTM in test MSE" in text and "1 steps back (0.200)" in text


def test_write_up_tie(comparison):
    text = t.write_up(make_result(comparison, False))
    assert "beats" not in text and "No measurable difference" in text
