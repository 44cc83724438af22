"""Scratch learning-rate schedules vs torch.optim.lr_scheduler, step for step."""
import warnings

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as tls

from scratch import schedules as S
from scratch.optim import SGD

BASE_LR = 0.1


def torch_curve(make_scheduler, n_steps, optimizer_kwargs=None):
    """lr seen by the optimizer at steps 0..n-1 (scheduler.step() after each step)."""
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=BASE_LR, **(optimizer_kwargs or {}))
    scheduler = make_scheduler(optimizer)
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()" is irrelevant here
        for _ in range(n_steps):
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
    return np.array(lrs)


CASES = {
    "constant_factor": (lambda o: tls.ConstantLR(o, factor=0.5, total_iters=4),
                        S.ConstantLR(BASE_LR, factor=0.5, total_iters=4), 12),
    "step": (lambda o: tls.StepLR(o, step_size=3, gamma=0.5), S.StepLR(BASE_LR, 3, 0.5), 20),
    "multistep": (lambda o: tls.MultiStepLR(o, [2, 5, 11], gamma=0.3),
                  S.MultiStepLR(BASE_LR, [2, 5, 11], 0.3), 15),
    "exponential": (lambda o: tls.ExponentialLR(o, gamma=0.9), S.ExponentialLR(BASE_LR, 0.9), 30),
    "polynomial": (lambda o: tls.PolynomialLR(o, total_iters=10, power=2.0),
                   S.PolynomialLR(BASE_LR, 10, 2.0), 15),
    "polynomial_linear": (lambda o: tls.PolynomialLR(o, total_iters=7),
                          S.PolynomialLR(BASE_LR, 7), 10),
    # beyond T_max both keep following the cosine back up
    "cosine": (lambda o: tls.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
               S.CosineAnnealingLR(BASE_LR, 10, 0.001), 35),
    "cyclic_triangular": (lambda o: tls.CyclicLR(o, 0.01, 0.1, step_size_up=4, cycle_momentum=False),
                          S.CyclicLR(0.01, 0.1, 4), 30),
    "cyclic_asymmetric": (lambda o: tls.CyclicLR(o, 0.01, 0.1, step_size_up=3, step_size_down=5,
                                                 cycle_momentum=False),
                          S.CyclicLR(0.01, 0.1, 3, 5), 30),
    "cyclic_triangular2": (lambda o: tls.CyclicLR(o, 0.01, 0.1, 4, mode="triangular2",
                                                  cycle_momentum=False),
                           S.CyclicLR(0.01, 0.1, 4, mode="triangular2"), 30),
    "cyclic_exp_range": (lambda o: tls.CyclicLR(o, 0.01, 0.1, 4, mode="exp_range", gamma=0.95,
                                                cycle_momentum=False),
                         S.CyclicLR(0.01, 0.1, 4, mode="exp_range", gamma=0.95), 30),
    "one_cycle_cos": (lambda o: tls.OneCycleLR(o, max_lr=0.5, total_steps=40),
                      S.OneCycleLR(0.5, 40), 40),
    "one_cycle_linear_three_phase": (
        lambda o: tls.OneCycleLR(o, max_lr=0.5, total_steps=30, pct_start=0.25,
                                 anneal_strategy="linear", div_factor=10.0,
                                 final_div_factor=100.0, three_phase=True),
        S.OneCycleLR(0.5, 30, 0.25, "linear", 10.0, 100.0, three_phase=True), 30),
    "linear": (lambda o: tls.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=8),
               S.LinearLR(BASE_LR, 0.25, 1.0, 8), 15),
    "linear_decay": (lambda o: tls.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=6),
                     S.LinearLR(BASE_LR, 1.0, 0.1, 6), 10),
    "linear_warmup": (lambda o: tls.LinearLR(o, start_factor=0.1, total_iters=5),
                      S.LinearWarmup(BASE_LR, 5, start_factor=0.1), 10),
    "warmup_cosine": (lambda o: tls.SequentialLR(
                          o, [tls.LinearLR(o, start_factor=0.1, total_iters=5),
                              tls.CosineAnnealingLR(o, T_max=15, eta_min=0.002)], milestones=[5]),
                      S.WarmupCosine(BASE_LR, 5, 20, eta_min=0.002, start_factor=0.1), 20),
    "sequential_step_exp": (lambda o: tls.SequentialLR(
                                o, [tls.StepLR(o, 2, 0.5), tls.ExponentialLR(o, 0.8)],
                                milestones=[7]),
                            S.SequentialLR([S.StepLR(BASE_LR, 2, 0.5), S.ExponentialLR(BASE_LR, 0.8)],
                                           [7]), 15),
}


@pytest.mark.parametrize("name", list(CASES))
def test_schedule_matches_torch(name):
    make_torch, schedule, n_steps = CASES[name]
    # one-cycle sets momentum too; give it an optimizer that has one
    kwargs = {"momentum": 0.9} if name.startswith("one_cycle") else None
    expected = torch_curve(make_torch, n_steps, kwargs)
    ours = S.lr_curve(schedule, n_steps)
    assert ours.shape == (n_steps,)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-10)
    assert len(np.unique(np.round(ours, 12))) > 1  # a real schedule, not a constant


def test_plain_constant_and_warmup_from_zero():
    np.testing.assert_array_equal(S.lr_curve(S.ConstantLR(0.3), 5), [0.3] * 5)
    np.testing.assert_allclose(S.lr_curve(S.LinearWarmup(1.0, 4), 7),
                               [0, 0.25, 0.5, 0.75, 1, 1, 1])


def test_warmup_cosine_shape():
    schedule = S.WarmupCosine(1.0, warmup_steps=10, total_steps=110, eta_min=0.01)
    curve = S.lr_curve(schedule, 111)
    assert curve[0] == 0 and curve[10] == pytest.approx(1.0)
    assert np.all(np.diff(curve[:11]) > 0) and np.all(np.diff(curve[10:]) < 0)
    assert curve[110] == pytest.approx(0.01)
    with pytest.raises(ValueError):
        S.WarmupCosine(1.0, warmup_steps=10, total_steps=10)


def test_polynomial_end_lr_extension():
    curve = S.lr_curve(S.PolynomialLR(1.0, total_iters=4, power=1.0, end_lr=0.2), 6)
    np.testing.assert_allclose(curve, [1.0, 0.8, 0.6, 0.4, 0.2, 0.2])


def test_one_cycle_refuses_steps_beyond_total():
    schedule = S.OneCycleLR(1.0, total_steps=10)
    schedule.lr_at(10)
    with pytest.raises(ValueError):
        schedule.lr_at(11)


def test_apply_sets_optimizer_lr():
    param = np.zeros(2)
    optimizer = SGD([param], lr=1.0)
    schedule = S.StepLR(0.5, step_size=2, gamma=0.1)
    for t, expected in enumerate([0.5, 0.5, 0.05, 0.05]):
        assert schedule.apply(optimizer, t) == pytest.approx(expected)
        assert optimizer.lr == pytest.approx(expected)
        optimizer.step([np.ones(2)])
    np.testing.assert_allclose(param, -1.1)
