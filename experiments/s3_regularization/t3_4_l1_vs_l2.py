"""3.4 L1 vs L2 regularization: accuracy and weight sparsity of an MLP 512-256-128.

L1 adds λ·Σ|w| (gradient λ·sign(w): a constant pull towards zero), L2 adds λ·Σw² (gradient
2λw: a pull that fades as w shrinks). Sparsity is the share of weights with |w| below a small
threshold; magnitude pruning then shows how much of each network can be zeroed.
The strengths were picked so that both penalties cost about the same accuracy: λ·Σ|w| and
λ·Σw² have different units, so equal λ would not compare like with like.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from experiments.s3_regularization._shared import (abs_weights, compare_accuracy, correct, image_subset,
                                                   log_histogram, make_mlp, near_zero_share, over_seeds,
                                                   prune_small_weights, train_mlp, weight_matrices)
from utils.plotting import legend_outside, plt
from utils.report import Comparison, compare_seeds, pct, table

SHARES = [0.0, 0.2, 0.4, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99]
BUDGET = {
    "tiny": {"n_train": 300, "n_val": 100, "epochs": 2, "prune_shares": [0.0, 0.5, 0.9]},
    "quick": {"n_train": 3000, "n_val": 1000, "epochs": 15, "prune_shares": SHARES},
    "hybrid": {"n_train": 6000, "n_val": 2000, "epochs": 30, "prune_shares": SHARES},
    "full": {"n_train": 10000, "n_val": 2000, "epochs": 40, "prune_shares": SHARES},
}
VARIANTS = {"none": None, "l1": ("l1", 1e-4), "l2": ("l2", 1e-3)}
NAMES = {"none": "no penalty", "l1": "L1, λ = 1e-4", "l2": "L2, λ = 1e-3"}
COLORS = {"none": "#7f7f7f", "l1": "#d62728", "l2": "#1f77b4"}
THRESHOLD = 1e-3  # "near zero": about 1/25 of the initial mean |w| of this MLP


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
    n_weights: int
    val_accuracy: dict[str, list[float]]      # per seed
    test_accuracy: dict[str, list[float]]
    sparsity: dict[str, list[float]]          # share of |w| < THRESHOLD, per seed
    initial_sparsity: float
    per_layer: dict[str, list[float]]         # first seed, first → last layer
    exact_zero: dict[str, float]              # first seed: share of weights exactly 0
    bins: np.ndarray
    histograms: dict[str, np.ndarray]         # first seed, per variant and "initial"
    grid: np.ndarray                          # thresholds of the cumulative curves
    below: dict[str, np.ndarray]              # share of |w| < grid, per variant and "initial"
    prune_shares: list[float]
    pruned_accuracy: dict[str, list[float]]   # first seed: test accuracy after zeroing each share
    pruned_at_threshold: dict[str, float]     # first seed: test accuracy with |w| < THRESHOLD zeroed
    accuracy: dict[str, Comparison]           # "l1_vs_l2", "l1_vs_none", "l2_vs_none" (test accuracy)
    sparsity_comparison: Comparison | None    # L1 vs L2 over seeds (None with one seed)

    def prunable(self, k: str, drop: float = 0.01) -> float:
        """The largest share of weights zeroed (smallest first) with test accuracy within ``drop`` of unpruned."""
        base = self.pruned_accuracy[k][0]
        return max((s for s, a in zip(self.prune_shares, self.pruned_accuracy[k]) if a >= base - drop), default=0.0)


def measure(ctx) -> Result:
    b = ctx.budget
    ds, train, val = image_subset(ctx, b.n_train, b.n_val)
    seeds = ctx.seeds()
    val_acc, test_acc, sparsity = ({k: [] for k in VARIANTS} for _ in range(3))
    first, right = {}, {}

    def train_one(job):
        s, k = job
        model, _ = train_mlp(ctx, ds, train, val, seed=s, epochs=b.epochs, penalty=VARIANTS[k],
                             description=f"{NAMES[k]} (seed {s})")
        return model, correct(ctx, model, ds.x_test, ds.y_test), float(correct(ctx, model, *val).mean())

    jobs = [(s, k) for s in seeds for k in VARIANTS]
    done = ctx.map(train_one, jobs, "penalties", info=lambda j, out: f"{NAMES[j[1]]}: test {out[1].mean():.3f}")
    for (s, k), (model, right[k], val_accuracy) in zip(jobs, done):
        val_acc[k].append(val_accuracy)
        test_acc[k].append(float(right[k].mean()))
        sparsity[k].append(near_zero_share(abs_weights(model), THRESHOLD))
        if s == seeds[0]:
            first[k] = model
    w = {k: abs_weights(m) for k, m in first.items()}
    w["initial"] = abs_weights(make_mlp(ds, seeds[0]))
    bins = np.logspace(-6, np.log10(max(v.max() for v in w.values())), 71)
    grid = np.logspace(-6, 0, 200)

    def pruned(model, cutoff):
        m = copy.deepcopy(model)
        prune_small_weights(m, cutoff)
        return float(correct(ctx, m, ds.x_test, ds.y_test).mean())

    pruned_acc = {k: [pruned(m, float(c) if sh > 0 else 0.0) for sh, c in
                      zip(b.prune_shares, np.quantile(w[k], b.prune_shares))] for k, m in first.items()}
    acc_cmp = {f"{a}_vs_{c}": compare_accuracy(NAMES[a], NAMES[c], seeds_a=test_acc[a], seeds_b=test_acc[c],
                                           correct_a=right[a], correct_b=right[c])
               for a, c in (("l1", "l2"), ("l1", "none"), ("l2", "none"))}
    sp_cmp = (compare_seeds("L1", sparsity["l1"], "L2", sparsity["l2"], metric=f"share of weights below {THRESHOLD:g}")
              if len(seeds) > 1 else None)
    r = Result(ds.label, int(np.prod(ds.shape)), ds.num_classes, len(train[1]), len(val[1]), len(ds.y_test), b.epochs,
               seeds, int(w["l1"].size), val_acc, test_acc, sparsity, near_zero_share(w["initial"], THRESHOLD),
               {k: [near_zero_share(p.detach().abs().cpu().numpy(), THRESHOLD) for p in weight_matrices(m)]
                for k, m in first.items()},
               {k: float((v == 0).mean()) for k, v in w.items() if k != "initial"}, bins,
               {k: log_histogram(v, bins) for k, v in w.items()}, grid,
               {k: np.searchsorted(np.sort(v), grid) / v.size for k, v in w.items()}, list(b.prune_shares), pruned_acc,
               {k: pruned(m, THRESHOLD) for k, m in first.items()}, acc_cmp, sp_cmp)
    ctx.record(test_accuracy={k: float(np.mean(v)) for k, v in test_acc.items()},
               val_accuracy={k: float(np.mean(v)) for k, v in val_acc.items()},
               sparsity={k: float(np.mean(v)) for k, v in sparsity.items()}, sparsity_per_seed=sparsity,
               sparsity_threshold=THRESHOLD, initial_sparsity=r.initial_sparsity, sparsity_per_layer=r.per_layer,
               exact_zero_share=r.exact_zero, lambdas={k: v[1] for k, v in VARIANTS.items() if v},
               test_accuracy_per_seed=test_acc, accuracy_verdict={k: c.verdict() for k, c in acc_cmp.items()},
               pruned_test_accuracy_at_threshold=r.pruned_at_threshold,
               prunable_share_within_1pt={k: r.prunable(k) for k in first},
               pruning_curve={k: {"share_pruned": r.prune_shares, "test_accuracy": v} for k, v in pruned_acc.items()},
               epochs=b.epochs, train_examples=r.train_examples, test_examples=r.test_examples, weights=r.n_weights,
               seeds=seeds)
    return r


def draw(ctx, r: Result) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.4))
    axes[0].stairs(r.histograms["initial"], r.bins, color="0.6", linestyle="--", label="initial weights")
    for k in VARIANTS:
        axes[0].stairs(r.histograms[k], r.bins, color=COLORS[k], linewidth=1.4, label=NAMES[k])
    axes[0].set_xlabel("weight magnitude |w| (log scale; below 1e-6 in the first bin)")
    axes[0].set_ylabel("number of weights")
    axes[0].set_title("Weight magnitudes after training")
    axes[1].plot(r.grid, r.below["initial"], color="0.6", linestyle="--", label="initial weights")
    for k in VARIANTS:
        axes[1].plot(r.grid, r.below[k], color=COLORS[k], label=NAMES[k])
    axes[1].set_xlabel("threshold t (log scale)")
    axes[1].set_ylabel("share of weights with |w| < t")
    axes[1].set_title("Sparsity at every threshold")
    for ax in axes:
        ax.set_xscale("log")
        ax.axvline(THRESHOLD, color="k", linestyle=":", linewidth=1, label=f"near-zero threshold {THRESHOLD:g}")
    legend_outside(axes[1], sources=list(axes))
    fig.suptitle(f"L1 vs L2, MLP 512-256-128 on {r.train_examples} {r.dataset} images "
                 f"({r.n_weights:,} weights; {ctx.mode} mode, first seed)", y=1.03)
    ctx.save_figure(fig, "weight_histograms")

    fig, ax = plt.subplots(figsize=(8, 4.4))
    for k in VARIANTS:
        ax.plot(r.prune_shares, r.pruned_accuracy[k], "o-", color=COLORS[k], markersize=4, label=NAMES[k])
    ax.set_xlabel("share of weights set to zero (smallest |w| first, all layers)")
    ax.set_ylabel(f"test accuracy (fraction, {r.test_examples} images)")
    ax.set_title(f"Magnitude pruning after training, {r.dataset} ({ctx.mode} mode, first seed)")
    legend_outside(ax)
    ctx.save_figure(fig, "pruning")


def write_up(r: Result) -> str:
    sp = {k: float(np.mean(v)) for k, v in r.sparsity.items()}
    rows = [(NAMES[k], over_seeds(r.val_accuracy[k]), over_seeds(r.test_accuracy[k]), over_seeds(r.sparsity[k]),
             " / ".join(pct(v, 0) for v in r.per_layer[k]), pct(r.pruned_at_threshold[k])) for k in VARIANTS]
    ratio = sp["l1"] / max(sp["l2"], 1e-9)
    more, less = ("L1", "L2") if ratio >= 1 else ("L2", "L1")
    count = f"of the {r.n_weights:,} weights"
    sparsity = (f"L1 left {pct(sp['l1'])} {count} below {THRESHOLD:g}, L2 {pct(sp['l2'])}, no penalty "
                f"{pct(sp['none'])} (initial weights {pct(r.initial_sparsity)}): {more} left "
                f"{max(ratio, 1 / max(ratio, 1e-9)):.1f}× as many near-zero weights as {less}.")
    if r.sparsity_comparison is not None:
        sparsity += " " + r.sparsity_comparison.sentence()
    if ratio >= 1.5:
        sparsity += " This is the textbook picture: L1's constant pull drives small weights to (near) zero."
    elif ratio > 1 / 1.5:
        sparsity += (" The two are within a factor 1.5 of each other: a smaller difference than the textbook's "
                     "'L1 is sparse, L2 is not' suggests, at these strengths.")
    else:
        cross = VARIANTS["l1"][1] / (2 * VARIANTS["l2"][1])
        above = 1 - float(np.interp(np.log(cross), np.log(r.grid), r.below["initial"]))
        sparsity += (f" This goes against the textbook expectation that L1 is the sparser one. At these strengths L1's "
                     f"constant pull is weaker than L2's 2λ|w| on every weight above {cross:.2g}, which held "
                     f"{pct(above)} of the initial weights.")
    layers = "; ".join(f"{NAMES[k]} {' / '.join(pct(v, 0) for v in r.per_layer[k])}" for k in VARIANTS)
    exact = r.exact_zero["l1"]
    exact_note = (f"{'None' if exact == 0 else 'Only ' + pct(exact, 3)} of the L1 network's weights are exactly zero: "
                  f"with Adam the subgradient λ·sign(w) makes small weights hover around zero rather than land on it "
                  f"(there is no proximal step), which is why sparsity is counted below a threshold.")
    evidence = (f"{len(r.seeds)} seeds, judged by the seed spread" if len(r.seeds) > 1 else
                f"one seed; accuracy differences judged by McNemar's test on the {r.test_examples} test images")
    return f"""
MLP {r.input_size}-512-256-128-{r.num_classes} (Adam lr 1e-3, {r.epochs} epochs) on {r.train_examples} training
images of {r.dataset}, {r.val_examples} validation and {r.test_examples} test images; identical initial weights and
batches; {evidence}. Penalties on the {r.n_weights:,} weights of the weight matrices only: L1 adds λ·Σ|w| (gradient
λ·sign(w), a constant pull towards zero), L2 adds λ·Σw² (gradient 2λw, a pull that fades as w shrinks).
**Sparsity** is the share of weights with |w| < {THRESHOLD:g}.

{table(["penalty", "validation accuracy", "test accuracy", f"share of weights below {THRESHOLD:g}",
        "per layer, 1st → last (first seed)", f"test accuracy with |w| < {THRESHOLD:g} set to 0 (first seed)"], rows)}

- **Sparsity** (`weight_histograms.png`): {sparsity}
- Per layer (first → last, first seed): {layers}.
- **Accuracy**: {r.accuracy['l1_vs_l2'].sentence()}
  Against no penalty: {r.accuracy['l1_vs_none'].sentence()} {r.accuracy['l2_vs_none'].sentence()}
- **Pruning** (`pruning.png`): zeroing the weights below {THRESHOLD:g} changed test accuracy by
  {', '.join(f"{NAMES[k]} {100 * (r.pruned_at_threshold[k] - r.pruned_accuracy[k][0]):+.2f} points" for k in VARIANTS)};
  the largest share of weights that could be zeroed (smallest first) while staying within 1 point of the unpruned
  accuracy was {', '.join(f"{NAMES[k]} {pct(r.prunable(k), 0)}" for k in VARIANTS)} (one point is
  {r.test_examples / 100:.0f} of the {r.test_examples} test images).

{exact_note}
"""
