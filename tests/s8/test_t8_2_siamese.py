"""8.2's write-up from hand-built results: ties called ties, clear winners named, transfer to unseen classes and the
silhouette note built from the numbers; the threshold search picks the best cut."""
from __future__ import annotations

import numpy as np

from experiments.s8_generative.t8_2_siamese import Result, _best_threshold, write_up
from utils.report import compare_errors, compare_predictions

CLASSES = [f"c{i}" for i in range(10)]


def _result(shot_a, shot_b, sil_unseen=0.1):
    rng = np.random.default_rng(0)
    n = 400
    pair_a = rng.random(n) < 0.8
    pair_b = pair_a.copy()
    err_a = np.clip(1 - shot_a + rng.normal(0, 0.05, n), 0, 1)
    err_b = np.clip(1 - shot_b + rng.normal(0, 0.05, n), 0, 1)
    err_p = np.clip(0.6 + rng.normal(0, 0.05, n), 0, 1)
    one = {"contrastive": shot_a, "triplet": shot_b, "pixels": 0.4}
    return Result("fashion-mnist", CLASSES, [0, 1, 2, 3, 4], [5, 6, 7, 8, 9], 5000, 1234,
                  {"contrastive": [0.2, 0.1], "triplet": [0.3, 0.2]}, {"contrastive": 10.0, "triplet": 12.0},
                  {"contrastive": 0.6, "triplet": 0.7}, {"contrastive": 0.95, "triplet": 0.94},
                  {"contrastive": 0.8, "triplet": 0.8}, n, {"contrastive": 0.9, "triplet": 0.88, "pixels": 0.7},
                  {m: {"fpr": [0, 1], "tpr": [0, 1]} for m in ("contrastive", "triplet", "pixels")},
                  {m: {"same": [0.1], "different": [0.9]} for m in ("contrastive", "triplet")}, one, 100, n,
                  compare_predictions("contrastive", pair_a, "triplet", pair_b, metric="same/different accuracy"),
                  compare_errors("contrastive", err_a, "triplet", err_b, metric="one-shot error rate"),
                  compare_errors("contrastive embedding", err_a, "pixel distance", err_p, metric="one-shot error rate"),
                  {"contrastive": np.zeros((3, 2)), "triplet": np.zeros((3, 2))}, np.array([0, 5, 9]),
                  {m: {"seen": 0.3, "unseen": sil_unseen} for m in ("contrastive", "triplet")})


def test_tie_is_called_a_tie():
    text = write_up(_result(0.70, 0.70))
    assert "No measurable difference between contrastive and triplet in one-shot error rate" in text
    assert "No measurable difference between contrastive and triplet in same/different accuracy" in text
    assert "contrastive beats triplet" not in text and "triplet beats contrastive" not in text
    assert "Both embeddings are far above the 5-way chance level" in text
    assert "95.0% on seen-class validation pairs → 80.0% on unseen-class test pairs (15.0 points lower)" in text
    assert "cluster less cleanly than the seen ones for contrastive and triplet" in text


def test_clear_winner_named_and_pixels_beaten():
    text = write_up(_result(0.80, 0.60, sil_unseen=0.5))
    assert "Contrastive beats triplet in one-shot error rate" in text
    assert "Contrastive embedding beats pixel distance" in text
    assert "cluster as cleanly as the seen ones" in text


def test_best_threshold_separates_when_possible():
    d = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    same = np.array([True, True, True, False, False])
    cut, acc = _best_threshold(d, same)
    assert 0.3 < cut < 0.8 and acc == 1.0
    cut, acc = _best_threshold(np.array([0.5, 0.4]), np.array([True, False]))
    assert acc == 0.5


def test_pixels_winning_is_flagged_as_against_the_textbook():
    r = _result(0.30, 0.30)
    r.pixel_comparison = compare_errors("contrastive embedding", np.full(50, 0.7), "pixel distance",
                                        np.full(50, 0.3) + np.linspace(0, 0.01, 50), metric="one-shot error rate")
    text = write_up(r)
    assert "Pixel distance beats contrastive embedding" in text and "against the textbook" in text
    assert "unseen-class pairs at only 80.0%" in text
