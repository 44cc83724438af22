"""3.7 normalization: comparisons through the rule, LR tolerance from the run states, × drawn for failures."""
from __future__ import annotations

import math

import numpy as np

from experiments.s3_regularization._shared_norm import NORMS
from experiments.s3_regularization.t3_7_normalization import NAMES, Result, draw, run_state, write_up
from utils.history import History
from utils.report import compare_predictions
from utils.results import load_result, save_result

N_VAL, N_TEST = 500, 2000


def right(k: int, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[:k] = True
    return out


def make_result(first_right: dict[str, int], test_right: dict[str, int], high_lr_state: dict[str, str]) -> Result:
    lrs = [0.05, 0.5]
    hist = {k: History(train_loss=[2.0, 1.0, 0.8], train_acc=[0.3, 0.6, 0.7], val_loss=[1.8, 1.0, 0.9],
                       val_acc=[first_right[k] / N_VAL, 0.6, 0.7 if k != "layer" else 0.55], epoch_seconds=[1.0] * 3)
            for k in NORMS}
    bn = {"population_mean": np.zeros(4), "population_var": np.ones(4), "running_mean": np.zeros(4),
          "running_var": np.ones(4), "batch_mean": np.full(4, 0.1), "batch_var": np.full(4, 1.2), "batch_size": 32,
          "channels": [2, 2], "running_vs_population_mean_abs_error": 0.01,
          "batch_vs_population_mean_abs_error": 0.1, "running_vs_population_var_rel_error": 0.02,
          "batch_vs_population_var_rel_error": 0.2, "train_vs_eval_logit_mean_abs_diff": 0.4,
          "train_vs_eval_prediction_agreement": 0.9,
          "same_example_other_batch_logit_change": {"train_mode": 0.5, "eval_mode": 0.0},
          "eval_mode_accuracy": 0.8, "batch_sizes": [1, 2, 32], "train_mode_accuracy": [0.45, 0.64, 0.79],
          "eval_examples": N_VAL}
    first = {k: right(v, N_VAL) for k, v in first_right.items()}
    test = {k: right(v, N_TEST) for k, v in test_right.items()}
    return Result(dataset="fashion-mnist", channels=[8, 16, 32], num_classes=10, train_examples=1600,
                  val_examples=N_VAL, test_examples=N_TEST, epochs=3, sweep_epochs=2, batch_size=64, base_lr=0.05,
                  lrs=lrs, seeds=[42], histories=hist,
                  sweep={k: {"0.05": [0.6], "0.5": [0.09 if high_lr_state[k] != "trained" else 0.55]} for k in NORMS},
                  state={k: {"0.05": ["trained"], "0.5": [high_lr_state[k]]} for k in NORMS},
                  first_epoch={k: [v / N_VAL] for k, v in first_right.items()},
                  test_accuracy={k: [v / N_TEST] for k, v in test_right.items()}, target=0.665,
                  to_target={k: [3 if k != "layer" else None] for k in NORMS},
                  epoch_seconds={k: 1.0 for k in NORMS},
                  first_comparison={k: compare_predictions(NAMES[k], first[k], NAMES["none"], first["none"],
                                                           metric="validation accuracy after epoch 1",
                                                           unit="validation images") for k in NORMS if k != "none"},
                  test_comparison={k: compare_predictions(NAMES[k], test[k], NAMES["none"], test["none"])
                                   for k in NORMS if k != "none"}, bn=bn)


TRAINED = {k: "trained" for k in NORMS}


def test_a_first_epoch_tie_is_said_and_no_winner_named():
    r = make_result({k: 300 for k in NORMS}, {k: 1500 for k in NORMS}, TRAINED)
    text = " ".join(write_up(r).split())
    assert "(none of them ahead by the rule)" in text
    assert "No measurable difference between batch norm and no normalization in validation accuracy after epoch 1" in text
    assert "the difference is inside the noise" in text
    assert "beats" not in text
    assert "No normalization trained at every learning rate tried (up to 0.5)" in text
    assert "500 validation" in text and "2000 test images" in text


def test_clear_wins_and_a_high_lr_failure_are_named():
    r = make_result({"none": 70, "batch": 210, "layer": 130, "instance": 220, "group": 170},
                    {"none": 1360, "batch": 1520, "layer": 1190, "instance": 1500, "group": 1380},
                    TRAINED | {"none": "stuck at chance", "group": "diverged"})
    text = " ".join(write_up(r).split())
    assert "Batch norm beats no normalization in validation accuracy after epoch 1 by 28.0 points" in text
    assert "Batch norm converged faster than no normalization, as the textbook expects." in text
    assert "No normalization beats layer norm in test accuracy by 8.5 points" in text
    assert "layer norm led no normalization after epoch 1 (26.0% vs 14.0%) but fell behind by epoch 3" in text
    assert ("At lr 0.5 no normalization was stuck at chance, while batch norm still reached 55.0%, layer norm still "
            "reached 55.0%, instance norm still reached 55.0%.") in text
    assert "Group norm did not: it failed at the same learning rate as no normalization." in text
    assert "no normalization 0.05 (60.0%); batch norm 0.5 (55.0%)" in text
    assert "45.0% with batches of 1 and 79.0% with batches of 32, against 80.0% in eval mode" in text


def test_run_state():
    assert run_state(History(train_loss=[2.0, float("nan")], status="diverged"), 10) == "diverged"
    assert run_state(History(train_loss=[2.4, math.log(10)], val_acc=[0.1, 0.5]), 10) == "stuck at chance"
    assert run_state(History(train_loss=[2.0, 1.0], val_acc=[0.1, 0.12]), 10) == "stuck at chance"
    assert run_state(History(train_loss=[2.0, 1.0], val_acc=[0.1, 0.6]), 10) == "trained"


def test_failed_runs_are_drawn_as_crosses(tmp_path):
    r = make_result({k: 300 for k in NORMS}, {k: 1500 for k in NORMS}, TRAINED | {"none": "diverged"})
    figures = {}

    class Ctx:
        mode = "tiny"

        def save_figure(self, fig, name):
            figures[name] = fig

    draw(Ctx(), r)
    ax = figures["lr_tolerance"].axes[0]
    crosses = [line for line in ax.lines if line.get_marker() == "x" and len(line.get_xdata())]
    assert len(crosses) == 1 and crosses[0].get_xdata()[0] == 0.5 * 1.07 ** -2
    labels = ax.get_legend().get_texts()
    assert [t.get_text() for t in labels].count("diverged or stuck at chance (×, in the network's colour)") == 1
    assert "× = diverged" in ax.get_title()


def test_result_round_trips_through_json(tmp_path):
    r = make_result({k: 300 for k in NORMS}, {k: 1500 for k in NORMS}, TRAINED | {"none": "diverged"})
    save_result(tmp_path / "result.json", r)
    back = load_result(Result, tmp_path / "result.json")
    assert isinstance(back.bn["batch_mean"], np.ndarray)
    assert write_up(back) == write_up(r)
