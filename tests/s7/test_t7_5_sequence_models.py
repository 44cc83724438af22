"""7.5: models build with the catalogue's sizes; the write-up follows the rule."""
from __future__ import annotations

import torch

from experiments.s7_attention import t7_5_sequence_models as t
from utils.history import History


def test_models_take_sequences_and_give_two_logits():
    x = torch.randn(3, 50)
    for name in (*t.MAIN, "rnn_attention_pool"):
        model = t.build(name)
        model = t._Feature(model) if name == "transformer" else model
        assert model.eval()(x).shape == (3, 2)
    lstm = t.build("lstm")
    assert isinstance(lstm.norm, torch.nn.LayerNorm) and lstm.rnn.num_layers == 2 and lstm.rnn.hidden_size == 64


def make_result(comparison, significant: bool):
    h = History(train_loss=[0.6, 0.5], val_loss=[0.6, 0.5], val_acc=[0.7, 0.8], epoch_seconds=[1, 1])
    names = (*t.MAIN, "rnn_attention_pool")
    acc = dict(zip(names, (0.6, 0.9, 0.92, 0.91, 0.95, 0.7)))
    return t.Result(5000, 50, 750, {k: h for k in names}, {k: 1000 for k in names}, acc,
                    comparison("Transformer", 0.95, "GRU", 0.92, significant=significant),
                    comparison("RNN, attention pooling", 0.7, "RNN", 0.6, significant=significant),
                    comparison("Transformer", 0.95, "RNN", 0.6, significant=significant))


def test_write_up_names_winner_when_significant(comparison):
    text = t.write_up(make_result(comparison, True))
    assert "Transformer beats GRU" in text and "RNN, attention pooling beats RNN" in text and "750 test" in text


def test_write_up_calls_a_tie_a_tie(comparison):
    text = t.write_up(make_result(comparison, False))
    assert "beats" not in text and text.count("No measurable difference") == 3
    assert "Even this is not measurably below the best" in text and "recurrent matrix" not in text


def test_the_rnn_is_explained_only_when_it_is_measurably_the_lowest(comparison):
    text = t.write_up(make_result(comparison, True))
    assert "Against the best: Transformer beats RNN" in text and "recurrent matrix" in text
