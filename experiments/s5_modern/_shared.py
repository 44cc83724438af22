"""Helpers the section-5 tasks share: one training recipe (SGD-Nesterov or Adam with a one-cycle
schedule, label smoothing, whole-batch augmentation), paired per-example outcomes for the comparison
rule, per-layer gradient norms, per-class subsets, and torchvision's ImageNet ResNet-18 weights
(downloaded into data/weights/, their sha256 checked against the prefix in the file name)."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from utils.augment import compose, random_crop, random_hflip
from utils.data import train_val_split
from utils.download import DataUnavailable, download
from utils.train import predict

RESNET18_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"  # ResNet18_Weights.IMAGENET1K_V1
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def cifar_augment(padding: int = 4):
    """The standard CIFAR pipeline on whole batches: random crop with ``padding`` pixels, then a random
    horizontal flip (each image its own offset and coin)."""
    return compose(lambda x: random_crop(x, padding), random_hflip)


def clip_batch(batch_size: int, n: int, steps: int = 8) -> int:
    """The batch size, clipped so that ``n`` examples still give at least ``steps`` steps per epoch."""
    return max(4, min(batch_size, n // steps))


def train_classifier(ctx, model, train, val, *, epochs: int, lr: float, optimizer: str = "sgd",
                     batch_size: int = 128, weight_decay: float = 5e-4, label_smoothing: float = 0.0,
                     augment=None, seed: int | None = None, description: str = "training", params=None):
    """Train with a one-cycle schedule (warm-up 25%, then annealing to ~0) via ctx.fit; return History.

    optimizer "sgd": SGD with Nesterov momentum 0.9 (the fast CIFAR recipes); "adam": Adam.
    ``params``: the parameters to train (default: all; feature extraction passes the head's only).
    """
    params = list(params if params is not None else model.parameters())
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    batch_size = clip_batch(batch_size, len(train[1]))
    steps = epochs * -(-len(train[1]) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.25)

    def loss_fn(out, y):
        return F.cross_entropy(out, y, label_smoothing=label_smoothing if model.training else 0.0)

    return ctx.fit(model, train, val, epochs=epochs, optimizer=opt, scheduler=sched, scheduler_per_batch=True,
                   batch_size=batch_size, augment=augment, loss_fn=loss_fn, description=description,
                   seed=ctx.seed if seed is None else seed)


def split(ctx, ds, seed: int | None = None):
    """(train, val) from ``ds``'s training images by the preset's fraction (at least one validation image).

    The split holds copies, so ``ds`` lets go of its own training tensors: all of the CIFAR-shaped
    stand-in is 740 MB as float32, and keeping both put 5.4 over 3 GB in HYBRID."""
    train, val = train_val_split(ds.x_train, ds.y_train, ctx.cfg.val_fraction, seed=ctx.seed if seed is None else seed)
    ds.x_train = ds.y_train = None
    return train, val


@torch.no_grad()
def correct_on(model, x, y, device, batch_size: int = 1000, tta: bool = False) -> np.ndarray:
    """Per-example right/wrong (bool array) on (x, y); ``tta`` averages the logits of each image and
    its mirror image (flip test-time augmentation)."""
    model.eval()
    logits = predict(model, x, batch_size, device)
    if tta:
        logits = logits + predict(model, x.flip(-1), batch_size, device)
    return (logits.argmax(1) == y.cpu()).numpy()


@torch.no_grad()
def per_example_loss(model, x, y, device, batch_size: int = 1000) -> np.ndarray:
    """Cross-entropy of each example (eval mode): the paired errors for utils.report.compare_errors."""
    model.eval()
    logits = predict(model, x, batch_size, device)
    return F.cross_entropy(logits, y.cpu(), reduction="none").numpy()


def conv_gradient_norms(model, x, y, device) -> list[float]:
    """‖∂loss/∂W‖₂ of every 3×3 conv weight on the main path, input to output, on one batch (train mode,
    so batch norm uses the batch's statistics as during training). Shortcut 1×1 convs are left out."""
    model.train()
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x.to(device)), y.to(device))
    loss.backward()
    norms = [float(m.weight.grad.norm()) for m in model.modules()
             if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    model.zero_grad(set_to_none=True)
    return norms


def per_class_subset(y, per_class: int | None, classes, seed: int) -> torch.Tensor:
    """Indices of ``per_class`` random examples of each class in ``classes`` (all of them for None or when
    a class has fewer), in a fixed order for one seed."""
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in classes:
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        picks.append(idx if per_class is None else idx[:per_class])
    return torch.cat(picks).sort().values


def per_class_accuracy(correct: np.ndarray, y, classes) -> dict[str, float]:
    y = np.asarray(y)
    return {name: float(correct[y == i].mean()) if (y == i).any() else float("nan")
            for i, name in enumerate(classes)}


# ----------------------------------------------------------------------------- ImageNet weights (5.3)
def sha256_prefix_ok(path: Path) -> bool:
    """torchvision's weight files carry the first hex digits of their sha256 in the name
    (``resnet18-f37072fd.pth``); True when the file's hash starts with them."""
    m = re.search(r"-([0-9a-f]{8,})\.", Path(path).name)
    if m is None:
        return False
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest().startswith(m.group(1))


def imagenet_resnet18_state(data_dir: Path, url: str = RESNET18_URL) -> dict:
    """torchvision's ImageNet ResNet-18 state dict, downloaded once into ``data_dir/weights`` and
    hash-checked. Raises DataUnavailable (offline: within seconds) when it cannot be had."""
    dest = Path(data_dir) / "weights" / url.rsplit("/", 1)[-1]
    download(url, dest)
    if not sha256_prefix_ok(dest):
        raise DataUnavailable(f"{dest} does not match the sha256 prefix in its name; delete it to re-download")
    return torch.load(dest, map_location="cpu", weights_only=True)


def imagenet_view(ds, x, size: int = 224):
    """Our normalised (N, C, H, W) batch as the ImageNet weights expect it: pixels back to [0, 1], grey
    repeated to RGB, resized to ``size`` (bilinear) and normalised with ImageNet's mean and std."""
    mean = torch.tensor(ds.mean, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(ds.std, device=x.device).view(1, -1, 1, 1)
    x = (x * std + mean).clamp(0, 1)
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    m = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s


def curves_figure(histories: dict, title: str, log_loss: bool = False):
    """Loss | accuracy panels for named histories (train solid, validation dashed), one legend outside.
    (utils.plotting.history_figure does the same; its legend_outside(sources=...) needs ``np`` imported
    in utils/plotting.py, which it is not at the time of writing.)"""
    from utils.plotting import legend_outside, plot_history, plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, hist in histories.items():
        plot_history(list(axes), hist, label=name)
    axes[0].set_title("loss")
    if log_loss:  # a spike (e.g. batch-norm statistics of tiny batches) would flatten every other curve
        axes[0].set_yscale("log")
        axes[0].set_ylabel("loss (cross-entropy, log scale)")
    axes[1].set_title("accuracy")
    legend_outside(axes[1])
    fig.suptitle(title)
    return fig
