"""3.5 Early stopping: a fixed 30 epochs vs patience 7 with the best weights restored.

An MLP 512-256 without regularisation (Adam, lr 3e-3), a small training subset and a tenth of the training and
validation labels replaced by a random other class (as real labels often are; the test labels
stay clean): the fixed run fits its training set, noise included, and its validation loss
turns up — without the noise the easy digits stand-in only plateaus within 30 epochs. Early
stopping ends training 7 epochs after the lowest validation loss and restores a true copy of
that epoch's weights. Reported: epochs and time saved, and the test accuracy kept (the rule).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from experiments.s3_regularization._shared import compare_accuracy, correct, over_seeds, train_mlp
from utils.data import train_val_split
from utils.history import History
from utils.plotting import legend_outside, plt
from utils.report import Comparison, pct, table

BUDGET = {
    "tiny": {"train_size": 400, "val_fraction": 0.2, "label_noise": 0.1, "lr": 3e-3, "epochs": 6, "patience": 2},
    "quick": {"train_size": 3000, "val_fraction": 0.2, "label_noise": 0.1, "lr": 3e-3, "epochs": 30, "patience": 7},
    "hybrid": {"train_size": 5000, "val_fraction": 0.2, "label_noise": 0.1, "lr": 3e-3, "epochs": 30, "patience": 7},
    "full": {"train_size": 10000, "val_fraction": 0.2, "label_noise": 0.1, "lr": 3e-3, "epochs": 30, "patience": 7},
}
HIDDEN = (512, 256)


@dataclass
class Result:
    dataset: str
    input_size: int
    num_classes: int
    train_examples: int
    val_examples: int
    test_examples: int
    label_noise: float
    lr: float
    epochs: int
    patience: int
    seeds: list[int]
    fixed: History                       # first seed
    early: History                       # first seed
    test_accuracy: dict[str, list[float]]    # "fixed" / "early_stopping", per seed
    seconds: dict[str, list[float]]
    stopped: list[int]                   # per seed
    best: list[int]
    restore_error: float                 # |val loss of the restored weights − best epoch's|, first seed
    retrace_error: float                 # max |early − fixed| val loss over the shared epochs, first seed
    comparison: Comparison               # early stopping vs fixed, test accuracy

    @property
    def overfit(self) -> bool:
        """The fixed run's validation loss turned up: its last value is 5% above its lowest, reached earlier."""
        h = self.fixed
        return h.best_epoch < h.epochs and h.final("val_loss") > 1.05 * min(h.val_loss)


def noisy_labels(y: torch.Tensor, share: float, seed: int) -> torch.Tensor:
    """A copy of ``y`` with ``share`` of the labels replaced by a uniformly drawn *other* class."""
    g = torch.Generator().manual_seed(seed)
    y = y.clone()
    flip = torch.rand(len(y), generator=g) < share
    k = int(y.max()) + 1
    y[flip] = (y[flip] + torch.randint(1, k, (int(flip.sum()),), generator=g)) % k
    return y


def measure(ctx) -> Result:
    b = ctx.budget
    ds = ctx.load_images("mnist", train_size=b.train_size)
    train, val = train_val_split(ds.x_train, noisy_labels(ds.y_train, b.label_noise, ctx.seed), b.val_fraction,
                                 seed=ctx.seed)
    seeds = ctx.seeds()
    acc, sec = {"fixed": [], "early_stopping": []}, {"fixed": [], "early_stopping": []}
    stopped, best, right = [], [], {}

    def train_one(job):
        s, kind = job
        model, h = train_mlp(ctx, ds, train, val, seed=s, epochs=b.epochs, hidden=HIDDEN, lr=b.lr,
                             patience=b.patience if kind == "early_stopping" else None,
                             description=f"{kind.replace('_', ' ')} (seed {s})")
        # A true copy: the restored weights reproduce the best epoch's validation loss, not the last one's.
        restore_error = (abs(ctx.evaluate(model, *val)[0] - h.val_loss[h.best_epoch - 1])
                         if kind == "early_stopping" else None)
        return h, correct(ctx, model, ds.x_test, ds.y_test), restore_error

    jobs = [(s, kind) for s in seeds for kind in acc]
    done = ctx.map(train_one, jobs, "fixed and early-stopped runs",
                   info=lambda j, out: f"{j[1].replace('_', ' ')}: test {out[1].mean():.3f}")
    for (s, kind), (h, right[kind], error) in zip(jobs, done):
        acc[kind].append(float(right[kind].mean()))
        sec[kind].append(h.seconds)
        if kind == "fixed":
            if s == seeds[0]:
                fixed = h
            continue
        stopped.append(h.stopped_epoch)
        best.append(h.best_epoch)
        if s == seeds[0]:
            early, restore_error = h, error
    shared = min(early.epochs, fixed.epochs)
    retrace = float(np.max(np.abs(np.subtract(early.val_loss[:shared], fixed.val_loss[:shared]))))
    cmp = compare_accuracy("early stopping", f"fixed {b.epochs} epochs", seeds_a=acc["early_stopping"],
                           seeds_b=acc["fixed"],
                       correct_a=right["early_stopping"], correct_b=right["fixed"])
    r = Result(ds.label, int(np.prod(ds.shape)), ds.num_classes, len(train[1]), len(val[1]), len(ds.y_test),
               b.label_noise, b.lr, b.epochs, b.patience, seeds, fixed, early, acc, sec, stopped, best,
               float(restore_error), retrace, cmp)
    if restore_error > 1e-4:
        raise RuntimeError(f"restored weights do not reproduce the best validation loss (error {restore_error:.2e})")
    saved = 1 - np.mean(sec["early_stopping"]) / np.mean(sec["fixed"])
    ctx.record(best_epoch=early.best_epoch, stopped_epoch=early.stopped_epoch, epochs_fixed=b.epochs,
               epochs_saved=b.epochs - early.stopped_epoch, patience=b.patience,
               fixed_best_val_epoch=fixed.best_epoch, fixed_overfit=r.overfit,
               test_accuracy={k: float(np.mean(v)) for k, v in acc.items()}, test_accuracy_per_seed=acc,
               train_seconds={k: float(np.mean(v)) for k, v in sec.items()}, train_seconds_per_seed=sec,
               time_saved_fraction=float(saved), verdict=cmp.verdict(), restore_check_abs_error=r.restore_error,
               retrace_max_abs_diff=retrace, stopped_epoch_per_seed=stopped, best_epoch_per_seed=best,
               label_noise=b.label_noise, test_examples=r.test_examples, train_examples=r.train_examples,
               val_examples=r.val_examples, val_loss={"fixed_lowest": min(fixed.val_loss),
                                                      "fixed_final": fixed.final("val_loss"),
                                                      "early_best": early.val_loss[early.best_epoch - 1]})
    return r


def draw(ctx, r: Result) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.3), sharey=True)
    for ax, h, name in ((axes[0], r.fixed, f"Fixed {r.epochs} epochs"),
                        (axes[1], r.early, f"Patience {r.patience}, best weights restored")):
        ep = range(1, h.epochs + 1)
        ax.plot(ep, h.train_loss, color="#1f77b4", label="train loss (noisy labels)")
        ax.plot(ep, h.val_loss, color="#d62728", label="validation loss (noisy labels)")
        ax.axvline(h.best_epoch, color="#2ca02c", linestyle=":", label="lowest validation loss")
        ax.set_xlim(0.5, r.epochs + 0.5)
        ax.set_xlabel("epoch")
        ax.set_title(name)
    axes[1].axvline(r.early.stopped_epoch, color="k", linestyle="--", label="early stop")
    axes[0].set_ylabel("loss (cross-entropy)")
    legend_outside(axes[1], sources=list(axes))
    fig.suptitle(f"Early stopping, MLP 512-256 on {r.train_examples} {r.dataset} images with "
                 f"{pct(r.label_noise, 0)} label noise ({ctx.mode} mode, first seed)", y=1.02)
    ctx.save_figure(fig, "loss_curves")


def write_up(r: Result) -> str:
    f, e = r.fixed, r.early
    low = min(f.val_loss)
    if r.overfit:
        fixed_text = (f"The fixed run over-fitted: its validation loss was lowest at epoch {f.best_epoch} ({low:.4f}) "
                      f"and rose to {f.final('val_loss'):.4f} by epoch {f.epochs} "
                      f"({100 * (f.final('val_loss') / low - 1):.0f}% "
                      f"above its lowest) while its training loss fell from {f.train_loss[f.best_epoch - 1]:.4f} to "
                      f"{f.final('train_loss'):.4f}: it was learning its training set, noisy labels included.")
    else:
        fixed_text = (f"The fixed run did not clearly over-fit here: its validation loss was lowest at epoch "
                      f"{f.best_epoch} ({low:.4f}) and ended at {f.final('val_loss'):.4f}, within 5% of it, so early "
                      f"stopping had little to stop.")
    if e.status == "early_stopped":
        stop_text = (f"Early stopping ended training after epoch {e.stopped_epoch} of {r.epochs}, {r.patience} epochs "
                     f"after the lowest validation loss at epoch {e.best_epoch}, and restored that epoch's weights: "
                     f"re-evaluated, they give validation loss {e.val_loss[e.best_epoch - 1]:.4f} to within "
                     f"{r.restore_error:.1e} (the last epoch's was {e.val_loss[-1]:.4f}), so the restored state is a "
                     f"copy of epoch {e.best_epoch}, not a reference to the live weights.")
    else:
        stop_text = (f"Validation loss never went {r.patience} epochs without improving, so early stopping ran all "
                     f"{r.epochs} epochs and restored the best epoch ({e.best_epoch}).")
    saved = 1 - np.mean(r.seconds["early_stopping"]) / np.mean(r.seconds["fixed"])
    rows = [(f"fixed {r.epochs} epochs", r.epochs, f"{np.mean(r.seconds['fixed']):.1f}",
             over_seeds(r.test_accuracy["fixed"])),
            (f"patience {r.patience}, best restored", over_seeds(r.stopped, fmt=lambda v: f"{v:.0f}"),
             f"{np.mean(r.seconds['early_stopping']):.1f}", over_seeds(r.test_accuracy["early_stopping"]))]
    c = r.comparison
    kept = ("Early stopping kept the accuracy." if c.winner is None else
            "Early stopping also gained accuracy." if c.winner == "early stopping" else
            "Early stopping cost accuracy.")
    if e.best_epoch == f.best_epoch:
        same = (f" Epoch {e.best_epoch} is also where the whole {r.epochs}-epoch run had its lowest validation loss: "
                f"the longer run found nothing better.")
    else:
        same = (f" The fixed run later reached a lower validation loss ({low:.4f} at epoch {f.best_epoch}): "
                f"patience {r.patience} stopped on a plateau.")
    evidence = (f"{len(r.seeds)} seeds (seed spread)" if len(r.seeds) > 1 else
                f"one seed (McNemar's test on the {r.test_examples} test images)")
    return f"""
MLP {r.input_size}-512-256-{r.num_classes} (Adam lr {r.lr:g}, no regularisation) on {r.train_examples} training images of
{r.dataset}, {r.val_examples} for validation and {r.test_examples} for testing; {pct(r.label_noise, 0)} of the training
and validation labels were replaced by a random other class, the test labels are clean. Both runs start from the
same weights and see the same batches; {evidence}.

{fixed_text}

{stop_text}{same} Up to that epoch the early-stopped run retraced the fixed run exactly (largest difference in validation
loss {r.retrace_error:.1e}): the only difference between the two is when they stop.

{table(["run", "epochs run", "train seconds", f"test accuracy ({r.test_examples} images)"], rows)}

- **Saved**: {r.epochs - e.stopped_epoch} of {r.epochs} epochs and {100 * saved:.0f}% of the fixed run's training time
  ({np.mean(r.seconds['fixed']) - np.mean(r.seconds['early_stopping']):.1f} s; timings on a shared CPU).
- **Accuracy**: {kept} {c.sentence()}
"""
