"""6.6: recommendations come from the measured loss, time and parameters through the rule."""
from __future__ import annotations

from experiments.s6_recurrent import t6_6_comparison_table as t
from experiments.s6_recurrent._shared import NAMES, Ranking, compare_times

MODELS = ("rnn", "lstm", "gru", "rnn_matched")
PARAMS = {"rnn": 1153, "lstm": 4513, "gru": 3393, "rnn_matched": 4561}


def _result(comparison, sum_run, mse, spe, tied_with_leader, lstm_vs_matched_significant=True):
    runs = {m: [sum_run(mse[m], params=PARAMS[m], epoch_seconds=spe[m])] for m in MODELS}
    leader = min(MODELS, key=mse.get)
    ranking = Ranking(leader, {m: NAMES[m] for m in MODELS},
                      {m: comparison(NAMES[leader], mse[leader], NAMES[m], mse[m], significant=m not in tied_with_leader)
                       for m in MODELS if m != leader})
    reps = {m: [spe[m] * 0.99, spe[m], spe[m] * 1.01] for m in MODELS}
    times = {a: {o: compare_times(NAMES[a], reps[a], NAMES[o], reps[o]) for o in MODELS[i + 1:]}
             for i, a in enumerate(MODELS)}
    return t.Result([0], 1024, 24, {"rnn": 32, "lstm": 32, "gru": 32, "rnn_matched": 66}, runs, ranking, times,
                    comparison(NAMES["rnn_matched"], mse["rnn_matched"], NAMES["lstm"], mse["lstm"],
                               significant=lstm_vs_matched_significant),
                    comparison(NAMES["rnn_matched"], mse["rnn_matched"], NAMES["rnn"], mse["rnn"], significant=True))


def test_tie_at_the_top_recommends_the_faster_of_the_tied(comparison, sum_run):
    mse = {"rnn": 0.06, "lstm": 0.00045, "gru": 0.0005, "rnn_matched": 0.03}
    spe = {"rnn": 0.025, "lstm": 0.045, "gru": 0.076, "rnn_matched": 0.03}
    r = _result(comparison, sum_run, mse, spe, tied_with_leader={"gru"})
    pick, why = t.recommendation(r)
    assert pick == "lstm" and "ties for the lowest loss with GRU" in why and "LSTM is faster per epoch than GRU" in why
    text = t.write_up(r)
    assert "Lowest loss: **a tie** between LSTM and GRU" in text and "No measurable difference" in text
    assert "When time matters more than loss: **vanilla RNN** is faster per epoch than every other model" in text
    assert "gating, not the size, makes the difference" in text
    assert "Avoid for tasks that integrate over the whole sequence: vanilla RNN (133×" in text


def test_single_winner_is_named_and_equal_size_tie_says_size_explains(comparison, sum_run):
    mse = {"rnn": 0.06, "lstm": 0.0004, "gru": 0.004, "rnn_matched": 0.00045}
    spe = {"rnn": 0.025, "lstm": 0.045, "gru": 0.076, "rnn_matched": 0.03}
    r = _result(comparison, sum_run, mse, spe, tied_with_leader=set(), lstm_vs_matched_significant=False)
    text = t.write_up(r)
    assert "Lowest loss: **LSTM** (0.0004), ahead of every other model" in text
    assert "Recommended here: **LSTM** — it alone has the lowest loss" in text
    assert "size explains the gap here" in text
    assert t.recommendation(r)[0] == "lstm"


def test_equal_times_fall_back_to_fewest_parameters(comparison, sum_run):
    mse = {"rnn": 0.06, "lstm": 0.0005, "gru": 0.00049, "rnn_matched": 0.03}
    spe = {"rnn": 0.025, "lstm": 0.05, "gru": 0.05, "rnn_matched": 0.03}
    r = _result(comparison, sum_run, mse, spe, tied_with_leader={"lstm"})
    pick, why = t.recommendation(r)
    assert pick == "gru" and "fewest parameters (3,393)" in why
