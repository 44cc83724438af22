"""7.4: the write-up compares the Transformer with each GRU through the rule."""
from __future__ import annotations

from experiments.s7_attention import t7_4_transformer_classifier as t
from utils.history import History


def make_result(comparison, sig_base: bool, sig_att: bool, source="7.3"):
    h = History(train_loss=[0.6], train_acc=[0.7], val_loss=[0.5], val_acc=[0.75], epoch_seconds=[3.0])
    acc = {"transformer": 0.86, "baseline": 0.80, "attention": 0.855}
    comps = {"baseline": comparison("Transformer", 0.86, "GRU, last state", 0.80, significant=sig_base),
             "attention": comparison("Transformer", 0.86, "GRU + attention", 0.855, significant=sig_att)}
    return t.Result("imdb", 1000, source, h, acc, {"transformer": 10, "baseline": 20, "attention": 30},
                    {"transformer": 3.0, "baseline": 5.0, "attention": 6.0}, comps)


def test_winner_named_only_where_the_rule_finds_one(comparison):
    text = t.write_up(make_result(comparison, True, False))
    assert "Transformer beats GRU, last state" in text
    assert "No measurable difference between Transformer and GRU + attention" in text
    assert "7.3's own runs" in text


def test_all_ties_name_no_winner_and_say_where_the_grus_came_from(comparison):
    text = t.write_up(make_result(comparison, False, False, source="retrained here"))
    assert "beats" not in text and "trained here" in text
