"""3.7 Normalization: none vs batch, layer, instance and group norm in a small CNN.

A CNN (three conv 3×3 → norm → ReLU → pool stages, global average pooling, linear) is trained
with SGD + momentum with each normalization after each convolution — instance and group norm
need the positions of a feature map, hence a CNN rather than an MLP. Measured: speed of
convergence at a moderate learning rate, tolerance of high learning rates (diverged or
stuck-at-chance runs marked ×), and batch norm's internals: batch vs running statistics, train vs
eval mode.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from experiments.s3_regularization._shared import compare_accuracy, correct, image_subset, over_seeds
from experiments.s3_regularization._shared_norm import (COLORS, NAMES, NORMS, batch_norm_internals, fell_behind_text,
                                                        norm_cnn, run_state, tolerance_text)
from utils.history import History
from utils.plotting import history_figure, legend_outside, plt, sweep_plot
from utils.report import Comparison, pct, table

SIZES = [1, 2, 4, 8, 32, 128, 500]
BUDGET = {  # epochs: the runs at base_lr (convergence); sweep_epochs: the other learning rates (tolerance)
    "tiny": {"n_train": 300, "n_val": 100, "epochs": 2, "sweep_epochs": 1, "batch_size": 32, "base_lr": 0.05,
             "lrs": [0.05, 2.0], "channels": [8, 16, 32], "probe_batch": 32, "probe_sizes": [1, 2, 16, 64]},
    "quick": {"n_train": 1600, "n_val": 500, "epochs": 6, "sweep_epochs": 3, "batch_size": 64, "base_lr": 0.05,
              "lrs": [0.05, 0.5, 2.0], "channels": [8, 16, 32], "probe_batch": 32, "probe_sizes": SIZES},
    "hybrid": {"n_train": 6000, "n_val": 2000, "epochs": 10, "sweep_epochs": 5, "batch_size": 64, "base_lr": 0.05,
               "lrs": [0.01, 0.05, 0.2, 0.5, 1.0, 2.0], "channels": [8, 16, 32], "probe_batch": 32,
               "probe_sizes": SIZES},
    "full": {"n_train": 10000, "n_val": 2000, "epochs": 15, "sweep_epochs": 8, "batch_size": 64, "base_lr": 0.05,
             "lrs": [0.01, 0.05, 0.2, 0.5, 1.0, 2.0], "channels": [16, 32, 64], "probe_batch": 32,
             "probe_sizes": SIZES},
}


@dataclass
class Result:
    dataset: str
    channels: list[int]
    num_classes: int
    train_examples: int
    val_examples: int
    test_examples: int
    epochs: int
    sweep_epochs: int
    batch_size: int
    base_lr: float
    lrs: list[float]
    seeds: list[int]
    histories: dict[str, History]                 # base LR, first seed
    sweep: dict[str, dict[str, list[float]]]      # norm -> lr -> val accuracy after sweep_epochs (last finite) per seed
    state: dict[str, dict[str, list[str]]]        # norm -> lr -> "trained" | "diverged" | "stuck at chance" per seed
    first_epoch: dict[str, list[float]]           # base LR: val accuracy after epoch 1, per seed
    test_accuracy: dict[str, list[float]]         # base LR, after training
    target: float
    to_target: dict[str, list[int | None]]
    epoch_seconds: dict[str, float]
    first_comparison: dict[str, Comparison]       # norm vs none, val accuracy after epoch 1
    test_comparison: dict[str, Comparison]        # norm vs none, test accuracy after training
    bn: dict[str, Any]                            # batch_norm_internals of the base-LR batch-norm network

    def failed(self, k: str, lr: float) -> bool:
        return any(s != "trained" for s in self.state[k][f"{lr:g}"])

    def tolerated(self, k: str) -> float | None:
        """Highest LR at which this network still trained (no seed diverged or stuck at chance)."""
        return max((lr for lr in self.lrs if not self.failed(k, lr)), default=None)


def measure(ctx) -> Result:
    b = ctx.budget
    assert b.base_lr in b.lrs, "the base learning rate must be one of the sweep's"
    ds, train, val = image_subset(ctx, b.n_train, b.n_val)
    c = ds.shape[0]
    seeds = ctx.seeds()
    bs = min(b.batch_size, max(8, len(train[1]) // 8))
    labels = [f"{lr:g}" for lr in b.lrs]
    sweep = {k: {lab: [] for lab in labels} for k in NORMS}
    state = {k: {lab: [] for lab in labels} for k in NORMS}
    histories, first, test_acc, right = {}, {k: [] for k in NORMS}, {k: [] for k in NORMS}, {}

    def train_one(job):
        s, lr, lab, k = job
        model = norm_cnn(k, c, ds.num_classes, b.channels, seed=s).to(ctx.device)
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        seen = {}

        def after_epoch(epoch, net, _h):
            if epoch == 1:
                seen["val"] = correct(ctx, net, *val)

        h = ctx.fit(model, train, val, epochs=b.epochs if lr == b.base_lr else b.sweep_epochs,
                    optimizer=opt, seed=s, batch_size=bs,
                    description=f"{NAMES[k]}, lr {lab}" + (f" (seed {s})" if len(seeds) > 1 else ""),
                    on_epoch_end=after_epoch if lr == b.base_lr else None)
        if lr != b.base_lr:
            return h, None
        return h, (seen.get("val", np.zeros(len(val[1]), bool)), correct(ctx, model, ds.x_test, ds.y_test), model)

    jobs = [(s, lr, lab, k) for s in seeds for lr, lab in zip(b.lrs, labels) for k in NORMS]
    jobs.sort(key=lambda j: j[1] != b.base_lr)  # the longer base-LR runs first (stable: seed order kept)
    runs = ctx.map(train_one, jobs, "normalization × learning rate",
                   info=lambda j, out: f"{NAMES[j[3]]}, lr {j[2]}: val {out[0].final('val_acc'):.3f}")
    for (s, lr, lab, k), (h, base) in zip(jobs, runs):
        state[k][lab].append(run_state(h, ds.num_classes))
        # The base-LR run shares its first sweep_epochs with a shorter run (same weights, batches, LR).
        sweep[k][lab].append(History(val_acc=h.val_acc[:b.sweep_epochs]).final("val_acc"))
        if base is None:
            continue
        first[k].append(h.val_acc[0] if h.val_acc else float("nan"))
        right[k] = base[:2]
        test_acc[k].append(float(right[k][1].mean()))
        if s == seeds[0]:
            histories[k] = h
            if k == "batch":
                bn_model = base[2]
    best_final = max(histories[k].final("val_acc") for k in NORMS)
    target = round(0.95 * best_final, 3)
    to_target = {k: [next((i + 1 for i, v in enumerate(histories[k].val_acc) if v >= target), None)] for k in NORMS}
    first_cmp = {k: compare_accuracy(NAMES[k], NAMES["none"], seeds_a=first[k], seeds_b=first["none"],
                                     correct_a=right[k][0], correct_b=right["none"][0],
                                     metric="validation accuracy after epoch 1",
                                     unit="validation images")
                 for k in NORMS if k != "none"}
    test_cmp = {k: compare_accuracy(NAMES[k], NAMES["none"], seeds_a=test_acc[k], seeds_b=test_acc["none"],
                                correct_a=right[k][1], correct_b=right["none"][1]) for k in NORMS if k != "none"}
    bn = batch_norm_internals(bn_model, train[0], train[0][:b.probe_batch], b.probe_sizes, *val)
    bn["requested_sizes"] = list(b.probe_sizes)
    r = Result(ds.label, list(b.channels), ds.num_classes, len(train[1]), len(val[1]), len(ds.y_test), b.epochs,
               b.sweep_epochs, bs,
               b.base_lr, list(b.lrs), seeds, histories, sweep, state, first, test_acc, target, to_target,
               {k: float(np.mean(histories[k].epoch_seconds)) for k in NORMS}, first_cmp, test_cmp, bn)
    ctx.record(verdict=first_cmp["batch"].verdict() + " after epoch 1", test_verdict=test_cmp["batch"].verdict(),
               verdicts_after_epoch_1={k: v.verdict() for k, v in first_cmp.items()},
               verdicts_test={k: v.verdict() for k, v in test_cmp.items()},
               first_epoch_val_accuracy={k: float(np.mean(v)) for k, v in first.items()},
               test_accuracy={k: float(np.mean(v)) for k, v in test_acc.items()}, target_val_accuracy=target,
               epochs_to_target={k: v[0] for k, v in to_target.items()}, final_val_accuracy=sweep,
               run_state=state, highest_tolerated_lr={k: r.tolerated(k) for k in NORMS},
               diverged={k: [lab for lab, lr in zip(labels, b.lrs) if r.failed(k, lr)] for k in NORMS},
               epoch_seconds=r.epoch_seconds, base_lr=b.base_lr, learning_rates=list(b.lrs), batch_size=bs,
               bn_internals={key: v for key, v in bn.items() if not key.startswith(("population_", "running_m",
                                                                                   "running_v", "batch_m", "batch_v",
                                                                                   "batch_sizes", "train_mode_acc",
                                                                                   "requested"))},
               train_examples=r.train_examples, val_examples=r.val_examples, test_examples=r.test_examples,
               epochs=b.epochs, channels=list(b.channels), seeds=seeds)
    return r


def draw(ctx, r: Result) -> None:
    arch = f"CNN {'-'.join(map(str, r.channels))}-GAP"
    fig = history_figure({NAMES[k]: r.histories[k] for k in NORMS},
                         f"Convergence, {arch} on {r.train_examples} {r.dataset} images, SGD lr {r.base_lr:g} "
                         f"({ctx.mode} mode, first seed)")
    fig.axes[1].axhline(r.target, color="k", linestyle=":", linewidth=1, label=f"target {pct(r.target)} (validation)")
    legend_outside(fig.axes[1], sources=fig.axes[:2])
    ctx.save_figure(fig, "convergence")

    fig, ax = plt.subplots(figsize=(8, 4.4))
    ax.set_ylim(0, 1)
    ax.set_xscale("log")
    for i, k in enumerate(NORMS):  # each network shifted a little sideways, so equal values do not hide each other
        sweep_plot(ax, [lr * 1.07 ** (i - 2) for lr in r.lrs], [np.mean(r.sweep[k][f"{lr:g}"]) for lr in r.lrs],
                   diverged=[r.failed(k, lr) for lr in r.lrs], label=NAMES[k], color=COLORS[k])
    ax.axhline(1 / r.num_classes, color="0.5", linestyle=":", linewidth=1, label="chance")
    ax.set_ylim(0, 1)
    ax.set_xticks(r.lrs, [f"{lr:g}" for lr in r.lrs])
    ax.minorticks_off()
    handles, names = ax.get_legend_handles_labels()   # one × entry for all networks
    keep = [(h, n) for h, n in zip(handles, names) if not n.endswith("diverged (×)")]
    if len(keep) < len(handles):
        keep.append((plt.Line2D([], [], marker="x", color="k", linestyle="none", markersize=9, markeredgewidth=2),
                     "diverged or stuck at chance (×, in the network's colour)"))
    ax.legend(*zip(*keep), loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    ax.set_xlabel("learning rate (SGD, momentum 0.9; log scale)")
    ax.set_ylabel(f"validation accuracy after {r.sweep_epochs} epochs")
    failed = any(r.failed(k, lr) for k in NORMS for lr in r.lrs)
    ax.set_title(f"Tolerance of high learning rates, {arch} on {r.dataset} ({ctx.mode} mode)\n"
                 + ("× = diverged (NaN loss; last finite value) or stuck at chance" if failed
                    else "no run diverged or stayed at chance"))
    ctx.save_figure(fig, "lr_tolerance")

    bn = r.bn
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    for ax, stat, word in ((axes[0], "mean", "mean"), (axes[1], "var", "variance")):
        pop = bn[f"population_{stat}"]
        ax.scatter(pop, bn[f"batch_{stat}"], s=14, alpha=0.7, color="#ff7f0e",
                   label=f"one training batch of {bn['batch_size']}")
        ax.scatter(pop, bn[f"running_{stat}"], s=14, alpha=0.8, color="#1f77b4", label="running estimate (eval mode)")
        lo = float(min(pop.min(), bn[f"batch_{stat}"].min(), bn[f"running_{stat}"].min()))
        hi = float(max(pop.max(), bn[f"batch_{stat}"].max(), bn[f"running_{stat}"].max()))
        ax.plot([lo, hi], [lo, hi], color="k", linewidth=0.8, label="y = x")
        ax.set_xlabel(f"{word} over all {r.train_examples} training images")
        ax.set_ylabel(f"{word} of the estimate")
        ax.set_title(f"BN input {word}, per channel ({sum(bn['channels'])} channels)")
    axes[2].plot(bn["batch_sizes"], bn["train_mode_accuracy"], "o-", color="#ff7f0e",
                 label="train mode (batch statistics)")
    axes[2].axhline(bn["eval_mode_accuracy"], color="#1f77b4", linestyle="--", label="eval mode (running statistics)")
    axes[2].set_xscale("log", base=2)
    axes[2].set_xlabel("batch size at prediction time (log scale)")
    axes[2].set_ylabel(f"validation accuracy ({bn['eval_examples']} images)")
    axes[2].set_title("Predicting in train vs eval mode")
    legend_outside(axes[2], sources=list(axes))
    fig.suptitle(f"Batch-norm internals, {arch} on {r.dataset}, lr {r.base_lr:g} ({ctx.mode} mode, first seed)", y=1.03)
    ctx.save_figure(fig, "bn_internals")


def write_up(r: Result) -> str:
    def reach(k):
        v = r.to_target[k][0]
        return f"epoch {v}" if v else f"not within {r.epochs}"

    def cell(k, lr):
        vals, states = r.sweep[k][f"{lr:g}"], r.state[k][f"{lr:g}"]
        return ", ".join(pct(v) if s == "trained" else f"{s} ({pct(v)})" for v, s in zip(vals, states))

    rows = [(NAMES[k], over_seeds(r.first_epoch[k]), reach(k), pct(r.histories[k].final("val_acc")),
             over_seeds(r.test_accuracy[k]), f"{1000 * r.epoch_seconds[k]:.0f} ms") for k in NORMS]
    lr_rows = [(f"{lr:g}", *[cell(k, lr) for k in NORMS]) for lr in r.lrs]
    (tol, high), late_text = tolerance_text(r), fell_behind_text(r)
    beat = [NAMES[k] for k, c in r.first_comparison.items() if c.winner == NAMES[k]]
    bc = r.first_comparison["batch"]
    if bc.winner == NAMES["batch"]:
        textbook = "Batch norm converged faster than no normalization, as the textbook expects."
    else:
        textbook = (f"The textbook expects batch norm to converge faster; here, after one epoch, "
                    f"{'the difference is inside the noise' if bc.winner is None else 'no normalization was ahead'} "
                    f"(no normalization reached {pct(np.mean(r.first_epoch['none']))} and batch norm "
                    f"{pct(np.mean(r.first_epoch['batch']))} after one epoch at lr {r.base_lr:g}).")
    bn = r.bn
    accs = sorted(zip(bn["batch_sizes"], bn["train_mode_accuracy"]))
    small_bs, small_acc = accs[0] if accs else (0, float("nan"))
    closer = (bn["running_vs_population_mean_abs_error"] < bn["batch_vs_population_mean_abs_error"]
              and bn["running_vs_population_var_rel_error"] < bn["batch_vs_population_var_rel_error"])
    running_note = ("The running averages are the better estimate of the population statistics; a single batch is a "
                    "noisy one." if closer else
                    "Here the running averages were not closer to the population statistics than one batch on both "
                    "counts: they average batches seen while the weights were still changing.")
    drop = bn["eval_mode_accuracy"] - small_acc
    skipped = [b for b in bn.get("requested_sizes", []) if b not in bn["batch_sizes"]]
    best_bs, best_acc = max(accs, key=lambda a: a[1]) if accs else (0, float("nan"))
    lag = (f" With batches of {best_bs}, train mode scored {pct(best_acc)} against eval mode's "
           f"{pct(bn['eval_mode_accuracy'])}: the running estimates, averaged over batches seen while the weights were "
           f"still changing, lag the final network." if best_acc > bn["eval_mode_accuracy"] + 0.02 else "")
    seeds = (f"{len(r.seeds)} seeds (differences judged by the seed spread)" if len(r.seeds) > 1 else
             f"one seed (differences judged by McNemar's test on the {r.val_examples} validation or "
             f"{r.test_examples} test images)")
    return f"""
CNN {' → '.join(f'conv {c} → pool' for c in r.channels)} → global average pool → linear, with the normalization
between each convolution and its ReLU; SGD with momentum 0.9, batch {r.batch_size}, {r.epochs} epochs, {r.train_examples} training,
{r.val_examples} validation and {r.test_examples} test images of {r.dataset}; all variants of a seed share their initial
conv and linear weights and their batches; {seeds}. Batch norm normalises each channel over the batch (running
averages in eval mode); layer norm each image over all channels; instance norm each channel of each image; group norm
groups of channels of each image.

## Convergence speed (SGD lr {r.base_lr:g}, `convergence.png`)
{table(["normalization", "val. accuracy after epoch 1", f"first epoch at ≥ {pct(r.target)} val. accuracy",
        f"val. accuracy after {r.epochs} epochs", f"test accuracy ({r.test_examples} images)", "time per epoch"], rows)}

The target is 95% of the best final validation accuracy among the five. After one epoch, against no normalization
({', '.join(beat) or 'none of them'} ahead by the rule):
{chr(10).join('- ' + c.sentence() for c in r.first_comparison.values())}

{textbook} After {r.epochs} epochs on the test set:
{chr(10).join('- ' + c.sentence() for c in r.test_comparison.values())}
{late_text}

Time per epoch is measured on a shared CPU: batch norm {1000 * r.epoch_seconds['batch']:.0f} ms, none
{1000 * r.epoch_seconds['none']:.0f} ms.

## Tolerance of a high learning rate (`lr_tolerance.png`)
Validation accuracy after {r.sweep_epochs} epochs (diverged: the loss became NaN, value before it; stuck at
chance: final training loss no better than guessing or validation accuracy below 1.5× chance); the lr {r.base_lr:g} values are
those runs' epoch {r.sweep_epochs}:

{table(["learning rate", *[NAMES[k] for k in NORMS]], lr_rows)}

Highest learning rate at which each network still trained: {tol}. {high}

## Batch-norm internals (`bn_internals.png`, the lr {r.base_lr:g} batch-norm network, {sum(bn['channels'])} channels)
- **Running vs batch statistics.** Against each channel's mean over all training images, the running mean is off by
  {bn['running_vs_population_mean_abs_error']:.3f} on average and one batch of {bn['batch_size']} by
  {bn['batch_vs_population_mean_abs_error']:.3f}; for the variance the mean relative errors are
  {pct(bn['running_vs_population_var_rel_error'])} and {pct(bn['batch_vs_population_var_rel_error'])}. {running_note}
- **Train vs eval mode.** On the same {bn['batch_size']} images, train mode (the batch's own statistics) and eval mode
  (running statistics) give logits that differ by {bn['train_vs_eval_logit_mean_abs_diff']:.3f} on average and the same
  class for {pct(bn['train_vs_eval_prediction_agreement'])} of them. In train mode one image's logits changed by up to
  {bn['same_example_other_batch_logit_change']['train_mode']:.3f} when its batch-mates changed; in eval mode by
  {bn['same_example_other_batch_logit_change']['eval_mode']:.1g}: eval mode is a fixed function of each input.
- **Why eval mode matters.** Predicting in train mode, validation accuracy was {pct(small_acc)} with batches of
  {small_bs} and {pct(accs[-1][1])} with batches of {accs[-1][0]}, against {pct(bn['eval_mode_accuracy'])} in eval mode
  ({bn['eval_examples']} validation images{'; batch size ' + ', '.join(map(str, skipped)) + ' skipped as larger' if skipped else ''}): {'small batches give statistics too noisy to normalise with, and a prediction then depends on its batch-mates.' if drop > 0.05 else f'a difference of {100 * drop:.1f} points at the smallest batch.'}{lag}
"""
