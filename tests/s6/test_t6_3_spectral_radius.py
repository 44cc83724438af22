"""6.3: the write-up states what the measured factors show, with or without 6.2's run."""
from __future__ import annotations

import numpy as np

from experiments.s6_recurrent import t6_3_spectral_radius as t


def _result(factors, slopes, rnn_62=None):
    radius = dict(zip(t.NAMES, [0.58, 0.54, 0.97, 1.08, 1.19, 1.62]))
    factor = dict(zip(t.NAMES, factors))
    slope = dict(zip(t.NAMES, slopes))
    ratio = {n: float(f ** -(t.STEPS - 1)) for n, f in factor.items()}
    return t.Result([0], 128, radius, factor, slope, ratio, {n: np.ones(t.STEPS) for n in t.NAMES},
                    {n: np.zeros((t.HIDDEN, 2)) for n in t.NAMES}, rnn_62)


def test_linear_picture_that_holds():
    r = _result([0.57, 0.49, 0.86, 0.94, 1.01, 1.06], [0.97, 0.98, 0.95, 0.93, 0.90, 0.655], rnn_62=0.59)
    text = t.write_up(r)
    assert "gave a per-step factor below 1: vanishing gradients" in text
    assert "The gradient grew going back in time for 1.1 × N(0, 1/H)" in text
    assert "always by less than ρ" in text and "fell to 0.66" in text
    assert "measured a vanilla-RNN factor of 0.590" in text
    assert "tracks the measured one (largest gap 0.064)" in text   # 1.08 × 0.93 = 1.004 vs 0.94


def test_factor_that_breaks_the_linear_picture_is_reported():
    r = _result([0.57, 1.02, 0.86, 0.94, 1.01, 1.90], [0.97, 0.98, 0.95, 0.93, 0.90, 0.70])
    text = t.write_up(r)
    assert "Not every matrix with ρ < 1 gave a vanishing gradient: 0.5 × N(0, 1/H) factor 1.020" in text
    assert "by ρ or more, beyond the linear prediction" in text
    assert "6.2 has not run in this results folder" in text
    assert "misses the measured one" in text
