"""3.3 L2 regularization strength: λ in {0, 1e-4, 1e-3, 1e-2} on an MLP 512-256-128.

λ is chosen on the validation set, and a λ is called best only when the comparison rule
separates it from every other λ (a tie with λ = 0 is reported as a tie: the penalty did not
measurably help). The weight-magnitude histograms show how L2 shrinks the whole network.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.s3_regularization._shared import (abs_weights, compare_accuracy, correct, image_subset, lambda_label,
                                                   log_histogram, make_mlp, near_zero_share, over_seeds,
                                                   tied_with_best, train_mlp, weight_penalty)
from utils.history import History
from utils.plotting import legend_outside, plt
from utils.report import Comparison, pct, table

BUDGET = {
    "tiny": {"n_train": 300, "n_val": 100, "epochs": 2, "lambdas": [0.0, 1e-4, 1e-3, 1e-2]},
    "quick": {"n_train": 3000, "n_val": 1000, "epochs": 15, "lambdas": [0.0, 1e-4, 1e-3, 1e-2]},
    "hybrid": {"n_train": 6000, "n_val": 2000, "epochs": 30, "lambdas": [0.0, 1e-4, 1e-3, 1e-2]},
    "full": {"n_train": 10000, "n_val": 2000, "epochs": 40, "lambdas": [0.0, 1e-4, 1e-3, 1e-2]},
}
SMALL = 1e-3   # "small weight" threshold of the histogram summary


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
    labels: list[str]                        # "0", "1e-4", … in λ order
    val_accuracy: dict[str, list[float]]     # per seed
    train_accuracy: dict[str, list[float]]
    test_accuracy: dict[str, list[float]]
    weight_l2_norm: dict[str, list[float]]
    final_penalty: dict[str, list[float]]
    histories: dict[str, History]            # first seed
    bins: np.ndarray                         # log-spaced |w| bin edges
    histograms: dict[str, np.ndarray]        # first seed's |w| counts per λ, and "initial"
    small_share: dict[str, float]            # first seed: share of |w| < SMALL, per λ and "initial"
    top: str                                 # λ with the highest validation accuracy
    against_top: dict[str, Comparison]       # top vs every other λ, validation accuracy
    test_comparison: Comparison              # top vs λ = 0 (or the runner-up when top is 0), test accuracy

    @property
    def tied(self) -> list[str]:
        return tied_with_best(self.labels, self.against_top)

    @property
    def headline_comparison(self) -> Comparison:
        other = "0" if self.top != "0" else max((k for k in self.labels if k != "0"), key=self.mean_val)
        return self.against_top[other]

    def mean_val(self, k: str) -> float:
        return float(np.mean(self.val_accuracy[k]))


def measure(ctx) -> Result:
    b = ctx.budget
    ds, train, val = image_subset(ctx, b.n_train, b.n_val)
    seeds = ctx.seeds()
    labels = [lambda_label(lam) for lam in b.lambdas]
    acc = {k: {kk: [] for kk in labels} for k in ("val", "train", "test", "norm", "penalty")}
    histories, weights, right = {}, {}, {}

    def train_one(job):
        s, lam, k = job
        model, h = train_mlp(ctx, ds, train, val, seed=s, epochs=b.epochs, penalty=("l2", lam),
                             description=f"L2 λ={k} (seed {s})")
        w = abs_weights(model)
        outcome = (correct(ctx, model, *val), correct(ctx, model, ds.x_test, ds.y_test))
        values = {"train": correct(ctx, model, *train).mean(), "norm": np.sqrt((w ** 2).sum()),
                  "penalty": weight_penalty(model, "l2", lam)}
        return h, w, outcome, values

    jobs = [(s, lam, k) for s in seeds for lam, k in zip(b.lambdas, labels)]
    done = ctx.map(train_one, jobs, "L2 strengths", info=lambda j, out: f"λ={j[2]}: val {out[2][0].mean():.3f}")
    for (s, lam, k), (h, w, right[k], values) in zip(jobs, done):
        for key, v in (("val", right[k][0].mean()), ("test", right[k][1].mean()), *values.items()):
            acc[key][k].append(float(v))
        if s == seeds[0]:
            histories[k], weights[k] = h, w
    weights["initial"] = abs_weights(make_mlp(ds, seeds[0]))
    bins = np.logspace(-6, np.log10(max(w.max() for w in weights.values())), 71)
    top = max(labels, key=lambda k: np.mean(acc["val"][k]))
    against = {k: compare_accuracy(f"λ = {top}", f"λ = {k}", seeds_a=acc["val"][top], seeds_b=acc["val"][k],
                               correct_a=right[top][0], correct_b=right[k][0], metric="validation accuracy",
                                   unit="validation images")
               for k in labels if k != top}
    other = "0" if top != "0" else max((k for k in labels if k != "0"), key=lambda k: np.mean(acc["val"][k]))
    test_cmp = compare_accuracy(f"λ = {top}", f"λ = {other}", seeds_a=acc["test"][top], seeds_b=acc["test"][other],
                            correct_a=right[top][1], correct_b=right[other][1])
    r = Result(ds.label, int(np.prod(ds.shape)), ds.num_classes, len(train[1]), len(val[1]), len(ds.y_test), b.epochs,
               seeds, labels, acc["val"], acc["train"], acc["test"], acc["norm"], acc["penalty"], histories, bins,
               {k: log_histogram(w, bins) for k, w in weights.items()},
               {k: near_zero_share(w, SMALL) for k, w in weights.items()}, top, against, test_cmp)
    tied = r.tied

    def means(d):
        return {k: float(np.mean(v)) for k, v in d.items()}

    ctx.record(lambdas=list(b.lambdas), val_accuracy=means(acc["val"]), val_accuracy_per_seed=acc["val"],
               train_accuracy=means(acc["train"]), test_accuracy=means(acc["test"]), test_accuracy_per_seed=acc["test"],
               weight_l2_norm=means(acc["norm"]), final_penalty=means(acc["penalty"]),
               best_lambda=(float(b.lambdas[labels.index(top)]) if len(tied) == 1 else
                            "tie: λ = " + ", ".join(tied)),
               highest_val_lambda=float(b.lambdas[labels.index(top)]), tied_with_highest=tied,
               verdict=r.headline_comparison.verdict() + " (validation)", test_verdict=test_cmp.verdict(),
               share_below_1e_3=r.small_share, epochs=b.epochs, train_examples=r.train_examples,
               val_examples=r.val_examples, test_examples=r.test_examples, seeds=seeds)
    return r


COLORS = ("#d62728", "#ff7f0e", "#2ca02c", "#1f77b4", "#9467bd")


def draw(ctx, r: Result) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3))
    ax = axes[0]
    xs = np.arange(len(r.labels))
    for table_, name, marker in ((r.train_accuracy, f"train ({r.train_examples} images)", "o"),
                                 (r.val_accuracy, f"validation ({r.val_examples} images)", "s")):
        ax.plot(xs, [np.mean(table_[k]) for k in r.labels], marker=marker, label=name)
        if len(r.seeds) > 1:
            for x, k in zip(xs, r.labels):
                ax.scatter([x] * len(table_[k]), table_[k], color="0.5", s=10, zorder=3)
    tied = r.tied
    for k in tied:
        ax.axvline(r.labels.index(k), color="0.4", linestyle=":", label=None if k != tied[0] else
                   "best λ (validation)" if len(tied) == 1 else "tied for the highest validation accuracy")
    ax.set_xticks(xs, r.labels)
    ax.set_xlabel("L2 strength λ (penalty λ·Σw²)")
    ax.set_ylabel("accuracy (fraction)")
    ax.set_title("Accuracy vs λ" + (" (grey dots: seeds)" if len(r.seeds) > 1 else ""))
    ax.legend(loc="lower left", fontsize=7)
    ax = axes[1]
    for k, c in zip(r.labels, COLORS):
        h = r.histories[k]
        ax.plot(range(1, len(h.val_loss) + 1), h.val_loss, color=c, label=f"λ = {k}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss (cross-entropy)")
    ax.set_title("Validation loss per epoch (first seed)")
    legend_outside(ax)
    fig.suptitle(f"L2 regularization, MLP 512-256-128 on {r.train_examples} {r.dataset} images ({ctx.mode} mode)",
                 y=1.02)
    ctx.save_figure(fig, "accuracy_vs_lambda")

    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.stairs(r.histograms["initial"], r.bins, color="0.5", linestyle="--", linewidth=1.2, label="initial weights")
    for k, c in zip(r.labels, COLORS):
        ax.stairs(r.histograms[k], r.bins, color=c, linewidth=1.4,
                  label=f"λ = {k} (‖w‖₂ {r.weight_l2_norm[k][0]:.1f})")
    ax.set_xscale("log")
    ax.set_xlabel("weight magnitude |w| (log scale; values below 1e-6 in the first bin)")
    ax.set_ylabel("number of weights")
    ax.set_title(f"Weight magnitudes after training, all layers, {r.dataset} ({ctx.mode} mode, first seed)")
    legend_outside(ax)
    ctx.save_figure(fig, "weight_histograms")


def write_up(r: Result) -> str:
    rows = [(k, over_seeds(r.val_accuracy[k]), over_seeds(r.train_accuracy[k]),
             f"{100 * (np.mean(r.train_accuracy[k]) - r.mean_val(k)):.1f} pts",
             f"{np.mean(r.weight_l2_norm[k]):.1f}", f"{np.mean(r.final_penalty[k]):.3f}") for k in r.labels]
    tied = r.tied
    if len(tied) == 1:
        best = (f"**Best λ on validation: {r.top}** ({pct(r.mean_val(r.top))}): the rule separates it from every other "
                f"λ.")
    else:
        best = (f"λ = {r.top} had the highest validation accuracy ({pct(r.mean_val(r.top))}), but the rule cannot "
                f"separate it from λ = {', '.join(k for k in tied if k != r.top)}: **no best λ is named**"
                + (" — in particular, the penalty did not measurably beat no penalty." if "0" in tied and r.top != "0"
                   else "."))
    hc = r.headline_comparison
    if r.top == "0" and hc.winner is None:
        textbook = ("The textbook expects a moderate penalty to generalise better than none; here λ = 0 scored highest "
                    f"but {hc.name_b} is within the noise of it, so this run neither confirms nor refutes it.")
    elif r.top == "0":
        k = hc.name_b.split()[-1]
        textbook = ("The textbook expects a moderate penalty to generalise better than none; this run goes against it: "
                    f"{hc.name_b} narrowed the train − validation gap only from "
                    f"{100 * (np.mean(r.train_accuracy['0']) - r.mean_val('0')):.1f} to "
                    f"{100 * (np.mean(r.train_accuracy[k]) - r.mean_val(k)):.1f} points while its training accuracy "
                    f"fell from {pct(np.mean(r.train_accuracy['0']))} to {pct(np.mean(r.train_accuracy[k]))}.")
    elif hc.winner is None:
        textbook = ("The textbook expects a moderate penalty to generalise better than none; here the gain is inside "
                    "the noise, so this run neither confirms nor refutes it.")
    else:
        textbook = "This supports the textbook expectation that a moderate penalty generalises better than none."
    largest = r.labels[-1]
    gaps = [np.mean(r.train_accuracy[k]) - r.mean_val(k) for k in r.labels]
    norms = [np.mean(r.weight_l2_norm[k]) for k in r.labels]
    if largest == r.top:
        top_note = f"The strongest penalty tried, λ = {largest}, had the highest validation accuracy: a larger λ might help."
    else:
        under = np.mean(r.train_accuracy[largest]) < np.mean(r.train_accuracy["0"])
        top_note = (f"The strongest penalty, λ = {largest}, had train accuracy {pct(np.mean(r.train_accuracy[largest]))} "
                    f"against {pct(np.mean(r.train_accuracy['0']))} without penalty"
                    + (": past some strength the penalty costs fit on the training data itself." if under else "."))
    evidence = (f"{len(r.seeds)} seeds, judged by the seed spread" if len(r.seeds) > 1 else
                f"one seed, judged by McNemar's test on the {r.val_examples} validation images "
                f"(and the {r.test_examples} test images for the test check)")
    return f"""
MLP {r.input_size}-512-256-128-{r.num_classes} (Adam lr 1e-3, {r.epochs} epochs) on {r.train_examples} training
images of {r.dataset} (a small subset, to give the unregularised network room to over-fit), {r.val_examples} validation and
{r.test_examples} test images. The training loss is cross-entropy + λ·Σw² over the weight matrices (biases not
penalised); all λ start from identical initial weights and see the same batches; {evidence}.

{table(["λ", "validation accuracy", "train accuracy", "train − validation", "‖w‖₂", "penalty λ·Σw² at the end"], rows)}

- {best}
{chr(10).join('  - ' + r.against_top[k].sentence() for k in r.labels if k != r.top)}
- {textbook}
- On the test set (used only after choosing): {r.test_comparison.sentence()}
- {top_note}
- The train − validation accuracy gap went {' → '.join(f'{100 * g:.1f}' for g in gaps)} points as λ grew.
- Weight size (`weight_histograms.png`): the L2 norm of all weights went {' → '.join(f'{n:.1f}' for n in norms)}
  ({'falling at every step' if all(a >= b for a, b in zip(norms, norms[1:])) else 'not monotonically'}); the share of
  weights below {SMALL:g} went {' → '.join(pct(r.small_share[k]) for k in r.labels)} (initial weights
  {pct(r.small_share['initial'])}). L2 pulls on each weight in proportion to its size (gradient 2λw), so the whole
  histogram moves left; 3.4 sets this against L1's constant pull.
"""
