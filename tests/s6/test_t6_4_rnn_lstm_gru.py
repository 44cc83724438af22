"""6.4: the write-up names a winner only through the rule, and explains timing by the measured numbers."""
from __future__ import annotations

from experiments.s6_recurrent import t6_4_rnn_lstm_gru as t
from experiments.s6_recurrent._shared import NAMES, Ranking, compare_times


def _times(spe: dict[str, float], jitter=0.001):
    def reps(c):
        return [spe[c] - jitter, spe[c], spe[c] + jitter]
    return {f"{a}-{m}": compare_times(NAMES[a], reps(a), NAMES[m], reps(m)) for a, m in t.PAIRS}


def _result(comparison, sum_run, *, lstm, gru, significant, spe, wide):
    mse = {"rnn": 0.06, "lstm": lstm, "gru": gru}
    leader = min(("lstm", "gru"), key=mse.get)
    other = "gru" if leader == "lstm" else "lstm"
    ranking = Ranking(leader, {c: NAMES[c] for c in t.CELLS}, {
        other: comparison(NAMES[leader], mse[leader], NAMES[other], mse[other], significant=significant),
        "rnn": comparison(NAMES[leader], mse[leader], NAMES["rnn"], 0.06, significant=True)})
    runs = {c: [sum_run(mse[c], params={"rnn": 1153, "lstm": 4513, "gru": 3393}[c], epoch_seconds=spe[c])]
            for c in t.CELLS}
    return t.Result([0], 1024, 30, runs, ranking, _times(spe), {"rnn": 138, "lstm": 14, "gru": 438},
                    {"rnn": False, "lstm": True, "gru": False}, 256, _times(wide, 0.005))


def test_clear_winner_and_timing_that_contradicts_gate_counts(comparison, sum_run):
    r = _result(comparison, sum_run, lstm=0.0004, gru=0.0006, significant=True,
                spe={"rnn": 0.025, "lstm": 0.045, "gru": 0.076}, wide={"rnn": 0.26, "gru": 0.91, "lstm": 1.02})
    text = t.write_up(r)
    assert "Lowest test MSE: **LSTM**, which beats both others" in text
    assert "**The measured times contradict the gate counts** (LSTM is faster than GRU)" in text
    assert "vanilla RNN 138, LSTM 14, GRU 438 autograd operations" in text and "one fused (oneDNN) kernel" in text
    assert "There the order follows the gate counts" in text


def test_tie_is_not_a_winner_and_agreeing_times_say_so(comparison, sum_run):
    r = _result(comparison, sum_run, lstm=0.00055, gru=0.0005, significant=False,
                spe={"rnn": 0.02, "lstm": 0.09, "gru": 0.06}, wide={"rnn": 0.2, "gru": 0.6, "lstm": 0.8})
    text = t.write_up(r)
    assert "**no single winner**" in text and "ties with LSTM" in text
    assert "No measurable difference between GRU and LSTM" in text
    assert "GRU beats LSTM" not in text and "LSTM beats GRU" not in text
    assert "The measured times agree with the gate counts. What each batch costs" in text
    assert "contradict the gate counts" not in text
    assert r.ranking.verdict() == "GRU ≈ LSTM (tie); both beat vanilla RNN"


def test_timings_inside_the_spread_support_nothing(comparison, sum_run):
    r = _result(comparison, sum_run, lstm=0.0004, gru=0.0006, significant=True,
                spe={"rnn": 0.05, "lstm": 0.0505, "gru": 0.0502}, wide={"rnn": 0.26, "gru": 0.91, "lstm": 1.02})
    text = t.timing_text(r)
    assert "neither support nor contradict the gate counts" in text and "LSTM 14" in text
    assert "There the order follows the gate counts." in text and "overhead, not gates" not in text
