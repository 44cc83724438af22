"""6.8: the (first, last) labels and a write-up that follows McNemar's verdict."""
from __future__ import annotations

import torch

from experiments.s6_recurrent import t6_8_bidirectional as t
from utils.history import History


def test_both_ends_label_is_first_and_last_symbol():
    vocab = 4
    x, y = t.both_ends_sequences(500, 12, vocab, torch.Generator().manual_seed(0))
    tokens = x.argmax(-1)
    torch.testing.assert_close(y // vocab, tokens[:, 0])
    torch.testing.assert_close(y % vocab, tokens[:, -1])
    assert int(y.max()) < vocab * vocab and len(torch.unique(y)) == vocab * vocab


def _result(comparison, bi, uni, uni_first, significant):
    acc = {"bidirectional": {"first": [0.99], "last": [0.99], "both": [bi]},
           "unidirectional": {"first": [uni_first], "last": [0.98], "both": [uni]}}
    c = comparison("bidirectional RNN", bi, "unidirectional RNN", uni, significant=significant,
                   higher_is_better=True, percent=True, metric="test accuracy", n=t.N_TEST)
    ends = comparison("last symbol", 0.98, "first symbol", uni_first, significant=uni_first < 0.9,
                      higher_is_better=True, percent=True, n=t.N_TEST)
    first = comparison("bidirectional RNN", 0.99, "unidirectional RNN", uni_first, significant=uni_first < 0.9,
                       higher_is_better=True, percent=True, n=t.N_TEST)
    h = History(train_loss=[2.0], val_loss=[2.0], val_acc=[0.3])
    return t.Result([0], 4000, 8, {"bidirectional": 3216, "unidirectional": 1808}, acc,
                    {"bidirectional": [h], "unidirectional": [h]}, c, ends, first)


def test_bidirectional_win_is_explained_by_the_first_symbol(comparison):
    text = t.write_up(_result(comparison, 0.97, 0.25, 0.26, True))
    assert "**The bidirectional RNN wins**" in text and "Bidirectional RNN beats unidirectional RNN" in text
    assert "washed out of its state" in text and "distance to the read-out, not model size" in text
    assert "Why bidirectionality wins here" in text and "2000 test" in text


def test_a_tie_is_reported_as_no_measurable_difference(comparison):
    text = t.write_up(_result(comparison, 0.962, 0.958, 0.97, False))
    assert "**No measurable difference** between the two" in text
    assert "RNN wins" not in text and "beats" not in text
    assert "Why bidirectionality wins here" not in text
    assert "did carry the first symbol across 29 steps" in text
