"""2.3 schedules: every scratch schedule equals torch.optim.lr_scheduler's, reduce-on-plateau included,
and the analysis names a best schedule only when the comparison rule does."""
from __future__ import annotations

import numpy as np
import pytest

from experiments.s2_optimization._shared_a import CosineWarmRestarts, PlateauLR, torch_plateau_lrs
from experiments.s2_optimization.t2_3_lr_schedules import (CONSTANT, PLATEAU, RESTARTS, WARMUP, Result,
                                                           make_schedules, torch_schedule_curve, write_up)
from scratch.schedules import lr_curve
from utils.history import History


def test_schedules_match_torch_and_end_where_stated(single_torch_thread):
    total, base = 80, 0.1
    schedules = make_schedules(base, total)
    assert len(schedules) == 9
    for name, schedule in schedules.items():
        curve = lr_curve(schedule, total)
        np.testing.assert_allclose(curve, torch_schedule_curve(name, base, total), atol=1e-12, err_msg=name)
        assert curve.max() <= base * (1 + 1e-12)
    assert lr_curve(schedules["exponential (to 1%)"], total + 1)[-1] == pytest.approx(0.01 * base)
    assert lr_curve(schedules["cosine"], total + 1)[-1] == pytest.approx(0, abs=1e-15)


def test_warm_restarts_jump_back_at_the_end_of_each_doubling_cycle():
    curve = lr_curve(CosineWarmRestarts(1.0, T_0=10, T_mult=2), 70)
    restarts = [t for t in range(1, 70) if curve[t] > curve[t - 1]]
    assert restarts == [10, 30]                         # cycles of 10, 20, then 40 steps
    assert curve[0] == curve[10] == curve[30] == 1.0 and curve[9] < 0.03 and curve[69] > 0
    assert lr_curve(make_schedules(0.1, 510)[RESTARTS], 510)[-1] < 1e-3   # the last cycle ends with the run


def test_plateau_matches_torch_on_the_same_metrics():
    metrics = [1.0, 0.8, 0.81, 0.82, 0.7, 0.7, 0.7, 0.69999, 0.5, 0.6, 0.6]
    for patience in (0, 1, 2):
        sched, ours = PlateauLR(0.1, factor=0.1, patience=patience), []
        for m in metrics:
            sched.step(m)
            ours.append(sched.lr_at(0))
        np.testing.assert_allclose(ours, torch_plateau_lrs(0.1, metrics, 0.1, patience), rtol=1e-12)
    sched = PlateauLR(0.1, factor=0.1, patience=1)
    for m in [1.0, 1.0, 1.0]:
        sched.step(m)
    assert sched.lr == pytest.approx(0.01)               # two evaluations without improvement: cut once


def result(acc: dict[str, float], n: int = 2000) -> Result:
    names = [*make_schedules(0.1, 30), PLATEAU]
    curves = {k: np.linspace(0.1, 0.1 if k in (CONSTANT, WARMUP) else 0.001, 30) for k in names}
    hist = {k: History(train_loss=[1.0, 0.5, 0.4], val_loss=[1.0, 0.9, 0.8], val_acc=[0.7, 0.8, acc[k]],
                       lr=[0.1, 0.1, 0.01] if k == PLATEAU else [0.1, 0.1, 0.1]) for k in names}
    rng = np.random.default_rng(0)     # independent right/wrong answers: discordant pairs both ways
    correct = {k: np.isin(np.arange(n), rng.permutation(n)[:round(acc[k] * n)]) for k in names}
    return Result("fashion-mnist", 5400, 600, n, 3, 30, 1, np.arange(30), curves, dict.fromkeys(names, 1e-17), hist,
                  {k: [acc[k]] for k in names}, correct, [42])


def test_write_up_calls_the_top_group_a_tie_and_keeps_the_headline_honest():
    names = [*make_schedules(0.1, 30), PLATEAU]
    acc = {k: 0.84 for k in names} | {"cosine": 0.842, CONSTANT: 0.838}
    text = write_up(result(acc))
    assert "so no single best schedule is named" in text and "best schedule here" not in text
    assert "could not be told from the constant lr on 2000 test images" in text
    assert "cut the lr before epoch 3, ending at 0.01" in text


def test_write_up_names_a_clear_winner():
    names = [*make_schedules(0.1, 30), PLATEAU]
    acc = {k: 0.75 for k in names} | {"one-cycle": 0.86}
    text = write_up(result(acc))
    assert "**one-cycle is the best schedule here**: it measurably beats each of the other nine." in text
    assert "As the textbook expects, scheduling helped: One-cycle beats constant" in text
    assert "No measurable difference between linear warm-up (10%) and constant" in text   # both 75%


def test_comparison_table_shows_the_difference_of_the_shown_accuracies():
    from experiments.s2_optimization._shared_a import comparison_table
    from utils.report import compare_predictions

    a, b = np.arange(2000) < 1641, np.arange(2000) < 1643          # 82.05% and 82.15%: shown as 82.0% and 82.2%
    row = comparison_table([compare_predictions("cosine", a, "step", b)]).splitlines()[-1]
    assert "82.0% vs 82.2%" in row and "-0.2 ±" in row
