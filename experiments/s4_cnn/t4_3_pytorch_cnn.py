"""4.3 PyTorch CNN on MNIST: conv 32 → pool → conv 64 → pool → FC 128 → 10.

The workhorse network of the section: trained with Adam and a one-cycle schedule, then read
through its curves, the classification report, the confusion matrix and the images it gets
wrong. Its weights are saved for 4.4 and 4.5, which look inside it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from experiments.common.small_cnn import train_small_cnn
from models import count_parameters
from utils.history import History
from utils.plotting import confusion_matrix_plot, history_figure, mistakes_figure, plt
from utils.report import (confusion_matrix, confusion_sentence, describe_accuracy, most_confused, pct,
                          per_class_report, per_class_table)
from utils.train import predict

BUDGET = {  # train_size None: the preset's (quick 12,000 images; hybrid and full: all of them)
    "tiny": {"epochs": 1, "train_size": 600},
    "quick": {"epochs": 2, "train_size": None},
    "hybrid": {"epochs": 8, "train_size": None},
    "full": {"epochs": 15, "train_size": None},
}
SHOWN_MISTAKES = 32


@dataclass
class Result:
    dataset: str
    classes: list[str]
    parameters: int
    history: History
    test_accuracy: float
    test_examples: int
    confusion: np.ndarray            # (classes, classes) counts, rows = true class
    report: dict[str, dict[str, float]]  # per class: precision, recall, f1-score, support
    mistake_images: np.ndarray       # (k, H, W[, 3]) in [0, 1], the first k misclassified
    mistake_true: list[int]
    mistake_pred: list[int]
    mistake_confidence: list[float]
    mistakes: int


def measure(ctx) -> Result:
    b = ctx.budget
    ds = ctx.load_images("mnist", **({"train_size": b.train_size} if b.train_size else {}))
    model, history, val = train_small_cnn(ctx, ds, epochs=b.epochs)
    ctx.save_weights(model)  # for 4.4 and 4.5

    logits = predict(model, ds.x_test, ctx.cfg.eval_batch_size, ctx.device)
    pred, true = logits.argmax(1).numpy(), ds.y_test.numpy()
    probs = torch.softmax(logits, 1).numpy()
    cm = confusion_matrix(true, pred, ds.num_classes)
    report = per_class_report(cm, ds.classes)
    wrong = np.flatnonzero(pred != true)[:SHOWN_MISTAKES]
    test_acc = float((pred == true).mean())
    ti, pi, n_confused = most_confused(cm)
    ctx.record(test_accuracy=test_acc, test_examples=len(true),
               test_loss=float(F.cross_entropy(logits, ds.y_test)), epochs=history.epochs,
               train_examples=len(ds.y_train) - len(val[1]), val_examples=len(val[1]),
               parameters=count_parameters(model), per_class=report,
               confusion_matrix=cm, most_confused={"true": ds.classes[ti], "predicted": ds.classes[pi],
                                                   "count": n_confused},
               final_train_accuracy=history.final("train_acc"), final_val_accuracy=history.final("val_acc"),
               epoch_seconds=history.epoch_seconds)
    return Result(ds.label, list(ds.classes), count_parameters(model), history, test_acc, len(true), cm,
                  report, ds.to_display(ds.x_test[wrong]),
                  true[wrong].tolist(), pred[wrong].tolist(), probs[wrong, pred[wrong]].tolist(),
                  int((pred != true).sum()))


def draw(ctx, r: Result) -> None:
    fig = history_figure({"SmallCNN": r.history}, f"SmallCNN on {r.dataset}: test accuracy {pct(r.test_accuracy, 2)}")
    ctx.save_figure(fig, "curves")

    fig, ax = plt.subplots(figsize=(7, 6))
    confusion_matrix_plot(ax, r.confusion, r.classes, title=f"Confusion matrix, {r.dataset} test set")
    ctx.save_figure(fig, "confusion_matrix")

    if r.mistakes:
        fig = mistakes_figure(r.mistake_images, r.mistake_true, r.mistake_pred, r.mistake_confidence, r.classes,
                              f"Misclassified test images (true→predicted, confidence): {r.mistakes} of "
                              f"{r.test_examples}")
        ctx.save_figure(fig, "misclassified")


def write_up(r: Result) -> str:
    h = r.history
    gap = h.final("train_acc") - h.final("val_acc")
    if gap >= 0:
        gap_note = f"training accuracy is {100 * gap:.1f} percentage points above validation."
    else:
        gap_note = (f"validation accuracy is {-100 * gap:.1f} points *above* training accuracy, because training "
                    f"accuracy is averaged over the epoch while the weights were still improving and with dropout on.")
    best = int(np.nanargmin(h.val_loss)) + 1
    if best < len(h.val_loss):
        fit_note = (f"Validation loss was lowest at epoch {best} of {len(h.val_loss)} and rose afterwards "
                    f"({h.val_loss[best - 1]:.4f} → {h.val_loss[-1]:.4f}): the start of over-fitting.")
    else:
        fit_note = (f"Validation loss was still falling at the last epoch ({h.val_loss[-1]:.4f}), so the "
                    f"network had not begun to over-fit; more epochs would likely help.")
    recalls = sorted((r.report[c]["recall"], c) for c in r.classes)
    figures = "`confusion_matrix.png`, `misclassified.png`" if r.mistakes else "`confusion_matrix.png`"
    return f"""
## Result
The CNN ({r.parameters:,} parameters: conv 32 → pool → conv 64 → pool → FC 128 → {len(r.classes)})
trained for {h.epochs} epochs ({sum(h.epoch_seconds):.1f} s) reached **{describe_accuracy(r.test_accuracy, r.test_examples)}**
on the {r.dataset} test set.

## Curves (`curves.png`)
Final training accuracy {pct(h.final('train_acc'))} vs validation {pct(h.final('val_acc'))}: {gap_note} {fit_note}

## Errors ({figures})
{r.mistakes} test images were misclassified. {confusion_sentence(r.confusion, r.classes)} The classes with the lowest recall were {recalls[0][1]} ({pct(recalls[0][0])})
and {recalls[1][1]} ({pct(recalls[1][0])}); the highest was {recalls[-1][1]} ({pct(recalls[-1][0])}).

{per_class_table(r.report)}
"""
