"""2.2 optimizers: scratch paths equal torch.optim's on both surfaces, and the analysis names a winner
only when the comparison rule does."""
from __future__ import annotations

import numpy as np
import pytest

from experiments.s2_optimization._shared_a import (OPTIMIZER_NAMES, SURFACES, TRAJECTORY_LRS, IllConditionedBowl,
                                                   optimizer_trajectory)
from experiments.s2_optimization.t2_2_optimizers import Result, write_up
from utils.history import History


@pytest.mark.parametrize("key", list(SURFACES))
def test_optimizer_trajectories_match_torch(key, single_torch_thread):
    surface = SURFACES[key]
    for name in OPTIMIZER_NAMES:
        path, path_t, grad_gap = optimizer_trajectory(surface, name, TRAJECTORY_LRS[key][name], steps=150)
        assert path.shape == (151, 2)
        assert np.max(np.abs(path - path_t)) < 1e-12, name
        assert grad_gap < 1e-10                                  # hand-written surface gradient vs autograd
        assert surface.value(*path[-1]) < 0.25 * surface.value(*path[0]), name   # it went well downhill


def test_surfaces_have_their_minimum_where_stated():
    for surface in SURFACES.values():
        np.testing.assert_allclose(surface.grad(np.array(surface.minimum)), 0, atol=1e-12)
        assert surface.value(*surface.minimum) == pytest.approx(0, abs=1e-12)
    bowl = IllConditionedBowl()
    eig = np.linalg.eigvalsh([[bowl.a11, bowl.a12], [bowl.a12, bowl.a22]])
    np.testing.assert_allclose(eig, [1, 25], rtol=1e-12)


def result(accuracies: dict[str, float], n: int = 360) -> Result:
    """A hand-built result: optimizer -> test accuracy on n images, the right answers nested (paired)."""
    correct = {k: np.arange(n) < round(a * n) for k, a in accuracies.items()}
    final = {f"{key}/{name}": {"loss": 1e-3 * (i + 1), "distance_to_minimum": 0.1 * (i + 1)}
             for key in SURFACES for i, name in enumerate(OPTIMIZER_NAMES)}
    paths = {key: {name: np.zeros((3, 2)) for name in OPTIMIZER_NAMES} for key in SURFACES}
    hist = {k: History(train_loss=[1.0, 0.5], val_acc=[0.5, a]) for k, a in accuracies.items()}
    return Result(2, paths, {f"{k}/{n_}": 1e-15 for k in SURFACES for n_ in OPTIMIZER_NAMES}, 1e-14, final,
                  {"lr": 0.01, "steps": 700, "max_abs_diff": 0.07, "first_step_above_1e-12": 572}, 15, [42], hist,
                  {k: [a] for k, a in accuracies.items()}, correct, {n_: 2 for n_ in OPTIMIZER_NAMES}, n)


def test_write_up_calls_a_close_race_a_tie():
    acc = dict(zip(OPTIMIZER_NAMES, [0.960, 0.965, 0.963, 0.970, 0.968, 0.967]))
    text = write_up(result(acc))
    assert "RMSprop had the highest test accuracy (97.0%), but by the rule it is no measurably better than" in text
    assert "best optimizer here" not in text and "measurably beats" not in text
    assert "RMSprop ≈ SGD (tie)" in text
    assert "bar 1e-10: passed" in text and "until step 572" in text


def test_write_up_names_a_clear_winner():
    acc = dict(zip(OPTIMIZER_NAMES, [0.70, 0.75, 0.74, 0.72, 0.97, 0.73]))
    text = write_up(result(acc))
    assert "**Adam is the best optimizer here** (97.0%): it measurably beats every other one." in text
    assert "Adam beats SGD" in text and "(tie)" not in text


def test_write_up_reads_the_surfaces_from_the_numbers():
    text = write_up(result(dict.fromkeys(OPTIMIZER_NAMES, 0.9)))
    assert "0.75 along the steep one" in text and "0.93 along the shallow one" in text   # |1 − 0.07·25|, |1 − 0.07|
    assert "Momentum did not help here (0.20 from the minimum)" in text                 # SGD 0.10 < momentum 0.20
