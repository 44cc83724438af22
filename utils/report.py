"""Helpers for analysis.md text built from measured numbers, and the comparison rule.

The point of these is honesty: a comparison sentence states the measured difference and the
evidence for it (seed spread, or a test-set statistic), and a tie is called a tie.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


def pct(x: float, digits: int = 1) -> str:
    """0.9123 -> '91.2%'."""
    return f"{100 * x:.{digits}f}%"


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def spread(values: Sequence[float], fmt=pct) -> str:
    """'91.2% ± 0.3% (3 seeds)' or '91.2% (1 seed)'."""
    m, s = mean_std(values)
    n = len(values)
    return f"{fmt(m)} ± {fmt(s)} ({n} seeds)" if n > 1 else f"{fmt(m)} (1 seed)"


# ------------------------------------------------------------------ the comparison rule
# "A beats B" is said only through one of these. With several seeds the difference must exceed
# the seed-to-seed spread; with one seed a statistic from the test set itself decides: McNemar's
# exact test on paired predictions (classifiers), or a paired bootstrap over test examples
# (errors such as MSE/MAE). Anything else is called a tie, in the sentence and in the headline.

ALPHA = 0.05
Z95 = 1.959964


def plural(n: int, word: str) -> str:
    """'1 seed', '3 seeds'."""
    return f"{n} {word}{'s' if n != 1 else ''}"


def sentence_case(text: str) -> str:
    """``text`` with a leading a–z capitalised, for a name that starts a sentence ("relu beats …"
    -> "Relu beats …"); anything else is kept as given (λ is not Λ, "3 layers" has no case)."""
    return text[:1].upper() + text[1:] if "a" <= text[:1] <= "z" else text


@dataclass
class Comparison:
    """The verdict of one A-vs-B comparison, with everything its sentence needs (JSON-safe)."""
    name_a: str
    name_b: str
    value_a: float               # A's metric (mean over seeds, or on the test set)
    value_b: float
    diff: float                  # value_a - value_b, in the metric's units
    half_width: float            # 95% interval half-width of diff (seeds: sum of the two std devs)
    method: str                  # "seeds" | "mcnemar" | "bootstrap" (paired) | "bootstrap_unpaired" | "binomial"
    n: int                       # seeds per side, or test examples
    higher_is_better: bool = True
    p_value: float | None = None
    percent: bool = True         # values are fractions shown in percentage points
    metric: str = "accuracy"
    unit: str = "test examples"  # what n counts (test examples, seeds, steps, series points…)

    @property
    def significant(self) -> bool:
        if self.method == "seeds":
            return abs(self.diff) > self.half_width
        if self.p_value is not None:
            return self.p_value < ALPHA
        return abs(self.diff) > self.half_width

    @property
    def winner(self) -> str | None:
        """The better one's name, or None for a tie."""
        if not self.significant or self.diff == 0:
            return None
        return self.name_a if (self.diff > 0) == self.higher_is_better else self.name_b

    @property
    def loser(self) -> str | None:
        w = self.winner
        return None if w is None else (self.name_b if w == self.name_a else self.name_a)

    @property
    def _decimals(self) -> int:
        """1, or 2 when two different percentages would both show as the same one-decimal value."""
        same = f"{100 * self.value_a:.1f}" == f"{100 * self.value_b:.1f}"
        return 2 if self.percent and same and self.diff != 0 else 1

    def _size(self, x: float) -> str:
        return f"{100 * abs(x):.{self._decimals}f} points" if self.percent else f"{abs(x):.3g}"

    def shown(self, x: float) -> str:
        """A value as the sentence shows it: '82.0%' (two decimals when A and B would otherwise look equal)."""
        return pct(x, self._decimals) if self.percent else f"{x:.4g}"

    def shown_diff(self, signed: bool = False) -> str:
        """Δ = A − B (points for percentages) as the difference of the two values as shown, so the arithmetic
        checks out by eye: 82.05% and 82.15% show as 82.0% and 82.2%, so Δ 0.2, not 0.1. Off by at most one
        last digit."""
        if not self.percent:
            return f"{self.diff:+.3g}" if signed else f"{abs(self.diff):.3g}"
        d = self._decimals
        delta = float(f"{100 * self.value_a:.{d}f}") - float(f"{100 * self.value_b:.{d}f}") + 0.0  # no "-0.0"
        return f"{delta:+.{d}f}" if signed else f"{abs(delta):.{d}f}"

    def _shown_size(self) -> str:
        return self.shown_diff() + (" points" if self.percent else "")

    def _evidence(self) -> str:
        if self.method == "seeds":
            return f"seed spread ±{self._size(self.half_width)} over {self.n} seeds"
        unit = self.unit
        p = "p < 0.001" if self.p_value is not None and self.p_value < 0.001 else (
            f"p = {self.p_value:.2g}" if self.p_value is not None else "")
        test = {"mcnemar": "McNemar", "binomial": "unpaired two-proportion test",
                "bootstrap_unpaired": "bootstrap of each set on its own"}.get(self.method, "paired bootstrap")
        return f"95% interval ±{self._size(self.half_width)}, {p}, {test}, {self.n} {unit}".replace(", ,", ",")

    def verdict(self) -> str:
        """A few words for headlines: 'A beats B' or 'A ≈ B (tie)'."""
        w = self.winner
        return f"{w} beats {self.loser}" if w else f"{self.name_a} ≈ {self.name_b} (tie)"

    def sentence(self) -> str:
        """One sentence with both values, the difference and the evidence."""
        values = f"{self.name_a} {self.shown(self.value_a)}, {self.name_b} {self.shown(self.value_b)}"
        w = self.winner
        if w is None:
            return (f"No measurable difference between {self.name_a} and {self.name_b} in {self.metric} "
                    f"({values}; Δ {self._shown_size()}, {self._evidence()}).")
        better = "higher" if self.higher_is_better else "lower"
        return (f"{sentence_case(w)} beats {self.loser} in {self.metric} by {self._shown_size()} "
                f"({better} is better; {values}; {self._evidence()}).")


def compare_seeds(name_a: str, a: Sequence[float], name_b: str, b: Sequence[float], *,
                  higher_is_better: bool = True, percent: bool = True, metric: str = "accuracy") -> Comparison:
    """Several seeds per side: a difference counts only when it exceeds the sum of the two
    standard deviations (a deliberately conservative, readable rule)."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError("compare_seeds needs at least two seeds per side; with one seed use "
                         "compare_predictions (classifiers) or compare_errors (MSE/MAE)")
    ma, sa = mean_std(a)
    mb, sb = mean_std(b)
    return Comparison(name_a, name_b, ma, mb, ma - mb, sa + sb, "seeds", min(len(a), len(b)),
                      higher_is_better, None, percent, metric)


def mcnemar_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b and c discordant pairs (binomial, p = 1/2).

    The binomial with p = 1/2 is symmetric, so the two-sided p is 2·P(X ≤ min(b, c)), capped
    at 1 (equal to scipy.stats.binomtest's; scipy.special's CDF avoids importing scipy.stats,
    about a second per process)."""
    from scipy.special import bdtr

    n = b + c
    return 1.0 if n == 0 else min(1.0, 2.0 * float(bdtr(min(b, c), n, 0.5)))  # P = 2·Σ_{i≤k} C(n,i)/2ⁿ


def compare_predictions(name_a: str, correct_a, name_b: str, correct_b, *,
                        metric: str = "test accuracy", unit: str = "test examples") -> Comparison:
    """Two classifiers on the same test examples (one seed): McNemar's exact test on the
    paired right/wrong outcomes, and the accuracy difference with its 95% (Wald, paired)
    interval. ``correct_*``: booleans, one per test example, in the same order."""
    ra = np.asarray(correct_a, dtype=bool).ravel()
    rb = np.asarray(correct_b, dtype=bool).ravel()
    if ra.shape != rb.shape or ra.size == 0:
        raise ValueError("paired predictions must be two equally long, non-empty sequences")
    n = ra.size
    only_a = int((ra & ~rb).sum())
    only_b = int((~ra & rb).sum())
    diff = (only_a - only_b) / n
    se = np.sqrt(max(only_a + only_b - (only_a - only_b) ** 2 / n, 0.0)) / n
    return Comparison(name_a, name_b, float(ra.mean()), float(rb.mean()), float(diff), float(Z95 * se),
                      "mcnemar", n, True, mcnemar_p(only_a, only_b), True, metric, unit)


def compare_errors(name_a: str, errors_a, name_b: str, errors_b, *, metric: str = "MSE",
                   n_boot: int = 2000, seed: int = 0, block: int = 1, unit: str = "test examples") -> Comparison:
    """Two models' per-example errors on the same test examples (lower is better): the
    difference of the means with a paired-bootstrap 95% interval and two-sided p-value.

    ``block`` > 1: a moving-block bootstrap, for errors that are correlated along a series or
    a grid (neighbouring points are not independent evidence)."""
    ea = np.asarray(errors_a, dtype=float).ravel()
    eb = np.asarray(errors_b, dtype=float).ravel()
    if ea.shape != eb.shape or ea.size == 0:
        raise ValueError("paired errors must be two equally long, non-empty sequences")
    d = ea - eb
    boots = _bootstrap_means(d, n_boot, seed, block)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    p = float(min(1.0, 2 * min((boots <= 0).mean(), (boots >= 0).mean())))
    p = max(p, 1.0 / n_boot)
    diff = float(d.mean())
    # The interval may be lopsided; its larger side is the honest half-width.
    half = float(max(hi - diff, diff - lo))
    comp = Comparison(name_a, name_b, float(ea.mean()), float(eb.mean()), diff, half, "bootstrap", d.size,
                      False, p, False, metric, unit)
    if lo <= 0 <= hi:  # the interval holds zero: a tie whatever the p-value's rounding says
        comp.p_value = max(comp.p_value or 0.0, ALPHA)
    return comp


def _bootstrap_means(values: np.ndarray, n_boot: int, seed: int, block: int = 1) -> np.ndarray:
    """Means of ``n_boot`` bootstrap resamples (moving blocks of ``block`` neighbours when > 1)."""
    rng = np.random.default_rng(seed)
    n = values.size
    block = max(1, min(int(block), n))
    if block == 1:
        return values[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    n_blocks = -(-n // block)
    starts = rng.integers(0, n - block + 1, size=(n_boot, n_blocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(n_boot, -1)[:, :n]
    return values[idx].mean(axis=1)


def compare_runs(name_a: str, name_b: str, *, seeds_a: Sequence[float], seeds_b: Sequence[float],
                 correct_a=None, correct_b=None, metric: str = "test accuracy") -> Comparison:
    """The rule in one call for classifiers: seed spread when both sides have several seeds,
    otherwise McNemar on the (last seed's) paired predictions."""
    if len(seeds_a) > 1 and len(seeds_b) > 1:
        return compare_seeds(name_a, seeds_a, name_b, seeds_b, metric=metric)
    if correct_a is None or correct_b is None:
        raise ValueError("one seed: pass the paired test predictions (correct_a, correct_b)")
    return compare_predictions(name_a, correct_a, name_b, correct_b, metric=metric)


def accuracy_interval(accuracy: float, n: int) -> tuple[float, float]:
    """Wilson 95% interval of an accuracy measured on ``n`` test examples."""
    if n <= 0:
        return (float("nan"), float("nan"))
    z2 = Z95 ** 2
    centre = (accuracy + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * np.sqrt(accuracy * (1 - accuracy) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # The interval always holds the measured share (rounding could push a bound past it).
    return float(max(0.0, min(centre - half, accuracy))), float(min(1.0, max(centre + half, accuracy)))


def describe_accuracy(accuracy: float, n: int) -> str:
    """'91.2% (95% interval 89.9–92.4%, 2000 test examples)'."""
    lo, hi = accuracy_interval(accuracy, n)
    return f"{pct(accuracy)} (95% interval {100 * lo:.1f}–{100 * hi:.1f}%, {n} test examples)"


def bootstrap_interval(values, *, n_boot: int = 2000, seed: int = 0, block: int = 1) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of ``values`` (e.g. per-example errors);
    ``block`` > 1 resamples moving blocks, for correlated series."""
    v = np.asarray(values, dtype=float).ravel()
    boots = _bootstrap_means(v, n_boot, seed, block)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(lo), float(hi)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table. A "|" inside a cell is escaped, so that it cannot split the cell (a header
    such as "|difference|" turned 1.1's gradient table into a paragraph)."""
    def cell(v):
        return (f"{v:.4g}" if isinstance(v, float) else str(v)).replace("|", "\\|")
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def confusion_matrix(true, pred, num_classes: int) -> np.ndarray:
    """(K, K) counts, row = true class, column = predicted: scikit-learn's layout, without its
    2.8 s import in every process that runs a classifier task."""
    true, pred = np.asarray(true, dtype=np.int64).ravel(), np.asarray(pred, dtype=np.int64).ravel()
    keep = (true >= 0) & (true < num_classes) & (pred >= 0) & (pred < num_classes)  # e.g. -1: no prediction
    true, pred = true[keep], pred[keep]
    # cell (t, p) has flat index t·K + p
    return np.bincount(true * num_classes + pred, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def per_class_report(cm, classes: Sequence[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support per class from a confusion matrix, as scikit-learn's
    ``classification_report(..., output_dict=True, zero_division=0)`` gives them."""
    cm = np.asarray(cm, dtype=np.float64)
    tp, predicted, actual = np.diag(cm), cm.sum(0), cm.sum(1)

    def ratio(num, den):  # 0 where the denominator is 0 (zero_division=0)
        return np.divide(num, den, out=np.zeros_like(num), where=den > 0)

    precision, recall = ratio(tp, predicted), ratio(tp, actual)       # TP / (TP + FP), TP / (TP + FN)
    f1 = ratio(2 * precision * recall, precision + recall)            # harmonic mean of the two
    return {c: {"precision": float(precision[k]), "recall": float(recall[k]), "f1-score": float(f1[k]),
                "support": int(actual[k])} for k, c in enumerate(classes)}


def per_class_table(report: dict[str, dict[str, float]]) -> str:
    """per_class_report's numbers as a Markdown table, one row per class."""
    return table(["class", "precision", "recall", "F1", "test images"],
                 [(c, pct(m["precision"]), pct(m["recall"]), f"{m['f1-score']:.3f}", int(m["support"]))
                  for c, m in report.items()])


def confusion_sentence(cm, classes) -> str:
    """"The most frequent confusion was **3 taken for 8** (5 of 40 test images)." — or, when the
    confusion matrix has nothing off its diagonal, that no test image was misclassified."""
    ti, pi, n = most_confused(cm)
    if n == 0:
        return f"No test image was misclassified ({int(np.sum(cm))} of {int(np.sum(cm))} right)."
    return (f"The most frequent confusion was **{classes[ti]} taken for {classes[pi]}** ({n} of "
            f"{int(np.sum(cm[ti]))} test images of {classes[ti]}).")


def most_confused(cm) -> tuple[int, int, int]:
    """(true class, predicted class, count) of the largest off-diagonal cell of a confusion matrix."""
    off = np.array(cm, copy=True)
    np.fill_diagonal(off, 0)
    true_idx, pred_idx = np.unravel_index(off.argmax(), off.shape)
    return int(true_idx), int(pred_idx), int(off[true_idx, pred_idx])
