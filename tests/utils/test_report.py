"""The comparison rule: ties are ties, clear wins are named, with the right statistic."""
from __future__ import annotations

import re

import numpy as np
import pytest

from utils.report import (accuracy_interval, bootstrap_interval, compare_errors, compare_predictions, compare_runs,
                          compare_seeds, confusion_matrix, confusion_sentence, describe_accuracy, mcnemar_p,
                          per_class_report, table)


def paired(n, acc_a, acc_b, overlap_seed=0):
    rng = np.random.default_rng(overlap_seed)
    return rng.random(n) < acc_a, rng.random(n) < acc_b


def test_mcnemar_matches_the_exact_binomial():
    # 10 discordant pairs split 9:1 -> two-sided exact p = 2 * P(X <= 1 | n=10, 1/2) = 22/1024
    assert mcnemar_p(9, 1) == pytest.approx(22 / 1024, rel=1e-9)
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(5, 5) == pytest.approx(1.0)


@pytest.mark.parametrize("n", [1, 2, 7, 40, 333, 2000])
def test_mcnemar_agrees_with_scipy_binomtest(n):
    from scipy.stats import binomtest

    for b in range(0, n + 1, max(1, n // 50)):
        expected = binomtest(min(b, n - b), n, 0.5).pvalue
        assert mcnemar_p(b, n - b) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_identical_predictions_are_a_tie():
    a = np.array([True] * 90 + [False] * 10)
    c = compare_predictions("A", a, "B", a.copy())
    assert c.winner is None and c.diff == 0 and c.p_value == 1.0
    assert "No measurable difference" in c.sentence() and "tie" in c.verdict()


def test_small_gap_on_few_examples_is_a_tie():
    a = np.array([True] * 330 + [False] * 30)          # 91.7% of 360
    b = a.copy()
    b[:3] = False                                      # 90.8%: 3 images of 360
    c = compare_predictions("A", a, "B", b)
    assert c.winner is None and c.n == 360
    assert "beats" not in c.sentence() and "360 test examples" in c.sentence()


def test_clear_gap_on_many_examples_names_the_winner():
    a, b = paired(2000, 0.92, 0.80)
    c = compare_predictions("CNN", a, "MLP", b)
    assert c.winner == "CNN" and c.loser == "MLP" and c.p_value < 1e-6
    assert c.sentence().startswith("CNN beats MLP") and c.verdict() == "CNN beats MLP"


def test_a_sentence_starts_with_a_capital_even_when_the_winner_is_named_in_lower_case():
    a, b = paired(2000, 0.95, 0.60, overlap_seed=1)
    c = compare_predictions("feature extraction", a, "from scratch", b)
    assert c.sentence().startswith("Feature extraction beats from scratch in ")
    assert c.verdict() == "feature extraction beats from scratch"  # table cells keep the name as given
    # the interval half-width is the paired Wald one: 1.96 * sqrt(b + c - (b - c)^2 / n) / n
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    expected = 1.959964 * np.sqrt(only_a + only_b - (only_a - only_b) ** 2 / 2000) / 2000
    assert c.half_width == pytest.approx(expected, rel=1e-6)


def test_the_loser_named_first_still_loses():
    a, b = paired(2000, 0.70, 0.90, 1)
    c = compare_predictions("A", a, "B", b)
    assert c.winner == "B" and c.diff < 0


def test_seed_rule_uses_the_spread():
    assert compare_seeds("A", [0.90, 0.91, 0.92], "B", [0.80, 0.81, 0.79]).winner == "A"
    tie = compare_seeds("A", [0.90, 0.93, 0.87], "B", [0.89, 0.92, 0.86])
    assert tie.winner is None and "seed spread" in tie.sentence()
    lower = compare_seeds("A", [1.0, 1.1], "B", [2.0, 2.1], higher_is_better=False, percent=False, metric="MSE")
    assert lower.winner == "A"
    with pytest.raises(ValueError):
        compare_seeds("A", [0.9], "B", [0.8])


def test_compare_runs_picks_the_statistic():
    a, b = paired(500, 0.95, 0.60, 2)
    assert compare_runs("A", "B", seeds_a=[0.95], seeds_b=[0.6], correct_a=a, correct_b=b).method == "mcnemar"
    assert compare_runs("A", "B", seeds_a=[0.9, 0.91], seeds_b=[0.8, 0.81]).method == "seeds"
    with pytest.raises(ValueError):
        compare_runs("A", "B", seeds_a=[0.9], seeds_b=[0.8])


def test_errors_paired_bootstrap():
    rng = np.random.default_rng(3)
    base = rng.random(400)
    clear = compare_errors("model", base * 0.5, "baseline", base)
    assert clear.winner == "model" and not clear.percent
    noise = rng.normal(0, 1e-3, 400)
    tie = compare_errors("model", base + noise, "baseline", base)
    assert tie.winner is None and "No measurable difference" in tie.sentence()


def test_accuracy_interval_is_wilson():
    lo, hi = accuracy_interval(0.9, 100)
    assert lo == pytest.approx(0.8256, abs=1e-3) and hi == pytest.approx(0.9448, abs=1e-3)
    assert describe_accuracy(0.9, 100).startswith("90.0% (95% interval 82.6–94.5%, 100 test examples)")


def test_bootstrap_interval_covers_the_mean():
    values = np.random.default_rng(0).normal(5.0, 1.0, 1000)
    lo, hi = bootstrap_interval(values)
    assert lo < values.mean() < hi and hi - lo < 0.2


def test_confusion_sentence_names_the_largest_off_diagonal_cell_or_says_there_was_none():
    cm = np.array([[9, 1, 0], [4, 6, 0], [0, 0, 10]])
    assert confusion_sentence(cm, ["a", "b", "c"]) == ("The most frequent confusion was **b taken for a** "
                                                       "(4 of 10 test images of b).")
    perfect = np.diag([5, 7])
    assert confusion_sentence(perfect, ["a", "b"]) == "No test image was misclassified (12 of 12 right)."


def test_a_pipe_inside_a_cell_cannot_break_the_table():
    from utils.reports import render_markdown

    html = render_markdown("intro\n\n" + table(["weight", "|difference|"], [("w1", "3.6e-11"), ("a|b", 0.5)]))
    assert html.count("<th>") == 2 and html.count("<td>") == 4
    assert "<th>|difference|</th>" in html and "<td>a|b</td>" in html


def test_confusion_matrix_and_per_class_report_match_scikit_learn():
    from sklearn.metrics import classification_report
    from sklearn.metrics import confusion_matrix as sk_confusion

    rng = np.random.default_rng(3)
    true = rng.integers(0, 5, 400)
    true[true == 3] = 2                                                       # class 3 never occurs
    pred = np.where((rng.random(400) < 0.6) & (true < 4), true, rng.integers(0, 4, 400))  # 4 never predicted
    classes = ["a", "b", "c", "d", "e"]
    cm = confusion_matrix(true, pred, 5)
    assert np.array_equal(cm, sk_confusion(true, pred, labels=range(5)))
    ours = per_class_report(cm, classes)
    theirs = classification_report(true, pred, labels=range(5), target_names=classes, output_dict=True,
                                    zero_division=0)
    for c in classes:
        for key in ("precision", "recall", "f1-score", "support"):
            assert ours[c][key] == pytest.approx(theirs[c][key], abs=1e-12), (c, key)
    assert ours["d"]["support"] == 0 and ours["e"]["precision"] == 0.0 and ours["e"]["support"] > 0
    assert np.array_equal(confusion_matrix([0, 1, 2], [0, -1, 2], 3), np.diag([1, 0, 1]))  # -1: no prediction


@pytest.mark.parametrize("right_a, right_b, shown", [
    (340, 290, "A 94.4%, B 80.6%"),        # Δ 13.89 points: shown as 13.8, the difference of what is shown
    (1641, 1643, "A 82.0%, B 82.2%"),      # 82.05% and 82.15%: Δ 0.2 as shown (0.1 unrounded)
    (1640, 1641, "A 82.00%, B 82.05%"),    # same one-decimal value, different accuracies: two decimals
])
def test_the_shown_difference_is_the_difference_of_the_shown_values(right_a, right_b, shown):
    n = 360 if right_a < 1000 else 2000
    a, b = np.arange(n) < right_a, np.arange(n) < right_b
    text = compare_predictions("A", a, "B", b).sentence()
    values = [float(v) for v in re.findall(r"[AB] (\d+\.\d+)%", text)]
    size = re.search(r"(?:by|Δ) (\d+\.\d+) points", text).group(1)
    decimals = len(size.split(".")[1])
    assert f"{abs(values[0] - values[1]):.{decimals}f}" == size, text
    assert shown in text, text
