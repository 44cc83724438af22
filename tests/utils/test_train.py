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
    best = res.val_loss[res.best_epoch - 1]
    assert best == min(res.val_loss)
    val_loss_now, _ = evaluate(model, *val)
    assert abs(val_loss_now - best) < 1e-6                  # weights really are the best epoch's
    assert abs(val_loss_now - res.val_loss[-1]) > 1e-4


def test_without_patience_all_epochs_run_and_history_is_complete():
    train, val = overfitting_problem(1)
    model = nn.Linear(20, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    res = fit(model, train, val, epochs=5, optimizer=opt, scheduler=sched, batch_size=32)
    assert res.status == "done" and res.stopped_epoch == 5
    assert all(len(getattr(res, k)) == 5 for k in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"))
    assert res.lr == [0.1, 0.1, 0.05, 0.05, 0.025]
    # one loss per optimizer step (64 examples in batches of 32), whose batch-weighted mean is each epoch's loss
    assert len(res.batch_loss) == 10
    for epoch in range(5):
        assert abs(sum(res.batch_loss[2 * epoch:2 * epoch + 2]) / 2 - res.train_loss[epoch]) < 1e-6


def test_nan_loss_is_reported_as_diverged_not_raised():
    train, val = overfitting_problem(2)
    model = nn.Sequential(nn.Linear(20, 64), nn.Linear(64, 3))
    opt = torch.optim.SGD(model.parameters(), lr=1e6)
    res = fit(model, train, val, epochs=20, optimizer=opt, batch_size=8)
    assert res.status == "diverged" and res.diverged
    assert res.stopped_epoch < 20
    assert all(torch.isfinite(p).all() for p in model.parameters()) or not res.restored_best


def test_divergence_after_the_best_epoch_restores_the_best_weights():
    """A run that diverges after a good epoch ends with that epoch's weights, not the NaN ones."""
    train, val = overfitting_problem(3)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 64), nn.Linear(64, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def blow_up(epoch, model, result):  # after epoch 3, an absurd learning rate
        if epoch == 3:
            opt.param_groups[0]["lr"] = 1e6

    res = fit(model, train, val, epochs=20, optimizer=opt, batch_size=8, on_epoch_end=blow_up)
    assert res.diverged and res.restored_best and res.best_epoch <= 3
    assert all(torch.isfinite(p).all() for p in model.parameters())
    val_loss_now, _ = evaluate(model, *val)
    assert abs(val_loss_now - res.val_loss[res.best_epoch - 1]) < 1e-6


def test_restore_best_false_keeps_the_last_weights():
    torch.manual_seed(0)
    train, val = overfitting_problem()
    model = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    res = fit(model, train, val, epochs=60, optimizer=opt, batch_size=16, patience=3, restore_best=False)
    assert res.status == "early_stopped" and not res.restored_best
    val_loss_now, _ = evaluate(model, *val)
    assert abs(val_loss_now - res.val_loss[-1]) < 1e-6


def test_min_delta_counts_small_improvements_as_none():
    """With a huge min_delta no epoch after the first counts as an improvement: stop after 1 + patience."""
    train, val = overfitting_problem(4)
    model = nn.Linear(20, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    res = fit(model, train, val, epochs=20, optimizer=opt, batch_size=16, patience=2, min_delta=10.0)
    assert res.status == "early_stopped" and res.best_epoch == 1 and res.stopped_epoch == 3


def test_clip_grad_norm_bounds_every_step():
    train, _ = overfitting_problem(5)
    model = nn.Linear(20, 3)
    norms = []
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    step = opt.step

    def recording_step(*a, **k):  # the norm the optimizer sees, after clipping
        norms.append(float(torch.cat([p.grad.flatten() for p in model.parameters()]).norm()))
        return step(*a, **k)

    opt.step = recording_step
    fit(model, (train[0] * 100, train[1]), None, epochs=2, optimizer=opt, batch_size=16, clip_grad_norm=0.5)
    assert norms and max(norms) <= 0.5 + 1e-5


def test_scheduler_per_batch_steps_once_per_batch():
    train, _ = overfitting_problem(6)
    model = nn.Linear(20, 3)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (1 + step))
    fit(model, train, None, epochs=2, optimizer=opt, batch_size=16, scheduler=sched, scheduler_per_batch=True)
    assert sched.last_epoch == 2 * 4                  # 64 examples / 16 = 4 batches per epoch
    assert abs(opt.param_groups[0]["lr"] - 1.0 / 9) < 1e-12


def test_batch_norm_model_meets_a_final_batch_of_one():
    """65 examples in batches of 16 leave one example over; batch norm cannot train on one."""
    g = torch.Generator().manual_seed(7)
    x, y = torch.randn(65, 20, generator=g), torch.randint(0, 3, (65,), generator=g)
    model = nn.Sequential(nn.Linear(20, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    res = fit(model, (x, y), (x[:10], y[:10]), epochs=3, optimizer=opt, batch_size=16)
    assert res.status == "done" and len(res.train_loss) == 3


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
    assert res.train_acc == [] and res.train_loss[-1] < 1e-3
    assert sum(calls) == 64 * 30


def test_limit_threads_caps_and_restores():
    from threadpoolctl import threadpool_info

    from utils.provenance import limit_threads

    before = torch.get_num_threads()
    with limit_threads(1):
        assert torch.get_num_threads() == 1
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
    assert torch.get_num_threads() == before


def test_channels_last_is_opt_in_on_the_cpu():
    # torch 2.14's oneDNN hangs or crashes in the backward pass of a 1×1 stride-2 convolution with
    # fewer than 8 input channels in channels-last layout (a width-4 ResNet's shortcut), so the CPU
    # default must stay contiguous; 5.1's tiny end-to-end run trains exactly that network.
    from models import resnet18_cifar

    torch.manual_seed(0)
    model = resnet18_cifar(10, 3, width=4)
    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    fit(model, (x, y), epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.01), batch_size=8)
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous() and not conv.weight.is_contiguous(memory_format=torch.channels_last)
