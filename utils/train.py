"""The shared PyTorch training loop: fit() and evaluate() on in-memory tensors.

Batches are slices of tensors already in memory (no DataLoader, no per-sample Python), so
the loop costs little beyond the model itself. fit() keeps a history, steps an optional LR
scheduler, clips gradients, stops early with a *copy* of the best weights restored, and
ends a run whose loss turns NaN/inf as ``diverged`` instead of crashing.
"""
from __future__ import annotations

import math
import time
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from utils.console import progress_bar
from utils.distributed import rank as dist_rank
from utils.distributed import world_size
from utils.history import History


def _finite_everywhere(loss: torch.Tensor, world: int) -> bool:
    """Whether the loss is finite on every rank (all ranks must stop together, or they hang)."""
    ok = bool(torch.isfinite(loss))
    if world == 1:
        return ok
    flag = torch.tensor([0.0 if ok else 1.0], device=loss.device)
    torch.distributed.all_reduce(flag)
    return float(flag) == 0.0



def batches(n: int, batch_size: int, shuffle: bool, generator: torch.Generator | None = None):
    """Index tensors covering range(n) in mini-batches."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000, device=None) -> torch.Tensor:
    """Model outputs for all of ``x`` (eval mode), on the CPU."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    outs = [model(x[idx].to(device, non_blocking=True)).float().cpu() for idx in batches(len(x), batch_size, False)]
    model.train(was_training)
    return torch.cat(outs)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable = F.cross_entropy,
             batch_size: int = 1000, device=None, accuracy: bool = True) -> tuple[float, float | None]:
    """Mean loss and (for classifiers) accuracy of ``model`` on (x, y)."""
    out = predict(model, x, batch_size, device)
    loss = float(loss_fn(out, y.cpu()))
    acc = float((out.argmax(1) == y.cpu()).float().mean()) if accuracy else None
    return loss, acc


def state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    """A true copy of the weights (cloned tensors, not references to the live ones)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def fit(model: nn.Module, train: tuple[torch.Tensor, torch.Tensor],
        val: tuple[torch.Tensor, torch.Tensor] | None = None, *,
        epochs: int, optimizer: torch.optim.Optimizer, loss_fn: Callable = F.cross_entropy,
        batch_size: int = 128, device: torch.device | str = "cpu",
        scheduler=None, scheduler_per_batch: bool = False,
        patience: int | None = None, restore_best: bool = True, min_delta: float = 0.0,
        clip_grad_norm: float | None = None, augment: Callable | None = None,
        accuracy: bool = True, seed: int = 0, log: Callable | None = None,
        description: str = "training", eval_batch_size: int = 1000,
        on_epoch_end: Callable | None = None, amp: bool = True, channels_last: bool | None = None) -> History:
    """Train ``model`` on in-memory tensors; return its history.

    patience: stop when validation loss has not improved by ``min_delta`` for this many
        epochs; with ``restore_best`` the best epoch's weights are copied back.
    A run whose loss turns NaN/inf ends as ``diverged``; with ``restore_best`` it ends with
    the best epoch's weights (when one was finite), never with the diverged ones.
    augment: a function applied to each whole training batch on the device.
    on_epoch_end(epoch, model, result): called after each epoch (e.g. gradient probes).
    amp: on a CUDA device, mixed precision (float16 autocast with a gradient scaler); the CPU
        path never uses it. channels_last: the model and image batches in NHWC memory layout;
        None (default) turns it on for convolutional models on CUDA (it feeds the tensor cores
        under autocast). On the CPU it is opt-in (only 4.9 lays its own network out so): faster for 4.3's SmallCNN
        (7.4 -> 5.5 s per epoch on 2 cores), but its results then depend on the thread count (so
        --jobs would no longer reproduce a serial run), and torch 2.14's oneDNN hangs or crashes
        in the backward pass of a 1×1 stride-2 convolution with fewer than 8 input channels.
    """
    device = torch.device(device)
    if channels_last is None:
        channels_last = device.type == "cuda" and any(isinstance(m, nn.Conv2d) for m in model.modules())
    use_amp = amp and device.type == "cuda"
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model.to(device, memory_format=memory_format) if channels_last else model.to(device)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    # Under torchrun: DistributedDataParallel, each rank taking its share of every global batch.
    world, rank = world_size(), dist_rank()
    train_model = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        if device.type == "cuda":  # torch's SyncBatchNorm runs on GPUs only; on CPUs each rank keeps its own
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        train_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    x_tr, y_tr = train
    gen = torch.Generator().manual_seed(seed)
    result = History()
    hist = result
    best_loss, best_state, bad_epochs = math.inf, None, 0
    n_batches = math.ceil(len(x_tr) / batch_size)
    start = time.perf_counter()
    with progress_bar(epochs * n_batches, description) as bar:
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            model.train()
            loss_sum, correct, seen = 0.0, 0, 0
            for idx in batches(len(x_tr), batch_size, True, gen):
                if len(idx) == 1 and len(x_tr) > 1:
                    continue  # batch norm cannot train on one example; it is in another batch next epoch
                if world > 1:
                    if len(idx) < 2 * world:
                        continue  # too few examples to give every rank a share
                    idx = idx[rank::world]  # this rank's share; the generator is identical on every rank
                xb = x_tr[idx].to(device, non_blocking=True)
                yb = y_tr[idx].to(device, non_blocking=True)
                if augment is not None:
                    xb = augment(xb)
                if channels_last and xb.ndim == 4:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
                    out = train_model(xb)
                    loss = loss_fn(out, yb)
                if not _finite_everywhere(loss, world):
                    result.status = "diverged"
                    break
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if clip_grad_norm is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                if scheduler is not None and scheduler_per_batch:
                    scheduler.step()
                step_loss = loss.item()
                hist.batch_loss.append(step_loss)
                loss_sum += step_loss * len(idx)
                seen += len(idx)
                if accuracy:
                    correct += int((out.argmax(1) == yb).sum())
                bar.advance(1, info=f"epoch {epoch} loss {loss_sum / seen:.4f}")
            if result.status == "diverged":
                hist.train_loss.append(float("nan"))
                result.stopped_epoch = epoch
                if log:
                    log(f"  [red]diverged[/] at epoch {epoch}: the loss became NaN/inf")
                break
            if world > 1:  # the epoch's loss and accuracy over every rank's share
                totals = torch.tensor([loss_sum, float(correct), float(seen)], dtype=torch.float64)
                torch.distributed.all_reduce(totals)
                loss_sum, correct, seen = float(totals[0]), int(totals[1]), int(totals[2])
            hist.lr.append(optimizer.param_groups[0]["lr"])
            if scheduler is not None and not scheduler_per_batch:
                scheduler.step()
            hist.train_loss.append(loss_sum / max(seen, 1))
            if accuracy:
                hist.train_acc.append(correct / max(seen, 1))
            line = f"  epoch {epoch}/{epochs}  train loss {hist.train_loss[-1]:.4f}"
            if accuracy:
                line += f"  acc {hist.train_acc[-1]:.3f}"
            if val is not None:
                v_loss, v_acc = evaluate(model, val[0], val[1], loss_fn, eval_batch_size, device, accuracy)
                hist.val_loss.append(v_loss)
                if accuracy:
                    hist.val_acc.append(v_acc)
                line += f"  val loss {v_loss:.4f}" + (f"  acc {v_acc:.3f}" if accuracy else "")
            hist.epoch_seconds.append(time.perf_counter() - t0)
            result.stopped_epoch = epoch
            if log:
                log(line + f"  ({hist.epoch_seconds[-1]:.1f}s)")
            if on_epoch_end is not None:
                on_epoch_end(epoch, model, result)
            monitored = hist.val_loss[-1] if val is not None else hist.train_loss[-1]
            if not math.isfinite(monitored):
                result.status = "diverged"
                break
            if monitored < best_loss - min_delta:
                best_loss, bad_epochs, result.best_epoch = monitored, 0, epoch
                if restore_best:  # kept for early stopping, and for a later divergence
                    best_state = state_copy(model)
            else:
                bad_epochs += 1
                if patience is not None and bad_epochs >= patience:
                    result.status = "early_stopped"
                    if log:
                        log(f"  early stop after epoch {epoch}: no improvement for {patience} epochs "
                            f"(best epoch {result.best_epoch})")
                    break
    # Early stopping ends on the best epoch; so does a run that diverged after a good one.
    if best_state is not None and (patience is not None or result.status == "diverged"):
        model.load_state_dict(best_state)
        result.restored_best = True
    result.seconds = time.perf_counter() - start
    return result
