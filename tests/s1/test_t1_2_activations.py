"""1.2 activations: scratch activations match torch, and "X trains better" is said only through the rule."""
from __future__ import annotations

import numpy as np
import pytest

from experiments.common.scratch_training import scratch_mlp
from experiments.s1_foundations.t1_2_activations import (ACTIVATION_NAMES, LABEL, Result, activation_vs_torch,
                                                         epochs_to_reach, first_to_last_gradient, top_group, write_up)
from utils.history import History
from utils.report import compare_predictions
from utils.results import load_result, save_result

N = 360


def correct(k: int, shift: int = 0) -> np.ndarray:
    """k right answers out of N, starting at ``shift`` (so two arrays overlap as much as possible)."""
    out = np.zeros(N, dtype=bool)
    out[shift:shift + k] = True
    return out


def make_result(final_right: dict[str, int], early_right: dict[str, int]) -> Result:
    final = {n: correct(final_right[n]) for n in ACTIVATION_NAMES}
    early = {n: correct(early_right[n]) for n in ACTIVATION_NAMES}
    top = max(ACTIVATION_NAMES, key=lambda n: final_right[n])
    hist = {n: [History(train_loss=[2.0, 0.5], val_loss=[1.0, 0.4], val_acc=[early_right[n] / N, final_right[n] / N])]
            for n in ACTIVATION_NAMES}
    return Result(seeds=[42], epochs=2, early_epoch=1, lr=0.05, held_out=N,
                  diffs={n: [1e-16, 2e-16] for n in ACTIVATION_NAMES}, histories=hist,
                  early_acc={n: [early_right[n] / N] for n in ACTIVATION_NAMES},
                  final_acc={n: [final_right[n] / N] for n in ACTIVATION_NAMES},
                  grad_ratio={n: (0.04 if n == "sigmoid" else 1.1) for n in ACTIVATION_NAMES},
                  vs_top={n: compare_predictions(LABEL[top], final[top], LABEL[n], final[n])
                          for n in ACTIVATION_NAMES if n != top},
                  textbook={"early": compare_predictions("ReLU", early["relu"], "sigmoid", early["sigmoid"]),
                            "final": compare_predictions("ReLU", final["relu"], "sigmoid", final["sigmoid"])})


def test_activations_match_torch():
    x = np.linspace(-5, 5, 201)
    for name in ACTIVATION_NAMES:
        value_gap, grad_gap = activation_vs_torch(name, x)
        assert value_gap < 1e-12 and grad_gap < 1e-12, name


def test_epochs_to_reach():
    assert epochs_to_reach([0.5, 0.8, 0.92, 0.95], 0.9) == 3
    assert epochs_to_reach([0.5, 0.9], 0.9) == 2
    assert epochs_to_reach([0.5, 0.6], 0.9) is None


def test_sigmoid_shrinks_the_first_layer_gradient():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((128, 64)).astype(np.float32), rng.integers(0, 10, 128)
    ratios = {a: first_to_last_gradient(scratch_mlp((64, 64, 64, 10), a, seed=0), x, y) for a in ("sigmoid", "relu")}
    assert ratios["sigmoid"] < 0.2 * ratios["relu"]


def test_close_accuracies_are_a_tie_and_no_best_is_named():
    right = {n: 340 for n in ACTIVATION_NAMES} | {"gelu": 342, "sigmoid": 338}
    r = make_result(right, {n: 300 for n in ACTIVATION_NAMES} | {"sigmoid": 298})
    assert top_group(r) == ["gelu"] + [n for n in ACTIVATION_NAMES if n != "gelu"]
    text = " ".join(write_up(r).split())
    assert "8 activations cannot be told apart at the top" in text and "none of them is the best" in text
    assert "single best" not in text and "beats" not in text
    assert "the rule does not support that here" in text
    assert "360 held-out digits" in text


def test_a_clear_gap_names_the_winner():
    right = {n: 345 for n in ACTIVATION_NAMES} | {"relu": 350, "sigmoid": 300}
    r = make_result(right, {n: 320 for n in ACTIVATION_NAMES} | {"sigmoid": 40})
    assert "sigmoid" not in top_group(r)
    text = " ".join(write_up(r).split())
    assert "Measurably behind ReLU: sigmoid." in text
    assert "This is the textbook result: ReLU trained faster than sigmoid. ReLU beats sigmoid" in text
    assert "At the end of training: ReLU beats sigmoid in test accuracy by 13.9 points" in text
    assert "(28 times smaller relative to the last layer for sigmoid)" in text


def test_result_round_trips_through_json(tmp_path):
    r = make_result({n: 345 for n in ACTIVATION_NAMES}, {n: 320 for n in ACTIVATION_NAMES})
    save_result(tmp_path / "result.json", r)
    back = load_result(Result, tmp_path / "result.json")
    assert write_up(back) == write_up(r)
    assert isinstance(back.histories["relu"][0], History)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_every_activation_has_a_torch_twin(name):
    from experiments.s1_foundations.t1_2_activations import torch_activation

    assert callable(torch_activation(name))
