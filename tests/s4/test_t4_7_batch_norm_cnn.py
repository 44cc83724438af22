"""4.7: steps-to-threshold, verdicts and write-up from hand-built results, and the Result's JSON round trip."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from experiments.s4_cnn.t4_7_batch_norm_cnn import (KINDS, LRS, Result, Run, recording_cross_entropy, steps_below,
                                                    usable, write_up)
from utils.report import compare_predictions
from utils.results import load_result, save_result


def test_steps_below_uses_a_moving_average_and_ignores_nan():
    losses = [3.0] * 10 + [0.5] * 10
    assert steps_below(losses, 1.0) == 15      # all five of steps 11–15 at 0.5: the first mean below 1
    assert steps_below(losses, 1.2) == 14      # steps 10–14: (3 + 4 × 0.5) / 5 = 1.0 < 1.2
    assert steps_below([3.0] * 20, 1.0) is None
    assert steps_below([0.5, float("nan"), 0.5, 0.5, 0.5, 0.5], 1.0) is None  # NaN counts as never below
    assert steps_below([0.5, 0.5], 1.0) is None  # shorter than the window


def test_recording_cross_entropy_keeps_training_steps_only():
    loss_fn, steps = recording_cross_entropy()
    logits = torch.randn(5, 3, requires_grad=True)
    y = torch.tensor([0, 1, 2, 0, 1])
    train_loss = loss_fn(logits, y)
    loss_fn(logits.detach(), y)  # an evaluation call
    assert steps == [pytest.approx(float(train_loss.detach()))]
    assert torch.allclose(train_loss, F.cross_entropy(logits, y))


def _cmp(acc_bn, acc_plain, n=2000):
    base = np.random.default_rng(0).random(n)
    return compare_predictions(KINDS["batch_norm"], base < acc_bn, KINDS["plain"], base < acc_plain)


def _result(early: dict[float, tuple[float, float]], final: dict[float, tuple[float, float]], diverged=()) -> Result:
    runs = {k: {} for k in KINDS}
    for lr in LRS:
        key = f"{lr:g}"
        for i, kind in enumerate(("batch_norm", "plain")):
            status = "diverged" if (kind, lr) in diverged else "done"
            runs[kind][key] = [Run([2.3, 1.0, 0.5], status, early[lr][i], final[lr][i], final[lr][i], 3, 1.0)]
    return Result("digits", 800, 270, 2000, 2, 32, 0.1, runs,
                  {f"{lr:g}": _cmp(*early[lr]) for lr in LRS}, {f"{lr:g}": _cmp(*final[lr]) for lr in LRS})


def test_ties_everywhere():
    same = {lr: (0.8, 0.8) for lr in LRS}
    r = _result(same, same)
    assert r.verdict == "batch norm ≈ plain at all 3 learning rates (tie)"
    text = write_up(r)
    assert "do not show the textbook's faster convergence" in text
    assert "do not show the textbook's wider usable learning-rate range" in text
    assert "beats" not in text and "2000 test images" in text and "No run diverged" in text


def test_batch_norm_faster_and_less_sensitive():
    early = {0.003: (0.6, 0.3), 0.03: (0.8, 0.8), 0.3: (0.7, 0.1)}
    final = {0.003: (0.8, 0.5), 0.03: (0.9, 0.9), 0.3: (0.85, 0.1)}
    r = _result(early, final, diverged={("plain", 0.3)})
    assert r.verdict == "batch-norm CNN better at lr 0.003, 0.3; tie at 0.03"
    text = write_up(r)
    assert "Batch norm converged faster" in text and "less sensitive to the learning rate here" in text
    # the tie at 0.03 is named as a tie, not folded into "at least as good"
    assert "better at lr 0.003, 0.3 and measurably worse at none (lr 0.03: no measurable difference)" in text
    assert "Diverged" in text and "plain CNN at lr 0.3" in text


def test_plain_better_contradicts_and_mixed_is_mixed():
    early = {0.003: (0.3, 0.6), 0.03: (0.8, 0.8), 0.3: (0.8, 0.8)}
    r = _result(early, early)
    assert r.verdict == "plain CNN better at lr 0.003; tie at 0.03, 0.3"
    text = write_up(r)
    assert "Against the textbook's 'batch norm speeds up training'" in text
    assert "This contradicts the textbook claim" in text
    mixed = {0.003: (0.3, 0.6), 0.03: (0.8, 0.8), 0.3: (0.8, 0.4)}
    assert "Neither is less sensitive overall" in write_up(_result(mixed, mixed))


def test_result_round_trips_through_json(tmp_path):
    r = _result({lr: (0.8, 0.7) for lr in LRS}, {lr: (0.9, 0.7) for lr in LRS})
    r.runs["plain"]["0.3"][0].steps_to_threshold = None
    r.runs["plain"]["0.3"][0].val_accuracy = float("nan")
    save_result(tmp_path / "result.json", r)
    back = load_result(Result, tmp_path / "result.json")
    assert isinstance(back.runs["plain"]["0.3"][0], Run) and back.runs["plain"]["0.3"][0].steps_to_threshold is None
    assert back.final["0.03"].winner == r.final["0.03"].winner == KINDS["batch_norm"]
    assert write_up(back) == write_up(r)


def test_usable_learning_rates_are_within_90_percent_of_the_best():
    early = {0.003: (0.6, 0.3), 0.03: (0.8, 0.8), 0.3: (0.7, 0.1)}
    final = {0.003: (0.85, 0.5), 0.03: (0.9, 0.9), 0.3: (0.8, 0.1)}
    runs = _result(early, final).runs  # val accuracy = final accuracy here; best 0.9, bar 0.81
    assert usable(runs) == {"plain": ["0.03"], "batch_norm": ["0.003", "0.03"]}


def test_runs_at_chance_are_named_and_learned_ones_are_not():
    early = {lr: (0.7, 0.6) for lr in LRS} | {LRS[-1]: (0.105, 0.095)}
    final = {lr: (0.8, 0.75) for lr in LRS} | {LRS[-1]: (0.25, 0.11)}
    text = " ".join(write_up(_result(early, final)).split())
    # ±1.3 points = 2·sqrt(0.1·0.9/2000); 10.5% and 9.5% are inside, 25% is not
    assert ("At chance after one epoch (guessing gives 10.0%; within ±1.3 points, two binomial standard errors on "
            f"2000 images): at lr {LRS[-1]:g} both networks were still guessing") in text
    assert "At chance after 2 epoch(s)" in text and f"at lr {LRS[-1]:g} the plain CNN was still guessing" in text
    assert text.count("still guessing") == 2
    assert "At chance" not in " ".join(write_up(_result({lr: (0.7, 0.6) for lr in LRS},
                                                        {lr: (0.8, 0.75) for lr in LRS})).split())
