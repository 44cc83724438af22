"""5.3 Transfer learning: fine-tuning vs feature extraction (frozen body, new head) vs training from
scratch, as a function of the number of labelled examples per class.

With a network, the body is torchvision's ImageNet ResNet-18 (``ResNet18_Weights.IMAGENET1K_V1``,
downloaded into data/weights/, sha256 checked, images resized to 224 and ImageNet-normalised) and the
target is all ten classes. Offline (or when the file cannot be had) the source task is our own: our
ResNet-18 (5.1's network, narrowed on a CPU budget) is pretrained on the first five classes of the data,
and transferred to the other five. Figures and metrics name the source actually used.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from experiments.s5_modern._shared import (cifar_augment, clip_batch, correct_on, curves_figure, imagenet_resnet18_state,
                                          imagenet_view, per_class_subset, train_classifier)
from models import resnet18_cifar
from utils.download import DataUnavailable
from utils.history import History
from utils.plotting import legend_outside, plt
from utils.report import Comparison, compare_predictions, pct, table

BUDGET = {  # labels: per class (None = all there are); each run takes ≥ min_steps optimiser steps, ≥ min_epochs epochs
    "tiny": {"width": 4, "train_size": 600, "test_size": 300, "source_epochs": 1, "labels": [5, None],
             "min_steps": 10, "min_epochs": 1, "val_size": 50, "batch_size": 32},
    # QUICK: "all" is about 260 per class, so 150 measured next to nothing new (the same fine-tuning and
    # feature-extraction accuracy as "all" on Fashion-MNIST) for three of the twelve runs
    "quick": {"width": 8, "train_size": 3000, "test_size": 1000, "source_epochs": 3, "labels": [10, 50, None],
              "min_steps": 60, "min_epochs": 2, "val_size": 200, "batch_size": 64},
    # HYBRID in ≤ 20 min on a 2-core CPU: width 16 trains at ~150 images/s on one thread; a run with 10 labels
    # a class takes min_steps epochs, each ending with a pass over the validation images (hence only 300)
    "hybrid": {"width": 16, "train_size": 20000, "test_size": 5000, "source_epochs": 4,
               "labels": [10, 50, 250, None], "min_steps": 120, "min_epochs": 3, "val_size": 300, "batch_size": 128},
    "full": {"width": 64, "train_size": None, "test_size": None, "source_epochs": 15, "labels": [10, 50, 250, None],
             "min_steps": 1500, "min_epochs": 10, "val_size": 2000, "batch_size": 128},
}
METHODS = ("fine-tuning", "feature extraction", "from scratch")
LR = {"fine-tuning": 0.01, "feature extraction": 0.01, "from scratch": 0.05}


@dataclass
class Result:
    dataset: str
    source: str                              # short name of the weights' origin
    source_note: str                         # one sentence: where the weights came from and why
    target_classes: list[str]
    labels: list[str]                        # "10", "50", …, "all"
    labels_per_class: dict[str, float]       # label key -> examples per class actually used
    accuracy: dict[str, dict[str, float]]    # method -> label key -> test accuracy
    test_examples: int
    histories: dict[str, History]            # method -> history at the fewest labels
    fewest: dict[str, Comparison]            # "fine-tuning" / "feature extraction" vs scratch, fewest labels
    most: dict[str, Comparison]              # the same with all labels
    pretrain_accuracy: float                 # source-task validation accuracy (nan for ImageNet weights)


class ImagenetResNet18(nn.Module):
    """torchvision's resnet18 (ImageNet weights, or random for scratch) seeing our images as ImageNet's."""

    def __init__(self, state, ds, num_classes: int):
        import torchvision

        super().__init__()
        self.body = torchvision.models.resnet18(weights=None)
        if state is not None:
            self.body.load_state_dict(state)
        self.body.fc = nn.Identity()
        self.ds = ds
        self.fc = nn.Linear(512, num_classes)

    def features(self, x):
        return self.body(imagenet_view(self.ds, x))

    def forward(self, x):
        return self.fc(self.features(x))


def _source(ctx, ds, b, source_classes):
    """(pretrained model, short source, note, source val accuracy): ImageNet weights, else our own pretraining."""
    try:
        state = imagenet_resnet18_state(ctx.data_dir)
    except (DataUnavailable, OSError, RuntimeError) as exc:
        reason = str(exc).rstrip(".")
        names = ", ".join(ds.classes[c] for c in source_classes)
        pick = torch.isin(ds.y_train, torch.tensor(source_classes))
        x, y = ds.x_train[pick], ds.y_train[pick]
        nv = max(1, len(y) // 10)
        torch.manual_seed(ctx.seed)
        model = resnet18_cifar(len(source_classes), ds.shape[0], b.width).to(ctx.device)
        h = train_classifier(ctx, model, (x[nv:], y[nv:]), (x[:nv], y[:nv]), epochs=b.source_epochs, lr=0.05,
                             batch_size=b.batch_size, augment=cifar_augment(), description="pretraining (source)")
        return (model, f"own pretraining on {ds.name}, 5 source classes",
                f"ImageNet weights unavailable ({reason}), so our ResNet-18 (width {b.width}) was pretrained here "
                f"on {len(y) - nv} images of the source classes {names} ({b.source_epochs} epochs, "
                f"source validation accuracy {pct(h.final('val_acc'))}) and transferred to the other five",
                h.final("val_acc"))
    ctx.log("  using torchvision's ImageNet ResNet-18 weights (IMAGENET1K_V1)")
    return (ImagenetResNet18(state, ds, 1000), "ImageNet (torchvision ResNet18_Weights.IMAGENET1K_V1)",
            "the body is torchvision's ImageNet-pretrained ResNet-18 (IMAGENET1K_V1, sha256-checked), images "
            "resized to 224×224 and ImageNet-normalised", float("nan"))


def measure(ctx) -> Result:
    b = ctx.budget
    ds = ctx.load_images("cifar10", train_size=b.train_size, test_size=b.test_size)
    half = ds.num_classes // 2
    pretrained, source, note, pre_acc = _source(ctx, ds, b, list(range(half)))
    imagenet = isinstance(pretrained, ImagenetResNet18)
    target = list(range(ds.num_classes)) if imagenet else list(range(half, ds.num_classes))
    remap = torch.full((ds.num_classes,), -1, dtype=torch.long)
    remap[target] = torch.arange(len(target))
    pool = torch.nonzero(torch.isin(ds.y_train, torch.tensor(target))).flatten()
    val_idx, pool = pool[:b.val_size], pool[b.val_size:]
    xv, yv = ds.x_train[val_idx], remap[ds.y_train[val_idx]]
    xp, yp = ds.x_train[pool], remap[ds.y_train[pool]]
    te = torch.isin(ds.y_test, torch.tensor(target))
    xt, yt = ds.x_test[te], remap[ds.y_test[te]]
    smallest = int(torch.bincount(yp, minlength=len(target)).min())
    labels = [n for n in b.labels if n is not None and n < smallest] + [None]
    keys = [str(n) if n else "all" for n in labels]
    k = len(target)
    accuracy = {m: {} for m in METHODS}
    correct, histories, per_class = {}, {}, {}

    def train_one(job):
        n, key, method = job
        idx = per_class_subset(yp, n, range(k), ctx.seed)
        x, y = xp[idx], yp[idx]
        steps = -(-len(y) // clip_batch(b.batch_size, len(y)))   # per epoch, as train_classifier batches
        epochs = max(b.min_epochs, math.ceil(b.min_steps / steps))  # so few labels still get enough updates
        torch.manual_seed(ctx.seed)
        if method == "from scratch":
            model = (ImagenetResNet18(None, ds, k) if imagenet else resnet18_cifar(k, ds.shape[0], b.width))
        else:
            model = copy.deepcopy(pretrained)
            model.fc = nn.Linear(model.fc.in_features, k)
        model = model.to(ctx.device)
        if method == "feature extraction":  # frozen body: its features once, then a linear head on them
            with torch.no_grad():
                model.eval()
                feats = [torch.cat([model.features(c.to(ctx.device)).cpu() for c in z.split(256)])
                         for z in (x, xv, xt)]
            head = model.fc
            h = train_classifier(ctx, head, (feats[0], y), (feats[1], yv), epochs=epochs, lr=LR[method],
                                 optimizer="adam", batch_size=b.batch_size, description=f"{method} {key}")
            return len(y), h, correct_on(head, feats[2], yt, ctx.device)
        h = train_classifier(ctx, model, (x, y), (xv, yv), epochs=epochs, lr=LR[method],
                             batch_size=b.batch_size, augment=cifar_augment(), description=f"{method} {key}")
        return len(y), h, correct_on(model, xt, yt, ctx.device, ctx.cfg.eval_batch_size)

    jobs = [(n, key, method) for n, key in reversed(list(zip(labels, keys))) for method in METHODS]  # biggest first
    runs = ctx.map(train_one, jobs, "method × labels",
                   info=lambda j, out: f"{j[2]} {j[1]}: {out[2].mean():.3f}")
    for (n, key, method), (size, h, ok) in zip(jobs, runs):
        per_class[key] = size / k
        accuracy[method][key] = float(ok.mean())
        correct[(method, key)] = ok
        if key == keys[0]:
            histories[method] = h
    accuracy = {m: {key: accuracy[m][key] for key in keys} for m in METHODS}  # in label order for the table
    per_class = {key: per_class[key] for key in keys}

    def versus(key):
        return {m: compare_predictions(m, correct[(m, key)], "from scratch", correct[("from scratch", key)])
                for m in METHODS[:2]}

    fewest, most = versus(keys[0]), versus(keys[-1])
    verdict = f"{keys[0]} labels/class: {fewest['fine-tuning'].verdict()}"
    ctx.record(test_accuracy=accuracy, source=source, source_note=note, labels_per_class=per_class,
               test_examples=len(yt), target_classes=[ds.classes[c] for c in target], verdict=verdict,
               feature_extraction_verdict=fewest["feature extraction"].verdict(),
               all_labels_verdict=most["fine-tuning"].verdict(), source_val_accuracy=pre_acc)
    return Result(ds.label, source, note, [ds.classes[c] for c in target], keys, per_class, accuracy, len(yt),
                  histories, fewest, most, pre_acc)


def draw(ctx, r: Result) -> None:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    xs = [r.labels_per_class[k] for k in r.labels]
    for m, marker in zip(METHODS, "os^"):
        ax.plot(xs, [100 * r.accuracy[m][k] for k in r.labels], marker=marker, label=m)
    ax.set_xscale("log")
    ax.set_xticks(xs, [f"{k}\n({v:.0f})" if k == "all" else k for k, v in zip(r.labels, xs)])
    ax.set_xlabel("labelled training examples per class (log scale)")
    ax.set_ylabel(f"test accuracy (%), {r.test_examples} images")
    ax.set_title(f"Transfer to {len(r.target_classes)} classes of {r.dataset}\nsource: {r.source}", fontsize=10)
    legend_outside(ax)
    ctx.save_figure(fig, "accuracy_vs_labels")

    fig = curves_figure(r.histories, f"Training at {r.labels[0]} labels per class, {r.dataset} (source: {r.source})",
                        log_loss=True)
    ctx.save_figure(fig, "curves")


def write_up(r: Result) -> str:
    ft, fe = r.fewest["fine-tuning"], r.fewest["feature extraction"]
    best = max(METHODS[:2], key=lambda m: r.accuracy[m][r.labels[0]])
    lesson = r.fewest[best]
    if lesson.winner == best:
        main = (f"**With {r.labels[0]} labels per class, transfer wins:** {ft.sentence()} {fe.sentence()}")
    elif lesson.winner == "from scratch":
        main = (f"**Against the textbook, training from scratch won with {r.labels[0]} labels per class:** "
                f"{ft.sentence()} {fe.sentence()} The source task's features did not fit the target classes.")
    else:
        main = (f"**With {r.labels[0]} labels per class, no method is measurably ahead:** {ft.sentence()} "
                f"{fe.sentence()}")
    mf, me = r.most["fine-tuning"], r.most["feature extraction"]
    gap = {k: r.accuracy["fine-tuning"][k] - r.accuracy["from scratch"][k] for k in r.labels}
    shrink = (f"The fine-tuning advantage over scratch goes from {100 * gap[r.labels[0]]:+.1f} points at "
              f"{r.labels[0]} labels per class to {100 * gap[r.labels[-1]]:+.1f} with all of them: "
              + ("labels make up for the missing pretraining." if abs(gap[r.labels[-1]]) < abs(gap[r.labels[0]])
                 else "the gap did not close with more labels at this budget."))
    rows = [(k, f"{r.labels_per_class[k]:.0f}", *(pct(r.accuracy[m][k]) for m in METHODS)) for k in r.labels]
    return f"""
## Source of the pretrained weights
{r.source_note[0].upper() + r.source_note[1:]}. Target classes: {', '.join(r.target_classes)}; test set
{r.test_examples} images of those classes. Fine-tuning trains every weight from the pretrained ones (SGD,
peak learning rate {LR['fine-tuning']}); feature extraction freezes the body and trains a new linear head on
its features; scratch trains the same network from random weights (peak {LR['from scratch']}).

## Accuracy against labels (`accuracy_vs_labels.png`)
{main}

With all labels: {mf.sentence()} {me.sentence()}

{shrink}

{table(["labels/class", "used per class", *METHODS], rows)}

## Curves (`curves.png`)
At {r.labels[0]} labels per class the validation accuracy ended at
{', '.join(f"{m} {pct(h.final('val_acc'))}" for m, h in r.histories.items())}.
"""
