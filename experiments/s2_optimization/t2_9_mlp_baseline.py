"""2.9 MLP baseline and architecture study: a 784-512-256-10 PyTorch MLP (ReLU, dropout 0.2, Adam) on
MNIST read through its curves, classification report, confusion matrix and predictions on test images;
then the number of layers, the number of units, the activation and dropout changed one at a time, each
variant compared with the baseline by the project's rule (same split, same initial-weight seed).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from experiments.s2_optimization._shared_b import Variant, compare_to_baseline, seeds_note, train_variants
from utils.plotting import confusion_matrix_plot, history_figure, plt
from utils.report import (Comparison, accuracy_interval, confusion_matrix, confusion_sentence, describe_accuracy,
                          pct, per_class_report, per_class_table, spread, table)
from utils.train import predict

BUDGET = {  # train_size None: every training image
    "tiny": {"train_size": 600, "test_size": 300, "epochs": 1},
    "quick": {"train_size": 6000, "test_size": 2000, "epochs": 3},
    "hybrid": {"train_size": None, "test_size": None, "epochs": 10},
    "full": {"train_size": None, "test_size": None, "epochs": 20},
}
BASELINE = {"hidden": [512, 256], "activation": "ReLU", "dropout": 0.2, "optimizer": "Adam", "lr": 1e-3, "batch": 128}
STUDY = {   # factor -> variants, each one change from the baseline
    "layers": {"1 hidden layer (512)": {"hidden": [512]}, "3 hidden layers (512-256-128)": {"hidden": [512, 256, 128]}},
    "units": {"narrow (128-64)": {"hidden": [128, 64]}, "wide (1024-512)": {"hidden": [1024, 512]}},
    "activation": {"tanh": {"activation": "tanh"}, "sigmoid": {"activation": "sigmoid"}},
    "dropout": {"no dropout": {"dropout": 0.0}, "dropout 0.5": {"dropout": 0.5}},
}
SAMPLES = 32


@dataclass
class Result:
    dataset: str
    classes: list[str]
    train_examples: int
    test_examples: int
    epochs: int
    seeds: int
    variants: dict[str, Variant]          # "baseline" and every STUDY variant
    comparisons: dict[str, Comparison]    # variant -> vs baseline
    confusion: np.ndarray                 # baseline (first seed), rows = true class
    report: dict[str, dict[str, float]]   # per class: precision, recall, f1-score, support
    sample_images: np.ndarray             # (SAMPLES, H, W[, 3]) in [0, 1]
    sample_true: list[int]
    sample_pred: list[int]


def describe(cfg: dict[str, Any], in_features: int = 784, classes: int = 10) -> str:
    return "-".join(map(str, [in_features, *cfg["hidden"], classes]))


def measure(ctx) -> Result:
    b = ctx.budget
    ds = ctx.load_images("mnist", train_size=b.train_size, test_size=b.test_size)
    settings = {"baseline": dict(BASELINE)}
    for group in STUDY.values():
        settings.update({name: {**BASELINE, **change} for name, change in group.items()})
    variants, correct, models, train_examples = train_variants(ctx, ds, settings, epochs=b.epochs,
                                                               keep=("baseline",))
    comparisons = compare_to_baseline(variants, correct, "baseline", [n for g in STUDY.values() for n in g])

    base = variants["baseline"]
    model = models.get("baseline")
    if model is not None:
        pred = predict(model, ds.x_test, ctx.cfg.eval_batch_size, ctx.device).argmax(1).numpy()
    else:   # the baseline diverged: no report can be made of its predictions
        pred = np.full(len(ds.y_test), -1)
    true = ds.y_test.numpy()
    cm = confusion_matrix(true, pred, ds.num_classes)
    report = per_class_report(cm, ds.classes)
    idx = np.random.default_rng(ctx.seed).choice(len(true), size=min(SAMPLES, len(true)), replace=False)
    r = Result(ds.label, list(ds.classes), train_examples, len(true), b.epochs, len(ctx.seeds()), variants,
               comparisons, cm, report, ds.to_display(ds.x_test[idx]),
               true[idx].tolist(), pred[idx].tolist())
    ctx.record(test_accuracy=base.accuracy, test_examples=len(true), train_examples=train_examples,
               architecture=describe(BASELINE, int(np.prod(ds.shape)), ds.num_classes), parameters=base.parameters,
               epochs=b.epochs, per_class=report, confusion_matrix=cm,
               study={n: {"parameters": v.parameters, "test_accuracy": v.accuracy, "test_accuracy_per_seed":
                          v.test_accuracy, "seconds": float(np.mean(v.seconds)), "status": v.status, "config": v.config,
                          "verdict": comparisons[n].verdict() if n in comparisons else
                          ("baseline" if n == "baseline" else "diverged")} for n, v in variants.items()},
               verdicts={n: c.verdict() for n, c in comparisons.items()})
    return r


def draw(ctx, r: Result) -> None:
    base = r.variants["baseline"]
    fig = history_figure({"baseline": base.history}, f"MLP {describe(base.config)} on {r.dataset}: training curves "
                         f"({r.train_examples} training images, {ctx.mode} mode)")
    ctx.save_figure(fig, "curves")

    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    confusion_matrix_plot(ax, r.confusion, r.classes, title=f"Baseline MLP: confusion matrix, {r.dataset} test set "
                          f"({r.test_examples} images, {ctx.mode} mode)")
    ctx.save_figure(fig, "confusion_matrix")

    ncols = 8
    rows = math.ceil(len(r.sample_true) / ncols)
    height = 1.75 * rows + 0.6
    # Fixed spacing: the constrained-layout solver tripled this grid's drawing time and a grid needs none.
    fig, axes = plt.subplots(rows, ncols, figsize=(1.5 * ncols, height), squeeze=False,
                             gridspec_kw={"left": 0.01, "right": 0.99, "bottom": 0.01, "top": 1 - 1.05 / height,
                                          "wspace": 0.1, "hspace": 0.45})
    wrong = 0
    for ax, img, t, p in zip(axes.ravel(), r.sample_images, r.sample_true, r.sample_pred):
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
        ok = p == t
        wrong += not ok
        ax.set_title(r.classes[t] if ok else f"✗ {r.classes[p] if p >= 0 else '?'}\n(true {r.classes[t]})",
                     fontsize=7, color="black" if ok else "#d62728", fontweight="normal")
    for ax in axes.ravel():
        ax.axis("off")
    fig.suptitle(f"Baseline predictions on {len(r.sample_true)} random {r.dataset} test images, {ctx.mode} mode\n"
                 f"{wrong} wrong (red: ✗ predicted, true class below); the others show the predicted = true class")
    ctx.save_figure(fig, "sample_predictions")

    names = list(r.variants)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True, layout="constrained")
    accs = [100 * r.variants[n].accuracy for n in names]
    if r.seeds > 1:
        err = [100 * np.std(r.variants[n].test_accuracy, ddof=1) if r.variants[n].finished else 0 for n in names]
        what = f"error bars: ±1 std over {r.seeds} seeds"
    else:   # the binomial (Wilson) 95% interval of an accuracy measured on the test set
        bounds = [accuracy_interval(a / 100, r.test_examples) if math.isfinite(a) else (0, 0) for a in accs]
        err = np.array([[a - 100 * lo, 100 * hi - a] if math.isfinite(a) else [0, 0]
                        for a, (lo, hi) in zip(accs, bounds)]).T
        what = f"error bars: 95% interval on {r.test_examples} test images"
    colours = ["k" if n == "baseline" else "#1f77b4" for n in names]
    y = np.arange(len(names))
    axes[0].barh(y, np.nan_to_num(accs), xerr=err, color=colours, alpha=0.8, capsize=3)
    for yi, n in zip(y, names):
        if not r.variants[n].finished:
            axes[0].plot([0], [yi], "x", color="r", ms=10, mew=2)
    lo = min(a for a in accs if math.isfinite(a)) if any(math.isfinite(a) for a in accs) else 0
    axes[0].set_xlim(max(0, lo - 10), 100)
    axes[0].set(yticks=y, yticklabels=names, xlabel=f"test accuracy (%; {what})", title="Test accuracy")
    axes[0].invert_yaxis()
    seconds = [float(np.mean(r.variants[n].seconds)) for n in names]
    axes[1].barh(y, seconds, color=colours, alpha=0.8)
    for yi, n, t in zip(y, names, seconds):
        axes[1].text(t, yi, f" {r.variants[n].parameters:,} parameters", va="center", fontsize=7)
    axes[1].set_xlim(0, 1.45 * max(seconds))
    axes[1].set(xlabel="training time (s, wall clock)", title="Training time and size")
    fig.suptitle(f"Architecture study on {r.dataset}: one change at a time from the baseline (black, "
                 f"{describe(BASELINE)}, ReLU, dropout 0.2); {r.epochs} epochs, {ctx.mode} mode; × = diverged")
    ctx.save_figure(fig, "study")


def write_up(r: Result) -> str:
    v, base = r.variants, r.variants["baseline"]
    h = base.history

    def acc(n):
        return spread(v[n].test_accuracy) if v[n].finished else "diverged"

    def cmp(n):
        return r.comparisons[n].sentence() if n in r.comparisons else f"{n} diverged, so it was not compared."

    def cost(n):
        return (f"{v[n].parameters:,} parameters ({v[n].parameters / base.parameters:.2f}× the baseline), "
                f"{np.mean(v[n].seconds):.1f} s ({np.mean(v[n].seconds) / max(np.mean(base.seconds), 1e-9):.2f}×)")

    def loss(n):
        return f"{v[n].history.final('train_loss'):.3f}"

    factor_of = {n: f for f, g in STUDY.items() for n in g}
    rows = [(n, factor_of.get(n, "—"), describe(v[n].config), v[n].config["activation"], v[n].config["dropout"],
             f"{v[n].parameters:,}", acc(n), f"{np.mean(v[n].seconds):.1f}",
             r.comparisons[n].verdict() if n in r.comparisons else ("—" if n == "baseline" else "diverged"))
            for n in v]
    recalls = sorted((r.report[c]["recall"], c) for c in r.classes)
    sig = r.comparisons.get("sigmoid")
    sigmoid_note = ("" if sig is None else
                    f" The textbook expects sigmoid to train slower (σ′ ≤ 0.25 shrinks every backpropagated signal); its "
                    f"final training loss was {loss('sigmoid')} vs the baseline's {loss('baseline')}"
                    + (", and it lost on the test set." if sig.winner == "baseline" else
                       f"; against that expectation its test accuracy is not measurably worse after {r.epochs} epochs"
                       + (" even though it fitted the training set more slowly." if v["sigmoid"].history.final("train_loss")
                          > h.final("train_loss") else ", and it did not fit the training set more slowly either.")
                       if sig.winner is None else "; against that expectation it won on the test set."))
    nd = r.comparisons.get("no dropout")
    vl = v["no dropout"].history.val_loss
    low = int(np.nanargmin(vl)) + 1 if vl else 0
    dropout_note = ("" if nd is None or nd.winner != "no dropout" else
                    " This goes against the usual advice that dropout improves generalisation; the measured reason: "
                    + (f"the net without dropout had not begun to over-fit (its validation loss was still falling at "
                       f"epoch {len(vl)}, {vl[-1]:.4f}), so dropout only slowed the fitting." if low == len(vl) else
                       f"its validation loss was lowest at epoch {low} of {len(vl)} ({vl[low - 1]:.4f} → {vl[-1]:.4f}), "
                       f"so it had begun to over-fit, but not yet enough to fall behind."))
    gap = h.final("train_acc") - h.final("val_acc")
    fit = ("training accuracy was {:.1f} points above validation".format(100 * gap) if gap >= 0 else
           "validation accuracy was {:.1f} points above training accuracy (training accuracy is averaged over each "
           "epoch with dropout on)".format(-100 * gap))
    return f"""
## Baseline (`curves.png`, `confusion_matrix.png`, `sample_predictions.png`)
The MLP {describe(base.config)} (ReLU, dropout 0.2, Adam lr 0.001, batch 128; {base.parameters:,} parameters) trained
for {r.epochs} epochs on {r.train_examples} {r.dataset} images ({np.mean(base.seconds):.1f} s) and reached
**{describe_accuracy(base.accuracy, r.test_examples) if base.finished else 'no accuracy: it diverged'}**.
After the last epoch {fit}; validation loss {h.final('val_loss'):.4f}.

{confusion_sentence(r.confusion, r.classes)} Lowest
recall: {recalls[0][1]} ({pct(recalls[0][0])}) and {recalls[1][1]} ({pct(recalls[1][0])}); highest:
{recalls[-1][1]} ({pct(recalls[-1][0])}).

{per_class_table(r.report)}

## Architecture study (`study.png`)
One change at a time from the baseline, each trained for {r.epochs} epochs with the same split and initial-weight
seed; compared with the baseline using {seeds_note(r.seeds, r.test_examples)}.

{table(["variant", "factor", "layers", "activation", "dropout", "parameters", "test accuracy", "seconds", "vs baseline"], rows)}

- **Layers**: {' '.join(f'{cmp(n)} Cost: {cost(n)}.' for n in STUDY['layers'])}
- **Units**: {' '.join(f'{cmp(n)} Cost: {cost(n)}.' for n in STUDY['units'])}
- **Activation**: {' '.join(cmp(n) for n in STUDY['activation'])}{sigmoid_note}
- **Dropout**: {' '.join(cmp(n) for n in STUDY['dropout'])} Final training loss: no dropout {loss('no dropout')},
  dropout 0.2 (baseline) {loss('baseline')}, dropout 0.5 {loss('dropout 0.5')}.{dropout_note}
"""
