"""The shared training loop: early-stopping restore is a true copy, NaN ends as diverged."""
from __future__ import annotations

import torch
import torch.nn as nn

from utils.train import evaluate, fit, state_copy


def overfitting_problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 20, generator=g)
    y = torch.randint(0, 3, (64,), generator=g)          # random labels: memorised, never generalised
    xv = torch.randn(64, 20, generator=g)
    yv = torch.randint(0, 3, (64,), generator=g)
    return (x, y), (xv, yv)


def test_state_copy_is_not_a_reference():
    model = nn.Linear(3, 2)
    saved = state_copy(model)
    before = saved["weight"].clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    assert torch.equal(saved["weight"], before)


def test_early_stopping_restores_the_best_epoch_weights():
    torch.manual_seed(0)
    train, val = overfitting_problem()
    model = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    res = fit(model, train, val, epochs=60, optimizer=opt, batch_size=16, patience=3)
    assert res.status == "early_stopped" and res.restored_best
    assert res.stopped_epoch == res.best_epoch + 3 < 60
    best = res.history["val_loss"][res.best_epoch - 1]
    assert best == min(res.history["val_loss"])
    val_loss_now, _ = evaluate(model, *val)
    assert abs(val_loss_now - best) < 1e-6                  # weights really are the best epoch's
    assert abs(val_loss_now - res.history["val_loss"][-1]) > 1e-4


def test_without_patience_all_epochs_run_and_history_is_complete():
    train, val = overfitting_problem(1)
    model = nn.Linear(20, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    res = fit(model, train, val, epochs=5, optimizer=opt, scheduler=sched, batch_size=32)
    assert res.status == "done" and res.stopped_epoch == 5
    assert all(len(res.history[k]) == 5 for k in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"))
    assert res.history["lr"] == [0.1, 0.1, 0.05, 0.05, 0.025]


def test_nan_loss_is_reported_as_diverged_not_raised():
    train, val = overfitting_problem(2)
    model = nn.Sequential(nn.Linear(20, 64), nn.Linear(64, 3))
    opt = torch.optim.SGD(model.parameters(), lr=1e6)
    res = fit(model, train, val, epochs=20, optimizer=opt, batch_size=8)
    assert res.status == "diverged" and res.diverged
    assert res.stopped_epoch < 20


def test_regression_without_accuracy_and_augment_is_applied():
    calls = []

    def augment(xb):
        calls.append(xb.shape[0])
        return xb

    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    y = 3 * x
    model = nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    res = fit(model, (x, y), None, epochs=30, optimizer=opt, batch_size=16, accuracy=False,
              loss_fn=nn.functional.mse_loss, augment=augment)
    assert res.history["train_acc"] == [] and res.history["train_loss"][-1] < 1e-3
    assert sum(calls) == 64 * 30


def test_limit_threads_caps_and_restores():
    from threadpoolctl import threadpool_info

    from utils.provenance import limit_threads

    before = torch.get_num_threads()
    with limit_threads(1):
        assert torch.get_num_threads() == 1
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
    assert torch.get_num_threads() == before
