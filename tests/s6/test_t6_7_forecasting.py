"""6.7: windows and baselines, the series, and a write-up that calls ties ties."""
from __future__ import annotations

import numpy as np
import pytest

from experiments.s6_recurrent import t6_7_forecasting as t
from experiments.s6_recurrent._shared import NAMES, Ranking


def test_windows_and_baselines_on_a_ramp():
    series = np.arange(10.0)
    inputs, targets = t.sliding_windows(series, 3)
    assert inputs.shape == (7, 3)
    np.testing.assert_array_equal(inputs[2], [2, 3, 4])
    np.testing.assert_array_equal(targets, np.arange(3.0, 10.0))
    np.testing.assert_array_equal(t.last_value_forecast(inputs), np.arange(2.0, 9.0))
    np.testing.assert_array_equal(t.moving_average_forecast(inputs, 3), np.arange(1.0, 8.0))  # lags 2 steps


def test_noisy_sine_noise_level():
    noisy, clean = t.noisy_sine_series(20000, 0.3, np.random.default_rng(0))
    assert np.std(noisy - clean) == pytest.approx(0.3, rel=0.03)
    assert np.abs(clean).max() <= 2.0 + 1e-9       # amplitudes 1 + 0.6 + 0.4


def _result(comparison, mse, ties_at_top, learned_beats_baseline):
    mae = {m: v ** 0.5 * 0.8 for m, v in mse.items()}
    leader = min(mse, key=mse.get)

    def ranking(values, metric):
        return Ranking(leader, {m: NAMES[m] for m in t.MODELS},
                       {m: comparison(NAMES[leader], values[leader], NAMES[m], values[m], metric=metric,
                                      significant=m not in ties_at_top, n=352) for m in t.MODELS if m != leader})

    best_l = min(t.CELLS, key=mse.get)
    interval = {k: {m: [0.9 * v[m], 1.1 * v[m]] for m in t.MODELS} for k, v in (("mse", mse), ("mae", mae))}
    lb = comparison(NAMES[best_l], mse[best_l], NAMES["moving_average"], mse["moving_average"],
                    significant=learned_beats_baseline, n=352)
    ma = comparison(NAMES["moving_average"], mse["moving_average"], NAMES["last_value"], mse["last_value"],
                    significant=True, n=352)
    shown = np.zeros(t.SHOWN)
    return t.Result([0], 2400, 20, 1646, 352, {m: [v] for m, v in mse.items()}, {m: [v] for m, v in mae.items()},
                    interval, [0.09], [4], {c: ["done"] for c in t.CELLS}, shown, shown,
                    {m: shown for m in t.MODELS}, ranking(mse, "test MSE"), ranking(mae, "test MAE"), lb, ma)


def test_a_near_tie_at_the_top_names_no_best_model(comparison):
    mse = {"rnn": 0.115, "lstm": 0.1358, "gru": 0.1364, "moving_average": 0.105, "last_value": 0.16}
    text = t.write_up(_result(comparison, mse, ties_at_top={"rnn"}, learned_beats_baseline=False))
    assert "Lowest test MSE: **a tie** between moving average, vanilla RNN" in text
    assert "no model is named best" in " ".join(text.split())
    assert "The best learned model does not beat the best baseline" in text
    assert "Moving average beats last value" in text and "worth more than the lag of 1.5 steps" in text
    assert "0.1050 (0.0945–0.1155)" in text        # the bootstrap interval is printed beside the value


def test_a_clear_winner_is_named(comparison):
    mse = {"rnn": 0.12, "lstm": 0.095, "gru": 0.13, "moving_average": 0.105, "last_value": 0.16}
    text = t.write_up(_result(comparison, mse, ties_at_top=set(), learned_beats_baseline=True))
    assert "Lowest test MSE: **LSTM**, which beats every other model" in text
    assert "The best learned model beats the best baseline: LSTM beats moving average" in text
    assert "MAE gives the same verdict" in text
