"""6.5: the LSTM-vs-GRU conclusion on long sequences is built from the rule's verdicts."""
from __future__ import annotations

from experiments.s6_recurrent import t6_5_length_ablation as t
from experiments.s6_recurrent._shared import NAMES, Ranking, compare_times


def _result(comparison, sum_run, lstm_gru: dict[int, tuple[float, float, bool]], rnn_beaten=True):
    runs = {c: {} for c in t.CELLS}
    rankings, versus = {}, {}
    for T in t.LENGTHS:
        lstm, gru, sig = lstm_gru.get(T, (0.001, 0.001, False))
        mse = {"rnn": 0.002 * T, "lstm": lstm, "gru": gru}
        for c in t.CELLS:
            runs[c][T] = [sum_run(mse[c], params={"rnn": 1153, "lstm": 4513, "gru": 3393}[c])]
        versus[T] = comparison("LSTM", lstm, "GRU", gru, significant=sig)
        lead = "lstm" if lstm <= gru else "gru"
        other = "gru" if lead == "lstm" else "lstm"
        rankings[T] = Ranking(lead, {c: NAMES[c] for c in t.CELLS}, {
            other: comparison(NAMES[lead], mse[lead], NAMES[other], mse[other], significant=sig),
            "rnn": comparison(NAMES[lead], mse[lead], NAMES["rnn"], mse["rnn"], significant=rnn_beaten)})
    times = {T: compare_times("LSTM", [3.0, 3.1, 2.9], "GRU", [4.0, 4.1, 3.9]) for T in t.LONG}
    return t.Result([0], 1024, {T: 20 for T in t.LENGTHS}, runs, rankings, versus, times)


def test_one_winner_at_both_long_lengths(comparison, sum_run):
    r = _result(comparison, sum_run, {100: (0.007, 0.02, True), 200: (0.04, 0.09, True)})
    text = t.write_up(r)
    assert "**LSTM is the better model for long sequences here**" in text
    assert "LSTM is faster per epoch than GRU" in text and "3,393 parameters to the LSTM's 4,513" in text
    assert "beaten by the best gated model at every length" in text


def test_ties_at_long_lengths_name_no_winner(comparison, sum_run):
    r = _result(comparison, sum_run, {100: (0.0074, 0.0069, False), 200: (0.039, 0.041, False)}, rnn_beaten=False)
    text = t.write_up(r)
    assert "**No measurable difference between LSTM and GRU at T = 100 and T = 200**" in text
    assert "better model for long sequences" not in text
    assert "Against the textbook, the vanilla RNN is beaten at no length" in text


def test_mixed_verdicts_are_reported_per_length(comparison, sum_run):
    r = _result(comparison, sum_run, {100: (0.0074, 0.0069, False), 200: (0.039, 0.058, True)})
    assert "**No consistent winner at long lengths**: tie at T = 100; LSTM wins at T = 200." in t.lstm_gru_conclusion(r)


def test_the_evidence_named_is_the_one_used(comparison, sum_run):
    r = _result(comparison, sum_run, {})
    assert "By the rule at each length (one seed: paired bootstrap over the same 1000 test sequences)" in t.write_up(r)
    r.seeds = [0, 1, 2]
    assert "By the rule at each length (seed spread over 3 seeds)" in t.write_up(r)
