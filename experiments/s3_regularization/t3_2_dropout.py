"""3.2 Dropout 0.0 vs 0.5: an MLP 512-256-128 trained on a deliberately small image subset.

Without dropout the network fits its few thousand training images almost perfectly and its
validation loss turns up; dropout 0.5 is expected to narrow the gap between training and test
accuracy. Both claims — the gap and the test accuracy — go through the comparison rule.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.s3_regularization._shared import (compare_accuracy, compare_gaps, correct, image_subset, over_seeds,
                                                   train_mlp)
from utils.history import History
from utils.plotting import history_figure, legend_outside, plt
from utils.report import Comparison, pct, table

BUDGET = {
    "tiny": {"n_train": 300, "n_val": 100, "epochs": 2},
    "quick": {"n_train": 3000, "n_val": 1000, "epochs": 20},
    "hybrid": {"n_train": 6000, "n_val": 2000, "epochs": 30},
    "full": {"n_train": 10000, "n_val": 2000, "epochs": 40},
}
RATES = ("0.0", "0.5")


@dataclass
class Result:
    dataset: str
    input_size: int
    num_classes: int
    train_examples: int
    val_examples: int
    test_examples: int
    epochs: int
    seeds: list[int]
    histories: dict[str, History]        # dropout rate -> first seed's history
    train_accuracy: dict[str, list[float]]   # per seed, measured after training in eval mode
    test_accuracy: dict[str, list[float]]
    status: dict[str, list[str]]
    test_comparison: Comparison          # dropout 0.5 vs 0.0, test accuracy
    gap_comparison: Comparison           # dropout 0.5 vs 0.0, train − test accuracy (smaller is better)

    def gap(self, p: str) -> list[float]:
        return [a - b for a, b in zip(self.train_accuracy[p], self.test_accuracy[p])]


def measure(ctx) -> Result:
    b = ctx.budget
    ds, train, val = image_subset(ctx, b.n_train, b.n_val)
    seeds = ctx.seeds()
    histories, train_acc, test_acc, status = {}, {p: [] for p in RATES}, {p: [] for p in RATES}, {p: [] for p in RATES}
    right = {}

    def train_one(job):
        s, p = job
        model, h = train_mlp(ctx, ds, train, val, seed=s, epochs=b.epochs, dropout=float(p),
                             description=f"dropout {p} (seed {s})")
        # Train accuracy in eval mode (dropout off), like the test accuracy: the gap compares like with like.
        return h, (correct(ctx, model, *train), correct(ctx, model, ds.x_test, ds.y_test))

    jobs = [(s, p) for s in seeds for p in RATES]
    done = ctx.map(train_one, jobs, "dropout rates", info=lambda j, out: f"dropout {j[1]}: test {out[1][1].mean():.3f}")
    for (s, p), (h, right[p]) in zip(jobs, done):
        train_acc[p].append(float(right[p][0].mean()))
        test_acc[p].append(float(right[p][1].mean()))
        status[p].append(h.status)
        if s == seeds[0]:
            histories[p] = h
    names = {p: f"dropout {p}" for p in RATES}
    test_cmp = compare_accuracy(names["0.5"], names["0.0"], seeds_a=test_acc["0.5"], seeds_b=test_acc["0.0"],
                            correct_a=right["0.5"][1], correct_b=right["0.0"][1])
    gaps = {p: [a - t for a, t in zip(train_acc[p], test_acc[p])] for p in RATES}
    gap_cmp = compare_gaps(names["0.5"], names["0.0"], seeds_a=gaps["0.5"], seeds_b=gaps["0.0"],
                           train_a=right["0.5"][0], train_b=right["0.0"][0], test_a=right["0.5"][1],
                           test_b=right["0.0"][1], seed=ctx.seed)
    r = Result(ds.label, int(np.prod(ds.shape)), ds.num_classes, len(train[1]), len(val[1]), len(ds.y_test), b.epochs,
               seeds, histories, train_acc, test_acc, status, test_cmp, gap_cmp)
    best = {} if test_cmp.winner is None else {"best_dropout": test_cmp.winner.split()[-1]}
    ctx.record(test_accuracy={p: float(np.mean(v)) for p, v in test_acc.items()},
               generalization_gap={p: float(np.mean(v)) for p, v in gaps.items()},
               train_accuracy={p: float(np.mean(v)) for p, v in train_acc.items()},
               test_accuracy_per_seed=test_acc, generalization_gap_per_seed=gaps, run_status=status,
               verdict=test_cmp.verdict(), gap_verdict=gap_cmp.verdict(), **best,
               epochs=b.epochs, train_examples=r.train_examples, val_examples=r.val_examples,
               test_examples=r.test_examples, lowest_val_loss_epoch={p: lowest_epoch(h) for p, h in histories.items()},
               val_loss_final={p: h.final("val_loss") for p, h in histories.items()}, seeds=seeds)
    return r


def lowest_epoch(h: History) -> int:
    return int(np.nanargmin(h.val_loss)) + 1


def draw(ctx, r: Result) -> None:
    fig = history_figure({f"dropout {p}": r.histories[p] for p in RATES},
                         f"MLP 512-256-128, dropout 0.0 vs 0.5, {r.train_examples} {r.dataset} training images "
                         f"({ctx.mode} mode, first seed)")
    ctx.save_figure(fig, "curves")

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for i, p in enumerate(RATES):
        tr, te = r.train_accuracy[p], r.test_accuracy[p]
        ax.plot([i, i], [np.mean(te), np.mean(tr)], color="0.6", zorder=1)
        ax.scatter([i] * len(tr), tr, color="#1f77b4", s=50, zorder=3,
                   label=f"train accuracy (eval mode, {r.train_examples} images)")
        ax.scatter([i] * len(te), te, color="#d62728", marker="s", s=50, zorder=3,
                   label=f"test accuracy ({r.test_examples} images)")
        ax.annotate(f"gap {100 * np.mean(r.gap(p)):.1f} pts", (i, (np.mean(tr) + np.mean(te)) / 2),
                    xytext=(10, 0), textcoords="offset points", va="center", fontsize=9)
    ax.set_xticks(range(len(RATES)), [f"dropout {p}" for p in RATES])
    ax.set_xlim(-0.5, len(RATES) - 0.3)
    ax.set_ylabel("accuracy (fraction)")
    ax.margins(y=0.15)
    seeds = f"one dot per seed, {len(r.seeds)} seeds" if len(r.seeds) > 1 else "one seed"
    ax.set_title(f"Generalization gap on {r.dataset} ({ctx.mode} mode, {seeds})")
    legend_outside(ax)
    ctx.save_figure(fig, "generalization_gap")


def write_up(r: Result) -> str:
    gap = {p: r.gap(p) for p in RATES}
    h = r.histories
    low = {p: lowest_epoch(h[p]) for p in RATES}
    rows = [(p, over_seeds(r.train_accuracy[p]), over_seeds(r.test_accuracy[p]),
             over_seeds(gap[p], fmt=lambda v: f"{100 * v:.1f} pts"),
             low[p], f"{h[p].val_loss[low[p] - 1]:.3f} → {h[p].final('val_loss'):.3f}") for p in RATES]
    g = r.gap_comparison
    h = r.histories
    low = {p: lowest_epoch(h[p]) for p in RATES}
    rises = {p: h[p].final("val_loss") > h[p].val_loss[low[p] - 1] * 1.05 for p in RATES}
    if g.winner == "dropout 0.5":
        textbook = "This agrees with the textbook: dropout narrowed the gap beyond the noise."
    elif g.winner is None:
        textbook = ("The textbook expects dropout to narrow the gap; here the difference is inside the noise, "
                    "so this run neither confirms nor refutes it"
                    + (f": the unregularised network hardly over-fitted (training accuracy "
                       f"{pct(np.mean(r.train_accuracy['0.0']))}, validation loss within 5% of its lowest at the end), "
                       f"which left dropout little to correct." if not rises["0.0"] else "."))
    else:
        textbook = (f"This goes against the textbook expectation that dropout narrows the gap: with dropout 0.5 the "
                    f"training accuracy (eval mode) was {pct(np.mean(r.train_accuracy['0.5']))} against "
                    f"{pct(np.mean(r.train_accuracy['0.0']))} without, while test accuracy moved from "
                    f"{pct(np.mean(r.test_accuracy['0.0']))} to {pct(np.mean(r.test_accuracy['0.5']))}.")
    curve_lines = []
    for p in RATES:
        state = (f"rose to {h[p].final('val_loss'):.3f} by epoch {h[p].epochs} while training loss kept falling "
                 f"({h[p].train_loss[low[p] - 1]:.3f} → {h[p].final('train_loss'):.3f}): over-fitting"
                 if rises[p] else f"ended at {h[p].final('val_loss'):.3f}, within 5% of its lowest")
        curve_lines.append(f"dropout {p}: validation loss was lowest at epoch {low[p]} "
                           f"({h[p].val_loss[low[p] - 1]:.3f}) and {state}.")
    below = [e for e, (a, v) in enumerate(zip(h["0.5"].train_acc, h["0.5"].val_acc), 1) if a < v]
    below_note = (f"With dropout 0.5 the running training accuracy of `curves.png` stayed below validation accuracy "
                  f"in {len(below)} of {h['0.5'].epochs} epochs, because half the units are dropped while it is "
                  f"measured." if below else "")
    seeds = (f"{len(r.seeds)} seeds (differences judged by the seed spread)" if len(r.seeds) > 1 else
             f"one seed (differences judged on the {r.test_examples} test images: McNemar's test for accuracy, a "
             f"paired bootstrap over training and test images for the gap)")
    return f"""
MLP {r.input_size}-512-256-128-{r.num_classes} (ReLU, Adam lr 1e-3, {r.epochs} epochs) trained on a deliberately
small subset — {r.train_examples} {r.dataset} images, {r.val_examples} for validation, {r.test_examples} test images —
to give the unregularised network room to over-fit; dropout 0.0 and 0.5 start from identical weights and see the
same batches; {seeds}.

{table(["dropout", "train accuracy (eval mode)", "test accuracy", "gap (train − test)",
        "lowest val loss at epoch (first seed)", "val loss: lowest → final (first seed)"], rows)}

- **Generalization gap**: {g.sentence()} {textbook}
- **Test accuracy**: {r.test_comparison.sentence()}
- **Curves** (`curves.png`, first seed): {' '.join(curve_lines)}

Train accuracy in the table is measured after training with dropout switched off (eval mode); the training curves
in `curves.png` are averaged over each epoch with dropout active. {below_note}
"""
