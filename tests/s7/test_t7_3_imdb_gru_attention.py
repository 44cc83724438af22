"""7.3: the write-up names a winner only when McNemar says so."""
from __future__ import annotations

import numpy as np

from experiments.s7_attention import t7_3_imdb_gru_attention as t
from utils.history import History
from utils.report import compare_predictions


def make_result(acc_base: float, acc_att: float, n: int = 1000):
    rng = np.random.default_rng(0)
    base = rng.random(n) < acc_base
    att = base.copy()
    flip = int(round((acc_att - acc_base) * n))
    idx = np.flatnonzero(~att if flip > 0 else att)[:abs(flip)]
    att[idx] = flip > 0
    h = History(train_loss=[0.6, 0.4], train_acc=[0.7, 0.8], val_loss=[0.5, 0.45], val_acc=[0.75, 0.8],
                epoch_seconds=[2.0, 2.0])
    comp = compare_predictions("GRU + attention", att, "GRU, last state", base)
    ex = {"tokens": ["the", "plot", "was", "dull"], "weights": [0.1, 0.1, 0.2, 0.6], "label": 0,
          "prob_positive": 0.2, "correct": True}
    return t.Result("synthetic-reviews (stand-in for imdb)", True, 200, 150, 2000, {"baseline": h, "attention": h},
                    {"baseline": 1000, "attention": 1200}, {"baseline": float(base.mean()), "attention": float(att.mean())},
                    n, {"baseline": base, "attention": att}, {"baseline": np.full(n, 0.8), "attention": np.full(n, 0.9)},
                    rng.integers(50, 400, n), comp, [ex])


def test_a_clear_gain_names_attention_the_winner():
    text = t.write_up(make_result(0.70, 0.85))
    assert "GRU + attention beats GRU, last state" in text and "1000 test examples" in text


def test_a_difference_inside_the_noise_is_a_tie():
    r = make_result(0.80, 0.805)
    text = t.write_up(r)
    assert "No measurable difference" in text and "beats" not in text
    assert r.comparison.verdict().endswith("(tie)")


def test_length_bins_cover_every_review():
    r = make_result(0.7, 0.8)
    edges, by_len = t.length_bins(r)
    assert sum(c for _, c in by_len["baseline"]) == r.test_examples
    assert edges[0] == r.lengths.min() and edges[-1] == r.lengths.max() + 1
