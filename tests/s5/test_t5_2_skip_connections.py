"""5.2: the write-up from hand-built results (degradation shown, absent, reversed; skips win or tie), JSON round trip."""
from __future__ import annotations

import numpy as np

from experiments.s5_modern.t5_2_skip_connections import Result, write_up
from utils.history import History
from utils.report import compare_errors
from utils.results import load_result, save_result

KEYS = ["plain_8", "resnet_8", "plain_20", "resnet_20"]


def _losses(mean, n=400, seed=0):
    return np.random.default_rng(seed).exponential(mean, n)


def _result(plain_deep=1.2, plain_shallow=0.8, res_deep=0.5, res_shallow=0.8, g_plain=(0.5, 2.0)):
    base = np.random.default_rng(1).exponential(1.0, 400)
    loss = {"plain_20": base * plain_deep, "plain_8": base * plain_shallow,
            "resnet_20": base * res_deep, "resnet_8": base * res_shallow}
    hist = {k: History(train_loss=[2.0, float(loss[k].mean())]) for k in KEYS}
    g0 = {k: [1.0, 1.0, 1.0] for k in KEYS}
    g0["plain_20"] = [g_plain[0], 1.0, g_plain[1]]
    return Result("cifar10", [8, 20], 8, hist, g0, {k: [0.1, 0.2, 0.3] for k in KEYS},
                  {k: 1000 for k in KEYS}, {k: float(loss[k].mean()) for k in KEYS},
                  {k: float(loss[k].mean()) for k in KEYS}, {k: 0.7 for k in KEYS}, 500, 400,
                  compare_errors("plain-20", loss["plain_20"], "ResNet-20", loss["resnet_20"], metric="training loss"),
                  compare_errors("plain-20", loss["plain_20"], "plain-8", loss["plain_8"], metric="training loss"),
                  compare_errors("ResNet-20", loss["resnet_20"], "ResNet-8", loss["resnet_8"], metric="training loss"))


def test_degradation_and_the_skip_win_are_named():
    text = write_up(_result())
    assert "The deeper plain network degrades" in text
    assert "Plain-8 beats plain-20" in text
    assert "With skips the deep network trains better" in text and "ResNet-20 beats plain-20" in text


def test_a_tie_is_called_a_tie_and_names_no_winner():
    r = _result(plain_deep=0.8, plain_shallow=0.8, res_deep=0.8)
    text = write_up(r)
    assert "No measurable degradation at this budget" in text and "No measurable difference" in text
    assert "Skips made no measurable difference" in text
    assert "beats plain" not in text and r.skip.winner is None and r.degradation.winner is None


def test_against_the_textbook_is_said_with_the_reason():
    text = write_up(_result(plain_deep=0.5, plain_shallow=1.0))
    assert "Against the textbook, the deeper plain network did not degrade" in text
    assert "Plain-20 beats plain-8" in text


def test_gradient_sentence_follows_the_measured_ratio():
    shrinking = write_up(_result(g_plain=(0.1, 2.0)))          # plain first/last = 0.05 < ResNet's 1 / 2
    assert "At initialisation the plain-20 input layer gets 20.0× less of the gradient" in shrinking
    assert "ratio 0.05 vs 1" in shrinking and "after training the plain-20 input layer does not get" in shrinking
    somewhat = write_up(_result(g_plain=(1.5, 2.0)))           # 0.75: smaller, but by less than 2×
    assert "At initialisation the plain-20 input layer gets a somewhat smaller share" in somewhat
    assert "does not get a smaller share than the ResNet's (first/last-layer norm ratio 0.75" not in somewhat
    not_shrinking = write_up(_result(g_plain=(4.0, 2.0)))      # 2 > 1
    assert "At initialisation the plain-20 input layer does not get a smaller share" in not_shrinking


def test_table_lists_every_model(tmp_path):
    r = _result()
    text = write_up(r)
    for name in ("plain-8", "ResNet-8", "plain-20", "ResNet-20"):
        assert f"| {name} |" in text
    save_result(tmp_path / "r.json", r)
    back = load_result(Result, tmp_path / "r.json")
    assert write_up(back) == text
