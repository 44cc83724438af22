"""Section 4: convolutional networks."""
from __future__ import annotations

from experiments.registry import task


def train_small_cnn(ctx, ds, *, epochs: int, lr: float = 3e-3, **model_kwargs):
    """Train models.SmallCNN on ``ds`` with Adam + one-cycle LR; return (model, fit result, val split).

    Shared by 4.3 and the tasks that inspect its trained network (4.4, 4.5).
    """
    import torch

    from models import SmallCNN
    from utils.data import train_val_split

    train, val = train_val_split(ds.x_train, ds.y_train, ctx.cfg.val_fraction, seed=ctx.seed)
    c, h, _ = ds.shape
    model = SmallCNN(in_channels=c, num_classes=ds.num_classes, image_size=h, **model_kwargs).to(ctx.device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * -(-len(train[1]) // ctx.cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.25)
    result = ctx.fit(model, train, val, epochs=epochs, optimizer=opt, scheduler=sched,
                     scheduler_per_batch=True, description="CNN")
    return model, result, val


@task("4.3", "PyTorch CNN on MNIST", datasets=("mnist",), headline="test_accuracy", image_dataset=True)
def pytorch_cnn(ctx):
    import numpy as np
    import torch
    from sklearn.metrics import classification_report, confusion_matrix

    from models import count_parameters
    from utils.plotting import confusion_matrix_plot, image_grid, plot_history, plt
    from utils.report import pct, table
    from utils.train import predict

    ds = ctx.load_images("mnist", train_size=ctx.pick(tiny=600, quick=None, hybrid=None, full=None))
    epochs = ctx.pick(tiny=1, quick=2, hybrid=8, full=15)
    model, result, val = train_small_cnn(ctx, ds, epochs=epochs)
    ctx.save_weights(model)

    logits = predict(model, ds.x_test, ctx.cfg.eval_batch_size, ctx.device)
    pred = logits.argmax(1).numpy()
    true = ds.y_test.numpy()
    test_acc = float((pred == true).mean())
    cm = confusion_matrix(true, pred, labels=range(ds.num_classes))
    report = classification_report(true, pred, labels=range(ds.num_classes), target_names=list(ds.classes),
                                   output_dict=True, zero_division=0)
    per_class = {c: report[c] for c in ds.classes}

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    plot_history(axes, result.history)
    axes[0].set_title("Loss per epoch")
    axes[1].set_title("Accuracy per epoch")
    fig.suptitle(f"SmallCNN on {ds.label}: test accuracy {pct(test_acc, 2)}")
    ctx.save_figure(fig, "curves")

    fig, ax = plt.subplots(figsize=(7, 6))
    confusion_matrix_plot(ax, cm, ds.classes, title=f"Confusion matrix, {ds.label} test set")
    ctx.save_figure(fig, "confusion_matrix")

    wrong = np.flatnonzero(pred != true)
    shown = wrong[:32]
    probs = torch.softmax(logits, 1).numpy()
    if len(shown):
        fig, ax = plt.subplots(figsize=(9, 1.25 * int(np.ceil(len(shown) / 8)) + 0.5))
        labels = [f"{ds.classes[true[i]][:7]}→{ds.classes[pred[i]][:7]} {probs[i, pred[i]]:.2f}" for i in shown]
        image_grid(ax, ds.to_display(ds.x_test[shown]), labels, ncols=8,
                   title=f"Misclassified test images (true→predicted, confidence): {len(wrong)} of {len(true)}")
        ctx.save_figure(fig, "misclassified")

    # Analysis from the numbers: weakest classes, most frequent confusion, over-fitting signal.
    off = cm.copy()
    np.fill_diagonal(off, 0)
    ti, pi = np.unravel_index(off.argmax(), off.shape)
    recalls = sorted(((report[c]["recall"], c) for c in ds.classes))
    h = result.history
    gap = h["train_acc"][-1] - h["val_acc"][-1]
    val_min_epoch = int(np.argmin(h["val_loss"])) + 1
    ctx.record(test_accuracy=test_acc, test_loss=float(torch.nn.functional.cross_entropy(logits, ds.y_test)),
               epochs=len(h["train_loss"]), train_examples=len(ds.y_train) - len(val[1]), val_examples=len(val[1]),
               parameters=count_parameters(model), per_class=per_class,
               confusion_matrix=cm, most_confused={"true": ds.classes[ti], "predicted": ds.classes[pi], "count": int(off[ti, pi])},
               final_train_accuracy=h["train_acc"][-1], final_val_accuracy=h["val_acc"][-1],
               epoch_seconds=h["epoch_seconds"])
    if gap >= 0:
        gap_note = f"training accuracy is {100 * gap:.1f} percentage points above validation."
    else:
        gap_note = (f"validation accuracy is {-100 * gap:.1f} points *above* training accuracy, because training "
                    f"accuracy is averaged over the epoch while the weights were still improving and with dropout on.")
    if val_min_epoch < len(h["val_loss"]):
        fit_note = (f"Validation loss was lowest at epoch {val_min_epoch} of {len(h['val_loss'])} and rose "
                    f"afterwards ({h['val_loss'][val_min_epoch - 1]:.4f} → {h['val_loss'][-1]:.4f}): the start of over-fitting.")
    else:
        fit_note = (f"Validation loss was still falling at the last epoch ({h['val_loss'][-1]:.4f}), so the "
                    f"network had not begun to over-fit; more epochs would likely help.")
    rows = [(c, pct(report[c]["precision"]), pct(report[c]["recall"]), f"{report[c]['f1-score']:.3f}", int(report[c]["support"]))
            for c in ds.classes]
    ctx.write_analysis(f"""
## Result
The CNN ({count_parameters(model):,} parameters: conv 32 → pool → conv 64 → pool → FC 128 → {ds.num_classes})
trained for {len(h['train_loss'])} epochs ({sum(h['epoch_seconds']):.1f} s) reached **{pct(test_acc, 2)} test accuracy**
on {len(true):,} {ds.label} test images.

## Curves (`curves.png`)
Final training accuracy {pct(h['train_acc'][-1])} vs validation {pct(h['val_acc'][-1])}: {gap_note} {fit_note}

## Errors (`confusion_matrix.png`, `misclassified.png`)
{len(wrong)} test images were misclassified. The most frequent confusion was **{ds.classes[ti]} taken for
{ds.classes[pi]}** ({off[ti, pi]} images). The classes with the lowest recall were {recalls[0][1]} ({pct(recalls[0][0])})
and {recalls[1][1]} ({pct(recalls[1][0])}); the highest was {recalls[-1][1]} ({pct(recalls[-1][0])}).

{table(["class", "precision", "recall", "F1", "test images"], rows)}
""")
