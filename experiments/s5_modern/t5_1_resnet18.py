"""5.1 ResNet-18, our own: BasicBlocks [2, 2, 2, 2] with the CIFAR stem (3×3 conv, stride 1, no
max-pool), written out in models.py, checked against torchvision's resnet18 given the same stem and
10 classes (block structure and parameter count), then trained on CIFAR-10: curves, test accuracy,
per-class accuracy. QUICK trains a narrowed copy (every stage's width divided alike) on a subset;
the structure check is always made at the real width, 64.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from experiments.s5_modern._shared import (cifar_augment, correct_on, curves_figure, per_class_accuracy, split,
                                          train_classifier)
from models import count_parameters, resnet18_cifar
from utils.history import History
from utils.plotting import legend_outside, plt
from utils.report import describe_accuracy, pct, table

BUDGET = {
    "tiny": {"width": 4, "epochs": 1, "train_size": 300, "test_size": 200, "lr": 0.05, "batch_size": 64},
    "quick": {"width": 8, "epochs": 3, "train_size": 2000, "test_size": 1000, "lr": 0.1, "batch_size": 64},
    # HYBRID in ≤ 20 min on a 2-core CPU: one thread trains width 16 at ~150 images/s (width 64: ~20)
    "hybrid": {"width": 16, "epochs": 5, "train_size": 20000, "test_size": None, "lr": 0.1, "batch_size": 128},
    "full": {"width": 64, "epochs": 30, "train_size": None, "test_size": None, "lr": 0.1, "batch_size": 128},
}


@dataclass
class Result:
    dataset: str
    classes: list[str]
    width: int
    parameters: int                  # the trained network (its width)
    parameters_full: int             # our ResNet-18 at width 64, 10 classes, 3 channels
    torchvision_parameters: int      # torchvision.models.resnet18 with the same stem and 10 classes
    blocks_ours: list[int]
    blocks_torchvision: list[int]
    shapes_match: bool               # every parameter tensor has the same shape, in the same order
    history: History
    test_accuracy: float
    test_examples: int
    per_class: dict[str, float]
    lr: float = 0.1                  # peak learning rate of the one-cycle schedule


def torchvision_twin() -> nn.Module:
    """torchvision's resnet18 with the CIFAR stem (3×3 conv, stride 1, no max-pool) and 10 classes."""
    import torchvision

    net = torchvision.models.resnet18(weights=None, num_classes=10)
    net.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    net.maxpool = nn.Identity()
    return net


def measure(ctx) -> Result:
    b = ctx.budget
    ours, theirs = resnet18_cifar(10, 3, 64), torchvision_twin()
    shapes = [p.shape for p in ours.parameters()] == [p.shape for p in theirs.parameters()]
    blocks_ours = [len(s) for s in ours.stages]
    blocks_tv = [len(getattr(theirs, f"layer{i}")) for i in range(1, 5)]
    full, tv = count_parameters(ours), count_parameters(theirs)
    del ours, theirs

    ds = ctx.load_images("cifar10", train_size=b.train_size, test_size=b.test_size)
    train, val = split(ctx, ds)
    torch.manual_seed(ctx.seed)
    model = resnet18_cifar(ds.num_classes, ds.shape[0], b.width).to(ctx.device)
    history = train_classifier(ctx, model, train, val, epochs=b.epochs, lr=b.lr, batch_size=b.batch_size,
                               label_smoothing=0.1, augment=cifar_augment(), description="ResNet-18")
    correct = correct_on(model, ds.x_test, ds.y_test, ctx.device, ctx.cfg.eval_batch_size)
    per_class = per_class_accuracy(correct, ds.y_test, ds.classes)
    acc = float(correct.mean())
    ctx.record(test_accuracy=acc, test_examples=len(correct), parameters=count_parameters(model),
               parameters_full_width=full, torchvision_parameters=tv, parameters_match=bool(shapes and full == tv),
               blocks=blocks_ours, per_class_accuracy=per_class, width=b.width, epochs=history.epochs,
               train_examples=len(train[1]), val_examples=len(val[1]),
               final_val_accuracy=history.final("val_acc"), seconds_per_epoch=float(np.mean(history.epoch_seconds)))
    return Result(ds.label, list(ds.classes), b.width, count_parameters(model), full, tv, blocks_ours, blocks_tv,
                  shapes, history, acc, len(correct), per_class, b.lr)


def draw(ctx, r: Result) -> None:
    name = f"ResNet-18 (width {r.width})"
    fig = curves_figure({name: r.history}, f"Our ResNet-18 (width {r.width}) on {r.dataset}: "
                                            f"test accuracy {pct(r.test_accuracy)}")
    ctx.save_figure(fig, "curves")

    fig, ax = plt.subplots(figsize=(8, 4.2))
    values = [100 * r.per_class[c] for c in r.classes]
    ax.bar(range(len(r.classes)), values, color="tab:blue", label=name)
    ax.axhline(100 * r.test_accuracy, color="k", linestyle="--", label=f"overall {pct(r.test_accuracy)}")
    ax.set_xticks(range(len(r.classes)), r.classes, rotation=45, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Per-class test accuracy, {r.dataset} ({r.test_examples} test images)")
    legend_outside(ax)
    ctx.save_figure(fig, "per_class_accuracy")


def write_up(r: Result) -> str:
    h = r.history
    same = r.parameters_full == r.torchvision_parameters
    check = (f"Our ResNet-18 at full width has **{r.parameters_full:,}** parameters; torchvision's `resnet18` with "
             f"the same stem and 10 classes has **{r.torchvision_parameters:,}**"
             + (" — the same count" if same else f" — a difference of {r.parameters_full - r.torchvision_parameters:+,}")
             + f". Blocks per stage: ours {r.blocks_ours}, torchvision's {r.blocks_torchvision}; parameter tensors "
             + ("have identical shapes in the same order." if r.shapes_match else "differ in shape or order."))
    gap = h.final("train_acc") - h.final("val_acc")
    fit = (f"Training accuracy ends {100 * gap:.1f} points above validation: the network has begun to fit its "
           f"training images more closely than new ones." if gap > 0.02 else
           f"Training and validation accuracy end within {100 * abs(gap):.1f} points of each other "
           f"(training {pct(h.final('train_acc'))} with augmentation and label smoothing on, validation "
           f"{pct(h.final('val_acc'))}): no sign of over-fitting at this budget.")
    best_val = int(np.nanargmax(h.val_acc)) + 1 if h.val_acc else 0
    trend = (f"Validation accuracy was still at its best in the last epoch ({pct(h.final('val_acc'))}), so more "
             f"epochs would likely help." if best_val == len(h.val_acc) else
             f"Validation accuracy peaked at epoch {best_val} ({pct(max(h.val_acc))}) and ended at "
             f"{pct(h.final('val_acc'))}.")
    ranked = sorted(r.classes, key=lambda c: r.per_class[c])
    rows = [(c, pct(r.per_class[c])) for c in r.classes]
    width_note = ("" if r.width == 64 else
                  f" The trained copy is narrowed to width {r.width} (every stage divided by {64 // max(r.width, 1)}; "
                  f"{r.parameters:,} parameters) to fit this mode's CPU budget; the structure is the same.")
    return f"""
## The network checked against torchvision
{check}{width_note}

## Training (`curves.png`)
SGD with Nesterov momentum, a one-cycle learning rate (peak {r.lr:g}), label smoothing 0.1, random
crops (4-pixel padding) and horizontal flips on whole batches; {h.epochs} epochs in {h.seconds:.0f} s
({np.mean(h.epoch_seconds):.1f} s per epoch). {fit} {trend}

## Test accuracy (`per_class_accuracy.png`)
**{describe_accuracy(r.test_accuracy, r.test_examples)}** on the {r.dataset} test set. The hardest class
was {ranked[0]} ({pct(r.per_class[ranked[0]])}), then {ranked[1]} ({pct(r.per_class[ranked[1]])}); the easiest
{ranked[-1]} ({pct(r.per_class[ranked[-1]])}).

{table(["class", "test accuracy"], rows)}
"""
